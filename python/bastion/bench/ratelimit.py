"""``python -m bastion bench ratelimit``: the in-process and Redis limiters against their peers.

Peers: a 15-line pure-Python dict token bucket (written here; not thread-safe), ``rust-py-rate-limit``
(Rust, fixed window), ``limits`` (MemoryStorage and RedisStorage, fixed and moving window). The Redis
group needs a server: ``BASTION_REDIS_URL``, or a private ``redis-server`` started on a free loopback port
(without persistence) when one is installed. Memory per live key (``figures()``) is measured from RSS in fresh
subprocesses. ``--quick`` uses fewer live keys (``N_KEYS_QUICK``, ``MEMORY_KEYS_QUICK``). Every call goes
through the same harness (``functools.partial`` for a fixed key; a lambda over ``next(cycle)`` for a million
keys, whose own cost is shown as a row of its own).
"""

from __future__ import annotations

import atexit
import functools
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from time import monotonic
from typing import Any

import bastion
from bastion.bench import NOT_INSTALLED, Case, Figure

N_KEYS, N_KEYS_QUICK = 1_000_000, 100_000
MEMORY_KEYS_QUICK = 200_000
#: concurrent asyncio checks per timed call in the Redis batch group
BATCH = 64
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


def _allowed(result: Any) -> bool:
    """A Decision, or rust-py-rate-limit's dict, that admits the call."""
    return bool(result["allowed"] if isinstance(result, dict) else result.allowed)


def _cycle_case(
    group: str, name: str, check: Callable[[str], object], keys: list[str], bastion_: bool, ok: Callable[[Any], bool]
) -> Case:
    it = itertools.cycle(keys)
    for k in keys:  # every key live before timing
        check(k)
    return Case(group, name, lambda: check(next(it)), is_bastion=bastion_, ok=ok)


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


def _is_true(result: object) -> bool:
    return result is True


def _from_redis(decision: Any) -> bool:
    return bool(decision.source == "redis" and decision.allowed)


def _every_one_from_redis(results: list[Any]) -> bool:
    return len(results) == BATCH and all(_from_redis(d) for d in results)


def _every_one_true(results: list[Any]) -> bool:
    return len(results) == BATCH and all(r is True for r in results)


def local_cases(n_keys: int = N_KEYS) -> list[Case]:
    out: list[Case] = []
    rate = bastion.Rate(RATE_PER_S, per=1)
    lim = bastion.RateLimiter({"t": rate}, max_keys=2 * n_keys)
    bucket = DictBucket(RATE_PER_S, RATE_PER_S)
    rpl = _optional("rust_py_rate_limit")
    limits = _optional("limits")

    g = "allow, hot key"
    allow = functools.partial(lim.allow, "user_1")
    out.append(Case(g, "bastion RateLimiter.allow", allow, is_bastion=True, ok=_is_true))
    out.append(Case(g, "pure-Python dict bucket", functools.partial(bucket.allow, "user_1"), ok=_is_true))
    if rpl is not None:
        r = rpl.RateLimiter(limit=2**31, window_seconds=60)
        out.append(Case(g, "rust-py-rate-limit allow", functools.partial(r.allow, "user_1"), ok=_is_true))
    else:
        out.append(Case(g, "rust-py-rate-limit allow", None, missing=NOT_INSTALLED))
    if limits is not None:
        from limits import RateLimitItemPerSecond, storage, strategies

        item = RateLimitItemPerSecond(RATE_PER_S)
        mem = storage.MemoryStorage()
        fixed = strategies.FixedWindowRateLimiter(mem)
        moving = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        fixed_hit = functools.partial(fixed.hit, item, "user_1")
        moving_hit = functools.partial(moving.hit, item, "user_1")
        out.append(Case(g, "limits MemoryStorage fixed window", fixed_hit, ok=_is_true))
        out.append(Case(g, "limits MemoryStorage moving window", moving_hit, ok=_is_true))
    else:
        out.append(Case(g, "limits MemoryStorage", None, missing=NOT_INSTALLED))
    out.append(Case(g, HARNESS_CALL, functools.partial(len, "user_1")))

    g = "check → Decision, hot key"
    check = functools.partial(lim.check, "user_1")
    out.append(Case(g, "bastion RateLimiter.check", check, is_bastion=True, ok=_allowed))
    out.append(
        Case(
            g,
            "bastion RateLimiter.check + headers()",
            lambda: lim.check("user_1").headers(),
            ok=lambda h: h[0][0] == "RateLimit-Policy",
        )
    )
    if rpl is not None:
        r = rpl.RateLimiter(limit=2**31, window_seconds=60)
        out.append(Case(g, "rust-py-rate-limit check (dict)", functools.partial(r.check, "user_1"), ok=_allowed))
    else:
        out.append(Case(g, "rust-py-rate-limit check (dict)", None, missing=NOT_INSTALLED))
    out.append(Case(g, HARNESS_CALL, functools.partial(len, "user_1")))

    g = f"check over {n_keys:,} live keys"
    keys = [f"user-{i}" for i in range(n_keys)]
    # each check pushes a bucket an hour from full: every key stays live (never evicted) while timed
    live = bastion.RateLimiter({"t": bastion.Rate(1, per=3600, burst=100_000)}, max_keys=2 * n_keys)
    out.append(_cycle_case(g, "bastion RateLimiter.check", live.check, keys, True, _allowed))
    out.append(_cycle_case(g, "bastion RateLimiter.allow", live.allow, keys, False, _is_true))
    if rpl is not None:
        r = rpl.RateLimiter(limit=2**31, window_seconds=3600, max_keys=2 * n_keys)
        out.append(_cycle_case(g, "rust-py-rate-limit check (dict)", r.check, keys, False, _allowed))
    else:
        out.append(Case(g, "rust-py-rate-limit check (dict)", None, missing=NOT_INSTALLED))
    out.append(_cycle_case(g, "pure-Python dict bucket", bucket.allow, keys, False, _is_true))
    it = itertools.cycle(keys)
    out.append(Case(g, "harness: lambda over next(cycle)", lambda: next(it)))
    return out


