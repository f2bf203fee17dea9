//! GCRA (the generic cell rate algorithm) with token-bucket semantics.
//!
//! A bucket holds up to `burst` tokens and refills one token every `interval_ns`. GCRA stores no
//! token count: the whole state of a key is its *theoretical arrival time* (TAT), in nanoseconds on
//! the limiter's clock, one `AtomicU64`. At time `now` the bucket holds
//! `(now + tau - max(TAT, now)) / interval` tokens, where `tau = burst * interval`; a TAT at or
//! before `now` is a full bucket (so a fresh key starts at TAT 0, full). Taking `cost` tokens moves
//! the TAT to `max(TAT, now) + cost * interval`, allowed only if that stays within `now + tau`.
//! Refused requests write nothing. Every sum is saturating or checked.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The largest `now` the limiter handles (2^62 ns ≈ 146 years after the limiter's start).
/// Bit 63 of the first cell of a multi-rate key is its update lock (see [`check_many`]), so a stored
/// TAT (at most `now + tau`) must stay below 2^63: callers clamp `now` to this and construction keeps
/// `tau` strictly below it.
pub const MAX_TIME_NS: u64 = 1 << 62;

/// The most rates one tier may combine (e.g. 10/s and 1000/day): a fixed bound keeps the
/// per-request state on the stack ([`check_many`]'s arrays, a decision's outcomes).
pub const MAX_RATES: usize = 4;

/// One rate in GCRA form: an emission interval and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    interval_ns: u64,
    burst: u64,
    tau_ns: u64,
}

/// What one rate says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Whether this rate admits the request.
    pub allowed: bool,
    /// Whole tokens left after this request (or, when refused, left now).
    pub remaining: u64,
    /// Nanoseconds until the bucket is full again.
    pub reset_after_ns: u64,
    /// Nanoseconds until a request of the same cost would be admitted (0 when allowed).
    pub retry_after_ns: u64,
}

impl Gcra {
    /// `count` tokens per `period_ns`, holding at most `burst`. The interval is rounded *up* to
    /// whole nanoseconds, so bastion never admits faster than the stated rate.
    pub fn new(count: u64, period_ns: u64, burst: u64) -> Result<Self> {
        if count == 0 {
            return Err(Error::config("a rate must allow at least one request per period"));
        }
        if period_ns == 0 {
            return Err(Error::config("a rate's period must be positive"));
        }
        if burst == 0 {
            return Err(Error::config("a rate's burst must be at least 1"));
        }
        if count > period_ns {
            return Err(Error::config(
                "a rate faster than one request per nanosecond cannot be represented",
            ));
        }
        let interval_ns = period_ns.div_ceil(count);
        let tau_ns = burst
            .checked_mul(interval_ns)
            .filter(|&t| t < MAX_TIME_NS)
            .ok_or_else(|| Error::config("burst × interval exceeds 146 years"))?;
        Ok(Gcra {
            interval_ns,
            burst,
            tau_ns,
        })
    }

    /// A rate held elsewhere as its interval and tau (the Redis script's, in µs), for
    /// [`Gcra::decide`] only: nothing is validated but a non-zero interval, as no cell is kept.
    pub const fn from_parts(interval: u64, tau: u64) -> Option<Self> {
        if interval == 0 {
            return None;
        }
        Some(Gcra {
            interval_ns: interval,
            burst: tau / interval,
            tau_ns: tau,
        })
    }

    /// Nanoseconds per token.
    pub const fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// The bucket's capacity in tokens (the quota `q` of the rate-limit headers).
    pub const fn burst(&self) -> u64 {
        self.burst
    }

    /// `burst × interval`: how far the TAT may lead `now`.
    pub const fn tau_ns(&self) -> u64 {
        self.tau_ns
    }

    /// The decision for a bucket whose TAT is `tat`, and the TAT to store (`None`: write nothing).
    /// `cost` must not exceed the burst (the limiter checks this per call).
    #[inline]
    pub fn decide(&self, tat: u64, now: u64, cost: u64) -> (Outcome, Option<u64>) {
        let base = tat.max(now);
        let limit = now.saturating_add(self.tau_ns);
        let new_tat = base.saturating_add(cost.saturating_mul(self.interval_ns));
        if new_tat <= limit {
            let out = Outcome {
                allowed: true,
                remaining: (limit - new_tat) / self.interval_ns,
                reset_after_ns: new_tat - now,
                retry_after_ns: 0,
            };
            (out, (cost != 0).then_some(new_tat))
        } else {
            let out = Outcome {
                allowed: false,
                remaining: limit.saturating_sub(base) / self.interval_ns,
                reset_after_ns: base - now,
                retry_after_ns: new_tat - limit,
            };
            (out, None)
        }
    }

