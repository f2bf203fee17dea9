//! A bounded cache of verified tokens, keyed by the BLAKE3 digest of the whole token.
//!
//! Direct-mapped: `capacity` slots (rounded up to a power of two), each behind its own lock, the
//! slot chosen by the digest. A colliding token replaces the slot's entry, so memory is bounded and
//! every operation is O(1). A hit requires the full 32-byte digest to match; the caller re-checks
//! `exp`/`nbf`/`iat` against the clock on every hit.

use std::sync::Mutex;

use crate::jwt::claims::Times;

/// The cache key of a token.
pub type Digest = [u8; 32];

/// The digest of a token.
pub fn digest(token: &[u8]) -> Digest {
    *blake3::hash(token).as_bytes()
}

struct Entry<V> {
    digest: Digest,
    times: Times,
    value: V,
}

/// Verified values by token digest.
pub struct Cache<V> {
    slots: Vec<Mutex<Option<Entry<V>>>>,
    mask: usize,
}

impl<V> std::fmt::Debug for Cache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cache(slots={})", self.slots.len())
    }
}

impl<V> Cache<V> {
    /// A cache of at most `capacity` entries (rounded up to a power of two, at least 1).
    pub fn new(capacity: usize) -> Self {
        let n = capacity.max(1).next_power_of_two();
        Cache {
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            mask: n - 1,
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, digest: &Digest) -> &Mutex<Option<Entry<V>>> {
        let idx = u64::from_le_bytes(digest[..8].try_into().unwrap_or_default()) as usize & self.mask;
        &self.slots[idx]
    }

    /// Run `f` on the entry for `digest`, if present. `f` runs under the slot's lock.
    pub fn with<R>(&self, digest: &Digest, f: impl FnOnce(&Times, &V) -> R) -> Option<R> {
        let guard = self.slot(digest).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match guard.as_ref() {
            Some(e) if e.digest == *digest => Some(f(&e.times, &e.value)),
            _ => None,
        }
    }

    /// Store a verified value; returns the value it displaced, if any (dropped by the caller).
    pub fn insert(&self, digest: Digest, times: Times, value: V) -> Option<V> {
        let mut guard = self.slot(&digest).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.replace(Entry { digest, times, value }).map(|e| e.value)
    }

    /// Drop every entry.
    pub fn clear(&self) -> Vec<V> {
        self.slots
            .iter()
            .filter_map(|s| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().map(|e| e.value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_exact() {
        let c: Cache<u32> = Cache::new(3);
        assert_eq!(c.capacity(), 4);
        let t = Times::default();
        for i in 0..100u32 {
            c.insert(digest(&i.to_le_bytes()), t, i);
        }
        let hits = (0..100u32)
            .filter(|i| c.with(&digest(&i.to_le_bytes()), |_, v| *v == *i).unwrap_or(false))
            .count();
        assert!(hits <= 4 && hits >= 1, "{hits}");
        assert_eq!(c.with(&digest(b"never"), |_, v| *v), None);
        assert!(c.clear().len() <= 4);
        assert_eq!(c.with(&digest(&99u32.to_le_bytes()), |_, v| *v), None);
    }
}
