"""RedisRateLimiter against a real redis-server: sharing, expiry, failure modes, NOSCRIPT, asyncio."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import bastion
import pytest
import redis
from bastion.ratelimit import FailureMode
from bastion.ratelimit._script import SCRIPT_SHA

from tests.servers import RedisServer, start_redis

TIMEOUT = 0.25


def make(url: Any, policies: Any = None, **kw: Any) -> bastion.RedisRateLimiter:
    policies = policies or {
        "third_party": bastion.Rate(100, per=60, burst=20),
        "daily": [bastion.Rate(10, per=1), bastion.Rate(1000, per=86400)],
        "admin": None,
    }
    kw.setdefault("default", "third_party" if "third_party" in policies else None)
    return bastion.RedisRateLimiter(url, policies, **kw)


def test_check_allow_acquire_and_headers(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:
    with make(redis_server.url) as lim:
        d = lim.check("user_1")
        assert d.allowed
        assert d.source == "redis"
        assert not d.degraded
        assert (d.limit, d.remaining, d.tier) == (20, 19, "third_party")
        assert 0.59 < d.reset_after <= 0.6
        assert d.headers()[0] == ("RateLimit-Policy", '"third_party";q=20;w=12')
        for _ in range(19):
            assert lim.allow("user_1")
        refused = lim.check("user_1")
        assert not refused.allowed
        assert refused.remaining == 0
        assert 0.5 < refused.retry_after <= 0.6
        assert refused.headers()[-1] == ("Retry-After", "1")
        with pytest.raises(bastion.RateLimited) as info:
            lim.acquire("user_1")
        assert info.value.retry_after is not None
        assert 0.5 < info.value.retry_after <= 0.6
        # the unknown tier falls back to the default; the unlimited one never reaches Redis
        assert lim.check("user_1", "gold").tier == "third_party"
        before = r.dbsize()
        admin = lim.check("root", "admin")
        assert admin.unlimited
        assert lim.allow("root", "admin")
        assert r.dbsize() == before
        # the identity is stored as a digest, never raw
        assert all(b"user_1" not in k for k in r.keys("*"))


def test_multi_rate_all_or_nothing_writes_nothing_on_denial(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:
    lim = make(redis_server.url)
    admitted = sum(lim.allow("svc", "daily") for _ in range(15))
    assert admitted == 10
    keys = sorted(r.keys("*"))
    assert len(keys) == 2
    before = [r.get(k) for k in keys]
    d = lim.check("svc", "daily")
    assert not d.allowed
    assert (d.limit, d.remaining) == (10, 0)
    assert d.rates[1][2] == 990, "the daily rate reports its tokens as they are: nothing was taken"
    assert [r.get(k) for k in keys] == before, "a refused request writes nothing"
    # Redis Cluster: one identity's keys share a hash tag, hence a slot
    from redis.crc import key_slot

    assert len({key_slot(k) for k in keys}) == 1
    assert all(k.startswith(b"{bastion:rl:daily:") for k in keys)
    assert lim.check("svc", "daily", cost=0).allowed


def test_idle_keys_expire(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:
    lim = make(redis_server.url, {"fast": [bastion.Rate(10, per=1), bastion.Rate(20, per=2)]})
    assert lim.check("idle", cost=3).allowed
    keys = r.keys("*")
    assert len(keys) == 2
    ttls = sorted(r.pttl(k) for k in keys)
    assert 0 < ttls[0] <= 300, "PX = time until the bucket is full again (3 × 100 ms)"
    assert 0 < ttls[1] <= 300
    time.sleep(0.45)
    assert r.dbsize() == 0, "idle keys vanish once their bucket is full"
    assert lim.check("idle").remaining == 9, "and the bucket is full again"


def test_noscript_fallback(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:
    lim = make(redis_server.url)
    assert lim.check("n").remaining == 19
    r.script_flush()
    assert r.script_exists(SCRIPT_SHA) == [False]  # type: ignore[no-untyped-call]
    d = lim.check("n")
    assert d.source == "redis"
    assert d.remaining == 18
    assert r.script_exists(SCRIPT_SHA) == [True]  # type: ignore[no-untyped-call]
    r.script_flush()
    assert asyncio.run(lim.acheck("n")).remaining == 17


def test_two_processes_sharing_one_key_never_over_admit(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:
    code = textwrap.dedent(
        f"""
        import bastion, sys
        lim = bastion.RedisRateLimiter({redis_server.url!r}, {{"t": bastion.Rate(50, per=3600)}})
        sys.stdin.readline()
        print(sum(lim.allow("shared") for _ in range(400)))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    for p in procs:  # both are built and connected: start them together
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    counts = [int(p.communicate(timeout=60)[0]) for p in procs]
    # one token every 72 s: in a test this short, exactly the burst passes, shared between both
    assert sum(counts) == 50, counts
    local = make(redis_server.url, {"t": bastion.Rate(50, per=3600)})
    assert not local.allow("shared")


