"""``python -m bastion bench ratelimit``: the in-process and Redis limiters against their peers.

Peers: a 15-line pure-Python dict token bucket (written here; not thread-safe), ``rust-py-rate-limit``
(Rust, fixed window), ``limits`` (MemoryStorage and RedisStorage, fixed and moving window). The Redis
group needs a server: ``BASTION_REDIS_URL``, or a private ``redis-server`` started on a free loopback port
(without persistence) when one is installed. Memory per live key is measured from RSS in fresh
subprocesses. Every call goes through the same harness (``functools.partial`` for a fixed key; a lambda
over ``next(cycle)`` for a million keys, whose own cost is shown as a row of its own).
"""

from __future__ import annotations

import atexit
import functools
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from time import monotonic
from typing import Any

import bastion
from bastion._benchutil import Case

N_KEYS = 1_000_000
#: the harness's own cost for a fixed key: the same partial-call loop around a C function that does nothing
HARNESS_CALL = "harness: partial(len, key) alone"
RATE_PER_S = 10**9  # the hot key never runs dry: we time the bookkeeping, not refusals


class DictBucket:
    """The textbook Python token bucket: a dict of [tokens, last] (not safe under threads)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.state: dict[str, list[float]] = {}

    def allow(self, key: str) -> bool:
        now = monotonic()
        s = self.state.get(key)
        if s is None:
            self.state[key] = [self.burst - 1, now]
            return True
        tokens = min(self.burst, s[0] + (now - s[1]) * self.rate)
        s[1] = now
        if tokens >= 1:
            s[0] = tokens - 1
            return True
        s[0] = tokens
        return False


def _optional(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        return None


def _cycle_case(group: str, name: str, check: Callable[[str], object], keys: list[str], bastion_: bool) -> Case:
    it = itertools.cycle(keys)
    for k in keys:  # every key live before timing
        check(k)
    return Case(group, name, lambda: check(next(it)), is_bastion=bastion_)


def _redis_url() -> str | None:
    url = os.environ.get("BASTION_REDIS_URL")
    if url:
        return url
    exe = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if exe is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    return None


def local_cases() -> list[Case]:
    out: list[Case] = []
    rate = bastion.Rate(RATE_PER_S, per=1)
    lim = bastion.RateLimiter({"t": rate}, max_keys=2 * N_KEYS)
    bucket = DictBucket(RATE_PER_S, RATE_PER_S)
    rpl = _optional("rust_py_rate_limit")
    limits = _optional("limits")

    g = "allow, hot key"
    out.append(Case(g, "bastion RateLimiter.allow", functools.partial(lim.allow, "user_1"), is_bastion=True))
    out.append(Case(g, "pure-Python dict bucket", functools.partial(bucket.allow, "user_1")))
    if rpl is not None:
        r = rpl.RateLimiter(limit=2**31, window_seconds=60)
        out.append(Case(g, "rust-py-rate-limit allow", functools.partial(r.allow, "user_1")))
    else:
        out.append(Case(g, "rust-py-rate-limit allow", None, missing="not installed (pip install rust-py-rate-limit)"))
    if limits is not None:
        from limits import RateLimitItemPerSecond, storage, strategies

        item = RateLimitItemPerSecond(RATE_PER_S)
        mem = storage.MemoryStorage()
        fixed = strategies.FixedWindowRateLimiter(mem)
        moving = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        out.append(Case(g, "limits MemoryStorage fixed window", functools.partial(fixed.hit, item, "user_1")))
        out.append(Case(g, "limits MemoryStorage moving window", functools.partial(moving.hit, item, "user_1")))
    else:
        out.append(Case(g, "limits MemoryStorage", None, missing="not installed"))
    out.append(Case(g, HARNESS_CALL, functools.partial(len, "user_1")))

    g = "check → Decision, hot key"
    out.append(Case(g, "bastion RateLimiter.check", functools.partial(lim.check, "user_1"), is_bastion=True))
    out.append(Case(g, "bastion RateLimiter.check + headers()", lambda: lim.check("user_1").headers()))
    if rpl is not None:
        r = rpl.RateLimiter(limit=2**31, window_seconds=60)
        out.append(Case(g, "rust-py-rate-limit check (dict)", functools.partial(r.check, "user_1")))
    out.append(Case(g, HARNESS_CALL, functools.partial(len, "user_1")))

    g = "check over 1,000,000 live keys"
    keys = [f"user-{i}" for i in range(N_KEYS)]
    # each check pushes a bucket an hour from full: all million stay live (never evicted) while timed
    live = bastion.RateLimiter({"t": bastion.Rate(1, per=3600, burst=100_000)}, max_keys=2 * N_KEYS)
    out.append(_cycle_case(g, "bastion RateLimiter.check", live.check, keys, True))
    out.append(_cycle_case(g, "bastion RateLimiter.allow", live.allow, keys, False))
    if rpl is not None:
        r = rpl.RateLimiter(limit=2**31, window_seconds=3600, max_keys=2 * N_KEYS)
        out.append(_cycle_case(g, "rust-py-rate-limit check (dict)", r.check, keys, False))
    out.append(_cycle_case(g, "pure-Python dict bucket", bucket.allow, keys, False))
    it = itertools.cycle(keys)
    out.append(Case(g, "harness: lambda over next(cycle)", lambda: next(it)))
    return out


def redis_cases() -> list[Case]:
    g = "Redis check, one connection, loopback"
    if _optional("redis") is None:
        return [Case(g, "bastion RedisRateLimiter.check", None, missing="redis-py not installed")]
    url = _redis_url()
    if url is None:
        return [Case(g, "bastion RedisRateLimiter.check", None, missing="no Redis: set BASTION_REDIS_URL")]
    import redis as redis_py

    lim = bastion.RedisRateLimiter(url, {"t": bastion.Rate(10**6, per=1)})
    out = [
        Case(g, "bastion RedisRateLimiter.check", functools.partial(lim.check, "user_1"), is_bastion=True),
        Case(g, "bastion RedisRateLimiter.allow", functools.partial(lim.allow, "user_1")),
    ]
    client = redis_py.Redis.from_url(url)
    out.append(Case(g, "redis-py PING (round-trip floor)", client.ping))
    if _optional("limits") is not None:
        from limits import RateLimitItemPerSecond, storage, strategies

        item = RateLimitItemPerSecond(10**6)
        st = storage.RedisStorage(url)
        fixed = strategies.FixedWindowRateLimiter(st)
        moving = strategies.MovingWindowRateLimiter(st)
        out.append(Case(g, "limits RedisStorage fixed window", functools.partial(fixed.hit, item, "fixed_user")))
        out.append(Case(g, "limits RedisStorage moving window", functools.partial(moving.hit, item, "moving_user")))
        interleaved(
            {
                "bastion RedisRateLimiter.check": functools.partial(lim.check, "user_1"),
                "limits RedisStorage fixed window": functools.partial(fixed.hit, item, "fixed_user"),
                "limits RedisStorage moving window": functools.partial(moving.hit, item, "moving_user"),
            }
        )
    out.extend(concurrent_cases(url))
    return out


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 41, calls: int = 300) -> None:
    """Print medians of rounds that alternate the implementations (the first one is bastion), and the
    median of the per-round ratios: on a shared machine, load changes within a run, and alternating in
    short rounds exposes every implementation to the same load."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(100):
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter_ns() - t0) / calls / 1000)
    base_name = next(iter(fns))
    base = times[base_name]
    print(f"Redis, one connection, interleaved ({rounds} rounds of {calls} calls each; µs per call):")
    for name, ts in times.items():
        ratios = sorted(t / b for t, b in zip(ts, base, strict=True))
        extra = "" if name == base_name else f"   {statistics.median(ratios):.2f}× bastion (per-round median)"
        print(f"  {name:<34} {statistics.median(ts):7.2f} µs{extra}")


