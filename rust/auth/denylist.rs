//! The jti deny-list: single JWTs revoked before their expiry (`TokenStore.revoke_jti`).
//!
//! A JWT cannot be recalled, so a revoked one is remembered by its `jti` until its own `exp`, then
//! forgotten (it would be refused as expired anyway); memory is bounded by the revoked tokens still
//! alive. Read on every JWT request, written rarely: an empty list costs one relaxed atomic load, and a
//! lookup one read lock and one hash probe.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

/// Revoked jtis, each with the time until which it must be refused (the token's `exp`).
#[derive(Debug, Default)]
pub struct DenyList {
    len: AtomicUsize,
    map: RwLock<HashMap<Box<str>, f64, ahash::RandomState>>,
}

impl DenyList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse `jti` until `until` (epoch seconds). A second call for the same jti keeps the later time.
    pub fn deny(&self, jti: &str, until: f64) {
        let mut map = self.map.write();
        let slot = map.entry(jti.into()).or_insert(until);
        if until > *slot || until.is_nan() {
            *slot = until;
        }
        self.len.store(map.len(), Ordering::Release);
    }

    /// Whether `jti` is revoked at `now`.
    #[inline]
    pub fn is_denied(&self, jti: &str, now: f64) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        // NaN `until` (never stored by the store, which validates it) compares false: refused for good
        self.map
            .read()
            .get(jti)
            .is_some_and(|&until| until >= now || until.is_nan())
    }

    /// Forget the jtis whose tokens have expired by `now`; returns how many were dropped.
    pub fn sweep(&self, now: f64) -> usize {
        if self.len.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut map = self.map.write();
        let before = map.len();
        map.retain(|_, until| *until >= now || until.is_nan());
        self.len.store(map.len(), Ordering::Release);
        before - map.len()
    }

    /// Forget everything (a store reloading its state).
    pub fn clear(&self) {
        let mut map = self.map.write();
        map.clear();
        self.len.store(0, Ordering::Release);
    }

    /// How many jtis are remembered.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_until_expiry_then_swept() {
        let list = DenyList::new();
        assert!(!list.is_denied("a", 0.0));
        list.deny("a", 100.0);
        assert!(list.is_denied("a", 50.0));
        assert!(list.is_denied("a", 100.0));
        assert!(!list.is_denied("a", 100.5));
        assert!(!list.is_denied("b", 50.0));
        assert_eq!(list.sweep(50.0), 0);
        assert_eq!(list.sweep(101.0), 1);
        assert!(list.is_empty());
    }

    #[test]
    fn the_later_expiry_wins() {
        let list = DenyList::new();
        list.deny("a", 100.0);
        list.deny("a", 10.0);
        assert!(list.is_denied("a", 50.0));
        list.deny("a", 200.0);
        assert!(list.is_denied("a", 150.0));
        assert_eq!(list.len(), 1);
        list.clear();
        assert!(!list.is_denied("a", 150.0));
    }

    #[test]
    fn concurrent_readers_and_writers() {
        let list = std::sync::Arc::new(DenyList::new());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let list = list.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        list.deny(&format!("{t}-{i}"), 1e9);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(list.len(), 4000);
        assert!(list.is_denied("3-999", 0.0));
    }
}
