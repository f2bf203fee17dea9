"""Rate-limiting benchmarks: bastion against its peers, same operation, same run.

``make bench`` times them (``--benchmark-enable``); the default test run executes each once as a test, so
they must keep working. Peers that are not installed are skipped with the reason. Memory per live key is
measured from RSS in fresh interpreters and recorded in ``extra_info``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import bastion
import pytest
from bastion._bench_ratelimit import DictBucket, memory_per_key

from tests.servers import start_redis

HOT = 10**9  # a rate the hot key never exhausts: we time the bookkeeping
N_KEYS = 1_000_000


@pytest.fixture(scope="module")
def limiter() -> bastion.RateLimiter:
    return bastion.RateLimiter({"t": bastion.Rate(HOT, per=1)}, max_keys=2 * N_KEYS)


@pytest.fixture(scope="module")
def million_keys() -> list[str]:
    return [f"user-{i}" for i in range(N_KEYS)]


@pytest.fixture(scope="module")
def live_limiter(million_keys: list[str]) -> bastion.RateLimiter:
    """A million keys that stay live: each check pushes its bucket an hour from full."""
    lim = bastion.RateLimiter({"t": bastion.Rate(1, per=3600, burst=100_000)}, max_keys=2 * N_KEYS)
    for k in million_keys:
        lim.check(k)
    assert lim.key_count == N_KEYS
    return lim


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    pytest.importorskip("redis")
    server = start_redis()
    yield server.url
    server.stop()


def _cycling(fn: Callable[[str], object], keys: list[str]) -> Callable[[], object]:
    it: Iterator[str] = itertools.cycle(keys)
    return lambda: fn(next(it))


# -------------------------------------------------------------------------------------- allow, hot key


def test_allow_hot_bastion(benchmark: Any, limiter: bastion.RateLimiter) -> None:
    assert benchmark(functools.partial(limiter.allow, "user_1")) is True


def test_allow_hot_dict_bucket(benchmark: Any) -> None:
    bucket = DictBucket(HOT, HOT)
    assert benchmark(functools.partial(bucket.allow, "user_1")) is True


def test_allow_hot_rust_py_rate_limit(benchmark: Any) -> None:
    rpl = pytest.importorskip("rust_py_rate_limit")
    r = rpl.RateLimiter(limit=2**31, window_seconds=60)
    assert benchmark(functools.partial(r.allow, "user_1")) is True


@pytest.mark.parametrize("strategy", ["fixed", "moving"])
def test_allow_hot_limits_memory(benchmark: Any, strategy: str) -> None:
    limits = pytest.importorskip("limits")
    item = limits.RateLimitItemPerSecond(HOT)
    cls = {"fixed": limits.strategies.FixedWindowRateLimiter, "moving": limits.strategies.MovingWindowRateLimiter}
    hit = cls[strategy](limits.storage.MemoryStorage()).hit
    assert benchmark(functools.partial(hit, item, "user_1")) is True


# ------------------------------------------------------------------------------------- check, hot key


def test_check_hot_bastion(benchmark: Any, limiter: bastion.RateLimiter) -> None:
    assert benchmark(functools.partial(limiter.check, "user_1")).allowed


def test_check_hot_bastion_with_headers(benchmark: Any, limiter: bastion.RateLimiter) -> None:
    assert benchmark(lambda: limiter.check("user_1").headers())[0][0] == "RateLimit-Policy"


def test_check_hot_rust_py_rate_limit(benchmark: Any) -> None:
    rpl = pytest.importorskip("rust_py_rate_limit")
    r = rpl.RateLimiter(limit=2**31, window_seconds=60)
    assert benchmark(functools.partial(r.check, "user_1"))["allowed"]


# --------------------------------------------------------------------------------- 1,000,000 live keys


def test_check_million_keys_bastion(benchmark: Any, live_limiter: bastion.RateLimiter, million_keys: list[str]) -> None:
    assert benchmark(_cycling(live_limiter.check, million_keys)).allowed
    assert live_limiter.key_count == N_KEYS


def test_check_million_keys_rust_py_rate_limit(benchmark: Any, million_keys: list[str]) -> None:
    rpl = pytest.importorskip("rust_py_rate_limit")
    r = rpl.RateLimiter(limit=2**31, window_seconds=3600, max_keys=2 * N_KEYS)
    for k in million_keys:
        r.allow(k)
    assert benchmark(_cycling(r.check, million_keys))["allowed"]


def test_check_million_keys_harness_alone(benchmark: Any, million_keys: list[str]) -> None:
    """What the cycling lambda itself costs: subtract it from the two above."""
    it = itertools.cycle(million_keys)
    assert benchmark(lambda: next(it))


# ------------------------------------------------------------------------------------------------ memory


@pytest.mark.parametrize("kind", ["bastion", "rust-py-rate-limit"])
def test_memory_per_live_key(benchmark: Any, kind: str) -> None:
    if kind == "rust-py-rate-limit":
        pytest.importorskip("rust_py_rate_limit")
    n = N_KEYS if benchmark.enabled else 200_000
    per_key = benchmark.pedantic(memory_per_key, args=(kind, n), rounds=1, iterations=1)
    assert per_key is not None
    benchmark.extra_info["rss_bytes_per_live_key"] = round(per_key, 1)
    if kind == "bastion":
        # 16-byte slots, at most three quarters full
        assert per_key <= 64, per_key


# ------------------------------------------------------------------------------------------------- Redis


def test_redis_check_bastion(benchmark: Any, redis_url: str) -> None:
    lim = bastion.RedisRateLimiter(redis_url, {"t": bastion.Rate(10**6, per=1)})
    assert benchmark(functools.partial(lim.check, "bench_user")).source == "redis"


def test_redis_allow_bastion(benchmark: Any, redis_url: str) -> None:
    lim = bastion.RedisRateLimiter(redis_url, {"t": bastion.Rate(10**6, per=1)})
    assert benchmark(functools.partial(lim.allow, "bench_user_allow")) is True


def test_redis_ping_floor(benchmark: Any, redis_url: str) -> None:
    redis = pytest.importorskip("redis")
    assert benchmark(redis.Redis.from_url(redis_url).ping)


@pytest.mark.parametrize("strategy", ["fixed", "moving"])
def test_redis_limits(benchmark: Any, redis_url: str, strategy: str) -> None:
    limits = pytest.importorskip("limits")
    item = limits.RateLimitItemPerSecond(10**6)
    cls = {"fixed": limits.strategies.FixedWindowRateLimiter, "moving": limits.strategies.MovingWindowRateLimiter}
    hit = cls[strategy](limits.storage.RedisStorage(redis_url)).hit
    assert benchmark(functools.partial(hit, item, f"limits_{strategy}")) is True


# ------------------------------------------------------------------------- Redis, concurrent asyncio checks

BATCH = 64


def _batch(make: Callable[[str], Any]) -> tuple[Callable[[], list[Any]], Any]:
    import asyncio

    loop = asyncio.new_event_loop()
    keys = [f"user-{i}" for i in range(BATCH)]

    async def run() -> list[Any]:
        return await asyncio.gather(*(make(k) for k in keys))

    return (lambda: loop.run_until_complete(run())), loop


def test_redis_concurrent_bastion_one_connection(benchmark: Any, redis_url: str) -> None:
    """64 concurrent acheck calls: written together, answered in one round trip, on one connection."""
    lim = bastion.RedisRateLimiter(redis_url, {"t": bastion.Rate(10**6, per=1)})
    fn, loop = _batch(lim.acheck)
    try:
        results = benchmark(fn)
        assert all(d.source == "redis" and d.allowed for d in results)
    finally:
        loop.run_until_complete(lim.aclose())
        loop.close()


@pytest.mark.parametrize("strategy", ["fixed", "moving"])
def test_redis_concurrent_limits(benchmark: Any, redis_url: str, strategy: str) -> None:
    limits = pytest.importorskip("limits")
    from limits.aio import storage as astorage
    from limits.aio import strategies as astrategies

    item = limits.RateLimitItemPerSecond(10**6)
    st = astorage.RedisStorage("async+" + redis_url, implementation="redispy")
    cls = {"fixed": astrategies.FixedWindowRateLimiter, "moving": astrategies.MovingWindowRateLimiter}
    hit = cls[strategy](st).hit
    fn, loop = _batch(lambda k: hit(item, f"{strategy}-{k}"))
    try:
        assert all(benchmark(fn))
    finally:
        loop.close()
