//! `_core.new_request_id`: the id of every request bastion audits (unless a trusted proxy gave one).

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;

/// The request-id generator: a counter and two keys drawn from aws-lc's generator at start and again in a
/// forked child (`_reseed_request_ids`, called at fork). An id must be unique, not secret, and aws-lc's
/// generator costs ~0.6 µs per call; this costs a few ns.
static ID_COUNTER: AtomicU64 = AtomicU64::new(0);
static ID_KEYS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static ID_SEEDED: std::sync::Once = std::sync::Once::new();

fn reseed_ids() -> PyResult<()> {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| pyo3::exceptions::PyOSError::new_err("the random generator failed"))?;
    let (a, b) = bytes.split_at(8);
    ID_KEYS[0].store(u64::from_le_bytes(a.try_into().unwrap_or_default()), Ordering::Relaxed);
    ID_KEYS[1].store(u64::from_le_bytes(b.try_into().unwrap_or_default()), Ordering::Relaxed);
    Ok(())
}

/// SplitMix64's finaliser: a bijection of u64 that mixes every bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fresh request id: 32 hex digits, handed to `with` (written on the stack, no allocation). The low half
/// is a bijection of the process's counter (never repeated within a process); both halves depend on the
/// process's keys (other processes draw their own).
pub(crate) fn new_request_id<T>(with: impl FnOnce(&str) -> T) -> PyResult<T> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut failed = None;
    ID_SEEDED.call_once(|| failed = reseed_ids().err());
    if let Some(err) = failed {
        return Err(err);
    }
    let n = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let high = mix(n ^ ID_KEYS[0].load(Ordering::Relaxed));
    let low = mix(n.wrapping_add(ID_KEYS[1].load(Ordering::Relaxed)));
    let mut out = [0u8; 32];
    for (half, word) in out.chunks_exact_mut(16).zip([high, low]) {
        for (i, digit) in half.iter_mut().enumerate() {
            *digit = HEX[((word >> ((15 - i) * 4)) & 15) as usize];
        }
    }
    // hex digits only: always UTF-8
    Ok(with(std::str::from_utf8(&out).unwrap_or_default()))
}

/// Draw new request-id keys: what a forked child calls (`os.register_at_fork`), so that it never repeats
/// its parent's ids.
#[pyfunction]
fn _reseed_request_ids() -> PyResult<()> {
    ID_SEEDED.call_once(|| {});
    reseed_ids()
}

#[pyfunction]
#[pyo3(name = "new_request_id")]
fn py_new_request_id() -> PyResult<String> {
    new_request_id(str::to_owned)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(py_new_request_id, m)?)?;
    m.add_function(wrap_pyfunction!(_reseed_request_ids, m)?)
}
