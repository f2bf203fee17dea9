//! Helpers for `RedisRateLimiter` (Python): the identity digest and the script reply's framing.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::cfg;
use crate::ratelimit::MAX_RATES;

/// The script's reply for a tier of `n` rates: `:v\r\n` when `n == 1`, else `*n\r\n` followed by
/// exactly `n` `:v\r\n` lines, and nothing else; `None` otherwise.
pub(super) fn parse_script_reply(data: &[u8], n: usize) -> Option<[i64; MAX_RATES]> {
    fn int_line(data: &[u8], pos: usize, tag: u8) -> Option<(i64, usize)> {
        let rest = data.get(pos..)?;
        if rest.first() != Some(&tag) {
            return None;
        }
        let end = memchr::memchr(b'\r', rest)?;
        if rest.get(end + 1) != Some(&b'\n') {
            return None;
        }
        let v = std::str::from_utf8(&rest[1..end]).ok()?.parse().ok()?;
        Some((v, pos + end + 2))
    }
    if n == 0 || n > MAX_RATES {
        return None;
    }
    let mut out = [0i64; MAX_RATES];
    let mut pos = 0;
    if n > 1 {
        let (count, next) = int_line(data, 0, b'*')?;
        if usize::try_from(count).ok()? != n {
            return None;
        }
        pos = next;
    }
    for slot in &mut out[..n] {
        let (v, next) = int_line(data, pos, b':')?;
        *slot = v;
        pos = next;
    }
    (pos == data.len()).then_some(out)
}

/// The digest under which `RedisRateLimiter` stores an identity: BLAKE3 of its bytes (a `str` as
/// UTF-8, lone surrogates escaped), truncated to 128 bits, as 32 lowercase hex digits. Unkeyed on
/// purpose: every host must derive the same Redis key.
#[pyfunction]
pub(super) fn _redis_key_digest<'py>(py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = if let Ok(s) = key.cast::<PyString>() {
        if let Ok(utf8) = s.to_str() {
            blake3::hash(utf8.as_bytes())
        } else {
            blake3::hash(super::surrogate_escaped(s)?.as_bytes())
        }
    } else if let Ok(b) = key.cast::<PyBytes>() {
        blake3::hash(b.as_bytes())
    } else {
        return Err(cfg("a rate-limit key must be a str or bytes"));
    };
    let mut out = [0u8; 32];
    for (i, byte) in hash.as_bytes()[..16].iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 15)];
    }
    Ok(PyBytes::new(py, &out))
}
