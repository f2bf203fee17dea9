//! A bounded cache of verified tokens.
//!
//! Direct-mapped: `capacity` slots (rounded up to a power of two), each behind its own lock. The slot
//! is chosen by a per-cache randomly seeded mix of the token's length and tail (its signature), and
//! a hit requires the *whole* stored token to equal the presented one, compared in constant time
//! (aws-lc's `CRYPTO_memcmp`) —
//! a stronger check than a digest, and far cheaper: BLAKE3 of a 400-byte token costs more than the
//! whole budget of a hit. A colliding token replaces the slot's entry, so memory is bounded (at most
//! `capacity` tokens of at most `max_token_bytes`) and every operation is O(1). The caller re-checks
//! `exp`/`nbf`/`iat` against the clock on every hit.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};

use aws_lc_rs::constant_time::verify_slices_are_equal;

use crate::jwt::claims::Times;

struct Entry<V> {
    token: Box<[u8]>,
    times: Times,
    value: V,
}

/// Verified values by token.
pub struct Cache<V> {
    slots: Vec<Mutex<Option<Entry<V>>>>,
    mask: usize,
    seed: u64,
}

impl<V> std::fmt::Debug for Cache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cache(slots={})", self.slots.len())
    }
}

const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

impl<V> Cache<V> {
    /// A cache of at most `capacity` entries (rounded up to a power of two, at least 1).
    pub fn new(capacity: usize) -> Self {
        let n = capacity.max(1).next_power_of_two();
        Cache {
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            mask: n - 1,
            seed: RandomState::new().hash_one(0x0062_6173_7469_6f6e_u64),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, token: &[u8]) -> &Mutex<Option<Entry<V>>> {
        let mut h = self.seed ^ (token.len() as u64).wrapping_mul(MIX);
        for chunk in token[token.len().saturating_sub(24)..].chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word)).wrapping_mul(MIX);
            h ^= h >> 29;
        }
        &self.slots[h as usize & self.mask]
    }

    /// Run `f` on the entry for exactly `token`, if present. `f` runs under the slot's lock.
    pub fn with<R>(&self, token: &[u8], f: impl FnOnce(&Times, &V) -> R) -> Option<R> {
        let guard = self.slot(token).lock().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(e) if verify_slices_are_equal(&e.token, token).is_ok() => Some(f(&e.times, &e.value)),
            _ => None,
        }
    }

    /// Store a verified value; returns the value it displaced, if any (dropped by the caller).
    pub fn insert(&self, token: &[u8], times: Times, value: V) -> Option<V> {
        let entry = Entry {
            token: Box::from(token),
            times,
            value,
        };
        let mut guard = self.slot(token).lock().unwrap_or_else(PoisonError::into_inner);
        guard.replace(entry).map(|e| e.value)
    }

    /// Drop every entry; returns the values (dropped by the caller).
    pub fn clear(&self) -> Vec<V> {
        self.slots
            .iter()
            .filter_map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).take().map(|e| e.value))
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
        let tokens: Vec<String> = (0..100).map(|i| format!("header.payload.signature{i}")).collect();
        for (i, tok) in tokens.iter().enumerate() {
            c.insert(tok.as_bytes(), t, i as u32);
        }
        let hits = tokens
            .iter()
            .enumerate()
            .filter(|(i, tok)| c.with(tok.as_bytes(), |_, v| *v == *i as u32).unwrap_or(false))
            .count();
        assert!((1..=4).contains(&hits), "{hits}");
        // same tail, different token: never a hit
        c.insert(b"a.b.sig", t, 7);
        assert_eq!(c.with(b"x.b.sig", |_, v| *v), None);
        assert_eq!(c.with(b"a.b.sig", |_, v| *v), Some(7));
        assert!(c.clear().len() <= 4);
        assert_eq!(c.with(b"a.b.sig", |_, v| *v), None);
    }
}
