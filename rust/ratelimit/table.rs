//! A shard's table: open addressing with linear probing over inline `(digest, cells)` slots.
//!
//! Why not `hashbrown`: its control bytes and its entries live in two separate arrays, so a lookup in a
//! table larger than the caches costs two dependent cache misses (the control group, then the entry).
//! Here a slot holds the digest and the bucket state together (16 bytes for a single-rate tier, four
//! to a cache line), so a lookup is one miss and usually one line. The digest itself is the hash (it
//! is already a keyed 64-bit hash); digest 0 marks an empty slot, so callers map a zero digest to 1.
//! At most three quarters of the slots are used (linear probing degrades beyond that): 21–43 bytes a
//! key for a single-rate tier. Removal shifts the following run back (no tombstones).

use std::sync::atomic::{AtomicU64, Ordering};

/// One slot: the key's digest (0: empty) and the TAT of each rate of its tier.
pub struct Slot<const K: usize> {
    /// The key's digest, never 0 for a used slot.
    pub digest: u64,
    /// The theoretical arrival time of each rate.
    pub cells: [AtomicU64; K],
}

impl<const K: usize> Slot<K> {
    fn empty() -> Self {
        Slot {
            digest: 0,
            cells: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// An open-addressing table of slots; mutations need `&mut self` (the shard's write lock).
pub struct Table<const K: usize> {
    slots: Box<[Slot<K>]>,
    len: usize,
}

const MIN_SLOTS: usize = 8;

/// The slot count for `n` keys at most three quarters full.
fn slots_for(n: usize) -> usize {
    (n.saturating_mul(4) / 3 + 1).next_power_of_two().max(MIN_SLOTS)
}

impl<const K: usize> Default for Table<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const K: usize> Table<K> {
    /// An empty table (no allocation until the first insert).
    pub fn new() -> Self {
        Table {
            slots: Box::new([]),
            len: 0,
        }
    }

    fn with_slots(n: usize) -> Self {
        Table {
            slots: (0..n).map(|_| Slot::empty()).collect(),
            len: 0,
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many keys fit before the next insert grows the table.
    pub fn capacity(&self) -> usize {
        self.slots.len() / 4 * 3
    }

    /// Bytes allocated for the slots.
    pub fn allocation_size(&self) -> usize {
        std::mem::size_of_val::<[Slot<K>]>(&self.slots)
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    #[inline]
    fn position(&self, digest: u64) -> Option<usize> {
        debug_assert!(digest != 0);
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = digest as usize & mask;
        loop {
            let d = self.slots[i].digest;
            if d == digest {
                return Some(i);
            }
            if d == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// The slot of `digest`, if held.
    #[inline]
    pub fn find(&self, digest: u64) -> Option<&Slot<K>> {
        self.position(digest).map(|i| &self.slots[i])
    }

    /// Insert `digest` (which must be absent) with every TAT at 0 (a full bucket); grows as needed.
    pub fn insert(&mut self, digest: u64) -> &Slot<K> {
        debug_assert!(digest != 0 && self.position(digest).is_none());
        if self.len + 1 > self.capacity() {
            self.rebuild(slots_for(self.len + 1).max(self.slots.len() * 2), |_| true);
        }
        let mask = self.mask();
        let mut i = digest as usize & mask;
        while self.slots[i].digest != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i].digest = digest;
        self.len += 1;
        &self.slots[i]
    }

    /// Double the slots now (the next inserts then grow nothing).
    pub fn grow(&mut self) {
        self.rebuild((self.slots.len() * 2).max(MIN_SLOTS), |_| true);
    }

    /// Remove `digest`; true if it was held.
    pub fn remove(&mut self, digest: u64) -> bool {
        let Some(mut hole) = self.position(digest) else {
            return false;
        };
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let d = self.slots[j].digest;
            if d == 0 {
                break;
            }
            // A slot may fill the hole if its home position is not cyclically within (hole, j].
            let home = d as usize & mask;
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots.swap(hole, j);
                hole = j;
            }
        }
        self.slots[hole] = Slot::empty();
        self.len -= 1;
        true
    }

    /// Keep only the slots for which `keep` is true (called once per slot); the table shrinks when a
    /// quarter full or less, and frees its slots when empty.
    pub fn retain(&mut self, mut keep: impl FnMut(&Slot<K>) -> bool) {
        let mut kept = 0;
        for slot in &mut *self.slots {
            if slot.digest != 0 {
                if keep(slot) {
                    kept += 1;
                } else {
                    slot.digest = 0; // dropped; the probe runs are repaired by the rebuild below
                }
            }
        }
        if kept == self.len {
            return;
        }
        if kept == 0 {
            *self = Table::new();
            return;
        }
        let n = if kept <= self.capacity() / 4 {
            slots_for(kept * 2)
        } else {
            self.slots.len()
        };
        self.rebuild(n, |_| true);
    }

    /// Move the held slots for which `keep` is true into a fresh array of `n` slots.
    fn rebuild(&mut self, n: usize, mut keep: impl FnMut(&Slot<K>) -> bool) {
        let old = std::mem::replace(self, Table::with_slots(n.max(MIN_SLOTS)));
        for slot in old.slots.into_vec() {
            if slot.digest != 0 && keep(&slot) {
                let mask = self.mask();
                let mut i = slot.digest as usize & mask;
                while self.slots[i].digest != 0 {
                    i = (i + 1) & mask;
                }
                self.slots[i] = slot;
                self.len += 1;
            }
        }
    }

    /// Iterate over the held slots.
    pub fn iter(&self) -> impl Iterator<Item = &Slot<K>> {
        self.slots.iter().filter(|s| s.digest != 0)
    }
}

impl<const K: usize> Slot<K> {
    /// The TAT of rate `i` (relaxed: callers hold the shard lock or only need a snapshot).
    pub fn tat(&self, i: usize) -> u64 {
        self.cells[i].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: u64) -> u64 {
        // a few keys share home slots on purpose: i % 5 picks among five low-bit patterns
        ((i % 5) | (i << 8)).max(1)
    }

    #[test]
    fn insert_find_remove_against_a_model() {
        let mut t = Table::<1>::new();
        let mut model = std::collections::HashSet::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = digest(x % 3000);
            if x.is_multiple_of(3) {
                assert_eq!(t.remove(d), model.remove(&d), "step {step}");
            } else if model.insert(d) {
                t.insert(d).cells[0].store(d, Ordering::Relaxed);
            }
            assert_eq!(t.len(), model.len());
            if step % 97 == 0 {
                for &m in &model {
                    assert_eq!(t.find(m).map(|s| s.tat(0)), Some(m), "step {step}");
                }
                assert!(t.len() <= t.capacity());
            }
        }
        for &m in &model {
            assert!(t.find(m).is_some());
        }
        assert!(t.find(digest(99_999)).is_none());
    }

    #[test]
    fn retain_keeps_values_and_shrinks() {
        let mut t = Table::<2>::new();
        for i in 1..=10_000u64 {
            let s = t.insert(i * 7);
            s.cells[0].store(i, Ordering::Relaxed);
            s.cells[1].store(i + 1, Ordering::Relaxed);
        }
        let big = t.allocation_size();
        assert_eq!(t.len(), 10_000);
        t.retain(|s| s.tat(0) % 100 == 0);
        assert_eq!(t.len(), 100);
        assert!(t.allocation_size() < big / 10);
        for i in (100..=10_000u64).step_by(100) {
            let s = t.find(i * 7).expect("kept");
            assert_eq!((s.tat(0), s.tat(1)), (i, i + 1));
        }
        assert!(t.find(7).is_none());
        t.retain(|_| false);
        assert!(t.is_empty());
        assert_eq!(t.iter().count(), 0);
    }
}
