//! `Limiter`: the in-process limiter over a policy's tiers, each a sharded key map of GCRA cells.
//!
//! Over 400 lines only with its unit tests, which stay beside the code (the crate's convention).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};

use super::decision::Decision;
use super::gcra::{check_many, Gcra, Outcome, MAX_TIME_NS};
use super::map::{self, Applied, Budget, KeyMap};
use super::policy::Policy;

/// The default cap on live keys across all tiers (21-43 MB of tables when full, single-rate tiers).
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

enum TierMap {
    Unlimited,
    One(KeyMap<1>),
    Two(KeyMap<2>),
    Three(KeyMap<3>),
    Four(KeyMap<4>),
}

struct TierState {
    gcras: Vec<Gcra>,
    max_cost: u64,
    map: TierMap,
}

/// An in-process rate limiter over named tiers.
pub struct Limiter {
    policy: Policy,
    tiers: Vec<TierState>,
    hasher: ahash::RandomState,
    budget: Budget,
}

impl Limiter {
    /// A limiter enforcing `policy`, holding at most `max_keys` live keys across its tiers.
    pub fn new(policy: Policy, max_keys: usize) -> Result<Self> {
        if max_keys == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfiguration,
                "max_keys must be at least 1",
            ));
        }
        // About 8192 keys a shard at the cap keeps a sweep's pause short; at least 16 shards keep
        // contention low, at most 1024 keeps empty limiters small.
        let shards = (max_keys / 8192).clamp(16, 1024);
        let tiers = policy
            .tiers
            .iter()
            .map(|t| TierState {
                gcras: t.rates.iter().map(|r| r.gcra).collect(),
                max_cost: t.max_cost(),
                map: match t.rates.len() {
                    0 => TierMap::Unlimited,
                    1 => TierMap::One(KeyMap::new(shards)),
                    2 => TierMap::Two(KeyMap::new(shards)),
                    3 => TierMap::Three(KeyMap::new(shards)),
                    _ => TierMap::Four(KeyMap::new(shards)),
                },
            })
            .collect();
        Ok(Limiter {
            policy,
            tiers,
            hasher: ahash::RandomState::new(),
            budget: Budget::new(max_keys),
        })
    }

    /// The validated policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The keyed 64-bit digest under which `key` is held.
    #[inline]
    pub fn digest(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Whether `tier` admits everything (no state is kept for it).
    #[inline]
    pub fn is_unlimited(&self, tier: usize) -> bool {
        matches!(self.tiers[tier].map, TierMap::Unlimited)
    }

    fn check_cost(&self, tier: usize, cost: u64) -> Result<()> {
        if cost > self.tiers[tier].max_cost {
            Err(Error::new(
                ErrorKind::InvalidConfiguration,
                "cost exceeds the tier's burst: such a request could never be admitted",
            ))
        } else {
            Ok(())
        }
    }

    /// Take `cost` tokens from `digest`'s bucket in `tier` if every rate has them; yes or no.
    #[inline]
    pub fn allow(&self, tier: usize, digest: u64, cost: u64, now: u64) -> Result<bool> {
        let state = &self.tiers[tier];
        if let TierMap::One(map) = &state.map {
            self.check_cost(tier, cost)?;
            let now = now.min(MAX_TIME_NS);
            let g = &state.gcras[0];
            let mut f = |c: &[AtomicU64; 1]| g.allow(&c[0], now, cost);
            let mut applied = map.apply(&self.budget, digest, now, cost > 0, &mut f);
            if matches!(applied, Applied::Full) && self.make_room(now) {
                applied = map.apply(&self.budget, digest, now, cost > 0, &mut f);
            }
            return Ok(match applied {
                Applied::Done(ok) => ok,
                Applied::Absent => true,
                Applied::Full => false,
            });
        }
        Ok(self.check(tier, digest, cost, now)?.allowed)
    }

    /// Take `cost` tokens from `digest`'s bucket in `tier` if every rate has them, and report the
    /// state of each rate. `cost = 0` only looks. A cost above the tier's burst is refused.
    pub fn check(&self, tier: usize, digest: u64, cost: u64, now: u64) -> Result<Decision> {
        let mut d = Decision::new(tier, 0);
        self.check_into(tier, digest, cost, now, &mut d)?;
        Ok(d)
    }

    /// [`Limiter::check`] writing into `d` (the binding layer's hot path: no large moves).
    #[inline]
    pub fn check_into(&self, tier: usize, digest: u64, cost: u64, now: u64, d: &mut Decision) -> Result<()> {
        let state = &self.tiers[tier];
        d.tier = tier;
        d.allowed = true;
        d.binding = 0;
        d.len = 0;
        if matches!(state.map, TierMap::Unlimited) {
            return Ok(());
        }
        self.check_cost(tier, cost)?;
        let now = now.min(MAX_TIME_NS);
        match &state.map {
            TierMap::Unlimited => {}
            TierMap::One(m) => self.run(m, digest, cost, now, d),
            TierMap::Two(m) => self.run(m, digest, cost, now, d),
            TierMap::Three(m) => self.run(m, digest, cost, now, d),
            TierMap::Four(m) => self.run(m, digest, cost, now, d),
        }
        Ok(())
    }

    #[inline]
    fn run<const K: usize>(&self, map: &KeyMap<K>, digest: u64, cost: u64, now: u64, d: &mut Decision) {
        let gcras = &self.tiers[d.tier].gcras;
        d.len = K;
        let mut f = |cells: &[AtomicU64; K]| {
            if K == 1 {
                d.rates[0] = gcras[0].check(&cells[0], now, cost);
                d.allowed = d.rates[0].allowed;
            } else {
                d.allowed = check_many(gcras, cells, now, cost, &mut d.rates);
            }
        };
        let mut applied = map.apply(&self.budget, digest, now, cost > 0, &mut f);
        if matches!(applied, Applied::Full) && self.make_room(now) {
            applied = map.apply(&self.budget, digest, now, cost > 0, &mut f);
        }
        match applied {
            Applied::Done(()) => {}
            Applied::Absent => {
                for (i, g) in gcras.iter().enumerate() {
                    d.rates[i] = g.fresh(now, cost);
                }
            }
            Applied::Full => return self.full(now, d),
        }
        if K > 1 {
            d.pick_binding();
        }
    }

    /// At the cap: sweep every tier (not before some key can be full again, and paced: see
    /// [`map::sweep_pace`]); true if that made room.
    #[cold]
    fn make_room(&self, now: u64) -> bool {
        if now < self.budget.cap_sweep_gate() {
            return false;
        }
        let held = u64::try_from(self.budget.len()).unwrap_or(u64::MAX);
        self.budget
            .next_cap_sweep
            .fetch_max(now.saturating_add(map::sweep_pace(held)), Ordering::AcqRel);
        let mut earliest = u64::MAX;
        for t in &self.tiers {
            let e = match &t.map {
                TierMap::Unlimited => u64::MAX,
                TierMap::One(m) => m.sweep_all(&self.budget, now).1,
                TierMap::Two(m) => m.sweep_all(&self.budget, now).1,
                TierMap::Three(m) => m.sweep_all(&self.budget, now).1,
                TierMap::Four(m) => m.sweep_all(&self.budget, now).1,
            };
            earliest = earliest.min(e);
        }
        let room = self.budget.len() < self.budget.max();
        self.budget
            .full_until
            .store(if room { 0 } else { earliest }, Ordering::Release);
        room
    }

    /// The decision for a new key while `max_keys` live keys are held: refused, with the time
    /// until the first held key can be full (and evicted) and a sweep may run as its wait.
    #[cold]
    fn full(&self, now: u64, d: &mut Decision) {
        let until = self.budget.cap_sweep_gate();
        let wait = until.saturating_sub(now).max(1);
        d.allowed = false;
        d.binding = 0;
        for o in &mut d.rates[..d.len] {
            *o = Outcome {
                allowed: false,
                remaining: 0,
                reset_after_ns: wait,
                retry_after_ns: wait,
            };
        }
    }

    /// Forget `digest` in `tier` (its bucket becomes full); true if it was held.
    pub fn reset(&self, tier: usize, digest: u64) -> bool {
        match &self.tiers[tier].map {
            TierMap::Unlimited => false,
            TierMap::One(m) => m.remove(&self.budget, digest),
            TierMap::Two(m) => m.remove(&self.budget, digest),
            TierMap::Three(m) => m.remove(&self.budget, digest),
            TierMap::Four(m) => m.remove(&self.budget, digest),
        }
    }

    /// Evict every full bucket now; returns how many keys went.
    pub fn sweep(&self, now: u64) -> usize {
        let now = now.min(MAX_TIME_NS);
        self.tiers
            .iter()
            .map(|t| match &t.map {
                TierMap::Unlimited => 0,
                TierMap::One(m) => m.sweep_all(&self.budget, now).0,
                TierMap::Two(m) => m.sweep_all(&self.budget, now).0,
                TierMap::Three(m) => m.sweep_all(&self.budget, now).0,
                TierMap::Four(m) => m.sweep_all(&self.budget, now).0,
            })
            .sum()
    }

    /// Live keys held across all tiers.
    pub fn len(&self) -> usize {
        self.budget.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.budget.is_empty()
    }

    /// The cap on live keys.
    pub fn max_keys(&self) -> usize {
        self.budget.max()
    }

    /// Bytes allocated by the key tables.
    pub fn allocated_bytes(&self) -> usize {
        self.tiers
            .iter()
            .map(|t| match &t.map {
                TierMap::Unlimited => 0,
                TierMap::One(m) => m.allocated_bytes(),
                TierMap::Two(m) => m.allocated_bytes(),
                TierMap::Three(m) => m.allocated_bytes(),
                TierMap::Four(m) => m.allocated_bytes(),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::ratelimit::{Rate, Tier};

    const S: u64 = 1_000_000_000;

    fn limiter(max_keys: usize) -> Limiter {
        let tiers = vec![
            Tier::limited("third_party", vec![Rate::new(100, 60 * S, Some(20)).unwrap()]).unwrap(),
            Tier::limited(
                "multi",
                vec![Rate::new(10, S, None).unwrap(), Rate::new(15, 3600 * S, None).unwrap()],
            )
            .unwrap(),
            Tier::unlimited("admin").unwrap(),
        ];
        Limiter::new(Policy::new(tiers, Some("third_party")).unwrap(), max_keys).unwrap()
    }

    #[test]
    fn single_rate_burst_and_headers_data() {
        let l = limiter(100);
        let clock = ManualClock::new(5 * S);
        let k = l.digest(b"user_1");
        for i in 0..20 {
            let d = l.check(0, k, 1, clock.now_ns()).unwrap();
            assert!(d.allowed);
            assert_eq!(d.summary().remaining, 19 - i);
        }
        let d = l.check(0, k, 1, clock.now_ns()).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.summary().retry_after_ns, 600_000_000);
        assert!(!l.allow(0, k, 1, clock.now_ns()).unwrap());
        clock.advance(600_000_000);
        assert!(l.allow(0, k, 1, clock.now_ns()).unwrap());
        assert!(l.check(0, k, 21, clock.now_ns()).is_err(), "cost above burst");
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn multi_rate_reports_the_binding_rate() {
        let l = limiter(100);
        let k = l.digest(b"svc");
        let mut t = S;
        let mut admitted = 0;
        for _ in 0..40 {
            if l.allow(1, k, 1, t).unwrap() {
                admitted += 1;
            }
            t += S / 20;
        }
        // 10 at once, then one per 100 ms over 2 s: but the hourly rate stops at 15
        assert_eq!(admitted, 15);
        let d = l.check(1, k, 1, t).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.binding, 1);
        assert_eq!(d.len, 2);
        assert!(d.rates[0].allowed);
    }

    #[test]
    fn unlimited_and_peek_keep_no_state() {
        let l = limiter(100);
        let d = l.check(2, l.digest(b"root"), 1, S).unwrap();
        assert!(d.allowed && d.len == 0);
        let d = l.check(0, l.digest(b"new"), 0, S).unwrap();
        assert!(d.allowed && d.summary().remaining == 20);
        assert!(l.is_empty());
    }

    #[test]
    fn cap_refuses_new_keys_until_one_is_full() {
        let l = limiter(3);
        for key in [b"a", b"b", b"c"] {
            assert!(l.allow(0, l.digest(key), 1, 0).unwrap());
        }
        let d = l.check(0, l.digest(b"d"), 1, 0).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.summary().retry_after_ns, 600_000_000);
        assert!(
            l.allow(0, l.digest(b"a"), 1, 0).unwrap(),
            "existing keys are unaffected"
        );
        assert!(l.allow(0, l.digest(b"d"), 1, 600_000_000).unwrap());
        assert!(l.len() <= 3, "room was made by evicting a full bucket");
        l.sweep(600_000_000);
        assert_eq!(l.len(), 2, "b and c were full again: evicted; a and d live");
    }

    #[test]
    fn the_pace_grows_with_the_keys_up_to_a_second() {
        assert_eq!(map::sweep_pace(0), 0);
        assert_eq!(map::sweep_pace(1_000), 1_000_000);
        assert_eq!(map::sweep_pace(1_000_000), 1_000_000_000);
        assert_eq!(map::sweep_pace(10_000_000), map::MAX_SWEEP_PACE_NS);
        assert_eq!(map::sweep_pace(u64::MAX), map::MAX_SWEEP_PACE_NS);
    }

    #[test]
    fn sweeps_at_the_cap_are_paced() {
        let tiers = vec![Tier::limited("t", vec![Rate::new(1, 10 * S, None).unwrap()]).unwrap()];
        let l = Limiter::new(Policy::new(tiers, None).unwrap(), 20_000).unwrap();
        for i in 0..20_000u64 {
            assert!(l.allow(0, l.digest(&i.to_le_bytes()), 1, i * 10_000).unwrap());
        }
        // key i is full again at 10 s + i × 10 µs; at the cap, a sweep finds key 0
        let t = 10 * S + 5_000;
        assert!(l.allow(0, l.digest(b"n0"), 1, t).unwrap());
        // key 1 is full too, but a sweep of 20,000 keys ran 10 µs ago: the next waits 20 ms
        let t = t + 10_000;
        let d = l.check(0, l.digest(b"n1"), 1, t).unwrap();
        assert!(!d.allowed);
        let wait = d.summary().retry_after_ns;
        assert!(wait > 0 && wait <= 20_000 * map::SWEEP_PACE_NS_PER_KEY, "{wait}");
        assert!(!l.allow(0, l.digest(b"n2"), 1, t + wait - 1).unwrap());
        assert!(l.allow(0, l.digest(b"n1"), 1, t + wait).unwrap());
        // a held identity is answered from its own bucket, not the cap
        let d = l.check(0, l.digest(&19_999u64.to_le_bytes()), 1, t + wait).unwrap();
        assert_eq!(d.summary().retry_after_ns, 10 * S + 199_990_000 - (t + wait));
        assert!(l.len() <= 20_000);
    }

    #[test]
    fn a_sweep_of_one_shard_at_the_cap_is_paced_too() {
        // raw digests below 2^40 all fall in shard 0: the new identity's own shard holds the full key
        let tiers = vec![Tier::limited("t", vec![Rate::new(1, 10 * S, None).unwrap()]).unwrap()];
        let l = Limiter::new(Policy::new(tiers, None).unwrap(), 5_000).unwrap();
        for i in 1..=5_000u64 {
            assert!(l.allow(0, i, 1, i * 10_000).unwrap());
        }
        let t = 10 * S + 15_000; // digest 1 is full again
        assert!(l.allow(0, 1_000_001, 1, t).unwrap(), "the shard's sweep found it");
        let d = l.check(0, 1_000_002, 1, t + 10_000).unwrap(); // digest 2 is full too
        assert!(!d.allowed, "paced: a sweep of 5,000 keys ran 10 µs ago");
        let wait = d.summary().retry_after_ns;
        assert!(wait > 0 && wait <= 5_000 * map::SWEEP_PACE_NS_PER_KEY, "{wait}");
        assert!(l.allow(0, 1_000_002, 1, t + 10_000 + wait).unwrap());
    }

    #[test]
    fn sweep_and_reset() {
        let l = limiter(10_000);
        for i in 0..5000u32 {
            assert!(l.allow(0, l.digest(&i.to_le_bytes()), 1, 0).unwrap());
        }
        assert_eq!(l.len(), 5000);
        assert!(l.reset(0, l.digest(&7u32.to_le_bytes())));
        assert_eq!(l.len(), 4999);
        assert_eq!(l.sweep(599_999_999), 0, "live buckets are never evicted");
        assert_eq!(l.sweep(600_000_000), 4999);
        assert!(l.is_empty());
    }
}
