//! The negative cache: digests the backend did not know, remembered for a while, so a flood of
//! made-up tokens costs one backend lookup per digest and TTL rather than one per request.

use std::collections::VecDeque;

use hashbrown::HashMap;
use parking_lot::Mutex;

use super::digest::Digest;

struct Seen {
    until: HashMap<Digest, f64>,
    /// Insertion order, for evicting the oldest beyond the capacity.
    order: VecDeque<Digest>,
}

/// Unknown digests, each remembered for `ttl` seconds, at most `capacity` of them (the oldest go
/// first). A capacity of 0 disables the cache.
pub struct NegativeCache {
    capacity: usize,
    ttl: f64,
    seen: Mutex<Seen>,
}

impl NegativeCache {
    /// An empty cache.
    pub fn new(capacity: usize, ttl: f64) -> Self {
        NegativeCache {
            capacity,
            ttl,
            seen: Mutex::new(Seen {
                until: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// Whether `digest` is known to be unknown at `now` (an expired entry is dropped).
    pub fn contains(&self, digest: &Digest, now: f64) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let mut seen = self.seen.lock();
        match seen.until.get(digest) {
            Some(&until) if until > now => true,
            Some(_) => {
                seen.until.remove(digest);
                false
            }
            None => false,
        }
    }

    /// Remember `digest` as unknown from `now`.
    pub fn remember(&self, digest: Digest, now: f64) {
        if self.capacity == 0 {
            return;
        }
        let mut seen = self.seen.lock();
        if seen.until.insert(digest, now + self.ttl).is_none() {
            seen.order.push_back(digest);
        }
        while seen.order.len() > self.capacity {
            if let Some(old) = seen.order.pop_front() {
                seen.until.remove(&old);
            }
        }
    }

    /// Forget `digest` (it was just issued).
    pub fn forget(&self, digest: &Digest) {
        self.seen.lock().until.remove(digest);
    }

    /// Forget everything.
    pub fn clear(&self) {
        let mut seen = self.seen.lock();
        seen.until.clear();
        seen.order.clear();
    }

    /// Digests remembered (expired ones included until next looked up).
    pub fn len(&self) -> usize {
        self.seen.lock().until.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_with_a_ttl() {
        let cache = NegativeCache::new(8, 5.0);
        for n in 0..50u8 {
            cache.remember([n; 32], 1.0);
        }
        assert_eq!(cache.len(), 8);
        assert!(cache.seen.lock().order.len() <= 8);
        assert!(cache.contains(&[49; 32], 5.9) && !cache.contains(&[0; 32], 1.0));
        assert!(!cache.contains(&[49; 32], 6.0), "expired");
        cache.forget(&[48; 32]);
        assert!(!cache.contains(&[48; 32], 2.0));
        cache.clear();
        assert!(cache.is_empty());
        let off = NegativeCache::new(0, 5.0);
        off.remember([1; 32], 1.0);
        assert!(!off.contains(&[1; 32], 1.0) && off.is_empty());
    }
}
