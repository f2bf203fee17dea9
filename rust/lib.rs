//! bastion's core: bearer-token verification, opaque tokens and rate limiting without I/O.
//!
//! The core modules import no PyO3; the binding layer lives in [`py`] behind the default `python`
//! feature, so `cargo test --no-default-features` runs the core without libpython. This file is
//! wiring only.

pub mod audit;
pub mod clock;
pub mod error;
pub mod json;
pub mod principal;

pub mod auth;
pub mod bearer;
pub mod jwt;
pub mod opaque;
pub mod ratelimit;

#[cfg(feature = "python")]
mod py;

/// The fuzz targets' bodies, shared by `fuzz/` and the corpus replay test.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_targets;

pub use error::{Error, ErrorKind, Result};