    /// Whether a request of `cost` would be admitted, and the TAT to store; the allow-only twin of
    /// [`Gcra::decide`] that skips the divisions.
    #[inline]
    pub fn admits(&self, tat: u64, now: u64, cost: u64) -> Option<u64> {
        let new_tat = tat.max(now).saturating_add(cost.saturating_mul(self.interval_ns));
        (new_tat <= now.saturating_add(self.tau_ns)).then_some(new_tat)
    }

    /// The state of a bucket with no entry (TAT 0: full), without touching any map.
    #[inline]
    pub fn fresh(&self, now: u64, cost: u64) -> Outcome {
        self.decide(0, now, cost).0
    }

    /// Apply a request to a single-rate bucket: one compare-and-swap loop, no lock.
    #[inline]
    pub fn check(&self, cell: &AtomicU64, now: u64, cost: u64) -> Outcome {
        // Relaxed is enough: the TAT publishes no other memory, and read-modify-write operations on
        // one atomic are totally ordered, which is all the algorithm needs.
        let mut cur = cell.load(Ordering::Relaxed);
        loop {
            let (out, new) = self.decide(cur, now, cost);
            let Some(new) = new else { return out };
            match cell.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return out,
                Err(actual) => cur = actual,
            }
        }
    }

    /// [`Gcra::check`] answering only yes or no.
    #[inline]
    pub fn allow(&self, cell: &AtomicU64, now: u64, cost: u64) -> bool {
        let mut cur = cell.load(Ordering::Relaxed);
        loop {
            let Some(new) = self.admits(cur, now, cost) else {
                return false;
            };
            if cost == 0 {
                return true;
            }
            match cell.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }
}

const LOCK: u64 = 1 << 63;

/// Apply one request to a key held by several rates, all-or-nothing: either every rate admits it
/// and every TAT moves, or nothing is written. `cells[i]` is the TAT of `rates[i]`.
///
/// Several atomics cannot move in one compare-and-swap, so a multi-rate key is updated under a
/// tiny lock: bit 63 of `cells[0]`, taken by a compare-and-swap and held for the few nanoseconds of
/// the update (spinning, then yielding, if another thread holds it). Single-rate tiers — the common
/// case — never take it. `out[i]` receives each rate's outcome.
pub fn check_many(rates: &[Gcra], cells: &[AtomicU64], now: u64, cost: u64, out: &mut [Outcome]) -> bool {
    debug_assert!(rates.len() == cells.len() && rates.len() <= out.len() && !rates.is_empty());
    let first = lock(&cells[0]);
    let mut tats = [0u64; MAX_RATES];
    let mut news = [0u64; MAX_RATES];
    let mut all = true;
    for (i, rate) in rates.iter().enumerate() {
        let tat = if i == 0 {
            first
        } else {
            cells[i].load(Ordering::Relaxed)
        };
        let (o, new) = rate.decide(tat, now, cost);
        out[i] = o;
        tats[i] = tat;
        news[i] = new.unwrap_or(tat);
        all &= o.allowed;
    }
    if !all {
        // Nothing is taken: the rates that would have admitted report their state as it is.
        for (i, rate) in rates.iter().enumerate() {
            if out[i].allowed {
                out[i] = rate.decide(tats[i], now, 0).0;
            }
        }
    }
    if all {
        for i in 1..rates.len() {
            cells[i].store(news[i], Ordering::Relaxed);
        }
        // Releasing the lock publishes the other cells' stores to the next holder.
        cells[0].store(news[0], Ordering::Release);
    } else {
        cells[0].store(first, Ordering::Release);
    }
    all
}

/// Read the TATs of a multi-rate key consistently (used by eviction, which holds the shard's
/// write lock, so no update is in flight there; readers elsewhere use [`check_many`]).
pub fn tat_of(cell: &AtomicU64) -> u64 {
    cell.load(Ordering::Acquire) & !LOCK
}

