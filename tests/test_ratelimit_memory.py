"""Memory: a million identities fill the map; once their buckets are full again, eviction empties it.

Eviction runs by itself as requests arrive (each shard is swept by the first request that touches it once
some of its keys can be full again) and on demand (``sweep()``); live buckets are never evicted, and the
tables shrink back.
"""

from __future__ import annotations

import bastion

S = 1_000_000_000
N = 1_000_000


def test_a_million_keys_then_time_passes() -> None:
    t = [S]
    limiter = bastion.RateLimiter(
        {"t": bastion.Rate(10, per=1), "long": bastion.Rate(1, per=3600)},
        default="t",
        max_keys=2 * N,
        clock=lambda: t[0],
    )
    allow = limiter.allow
    for i in range(N):
        assert allow(f"user-{i}")
    assert limiter.key_count == N
    peak = limiter._table_bytes()
    assert peak <= 40 * N, f"{peak / N:.1f} bytes of table a key"
    # one identity on the hourly tier stays live throughout
    assert limiter.allow("keeper", "long")

    t[0] += S // 20
    limiter.sweep()
    assert limiter.key_count == N + 1, "half-refilled buckets are live: nothing evicted"

    # 100 ms later every bucket of the first tier is full again; traffic on new keys sweeps each shard
    t[0] += S
    for i in range(5000):
        allow(f"newcomer-{i}")
    assert limiter.key_count <= 5000 + 1 + 1000, limiter.key_count
    assert limiter._table_bytes() < peak // 20, "the tables shrank"
    assert limiter.check("keeper", "long", cost=0).remaining == 0, "the live bucket survived"

    t[0] += 2 * S
    assert limiter.sweep() >= 5000
    assert limiter.key_count == 1
    assert not limiter.allow("keeper", "long")
