//! The sharded map from a key's digest to its bucket state.
//!
//! Keys are never stored: only a 64-bit keyed digest of the identity (see `mod.rs` for the hash
//! and the collision odds). Each shard is a [`Table`] of `(digest, [AtomicU64; K])` slots — 16 bytes
//! a key for a single-rate tier, found with one cache miss — behind a `parking_lot::RwLock`.
//! Checking an existing key takes only the shard's read lock and then compare-and-swaps the atomic;
//! inserting takes the shard's write lock.
//!
//! Eviction: a key whose every TAT is at or before `now` has a full bucket, which is exactly what
//! an absent key means, so removing it changes no decision; a key with any TAT ahead of `now` is
//! live and is never removed. A shard is swept (under its write lock) when an insert would make
//! its table grow (amortised O(1), like the growth itself), when the limiter is at `max_keys`,
//! and on the first request that touches it after `SWEEP_INTERVAL_NS` once some key may have
//! become full. A sweep that leaves the table three-quarters empty shrinks it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;

use super::gcra::tat_of;
use super::table::{Slot, Table};

/// The least time between two time-driven sweeps of one shard.
pub const SWEEP_INTERVAL_NS: u64 = 1_000_000_000;

/// At the cap, sweeps that look for room are paced: after one, the next waits this long per key held
/// (1 µs: at most one sweep a second at a million keys, a few percent of a core), so identities that
/// keep arriving at a full limiter cannot make every request scan the whole map.
pub const SWEEP_PACE_NS_PER_KEY: u64 = 1_000;

/// The longest pause between two sweeps at the cap, whatever `max_keys`: a new identity is never refused
/// for longer than this because of pacing alone (a sweep of ten million keys a second is ~3 % of a core).
pub const MAX_SWEEP_PACE_NS: u64 = 1_000_000_000;

/// The pause after a sweep at the cap that scanned `keys` keys.
pub fn sweep_pace(keys: u64) -> u64 {
    keys.saturating_mul(SWEEP_PACE_NS_PER_KEY).min(MAX_SWEEP_PACE_NS)
}

/// When a slot's bucket will be full again (every rate's TAT passed).
fn full_at<const K: usize>(slot: &Slot<K>) -> u64 {
    slot.cells.iter().map(tat_of).max().unwrap_or(0)
}

struct Inner<const K: usize> {
    table: Table<K>,
    /// Earliest time a key of this shard may be full (a lower bound: TATs only move forward).
    earliest_full: u64,
    last_sweep: u64,
}

// Each shard on its own cache lines, so that two hot keys in two shards do not share a lock's line.
#[repr(align(64))]
struct Shard<const K: usize> {
    inner: RwLock<Inner<K>>,
    /// When a request may next sweep this shard.
    next_sweep_at: AtomicU64,
}

/// The key count shared by every tier's map, its cap, and when a full limiter may free a slot.
#[derive(Debug)]
pub struct Budget {
    len: AtomicUsize,
    max: usize,
    /// While the cap is reached: the earliest time any key can be evicted (`u64::MAX`: unknown).
    pub full_until: AtomicU64,
    /// When a sweep looking for room at the cap may run again (see [`SWEEP_PACE_NS_PER_KEY`]).
    pub next_cap_sweep: AtomicU64,
}

impl Budget {
    /// A budget of `max` keys.
    pub fn new(max: usize) -> Self {
        Budget {
            len: AtomicUsize::new(0),
            max,
            full_until: AtomicU64::new(0),
            next_cap_sweep: AtomicU64::new(0),
        }
    }

    /// Before this time a full limiter looks for no room: neither can a key be full again (as far as
    /// the last sweep knows) nor is another sweep due.
    pub fn cap_sweep_gate(&self) -> u64 {
        self.full_until
            .load(Ordering::Acquire)
            .max(self.next_cap_sweep.load(Ordering::Acquire))
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    fn try_reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .is_ok()
    }

    fn release(&self, n: usize) {
        self.len.fetch_sub(n, Ordering::AcqRel);
    }
}

/// What happened to a request against the map.
pub enum Applied<R> {
    /// The key was there (or has been inserted) and `f` ran on its cells.
    Done(R),
    /// The key is absent and was not inserted (`insert = false`): its bucket is full.
    Absent,
    /// The key is absent and the limiter holds `max_keys` live keys.
    Full,
}

/// A sharded map from digest to `K` bucket cells.
pub struct KeyMap<const K: usize> {
    shards: Box<[Shard<K>]>,
    mask: usize,
}