def redis_cases() -> list[Case]:
    g = "Redis check, one connection, loopback"
    if _optional("redis") is None:
        return [Case(g, "bastion RedisRateLimiter.check", None, missing=f"redis-py {NOT_INSTALLED}")]
    url = _redis_url()
    if url is None:
        return [Case(g, "bastion RedisRateLimiter.check", None, missing="no Redis: set BASTION_REDIS_URL")]
    import redis as redis_py

    lim = bastion.RedisRateLimiter(url, {"t": bastion.Rate(10**6, per=1)})
    out = [
        Case(
            g, "bastion RedisRateLimiter.check", functools.partial(lim.check, "user_1"), is_bastion=True, ok=_from_redis
        ),
        Case(g, "bastion RedisRateLimiter.allow", functools.partial(lim.allow, "user_1"), ok=_is_true),
    ]
    client = redis_py.Redis.from_url(url)
    out.append(Case(g, "redis-py PING (round-trip floor)", client.ping, ok=_is_true))
    if _optional("limits") is not None:
        from limits import RateLimitItemPerSecond, storage, strategies

        item = RateLimitItemPerSecond(10**6)
        st = storage.RedisStorage(url)
        fixed = strategies.FixedWindowRateLimiter(st)
        moving = strategies.MovingWindowRateLimiter(st)
        fixed_hit = functools.partial(fixed.hit, item, "fixed_user")
        moving_hit = functools.partial(moving.hit, item, "moving_user")
        out.append(Case(g, "limits RedisStorage fixed window", fixed_hit, ok=_is_true))
        out.append(Case(g, "limits RedisStorage moving window", moving_hit, ok=_is_true))
    else:
        out.append(Case(g, "limits RedisStorage", None, missing=NOT_INSTALLED))
    out.extend(concurrent_cases(url))
    return out


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

    out = [
        Case(
            g,
            "bastion RedisRateLimiter.acheck, 1 connection",
            batch(lim.acheck),
            is_bastion=True,
            ok=_every_one_from_redis,
        )
    ]
    if _optional("limits") is not None:
        from limits import RateLimitItemPerSecond
        from limits.aio import storage as astorage
        from limits.aio import strategies as astrategies

        item = RateLimitItemPerSecond(10**6)
        st = astorage.RedisStorage("async+" + url, implementation="redispy")
        fixed = astrategies.FixedWindowRateLimiter(st)
        moving = astrategies.MovingWindowRateLimiter(st)
        fixed_batch = batch(lambda k: fixed.hit(item, k))
        moving_batch = batch(lambda k: moving.hit(item, "m" + k))
        out.append(Case(g, "limits async fixed window (redis.asyncio pool)", fixed_batch, ok=_every_one_true))
        out.append(Case(g, "limits async moving window (redis.asyncio pool)", moving_batch, ok=_every_one_true))
    else:
        out.append(Case(g, "limits async", None, missing=NOT_INSTALLED))
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
    from bastion.bench.ratelimit import DictBucket
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
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = _MEMORY_PROBE.format(n=n, here=here)
    proc = subprocess.run([sys.executable, "-c", code, kind], capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        return None
    return float(proc.stdout.strip())


def cases(quick: bool = False) -> list[Case]:
    """The in-process groups (``quick``: over ``N_KEYS_QUICK`` live keys, not ``N_KEYS``), then Redis."""
    return local_cases(N_KEYS_QUICK if quick else N_KEYS) + redis_cases()


def figures(quick: bool = False) -> list[Figure]:
    """RSS bytes per live key, each limiter in a fresh interpreter."""
    n = MEMORY_KEYS_QUICK if quick else N_KEYS
    out = []
    for kind in ("bastion", "rust-py-rate-limit", "pure-Python dict bucket"):
        per_key = memory_per_key(kind, n)
        absent = kind == "rust-py-rate-limit" and _optional("rust_py_rate_limit") is None
        why = "" if per_key is not None else NOT_INSTALLED if absent else "the probe failed"
        out.append(Figure(f"{kind}, {n:,} live keys: RSS per key", per_key, "bytes", missing=why))
    return out
