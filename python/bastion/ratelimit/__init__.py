"""Identity-aware rate limiting: the public names and the Python-side helpers.

The in-process limiter is Rust (``bastion._core``): a GCRA per key whose whole state is one atomic
(the theoretical arrival time), in a sharded map keyed by a 64-bit keyed digest of the identity.
:class:`~bastion.ratelimit.redis.RedisRateLimiter` shares one budget between hosts through Redis.

Semantics shared by both limiters:

* ``Rate(n, per=seconds, burst=None)``: a token bucket of ``burst`` tokens (default ``n``) refilled at
  ``n`` per ``per`` seconds. ``Decision.limit`` is the burst (the quota ``q`` of the headers) and the
  window ``w`` is ``per × burst / n`` seconds.
* A tier holds one rate, several rates (checked all-or-nothing: a request is admitted only if every rate
  has the tokens, and only then is anything taken), or ``None`` (unlimited: no state at all).
* ``tier=None`` means the default tier. An **unknown tier name at request time falls back to the default
  tier** (whose name the ``Decision`` reports): a token carrying a tier the limiter does not know is
  throttled like everyone else rather than turned into a server error.
* ``cost`` is an ``int`` from 0 to the tier's smallest burst; ``cost=0`` looks without taking. A larger
  cost could never be admitted and raises ``ConfigurationError``; so do keys that are neither ``str`` nor
  ``bytes`` (a ``str`` is hashed as its UTF-8, so ``"a"`` and ``b"a"`` are the same identity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

from bastion._core import Decision, Rate, RateLimiter

__all__ = ["Decision", "FailureMode", "Policies", "Rate", "RateLimiter", "TierPolicy", "rate_limit_headers"]

#: One tier: a rate, several rates (all-or-nothing), or ``None`` for unlimited.
TierPolicy: TypeAlias = Rate | Sequence[Rate] | None
#: Tier name → policy.
Policies: TypeAlias = Mapping[str, TierPolicy]
#: What ``RedisRateLimiter`` does for a tier when Redis cannot answer in time.
FailureMode: TypeAlias = Literal["open", "closed", "local"]


def rate_limit_headers(decision: Decision | None) -> list[tuple[str, str]]:
    """The response headers for ``decision`` (none for ``None``, e.g. an unauthenticated request)."""
    return [] if decision is None else decision.headers()