impl<const K: usize> KeyMap<K> {
    /// A map with `shards` shards (rounded up to a power of two).
    pub fn new(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        let shards = (0..n)
            .map(|_| Shard {
                inner: RwLock::new(Inner {
                    table: Table::new(),
                    earliest_full: u64::MAX,
                    last_sweep: 0,
                }),
                next_sweep_at: AtomicU64::new(u64::MAX),
            })
            .collect();
        KeyMap { shards, mask: n - 1 }
    }

    #[inline]
    fn shard(&self, digest: u64) -> &Shard<K> {
        // a table takes its slot from the low bits; the shard comes from high ones (at most 2^20 shards)
        &self.shards[(digest >> 40) as usize & self.mask]
    }

    /// Run `f` on the cells of `digest`, inserting a fresh (full) bucket first when absent and
    /// `insert` is set. The existing-key path takes only the shard's read lock.
    #[inline]
    pub fn apply<R>(
        &self,
        budget: &Budget,
        digest: u64,
        now: u64,
        insert: bool,
        f: &mut impl FnMut(&[AtomicU64; K]) -> R,
    ) -> Applied<R> {
        let digest = digest.max(1); // 0 marks an empty slot
        let shard = self.shard(digest);
        let found = {
            let inner = shard.inner.read();
            inner.table.find(digest).map(|e| f(&e.cells))
        };
        let out = match found {
            Some(r) => Applied::Done(r),
            None if !insert => Applied::Absent,
            None => Self::insert(shard, budget, digest, now, f),
        };
        if now >= shard.next_sweep_at.load(Ordering::Relaxed) {
            if let Some(mut inner) = shard.inner.try_write() {
                let freed = sweep(&mut inner, now, &shard.next_sweep_at).0;
                budget.release(freed);
            }
        }
        out
    }

    #[cold]
    fn insert<R>(
        shard: &Shard<K>,
        budget: &Budget,
        digest: u64,
        now: u64,
        f: &mut impl FnMut(&[AtomicU64; K]) -> R,
    ) -> Applied<R> {
        let mut inner = shard.inner.write();
        if let Some(e) = inner.table.find(digest) {
            return Applied::Done(f(&e.cells));
        }
        // Sweep before the table would grow. If that freed little (keys becoming full one at a
        // time), grow anyway: otherwise every insert would find the table full again and sweep it
        // again, O(shard) each. Growth doubles the table, so sweeping here stays amortised O(1).
        let capacity = inner.table.capacity();
        if inner.table.len() == capacity && capacity > 0 {
            let freed = sweep(&mut inner, now, &shard.next_sweep_at).0;
            budget.release(freed);
            if freed < capacity / 8 {
                inner.table.grow();
            }
        }
        if !budget.try_reserve() {
            // At the cap: unless a sweep has shown that no key can be full before `full_until`, or
            // the last sweep at the cap was too recent, look for room in this shard (the limiter
            // then tries every shard).
            if now < budget.cap_sweep_gate() {
                return Applied::Full;
            }
            let scanned = u64::try_from(inner.table.len()).unwrap_or(u64::MAX);
            budget.release(sweep(&mut inner, now, &shard.next_sweep_at).0);
            if !budget.try_reserve() {
                return Applied::Full; // the limiter's sweep of every shard follows, and sets the pace
            }
            // room found here: paced like the sweep of every shard, by the keys this one scanned
            budget
                .next_cap_sweep
                .fetch_max(now.saturating_add(sweep_pace(scanned)), Ordering::AcqRel);
        }
        let slot = inner.table.insert(digest);
        let r = f(&slot.cells);
        let full_at = full_at(slot);
        // A new key may be full before any key already here: make sure a sweep will look then.
        if full_at < inner.earliest_full {
            inner.earliest_full = full_at;
            let at = full_at.max(inner.last_sweep.saturating_add(SWEEP_INTERVAL_NS));
            shard.next_sweep_at.fetch_min(at, Ordering::Relaxed);
        }
        Applied::Done(r)
    }

    /// Remove one key (a no-op when absent); true if it was there.
    pub fn remove(&self, budget: &Budget, digest: u64) -> bool {
        let digest = digest.max(1);
        let removed = self.shard(digest).inner.write().table.remove(digest);
        if removed {
            budget.release(1);
        }
        removed
    }

    /// Sweep every shard now; returns (keys evicted, earliest time a remaining key becomes full).
    pub fn sweep_all(&self, budget: &Budget, now: u64) -> (usize, u64) {
        let mut freed = 0;
        let mut earliest = u64::MAX;
        for shard in &*self.shards {
            let mut inner = shard.inner.write();
            let (n, e) = sweep(&mut inner, now, &shard.next_sweep_at);
            budget.release(n);
            freed += n;
            earliest = earliest.min(e);
        }
        (freed, earliest)
    }

