//! Helpers for `RedisRateLimiter` (Python): the identity digest and the script reply's framing.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::cfg;
use crate::ratelimit::MAX_RATES;

/// `*N\r\n` followed by exactly N `:int\r\n` lines and nothing else, or `None`.
pub(super) fn parse_int_array(data: &[u8]) -> Option<Vec<i64>> {
    fn line(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
        let rest = data.get(pos..)?;
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        Some((&rest[..end], pos + end + 2))
    }
    fn int(b: &[u8]) -> Option<i64> {
        std::str::from_utf8(b).ok()?.parse().ok()
    }
    let (head, mut pos) = line(data, 0)?;
    let n = usize::try_from(int(head.strip_prefix(b"*")?)?).ok()?;
    if n > 1 + 3 * MAX_RATES {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (item, next) = line(data, pos)?;
        out.push(int(item.strip_prefix(b":")?)?);
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
            let b = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
            blake3::hash(
                b.cast::<PyBytes>()
                    .map_err(|_| cfg("key must be str or bytes"))?
                    .as_bytes(),
            )
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
