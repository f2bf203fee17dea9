"""Model-based test: bastion.RateLimiter against an exact token-bucket reference on a fake clock.

Hypothesis drives random sequences of checks, allows, acquires, resets, sweeps and clock moves over
several tiers (one rate, several rates, unlimited, an unknown name) and compares every field of every
decision with the reference: no over-admission, no under-admission, exact remaining / reset_after /
retry_after. Eviction must be invisible: after a sweep the limiter holds exactly the keys whose bucket is
not full.
"""

from __future__ import annotations

import bastion
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.ratelimit_reference import RefLimiter, RefRate, RefResult

S = 1_000_000_000
START = 987_654_321_000  # the fake clock does not start at zero: the limiter measures from its start

RATES: dict[str, list[tuple[int, float, int | None]] | None] = {
    "solo": [(3, 1, None)],  # interval 333,333,334 ns (rounded up)
    "bursty": [(5, 2, 9)],  # burst above the count
    "duo": [(4, 1, 2), (7, 60, None)],  # all-or-nothing over two rates
    "trio": [(10, 1, None), (20, 10, 4), (50, 3600, None)],
    "free": None,
}
TIERS = [*RATES, "unknown-tier", None]
KEYS = ["alice", "bob", "carol", "", "ünïcødé", "x" * 300]
STEPS = [0, 1, 999, 333_333_333, 333_333_334, S // 10, S // 2, S, 3 * S, 61 * S, 3601 * S]


def build(clock: list[int]) -> tuple[bastion.RateLimiter, RefLimiter]:
    policies: dict[str, bastion.Rate | list[bastion.Rate] | None] = {}
    ref_tiers: dict[str, list[RefRate] | None] = {}
    for name, spec in RATES.items():
        if spec is None:
            policies[name] = None
            ref_tiers[name] = None
            continue
        rates = [bastion.Rate(n, per=per, burst=burst) for n, per, burst in spec]
        policies[name] = rates if len(rates) > 1 else rates[0]
        ref_tiers[name] = [RefRate(r.count, r.period_ns, r.burst) for r in rates]
    limiter = bastion.RateLimiter(policies, default="solo", max_keys=10_000, clock=lambda: clock[0])
    return limiter, RefLimiter(ref_tiers, "solo")


def assert_same(d: bastion.Decision, want: RefResult) -> None:
    assert d.allowed == want.allowed
    assert d.tier == want.tier
    assert d.source == "local"
    assert d.rates == [(q, w, r, reset / 1e9, retry / 1e9) for q, w, r, reset, retry in want.rates]
    if want.rates:
        q, _w, r, reset, _retry = want.rates[want.binding]
        assert (d.limit, d.remaining, d.reset_after) == (q, r, reset / 1e9)
    else:
        assert d.unlimited
        assert (d.limit, d.remaining) == (0, 0)
    assert d.retry_after == want.retry_after_ns / 1e9


class LimiterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = [START]
        self.limiter, self.ref = build(self.clock)

    @property
    def now(self) -> int:
        return self.clock[0] - START

    @rule(step=st.sampled_from(STEPS) | st.integers(0, 5 * S))
    def advance(self, step: int) -> None:
        self.clock[0] += step

    @rule(key=st.sampled_from(KEYS), tier=st.sampled_from(TIERS), cost=st.integers(0, 10))
    def check(self, key: str, tier: str | None, cost: int) -> None:
        max_cost = self.ref.max_cost(tier)
        if max_cost is not None and cost > max_cost:
            with pytest.raises(bastion.ConfigurationError):
                self.limiter.check(key, tier, cost)
            return
        want = self.ref.check(key, tier, cost, self.now)
        assert_same(self.limiter.check(key, tier, cost), want)

    @rule(key=st.sampled_from(KEYS), tier=st.sampled_from(TIERS))
    def allow(self, key: str, tier: str | None) -> None:
        want = self.ref.check(key, tier, 1, self.now)
        assert self.limiter.allow(key, tier) is want.allowed

    @rule(key=st.sampled_from(KEYS), tier=st.sampled_from(TIERS))
    def acquire(self, key: str, tier: str | None) -> None:
        want = self.ref.check(key, tier, 1, self.now)
        if want.allowed:
            assert_same(self.limiter.acquire(key, tier), want)
        else:
            with pytest.raises(bastion.RateLimited) as info:
                self.limiter.acquire(key, tier)
            assert info.value.retry_after == want.retry_after_ns / 1e9
            assert info.value.status == 429

    @rule(key=st.sampled_from(KEYS), tier=st.sampled_from(TIERS))
    def reset(self, key: str, tier: str | None) -> None:
        self.ref.reset(key, tier)
        self.limiter.reset(key, tier)

    @rule()
    def sweep(self) -> None:
        self.limiter.sweep()
        assert self.limiter.key_count == self.ref.live_keys(self.now)

    @invariant()
    def never_evicts_a_live_bucket(self) -> None:
        assert self.limiter.key_count >= self.ref.live_keys(self.now)


TestLimiterModel = LimiterMachine.TestCase
TestLimiterModel.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_reference_agrees_with_a_worked_example() -> None:
    """The reference itself, on numbers worked out by hand (3/s: one token every 333,333,334 ns)."""
    clock = [START]
    limiter, ref = build(clock)
    for left in (2, 1, 0):
        assert ref.check("k", "solo", 1, 0).rates[0][2] == left
        assert limiter.check("k", "solo").remaining == left
    refused = ref.check("k", "solo", 1, 0)
    assert not refused.allowed
    assert refused.retry_after_ns == 333_333_334
    d = limiter.check("k")
    assert not d.allowed
    assert d.retry_after == 0.333333334
    assert d.reset_after == 1.000000002
    clock[0] += 333_333_334
    assert limiter.allow("k")
    assert not limiter.allow("k")
