//! `RedisRateLimiter`'s identity digest (the rule is `ratelimit::redis::key_digest`).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::cfg;
use crate::ratelimit::redis::key_digest;

/// The digest under which `RedisRateLimiter` stores an identity (a `str` as UTF-8, lone surrogates
/// escaped): BLAKE3-128 as 32 lowercase hex digits, the same on every host.
#[pyfunction]
pub(super) fn _redis_key_digest<'py>(py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let digest = if let Ok(s) = key.cast::<PyString>() {
        if let Ok(utf8) = s.to_str() {
            key_digest(utf8.as_bytes())
        } else {
            key_digest(super::surrogate_escaped(s)?.as_bytes())
        }
    } else if let Ok(b) = key.cast::<PyBytes>() {
        key_digest(b.as_bytes())
    } else {
        return Err(cfg("a rate-limit key must be a str or bytes"));
    };
    Ok(PyBytes::new(py, &digest))
}
