"""Concurrency: many threads on one key admit exactly what the rate allows, on the real clock.

Each admission is one compare-and-swap on the key's theoretical arrival time, so threads can race but
never both spend the same token. The bounds come from measured times, not assumptions: over the span
from the first call to the last, at most ``burst + rate × span`` requests can pass; and since the
threads ask far faster than the bucket refills (and the burst covers scheduling pauses up to a second),
at least 99 % of that must pass too.
"""

from __future__ import annotations

import threading
import time

import bastion
import pytest

THREADS = 8
SECONDS = 2.0
RATE = 20_000  # per second
BURST = 20_000  # one second of refill: absorbs the machine pausing this process


@pytest.mark.parametrize("clock", ["real", "monotonic_ns"])
def test_eight_threads_hammering_one_key(clock: str) -> None:
    # "real": the limiter's own clock (CLOCK_MONOTONIC, the clock time.monotonic reads); "monotonic_ns": a Python
    # callable, which lets the interpreter switch threads between reading the clock and the compare-and-swap
    if clock == "real":
        limiter = bastion.RateLimiter({"t": bastion.Rate(RATE, per=1, burst=BURST)})
    else:
        limiter = bastion.RateLimiter({"t": bastion.Rate(RATE, per=1, burst=BURST)}, clock=time.monotonic_ns)
    start = threading.Barrier(THREADS + 1)
    admitted = [0] * THREADS
    calls = [0] * THREADS
    first_call = [0.0] * THREADS
    last_call_end = [0.0] * THREADS

    def hammer(i: int) -> None:
        allow = limiter.allow
        clock = time.monotonic
        start.wait()
        deadline = clock() + SECONDS
        first_call[i] = clock()
        n = ok = 0
        while True:
            for _ in range(64):
                ok += allow("the-key")
            n += 64
            now = clock()
            if now >= deadline:
                break
        last_call_end[i] = now
        admitted[i] = ok
        calls[i] = n

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    span = max(last_call_end) - min(first_call)
    total = sum(admitted)
    most = BURST + RATE * span
    assert sum(calls) > 3 * most, "the threads must out-ask the limiter for the lower bound to mean anything"
    assert total <= most + 1, (total, most)
    assert total >= 0.99 * most, (total, most)
    assert all(a > 0 for a in admitted), "every thread got some"


def test_threads_on_a_multi_rate_tier_stay_all_or_nothing() -> None:
    t = [10**9]
    limiter = bastion.RateLimiter({"m": [bastion.Rate(500, per=1), bastion.Rate(700, per=3600)]}, clock=lambda: t[0])
    admitted = [0] * THREADS

    def hammer(i: int) -> None:
        admitted[i] = sum(limiter.allow("k") for _ in range(2000))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(admitted) == 500, "the clock stands still: exactly the burst of the tighter rate"
    d = limiter.check("k", cost=0)
    assert d.rates[1][2] == 200, "the hourly rate lost exactly what was admitted"
