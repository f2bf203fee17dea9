//! Python bindings of the rate limiter: `Rate`, `RateLimiter`, `Decision`.
//!
//! The call path is kept minimal because per-call overhead dominates at this scale: the key is
//! hashed straight from the `str`'s cached UTF-8 (no copy), the tier is matched by identity with
//! the interned tier names before any string comparison, `allow` builds no Python object but its
//! `bool`, and a `Decision` is only built by `check`. The GIL stays attached: the work is far
//! shorter than a detach/attach round trip.

use pyo3::prelude::*;

// The shared configuration helpers (`crate::py::args`), under the short names this domain's files use.
use super::args::{config_err as cfg, config_uint as uint};

mod decision;
mod limiter;
mod rate;
mod redis;

pub(crate) use decision::PyDecision;
pub(crate) use limiter::PyRateLimiter;

const NS_PER_S: f64 = 1e9;

/// A `str` with lone surrogates as bytes (`str.encode(s, "utf-8", "surrogatepass")`, the base
/// method: a subclass's `encode` is not called).
#[cold]
fn surrogate_escaped<'py>(s: &Bound<'py, pyo3::types::PyString>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let py = s.py();
    let encode = py
        .get_type::<pyo3::types::PyString>()
        .getattr(pyo3::intern!(py, "encode"))?;
    let b = encode.call1((s, "utf-8", "surrogatepass"))?;
    b.cast_into::<pyo3::types::PyBytes>()
        .map_err(|_| cfg("a rate-limit key must be a str or bytes"))
}

fn secs(ns: u64) -> f64 {
    ns as f64 / NS_PER_S
}

/// Add the rate-limiting classes to `bastion._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<rate::PyRate>()?;
    m.add_class::<decision::PyDecision>()?;
    m.add_class::<limiter::PyRateLimiter>()?;
    m.add_function(wrap_pyfunction!(redis::_redis_key_digest, m)?)?;
    Ok(())
}
