"""The in-process limiter's contract: construction errors, tiers, costs, headers, keys, capacity."""

from __future__ import annotations

import pickle
import re
from typing import Any

import bastion
import pytest
from bastion.ratelimit import rate_limit_headers

S = 1_000_000_000


def fake_clock(start: int = 5 * S) -> tuple[list[int], Any]:
    t = [start]
    return t, lambda: t[0]


def limiter(**kw: Any) -> tuple[bastion.RateLimiter, list[int]]:
    t, clock = fake_clock()
    policies = {
        "third_party": bastion.Rate(100, per=60, burst=20),
        "internal": bastion.Rate(10_000, per=60),
        "admin": None,
        "daily": [bastion.Rate(10, per=1), bastion.Rate(1000, per=86400)],
    }
    return bastion.RateLimiter(policies, default="third_party", clock=clock, **kw), t


# ------------------------------------------------------------------------------------------------- Rate


def test_rate_fields_and_defaults() -> None:
    r = bastion.Rate(100, per=60, burst=20)
    assert (r.count, r.per, r.burst, r.period_ns, r.interval_ns, r.window) == (100, 60.0, 20, 60 * S, 600_000_000, 12)
    d = bastion.Rate(10_000, per=60)
    assert d.burst == 10_000
    assert d.window == 60
    assert bastion.Rate(5).per == 1.0
    assert bastion.Rate(3, per=0.5).period_ns == 500_000_000
    assert bastion.Rate(7, per=60).interval_ns == 8_571_428_572, "rounded up: never faster than stated"
    assert bastion.Rate(1, per=1) == bastion.Rate(1, per=1.0, burst=1)
    assert len({bastion.Rate(1, per=1), bastion.Rate(1, per=1.0)}) == 1
    assert repr(r) == "Rate(100, per=60.0, burst=20)"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((0,), {}),
        ((-1,), {}),
        ((1.5,), {}),
        (("10",), {}),
        ((True,), {}),
        ((2**64,), {}),
        ((10,), {"per": 0}),
        ((10,), {"per": -1}),
        ((10,), {"per": float("nan")}),
        ((10,), {"per": float("inf")}),
        ((10,), {"per": "60"}),
        ((10,), {"per": True}),
        ((10,), {"per": 1e-12}),
        ((10,), {"burst": 0}),
        ((10,), {"burst": 2.0}),
        ((10,), {"burst": -5}),
        ((10**10,), {"per": 1}),  # faster than one a nanosecond
        ((1,), {"per": 10**12}),  # over 146 years
        ((1,), {"per": 3600 * 24 * 365 * 100, "burst": 10**6}),  # burst × interval too long
    ],
)
def test_impossible_rates_are_configuration_errors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(bastion.ConfigurationError) as info:
        bastion.Rate(*args, **kwargs)
    assert info.value.code == "invalid_configuration"
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------------------------------ construction