BATCH = 64


def concurrent_cases(url: str) -> list[Case]:
    """64 concurrent asyncio checks per call: bastion pipelines them on one connection."""
    import asyncio

    g = f"Redis, {BATCH} concurrent asyncio checks (time per batch)"
    loop = asyncio.new_event_loop()
    lim = bastion.RedisRateLimiter(url, {"t": bastion.Rate(10**6, per=1)})
    atexit.register(loop.close)
    atexit.register(lambda: loop.run_until_complete(lim.aclose()))
    keys = [f"user-{i}" for i in range(BATCH)]

    def batch(make: Callable[[str], Any]) -> Callable[[], object]:
        async def run() -> list[Any]:
            return await asyncio.gather(*(make(k) for k in keys))

        return lambda: loop.run_until_complete(run())

    out = [Case(g, "bastion RedisRateLimiter.acheck, 1 connection", batch(lim.acheck), is_bastion=True)]
    if _optional("limits") is not None:
        from limits import RateLimitItemPerSecond
        from limits.aio import storage as astorage
        from limits.aio import strategies as astrategies

        item = RateLimitItemPerSecond(10**6)
        st = astorage.RedisStorage("async+" + url, implementation="redispy")
        fixed = astrategies.FixedWindowRateLimiter(st)
        moving = astrategies.MovingWindowRateLimiter(st)
        out.append(Case(g, "limits async fixed window (redis.asyncio pool)", batch(lambda k: fixed.hit(item, k))))
        out.append(
            Case(g, "limits async moving window (redis.asyncio pool)", batch(lambda k: moving.hit(item, "m" + k)))
        )
    return out


_MEMORY_PROBE = """
import gc, sys, time
N = {n}
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
kind = sys.argv[1]
if kind == "bastion":
    import bastion
    lim = bastion.RateLimiter({{"t": bastion.Rate(1, per=3600)}}, max_keys=2 * N)
    allow = lim.allow
elif kind == "rust-py-rate-limit":
    import rust_py_rate_limit
    lim = rust_py_rate_limit.RateLimiter(limit=10, window_seconds=3600, max_keys=2 * N)
    allow = lim.allow
else:
    sys.path.insert(0, {here!r})
    from bastion._bench_ratelimit import DictBucket
    lim = DictBucket(1 / 3600, 1)
    allow = lim.allow
allow("warm-up")
gc.collect()
before = rss()
for i in range(N):
    allow(f"user-{{i}}")
gc.collect()
print((rss() - before) / N)
"""


def memory_per_key(kind: str, n: int = N_KEYS) -> float | None:
    """Bytes of RSS per live key after ``n`` distinct keys, in a fresh interpreter."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _MEMORY_PROBE.format(n=n, here=here)
    proc = subprocess.run([sys.executable, "-c", code, kind], capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        return None
    return float(proc.stdout.strip())


def cases() -> list[Case]:
    for kind in ("bastion", "rust-py-rate-limit", "pure-Python dict bucket"):
        per_key = memory_per_key(kind)
        shown = "not installed" if per_key is None else f"{per_key:.1f} bytes"
        print(f"memory per live key (RSS, {N_KEYS:,} keys), {kind}: {shown}")
    return local_cases() + redis_cases()
