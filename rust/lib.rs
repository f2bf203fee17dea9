//! bastion's core: bearer-token verification, opaque tokens and rate limiting without I/O.
//!
//! The core modules import no PyO3; the binding layer lives in [`py`] behind the default `python`
//! feature, so `cargo test --no-default-features` runs the core without libpython. This file is
//! wiring only.

pub mod auth;
pub mod bearer;
pub mod error;
// -- jwt (issue 2) --
pub mod jwt;
// -- opaque (issue 3) --
pub mod opaque;
pub mod principal;
// -- ratelimit (issue 4) --
pub mod clock;
pub mod ratelimit;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, ErrorKind, Result};
