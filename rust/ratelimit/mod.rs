//! Identity-aware rate limiting: named tiers of GCRA rates over a bounded, sharded key map.
//!
//! The limiter reads no clock: every call takes `now`, nanoseconds on the caller's monotonic clock
//! since the limiter's start (see `crate::clock`). Identities are reduced to a 64-bit digest
//! keyed with a per-limiter random key (aHash's `RandomState`, seeded from the OS); the raw key is
//! never stored. With 64 bits, the chance that any two of `n` live keys collide is about
//! `n² / 2^65`: 3 × 10⁻⁸ for a million keys. A collision makes two identities share one bucket,
//! so it can only *under*-admit them, never let anyone past their own limit; and because the key
//! is random per limiter, nobody can aim a collision at a chosen identity.

pub mod decision;
pub mod gcra;
pub mod limiter;
pub mod map;
pub mod policy;
pub mod redis;
pub mod table;

pub use decision::{Decision, Quota};
pub use gcra::MAX_RATES;
pub use limiter::{Limiter, DEFAULT_MAX_KEYS};
pub use policy::{Policy, Rate, Tier};