@pytest.mark.parametrize(
    ("policies", "kwargs"),
    [
        ({}, {}),
        ([("t", bastion.Rate(1))], {}),
        ({"a": bastion.Rate(1), "b": bastion.Rate(2)}, {}),  # several tiers need a default
        ({"a": bastion.Rate(1)}, {"default": "b"}),  # unknown default tier
        ({"a": bastion.Rate(1)}, {"default": 3}),
        ({"a": []}, {}),
        ({"a": [bastion.Rate(1)] * 5}, {}),
        ({"a": "10/minute"}, {}),
        ({"a": [bastion.Rate(1), "x"]}, {}),
        ({1: bastion.Rate(1)}, {}),
        ({"": bastion.Rate(1)}, {}),
        ({'quo"te': bastion.Rate(1)}, {}),
        ({"é": bastion.Rate(1)}, {}),
        ({"a" * 65: bastion.Rate(1)}, {}),
        ({"a": bastion.Rate(1)}, {"max_keys": 0}),
        ({"a": bastion.Rate(1)}, {"max_keys": -1}),
        ({"a": bastion.Rate(1)}, {"max_keys": 1.5}),
        ({"a": bastion.Rate(1)}, {"clock": 5}),
        ({"a": bastion.Rate(1)}, {"clock": lambda: "now"}),
        ({"a": bastion.Rate(1)}, {"clock": lambda: -1}),
    ],
)
def test_bad_limiters_are_configuration_errors(policies: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(bastion.ConfigurationError):
        bastion.RateLimiter(policies, **kwargs)


def test_construction_and_introspection() -> None:
    lim, _ = limiter(max_keys=1234)
    assert lim.default == "third_party"
    assert lim.max_keys == 1234
    assert lim.key_count == 0
    p = lim.policies
    assert list(p) == ["third_party", "internal", "admin", "daily"]
    assert p["admin"] is None
    assert p["daily"] == [bastion.Rate(10, per=1), bastion.Rate(1000, per=86400)]
    assert "third_party" in repr(lim)
    single = bastion.RateLimiter({"only": bastion.Rate(1)})
    assert single.default == "only"
    assert bastion.RateLimiter({"t": bastion.Rate(1)}, default=None).default == "t"


# ----------------------------------------------------------------------------------------------- checks


def test_check_decision_and_headers() -> None:
    lim, t = limiter()
    d = lim.check("user_1", "third_party")
    assert d
    assert d.allowed
    assert (d.limit, d.remaining, d.reset_after, d.retry_after) == (20, 19, 0.6, 0.0)
    assert d.tier == "third_party"
    assert d.source == "local"
    assert not d.degraded
    assert not d.unlimited
    assert d.headers() == [("RateLimit-Policy", '"third_party";q=20;w=12'), ("RateLimit", '"third_party";r=19;t=1')]
    for _ in range(19):
        assert lim.allow("user_1", "third_party")
    refused = lim.check("user_1")
    assert not refused
    assert not refused.allowed
    assert (refused.remaining, refused.retry_after, refused.reset_after) == (0, 0.6, 12.0)
    assert refused.headers() == [
        ("RateLimit-Policy", '"third_party";q=20;w=12'),
        ("RateLimit", '"third_party";r=0;t=12'),
        ("Retry-After", "1"),
    ]
    assert rate_limit_headers(refused) == refused.headers()
    assert rate_limit_headers(None) == []
    with pytest.raises(bastion.RateLimited) as info:
        lim.acquire("user_1")
    assert info.value.retry_after == 0.6
    assert info.value.code == "rate_limited"
    assert info.value.status == 429
    assert pickle.loads(pickle.dumps(info.value)).retry_after == 0.6
    t[0] += 600_000_000
    assert lim.acquire("user_1").remaining == 0
    assert "user_1" not in repr(lim)
    assert "user_1" not in repr(refused)


def test_retry_after_header_rounds_up_and_is_at_least_one() -> None:
    lim, t = limiter()
    for _ in range(10):
        lim.allow("k", "daily")
    d = lim.check("k", "daily")
    assert not d.allowed
    assert d.retry_after == 0.1
    assert ("Retry-After", "1") in d.headers()
    slow = bastion.RateLimiter({"t": bastion.Rate(1, per=90.5)}, clock=lambda: t[0])
    slow.allow("k")
    d = slow.check("k")
    assert d.retry_after == 90.5
    assert ("Retry-After", "91") in d.headers()


def test_multi_rate_tier_is_all_or_nothing() -> None:
    lim, t = limiter()
    admitted = 0
    for _ in range(3000):
        admitted += lim.allow("svc", "daily")
        t[0] += S // 100
    # a request every 10 ms for 30 s: the burst of 10, then one per 100 ms up to t = 29.99 s
    assert admitted == 10 + 299
    d = lim.check("svc", "daily")
    names = [h for h, _ in d.headers()]
    assert names[:2] == ["RateLimit-Policy", "RateLimit"]
    assert d.headers()[0][1] == '"daily.0";q=10;w=1, "daily.1";q=1000;w=86400'
    state = d.headers()[1][1]
    assert re.fullmatch(r'"daily\.0";r=\d+;t=\d+, "daily\.1";r=\d+;t=\d+', state), state
    assert state.split(", ")[1].startswith(f'"daily.1";r={1000 - admitted - 1};t=')
    assert d._asgi_success_headers() == [
        (b"ratelimit-policy", d.headers()[0][1].encode()),
        (b"ratelimit", state.encode()),
    ]
    assert len(d.rates) == 2
    # exhaust the daily rate: a fresh second never helps once it is spent
    for _ in range(200):
        t[0] += S
        for _ in range(10):
            lim.allow("svc", "daily")
    d = lim.check("svc", "daily")
    assert not d.allowed
    assert (d.limit, d.remaining) == (1000, 0), "the refusing rate is reported"
    per_second = d.rates[0]
    assert per_second[2] == 10, "nothing was taken from the per-second rate"
    assert d.retry_after == d.rates[1][4] > 1


def test_unlimited_tier_short_circuits() -> None:
    lim, _ = limiter()
    for _ in range(1000):
        assert lim.allow("root", "admin")
    d = lim.check("root", "admin", cost=10**6)
    assert d.allowed
    assert d.unlimited
    assert d.headers() == []
    assert d.rates == []
    assert (d.limit, d.remaining, d.retry_after) == (0, 0, 0.0)
    assert lim.key_count == 0, "no state for an unlimited tier"
    assert lim.reset("root", "admin") is False


def test_unknown_tier_falls_back_to_the_default() -> None:
    lim, _ = limiter()
    d = lim.check("user_9", "gold")
    assert d.tier == "third_party"
    assert d.limit == 20
    assert lim.check("user_9", None).remaining == 18, "same bucket as the default tier"
    assert lim.check("user_9", "third_" + "party").remaining == 17, "equal names, not only the interned ones"
    for bad in (1, b"third_party", ["third_party"]):
        with pytest.raises(bastion.ConfigurationError):
            lim.check("user_9", bad)  # type: ignore[arg-type]
        with pytest.raises(bastion.ConfigurationError):
            lim.allow("user_9", bad)  # type: ignore[arg-type]


def test_cost() -> None:
    lim, _ = limiter()
    d = lim.check("c", cost=15)
    assert d.allowed
    assert d.remaining == 5
    assert not lim.check("c", cost=6).allowed
    peek = lim.check("c", cost=0)
    assert peek.allowed
    assert peek.remaining == 5
    assert lim.check("fresh", cost=0).remaining == 20
    assert lim.key_count == 1, "looking at a fresh key stores nothing"
    assert lim.check("c", cost=None).remaining == 4, "cost=None is the default cost, 1"  # type: ignore[arg-type]
    for bad in (21, -1, 2**64, 1.0, "1", True):
        with pytest.raises(bastion.ConfigurationError):
            lim.check("c", cost=bad)  # type: ignore[arg-type]
    with pytest.raises(bastion.ConfigurationError):
        lim.check("c", "daily", cost=11), "above the smallest burst of the tier"


def test_keys_str_bytes_and_odd_strings() -> None:
    lim, _ = limiter()
    lim.check("same")
    assert lim.check(b"same").remaining == 18, "a str is hashed as its UTF-8"
    assert lim.check("sam\u00e9").remaining == 19
    lone = "\ud800"
    assert lim.check(lone).remaining == 19
    assert lim.check("\ud801").remaining == 19, "distinct lone surrogates stay distinct"
    assert lim.check(lone).remaining == 18
    assert lim.check("").remaining == 19
    for bad in (None, 42, 4.2, ["k"], bytearray(b"k")):
        with pytest.raises(bastion.ConfigurationError):
            lim.check(bad)  # type: ignore[arg-type]
        with pytest.raises(bastion.ConfigurationError):
            lim.allow(bad)  # type: ignore[arg-type]


def test_reset_and_sweep() -> None:
    lim, t = limiter()
    for _ in range(20):
        lim.allow("r")
    assert not lim.allow("r")
    assert lim.reset("r") is True
    assert lim.reset("r") is False
    assert lim.allow("r")
    assert lim.allow("r")
    lim.allow("s")
    assert lim.key_count == 2
    assert lim.sweep() == 0, "live buckets are never evicted"
    t[0] += 600_000_000
    assert lim.sweep() == 1, "s is full again; r still owes a token"
    t[0] += 600_000_000
    assert lim.sweep() == 1
    assert lim.key_count == 0


def test_max_keys_refuses_new_identities_only() -> None:
    lim, t = limiter(max_keys=3)
    for k in "abc":
        assert lim.allow(k)
    d = lim.check("d")
    assert not d.allowed
    assert d.retry_after == 0.6, "until the first held bucket is full again"
    assert lim.allow("a"), "identities already held are unaffected"
    assert lim.allow("b")
    assert lim.key_count == 3
    t[0] += 600_000_000
    assert lim.allow("d"), "c is full again: evicted to make room"
    assert lim.key_count <= 3


def test_clock_going_backwards_never_over_admits() -> None:
    lim, t = limiter()
    for _ in range(20):
        assert lim.allow("b")
    t[0] -= 1 * S
    assert not lim.allow("b")
    t[0] = 1  # before the limiter's start: treated as its start
    assert not lim.allow("b")


def test_decision_constructor_and_relabel() -> None:
    d = bastion.Decision(True, "t", [(10, 60, 3, 1.5, 0.0), (100, 3600, 1, 100.0, 0.0)], source="redis")
    assert (d.limit, d.remaining, d.reset_after, d.source) == (100, 1, 100.0, "redis")
    closed = bastion.Decision(False, "t", retry_after=2.5, source="closed")
    assert closed.degraded
    assert not closed.unlimited
    assert closed.retry_after == 2.5
    assert closed.headers() == [("Retry-After", "3")]
    fb = d._relabel("fallback")
    assert fb.source == "fallback"
    assert fb.degraded
    assert fb.rates == d.rates
    assert bastion.Decision(True, "t", source="open").headers() == []
    for kwargs in (
        {"source": "elsewhere"},
        {"retry_after": -1},
        {"retry_after": "soon"},
        {"rates": [(1, 2, 3)]},
        {"rates": 5},
        {"rates": [(1, 1, 1, 0.0, 0.0)] * 5},
    ):
        with pytest.raises(bastion.ConfigurationError):
            bastion.Decision(False, "t", **kwargs)
    with pytest.raises(bastion.ConfigurationError):
        bastion.Decision(True, 5)  # type: ignore[arg-type]
    assert "allowed=False" in repr(closed)
    assert "source='closed'" in repr(closed)


def test_real_clock_refills() -> None:
    lim = bastion.RateLimiter({"t": bastion.Rate(1000, per=1, burst=1)})
    assert lim.allow("k")
    assert not lim.allow("k")
    import time

    time.sleep(0.01)
    assert lim.allow("k")