fn lock(cell: &AtomicU64) -> u64 {
    let mut spins = 0u32;
    loop {
        let cur = cell.load(Ordering::Relaxed);
        if cur & LOCK == 0
            && cell
                .compare_exchange_weak(cur, cur | LOCK, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return cur;
        }
        spins = spins.saturating_add(1);
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn refuses_impossible_rates() {
        assert!(Gcra::new(0, S, 1).is_err());
        assert!(Gcra::new(1, 0, 1).is_err());
        assert!(Gcra::new(1, S, 0).is_err());
        assert!(Gcra::new(S + 1, S, 1).is_err());
        assert!(Gcra::new(1, u64::MAX / 2, 3).is_err());
        assert!(
            Gcra::new(1, 1 << 32, 1 << 30).is_err(),
            "tau = 2^62 could store a TAT of 2^63"
        );
        assert!(Gcra::new(1, (1 << 32) - 1, 1 << 30).is_ok());
        assert!(Gcra::new(S, S, 1).is_ok());
    }

    #[test]
    fn interval_rounds_up() {
        let g = Gcra::new(7, 60 * S, 7).unwrap();
        assert_eq!(g.interval_ns(), 8_571_428_572);
        assert_eq!(g.tau_ns(), 7 * 8_571_428_572);
    }

    #[test]
    fn burst_then_refill() {
        let g = Gcra::new(10, S, 5).unwrap();
        let cell = AtomicU64::new(0);
        let now = 1000 * S;
        for left in (0..5).rev() {
            let o = g.check(&cell, now, 1);
            assert!(o.allowed);
            assert_eq!(o.remaining, left);
        }
        let o = g.check(&cell, now, 1);
        assert!(!o.allowed);
        assert_eq!(o.remaining, 0);
        assert_eq!(o.retry_after_ns, S / 10);
        assert_eq!(o.reset_after_ns, S / 2);
        let before = cell.load(Ordering::Relaxed);
        assert!(!g.allow(&cell, now, 1));
        assert_eq!(cell.load(Ordering::Relaxed), before, "a refused request writes nothing");
        assert!(g.allow(&cell, now + S / 10, 1));
        assert!(!g.allow(&cell, now + S / 10, 1));
        // after a long pause the bucket is full, never fuller
        let o = g.check(&cell, now + 100 * S, 1);
        assert_eq!(o.remaining, 4);
    }

    #[test]
    fn cost_and_peek() {
        let g = Gcra::new(10, S, 10).unwrap();
        let cell = AtomicU64::new(0);
        let o = g.check(&cell, S, 7);
        assert!(o.allowed && o.remaining == 3);
        let o = g.check(&cell, S, 4);
        assert!(!o.allowed && o.remaining == 3 && o.retry_after_ns == S / 10);
        let before = cell.load(Ordering::Relaxed);
        let o = g.check(&cell, S, 0);
        assert!(o.allowed && o.remaining == 3);
        assert_eq!(cell.load(Ordering::Relaxed), before, "cost 0 only looks");
    }

    #[test]
    fn clock_going_backwards_is_safe() {
        let g = Gcra::new(1, S, 1).unwrap();
        let cell = AtomicU64::new(0);
        assert!(g.check(&cell, 10 * S, 1).allowed);
        let o = g.check(&cell, 0, 1);
        assert!(!o.allowed);
        assert_eq!(o.remaining, 0);
        assert_eq!(o.retry_after_ns, 11 * S);
    }

    #[test]
    fn many_is_all_or_nothing() {
        let rates = [Gcra::new(10, S, 10).unwrap(), Gcra::new(12, 60 * S, 12).unwrap()];
        let cells = [AtomicU64::new(0), AtomicU64::new(0)];
        let mut out = [Outcome::default(); 4];
        let mut admitted = 0;
        for _ in 0..20 {
            if check_many(&rates, &cells, S, 1, &mut out) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10);
        let snapshot = (tat_of(&cells[0]), tat_of(&cells[1]));
        // a second later the per-second rate has refilled but the per-minute one holds 2 tokens
        let mut admitted = 0;
        for _ in 0..20 {
            if check_many(&rates, &cells, 2 * S, 1, &mut out) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 2);
        assert!(!out[1].allowed && out[0].allowed);
        // the per-second rate would admit but nothing was taken: it reports its tokens as they are
        assert_eq!(out[0].remaining, 8);
        assert_eq!(out[0].reset_after_ns, 2 * S / 10);
        assert!(tat_of(&cells[0]) > snapshot.0);
        assert_eq!(cells[0].load(Ordering::Relaxed) & LOCK, 0);
    }

    #[test]
    fn a_tat_at_the_time_limit_never_takes_the_lock_bit() {
        // the largest tau and the largest now: the stored TAT must stay below bit 63 (the lock)
        let big = Gcra::new(1, (1 << 32) - 1, 1 << 30).unwrap();
        let rates = [big, Gcra::new(1, 1, 1 << 30).unwrap()];
        let cells = [AtomicU64::new(0), AtomicU64::new(0)];
        let mut out = [Outcome::default(); 4];
        assert!(check_many(&rates, &cells, MAX_TIME_NS, 1 << 30, &mut out));
        assert_eq!(cells[0].load(Ordering::Relaxed) & LOCK, 0);
        // the next request takes and releases the lock instead of spinning on a stuck bit
        assert!(!check_many(&rates, &cells, MAX_TIME_NS, 1, &mut out));
        assert_eq!(out[0].remaining, 0);
    }

    #[test]
    fn threads_never_over_admit() {
        use std::sync::Arc;
        let g = Gcra::new(1000, S, 50).unwrap();
        let cell = Arc::new(AtomicU64::new(0));
        let admitted: u64 = (0..4)
            .map(|_| {
                let cell = Arc::clone(&cell);
                std::thread::spawn(move || (0..10_000).filter(|_| g.allow(&cell, S, 1)).count() as u64)
            })
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(admitted, 50);
    }
}