def test_sync_and_async_share_the_budget(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:
    lim = make(redis_server.url)

    async def main() -> list[bool]:
        results = await asyncio.gather(*(lim.aallow("both") for _ in range(15)))
        d = await lim.acheck("both")
        assert d.source == "redis"
        assert d.remaining == 4
        for _ in range(4):
            await lim.aacquire("both")
        with pytest.raises(bastion.RateLimited):
            await lim.aacquire("both")
        await lim.aclose()
        return list(results)

    assert sum(asyncio.run(main())) == 15
    assert lim.check("both").remaining == 0
    assert asyncio.run(lim.acheck("both", "admin")).unlimited


def test_a_client_instead_of_a_url(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=30)
    lim = make(client)
    assert lim.check("c").remaining == 19
    aclient = redis.asyncio.Redis.from_url(redis_server.url)
    alim = make(aclient)
    assert asyncio.run(alim.acheck("c")).remaining == 18
    with pytest.raises(bastion.ConfigurationError):
        alim.check("c")

    class Wrapped:
        """Any client with evalsha / script_load (RedisCluster, a proxy…) takes the generic path."""

        def __init__(self, inner: redis.Redis[bytes]) -> None:
            self.inner = inner

        def evalsha(self, *args: Any) -> Any:
            return self.inner.evalsha(*args)  # type: ignore[no-untyped-call]

        def script_load(self, script: str) -> Any:
            return self.inner.script_load(script)  # type: ignore[no-untyped-call]

    generic = make(Wrapped(client))
    r.script_flush()
    assert generic.check("c").remaining == 17


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {"timeout": 0},
        {"timeout": "1"},
        {"retry_interval": -1},
        {"retry_interval": 10**400},
        {"retry_interval": float("nan")},
        {"retry_interval": float("inf")},
        {"retry_interval": True},
        {"timeout": float("nan")},
        {"timeout": 10**400},
        {"spin": float("nan")},
        {"failure_mode": {"third_party": None}},
        {"failure_mode": {3: "open"}},
        {"prefix": "a{b}"},
        {"prefix": ""},
        {"failure_mode": "maybe"},
        {"failure_mode": {"nope": "open"}},
        {"failure_mode": {"third_party": "sideways"}},
        {"failure_mode": 3},
        {"spin": -1e-6},
        {"spin": 0.5},
        {"spin": "0"},
        {"spin": True},
        {"spin": 0.002, "timeout": 0.001},
    ],
)
def test_bad_configuration(redis_server: RedisServer, kwargs: dict[str, Any]) -> None:
    with pytest.raises(bastion.ConfigurationError):
        make(redis_server.url, **kwargs)


def test_bad_arguments(redis_server: RedisServer) -> None:
    lim = make(redis_server.url)
    with pytest.raises(bastion.ConfigurationError):
        make(42)
    for url in ("redis://:pw@host:notaport/0", "nope://h", "redis://[::1"):
        with pytest.raises(bastion.ConfigurationError) as info:
            make(url)
        assert "pw" not in str(info.value)
        assert info.value.__cause__ is None
    with pytest.raises(bastion.ConfigurationError):
        make(redis_server.url, {"t": bastion.Rate(10**7, per=1)})  # faster than 1/µs
    for bad in (None, 3, ["k"]):
        with pytest.raises(bastion.ConfigurationError):
            lim.check(bad)  # type: ignore[arg-type]
    for cost in (-1, 21, 1.0, True):
        with pytest.raises(bastion.ConfigurationError):
            lim.check("k", cost=cost)  # type: ignore[arg-type]
    with pytest.raises(bastion.ConfigurationError):
        lim.check("k", tier=7)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- failure modes

MODES: dict[str, FailureMode] = {"o": "open", "c": "closed", "l": "local"}


def degraded_limiter(url: str, **kw: Any) -> bastion.RedisRateLimiter:
    policies = {name: bastion.Rate(3, per=3600) for name in MODES}
    return bastion.RedisRateLimiter(
        url, policies, default="l", timeout=TIMEOUT, failure_mode=MODES, retry_interval=0.5, **kw
    )


def assert_modes(lim: bastion.RedisRateLimiter, *, budget: float) -> None:
    for tier, source in [("o", "open"), ("c", "closed"), ("l", "fallback")]:
        t0 = time.monotonic()
        d = lim.check("k", tier)
        elapsed = time.monotonic() - t0
        assert elapsed < budget, (tier, elapsed)
        assert d.source == source
        assert d.degraded
        assert d.allowed is (source != "closed")
    with pytest.raises(bastion.AuthUnavailable) as info:
        lim.acquire("k", "c")
    assert info.value.status == 503
    assert info.value.retry_after is not None
    assert info.value.retry_after > 0
    assert lim.acquire("k", "o").source == "open"
    # the local fallback still limits, per process
    left = lim.check("k", "l", cost=0)
    assert left.source == "fallback"
    assert left.remaining < 3, "the fallback counted the requests above"
    assert sum(lim.allow("k", "l") for _ in range(5)) == left.remaining
    with pytest.raises(bastion.RateLimited):
        lim.acquire("k", "l")


