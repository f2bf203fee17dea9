//! Criterion benchmarks of the in-process rate limiter without Python: `make bench-rust` (or
//! `cargo bench --no-default-features --bench ratelimit`).
//!
//! The same cases as `python -m bastion bench ratelimit`: a hot key on a rate that never runs dry (we time
//! the bookkeeping, not refusals), a million live keys visited in turn, and a two-rate tier. Every call
//! does what the binding's Rust side does: hash the key's bytes, read the monotonic clock, run GCRA.
//! The two-thread cases (`iter_custom`) report the wall time for each thread to make its calls while the
//! other makes as many: per-call latency under contention (throughput is twice the calls per that time).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use _core::clock::{Clock, MonotonicClock};
use _core::ratelimit::{Limiter, Policy, Rate, Tier};
use criterion::{criterion_group, criterion_main, Criterion};

const S: u64 = 1_000_000_000;
const N_KEYS: usize = 1_000_000;

/// A limiter with one tier of `rates`, holding up to twice the million keys.
fn limiter(rates: Vec<Rate>) -> Limiter {
    let tier = Tier::limited("t", rates).expect("tier");
    Limiter::new(Policy::new(vec![tier], None).expect("policy"), 2 * N_KEYS).expect("limiter")
}

/// 10^9 a second: a hot key is always admitted.
fn hot() -> Limiter {
    limiter(vec![Rate::new(S, S, None).expect("rate")])
}

/// A bucket per key that a benchmark run cannot empty, as in the Python million-key case.
fn million() -> (Limiter, Vec<String>) {
    let lim = limiter(vec![Rate::new(1, 3600 * S, Some(100_000)).expect("rate")]);
    let keys: Vec<String> = (0..N_KEYS).map(|i| format!("user-{i}")).collect();
    let clock = MonotonicClock::new();
    for k in &keys {
        assert!(allow(&lim, &clock, k.as_bytes()));
    }
    (lim, keys)
}

fn allow(lim: &Limiter, clock: &MonotonicClock, key: &[u8]) -> bool {
    lim.allow(0, lim.digest(key), 1, clock.now_ns()).expect("allow")
}

fn check_allowed(lim: &Limiter, clock: &MonotonicClock, key: &[u8]) -> u64 {
    let d = lim.check(0, lim.digest(key), 1, clock.now_ns()).expect("check");
    assert!(d.allowed);
    d.summary().remaining
}

/// `iters` calls of `f(thread, i)` on each of two threads started together; the slower thread's time.
fn two_threads(iters: u64, f: impl Fn(usize, u64) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        f(t, i);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .expect("two threads")
    })
}

fn single_thread(c: &mut Criterion) {
    let clock = MonotonicClock::new();
    let lim = hot();
    let multi = limiter(vec![
        Rate::new(S, S, None).expect("rate"),
        Rate::new(10_000_000_000_000, 86_400 * S, None).expect("rate"),
    ]);
    let (live, keys) = million();
    let mut g = c.benchmark_group("ratelimit");
    g.bench_function("allow, hot key", |b| {
        b.iter(|| allow(&lim, &clock, black_box(b"user_1")));
    });
    g.bench_function("check -> Decision, hot key", |b| {
        b.iter(|| check_allowed(&lim, &clock, black_box(b"user_1")));
    });
    g.bench_function("check -> Decision, hot key, two-rate tier", |b| {
        b.iter(|| check_allowed(&multi, &clock, black_box(b"user_1")));
    });
    let mut cycle = keys.iter().cycle();
    g.bench_function("check -> Decision, 1,000,000 live keys in turn", |b| {
        b.iter(|| check_allowed(&live, &clock, cycle.next().expect("endless").as_bytes()));
    });
    g.bench_function("allow, 1,000,000 live keys in turn", |b| {
        b.iter(|| allow(&live, &clock, cycle.next().expect("endless").as_bytes()));
    });
    g.finish();
}

fn two(c: &mut Criterion) {
    let clock = MonotonicClock::new();
    let lim = hot();
    let (live, keys) = million();
    let mut g = c.benchmark_group("ratelimit, 2 threads");
    g.bench_function("allow, one hot key shared by both", |b| {
        b.iter_custom(|iters| two_threads(iters, |_, _| assert!(allow(&lim, &clock, black_box(b"user_1")))));
    });
    g.bench_function("allow, a hot key per thread", |b| {
        let own: [&[u8]; 2] = [b"user_1", b"user_2"];
        b.iter_custom(|iters| two_threads(iters, |t, _| assert!(allow(&lim, &clock, black_box(own[t])))));
    });
    // each thread walks the keys from its own starting point, continuing where its last sample stopped
    let mut offset = 0u64;
    g.bench_function("check -> Decision, 1,000,000 live keys in turn", |b| {
        b.iter_custom(|iters| {
            let start = offset;
            offset += iters;
            two_threads(iters, |t, i| {
                let k = (start + i) as usize + t * (N_KEYS / 2);
                check_allowed(&live, &clock, keys[k % N_KEYS].as_bytes());
            })
        });
    });
    g.finish();
}

criterion_group!(benches, single_thread, two);
criterion_main!(benches);