    /// Bytes held by the tables (their allocations, not counting the shard headers).
    pub fn allocated_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.inner.read().table.allocation_size()).sum()
    }
}

/// Remove every full bucket of a shard; returns (removed, earliest time a kept key becomes full).
fn sweep<const K: usize>(inner: &mut Inner<K>, now: u64, next: &AtomicU64) -> (usize, u64) {
    let before = inner.table.len();
    let mut earliest = u64::MAX;
    inner.table.retain(|slot| {
        let at = full_at(slot);
        if at <= now {
            false
        } else {
            earliest = earliest.min(at);
            true
        }
    });
    let removed = before - inner.table.len();
    inner.earliest_full = earliest;
    inner.last_sweep = now;
    let at = if earliest == u64::MAX {
        u64::MAX
    } else {
        earliest.max(now.saturating_add(SWEEP_INTERVAL_NS))
    };
    next.store(at, Ordering::Relaxed);
    (removed, earliest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bump(cells: &[AtomicU64; 1], to: u64) {
        cells[0].store(to, Ordering::Relaxed);
    }

    #[test]
    fn insert_find_and_evict() {
        let budget = Budget::new(1000);
        let m = KeyMap::<1>::new(4);
        for d in 0..100u64 {
            let digest = d.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert!(matches!(
                m.apply(&budget, digest, 0, true, &mut |c| bump(c, 10 + d)),
                Applied::Done(())
            ));
        }
        assert_eq!(budget.len(), 100);
        let digest = 7u64.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let Applied::Done(v) = m.apply(&budget, digest, 0, false, &mut |c| c[0].load(Ordering::Relaxed)) else {
            panic!("present")
        };
        assert_eq!(v, 17);
        assert!(matches!(
            m.apply(&budget, 12345, 0, false, &mut |_| ()),
            Applied::Absent
        ));
        // at t=59 the keys whose TAT is <= 59 (d < 50) are full again and go; live ones stay
        let (freed, earliest) = m.sweep_all(&budget, 59);
        assert_eq!(freed, 50);
        assert_eq!(earliest, 60);
        assert_eq!(budget.len(), 50);
        assert!(m.remove(&budget, 99u64.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        assert!(!m.remove(&budget, 99u64.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        assert_eq!(budget.len(), 49);
        let (freed, earliest) = m.sweep_all(&budget, 1000);
        assert_eq!((freed, earliest), (49, u64::MAX));
        assert!(budget.is_empty());
    }

    #[test]
    fn cap_is_enforced_and_live_keys_survive() {
        let budget = Budget::new(10);
        let m = KeyMap::<1>::new(2);
        for d in 0..10u64 {
            assert!(matches!(
                m.apply(&budget, d << 8, 0, true, &mut |c| bump(c, 100)),
                Applied::Done(())
            ));
        }
        assert!(matches!(
            m.apply(&budget, 99 << 8, 0, true, &mut |c| bump(c, 100)),
            Applied::Full
        ));
        assert_eq!(budget.len(), 10);
        // once the buckets are full again a new key finds room
        assert!(matches!(
            m.apply(&budget, 99 << 8, 100, true, &mut |c| bump(c, 200)),
            Applied::Done(())
        ));
        assert!(budget.len() <= 10);
    }

    #[test]
    fn a_sweep_before_growth_that_frees_little_still_grows() {
        let budget = Budget::new(100_000);
        let m = KeyMap::<1>::new(1);
        let key = |d: u64| d.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        // 96 keys fill a 128-slot table to capacity; key d is full again at time d + 1
        for d in 0..96u64 {
            let _ = m.apply(&budget, key(d), 0, true, &mut |c| bump(c, d + 1));
        }
        let bytes = m.allocated_bytes();
        // one key is full at t = 1: sweeping frees it, but that is too little to stop the growth, or
        // every following insert would find the table full again and sweep it again
        let _ = m.apply(&budget, key(1000), 1, true, &mut |c| bump(c, 500));
        assert_eq!(budget.len(), 96);
        assert_eq!(m.allocated_bytes(), 2 * bytes, "the table grew");
    }

    #[test]
    fn time_driven_sweep_runs_on_traffic() {
        let budget = Budget::new(100_000);
        let m = KeyMap::<1>::new(1);
        for d in 0..1000u64 {
            let _ = m.apply(&budget, d * 0x1_0000_0001, 0, true, &mut |c| bump(c, 5));
        }
        assert_eq!(budget.len(), 1000);
        // a request on an unrelated key after the interval sweeps the shard
        let _ = m.apply(&budget, 424_242, SWEEP_INTERVAL_NS, false, &mut |_| ());
        assert_eq!(budget.len(), 0);
        assert!(m.allocated_bytes() < 1000 * 16, "the table shrank");
    }
}