def test_server_stopped_mid_test_gives_the_failure_mode() -> None:
    server = start_redis()
    try:
        lim = degraded_limiter(server.url)
        assert lim.check("k", "o").source == "redis"
        assert lim.check("k", "c").source == "redis"
        assert lim.check("k", "l").source == "redis"
        server.stop()
        t0 = time.monotonic()
        assert lim.check("k", "l").source == "fallback"
        assert time.monotonic() - t0 < TIMEOUT
        assert_modes(lim, budget=TIMEOUT)
        assert asyncio.run(lim.acheck("k", "o")).source == "open"
        # Redis comes back on the same port: after retry_interval the limiter uses it again
        server = start_redis(server.port)
        time.sleep(0.6)
        d = lim.check("k2", "o")
        assert d.source == "redis"
        assert d.remaining == 2
    finally:
        server.stop()


def test_a_hung_server_costs_at_most_the_timeout() -> None:
    server = start_redis()
    try:
        lim = degraded_limiter(server.url)
        assert lim.check("k", "c").source == "redis"
        server.proc.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        d = lim.check("k", "c")
        elapsed = time.monotonic() - t0
        assert d.source == "closed"
        assert not d.allowed
        assert TIMEOUT * 0.8 < elapsed < TIMEOUT + 0.2, elapsed
        # during retry_interval nobody waits for Redis at all
        assert_modes(lim, budget=0.05)

        async def hung() -> tuple[bastion.Decision, float]:
            fresh = degraded_limiter(server.url)
            t0 = time.monotonic()
            d = await fresh.acheck("k", "o")
            return d, time.monotonic() - t0

        d, elapsed = asyncio.run(hung())
        assert d.source == "open"
        assert elapsed < TIMEOUT + 0.2, elapsed
    finally:
        server.proc.send_signal(signal.SIGCONT)
        server.stop()


def test_unreachable_from_the_start() -> None:
    server = start_redis()
    url = server.url
    server.stop()
    lim = degraded_limiter(url)
    t0 = time.monotonic()
    assert lim.check("k", "c").source == "closed"
    assert asyncio.run(lim.acheck("k", "l")).source == "fallback"
    assert time.monotonic() - t0 < 2 * TIMEOUT


