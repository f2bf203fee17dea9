"""An exact reference rate limiter for the model-based tests, written as a plain token bucket.

It shares no code or formulation with bastion's GCRA: each rate of each key holds a *credit* in
nanoseconds of tokens (``burst × interval`` when full) and the time it was last updated; credit grows with
time up to the cap and each request of cost ``c`` needs ``c × interval``. Everything is integer
arithmetic, so the expected ``remaining``, ``reset_after`` and ``retry_after`` are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RefRate:
    count: int
    period_ns: int
    burst: int

    @property
    def interval(self) -> int:
        # ceil: bastion never admits faster than the stated rate
        return -(-self.period_ns // self.count)

    @property
    def cap(self) -> int:
        return self.burst * self.interval

    @property
    def window(self) -> int:
        return max(1, (self.period_ns * self.burst // self.count + 500_000_000) // 1_000_000_000)


@dataclass
class RefResult:
    allowed: bool
    tier: str
    #: (limit, window, remaining, reset_after_ns, retry_after_ns) per rate
    rates: list[tuple[int, int, int, int, int]]
    binding: int
    retry_after_ns: int


@dataclass
class RefLimiter:
    tiers: dict[str, list[RefRate] | None]
    default: str
    #: (tier, key) -> per rate: (credit_ns, at_ns)
    state: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)

    def resolve(self, tier: str | None) -> str:
        return tier if tier is not None and tier in self.tiers else self.default

    def max_cost(self, tier: str | None) -> int | None:
        rates = self.tiers[self.resolve(tier)]
        return None if rates is None else min(r.burst for r in rates)

    def credits(self, tier: str, key: str, now: int) -> list[int]:
        rates = self.tiers[tier]
        assert rates is not None
        held = self.state.get((tier, key))
        if held is None:
            return [r.cap for r in rates]
        return [min(r.cap, credit + (now - at)) for r, (credit, at) in zip(rates, held, strict=True)]

    def check(self, key: str, tier: str | None, cost: int, now: int) -> RefResult:
        name = self.resolve(tier)
        rates = self.tiers[name]
        if rates is None:
            return RefResult(True, name, [], 0, 0)
        credits = self.credits(name, key, now)
        needs = [cost * r.interval for r in rates]
        allowed = all(c >= n for c, n in zip(credits, needs, strict=True))
        out: list[tuple[int, int, int, int, int]] = []
        for r, c, n in zip(rates, credits, needs, strict=True):
            if allowed:
                left = c - n
                out.append((r.burst, r.window, left // r.interval, r.cap - left, 0))
            else:
                retry = max(0, n - c)
                out.append((r.burst, r.window, c // r.interval, r.cap - c, retry))
        if allowed and cost > 0:
            self.state[(name, key)] = [(c - n, now) for c, n in zip(credits, needs, strict=True)]
        if allowed:
            binding = min(range(len(out)), key=lambda i: (out[i][2], -out[i][3]))
            retry_after = 0
        else:
            binding = max(range(len(out)), key=lambda i: (out[i][4], -i))
            retry_after = out[binding][4]
        return RefResult(allowed, name, out, binding, retry_after)

    def reset(self, key: str, tier: str | None) -> None:
        self.state.pop((self.resolve(tier), key), None)

    def live_keys(self, now: int) -> int:
        """Keys whose bucket is not full on some rate (the ones a limiter must still hold)."""
        live = 0
        for tier, key in self.state:
            rates = self.tiers[tier]
            assert rates is not None
            if any(c < r.cap for c, r in zip(self.credits(tier, key, now), rates, strict=True)):
                live += 1
        return live