def test_async_checks_are_pipelined_on_one_connection(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:
    from bastion.ratelimit._script import SCRIPT

    r.script_load(SCRIPT)  # type: ignore[no-untyped-call]
    # a generous timeout: a thousand calls queue behind each other in this process before they are sent
    lim = make(redis_server.url, {"t": bastion.Rate(50, per=3600)}, timeout=10)

    async def main() -> tuple[list[bastion.Decision], int]:
        before = {c["id"] for c in r.client_list()}
        results = await asyncio.gather(*(lim.acheck(f"user-{i % 10}") for i in range(1000)))
        during = len([c for c in r.client_list() if c["id"] not in before and c["name"] == "bastion-ratelimit"])
        await lim.aclose()
        return list(results), during

    results, connections = asyncio.run(main())
    assert connections == 1, "a thousand concurrent checks shared one connection"
    assert all(d.source == "redis" for d in results)
    assert sum(d.allowed for d in results) == 10 * 50, "exactly the burst of each of the ten keys"
    for i in range(10):
        assert lim.check(f"user-{i}", cost=0).remaining == 0


def test_a_forked_child_opens_its_own_connection(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:
    lim = make(redis_server.url, {"t": bastion.Rate(5, per=3600)})
    assert lim.check("fork").remaining == 4
    pid = os.fork()
    if pid == 0:  # the child: must not reuse the parent's socket
        code = 1
        try:
            if lim._pipe_sync is not None:
                code = 2  # the parent's connection survived the fork
            elif lim.check("fork").remaining == 3:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    d = lim.check("fork")
    assert d.source == "redis"
    assert d.remaining == 2, "parent and child shared one budget"


def test_threads_share_one_pipelined_connection(redis_server: RedisServer, r: redis.Redis[bytes]) -> None:

    lim = make(redis_server.url, {"t": bastion.Rate(50, per=3600)}, timeout=10)
    lim.check("warm-up")
    before = {c["id"] for c in r.client_list()}
    admitted = [0] * 16

    def hammer(i: int) -> None:
        admitted[i] = sum(lim.allow(f"user-{(i + j) % 10}") for j in range(100))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    new = [c for c in r.client_list() if c["id"] not in before and c["name"] == "bastion-ratelimit"]
    assert new == [], "the sixteen threads used the limiter's one connection"
    assert sum(admitted) == 10 * 50, "exactly the burst of each of the ten keys"
    assert lim.check("user-3", cost=0).remaining == 0


@pytest.mark.parametrize("via", ["url", "client"])
def test_redis_decisions_match_the_in_process_limiter(
    redis_server: RedisServer, r: redis.Redis[bytes], via: str
) -> None:
    """The script returns only each rate's wait; the Decision derived from it (Rust) must equal the local
    GCRA's, field by field, through admission, a denial by one rate of two (the other reports its state
    as it is) and cost 0 — on our connection and through a caller's client (one rate: an integer reply)."""
    policies: dict[str, Any] = {
        "two": [bastion.Rate(4, per=3600, burst=3), bastion.Rate(6, per=86400)],
        "one": bastion.Rate(2, per=3600),
    }
    remote = bastion.RedisRateLimiter(
        redis_server.url if via == "url" else redis.Redis.from_url(redis_server.url), policies, default="two"
    )
    local = bastion.RateLimiter(policies, default="two")
    for tier, cost in [
        ("two", 1),
        ("two", 2),
        ("two", 0),
        ("two", 1),
        ("two", 3),
        ("one", 1),
        ("one", 1),
        ("one", 1),
        ("one", 0),
    ]:
        got, want = remote.check("k", tier, cost), local.check("k", tier, cost)
        assert (got.allowed, got.limit, got.remaining, got.source) == (
            want.allowed,
            want.limit,
            want.remaining,
            "redis",
        )
        assert got.retry_after == pytest.approx(want.retry_after, abs=0.05)
        assert got.reset_after == pytest.approx(want.reset_after, abs=0.05)
        for g, w in zip(got.rates, want.rates, strict=True):
            assert g[:3] == w[:3]
            assert g[3] == pytest.approx(w[3], abs=0.05)
            assert g[4] == pytest.approx(w[4], abs=0.05)
    assert not remote.allow("k", "one")
    remote.close()


# ------------------------------------------------------------------------------ error replies from Redis


def _evalsha_calls(r: redis.Redis[bytes]) -> int:
    stats = r.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_a_refused_script_load_marks_redis_down_instead_of_failing_every_check_alone() -> None:
    # After a Redis restart the script cache is empty: EVALSHA answers NOSCRIPT and the limiter sends
    # SCRIPT LOAD. When that is refused (an ACL user without SCRIPT LOAD: -NOPERM), the sync path turned
    # the error reply into a plain "unexpected digest" ResponseError, which reads as an error about one
    # key: Redis was never marked down, and every check paid EVALSHA + SCRIPT LOAD before degrading.
    server = start_redis()
    try:
        admin = redis.Redis.from_url(server.url)
        admin.execute_command("ACL", "SETUSER", "rl", "on", ">pw", "~*", "+@all", "-script|load")
        url = f"redis://rl:pw@127.0.0.1:{server.port}/0"
        lim = bastion.RedisRateLimiter(url, {"t": bastion.Rate(10, per=60)}, retry_interval=30.0)
        d = lim.check("k")
        assert d.source == "fallback"
        calls = _evalsha_calls(admin)
        for _ in range(5):
            assert lim.check("k").source == "fallback"
        assert _evalsha_calls(admin) == calls, "Redis is known down until retry_interval has passed"
        lim.close()
        admin.close()
    finally:
        server.stop()


def test_server_state_error_replies_mark_redis_down() -> None:
    # Pins down the classification on this Redis (7.x): OOM and READONLY replies mean the server cannot
    # serve anyone now, so no request pays a round trip until retry_interval has passed.
    server = start_redis()
    try:
        admin = redis.Redis.from_url(server.url)
        lim = bastion.RedisRateLimiter(server.url, {"t": bastion.Rate(10, per=60)}, retry_interval=30.0)
        assert lim.check("k").source == "redis"
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        assert lim.check("k").source == "fallback"
        calls = _evalsha_calls(admin)
        assert lim.check("k2").source == "fallback"
        assert _evalsha_calls(admin) == calls
        admin.config_set("maxmemory", 0)
        lim2 = bastion.RedisRateLimiter(server.url, {"t": bastion.Rate(10, per=60)}, retry_interval=30.0)
        assert lim2.check("k").source == "redis"
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")  # a read-only replica of nothing
        assert lim2.check("k").source == "fallback"
        calls = _evalsha_calls(admin)
        assert lim2.check("k2").source == "fallback"
        assert _evalsha_calls(admin) == calls
        lim.close()
        lim2.close()
        admin.close()
    finally:
        server.stop()
