"""Type stubs for the Rust extension ``bastion._core`` (hand-written; checked by ``mypy.stubtest``)."""

from collections.abc import Callable, Iterable, Mapping, Sequence  # ratelimit (issue 4)
from typing import final  # ratelimit (issue 4)

__version__: str
#: Every error code the core can raise, in table order (see ``bastion.errors.ERRORS_BY_CODE``).
ERROR_CODES: list[str]

# -- jwt (issue 2) --

# -- opaque (issue 3) --

# -- ratelimit (issue 4) --

@final
class Rate:
    """``count`` requests per ``per`` seconds, with a bucket of ``burst`` (default ``count``).

    A token bucket: up to ``burst`` requests at once, refilled at ``count / per`` per second. The interval
    between tokens is rounded *up* to whole nanoseconds, so bastion never admits faster than stated.
    Raises ``ConfigurationError`` for a zero count, period or burst, a non-int count or burst, a period that
    is not a positive finite number of seconds, or a rate faster than one per nanosecond.
    """

    def __new__(cls, count: int, per: float | None = None, burst: int | None = None) -> Rate: ...
    @property
    def count(self) -> int:
        """Requests per period."""
    @property
    def per(self) -> float:
        """The period in seconds."""
    @property
    def period_ns(self) -> int:
        """The period in nanoseconds."""
    @property
    def burst(self) -> int:
        """The bucket's capacity: the quota ``q`` of the rate-limit headers and ``Decision.limit``."""
    @property
    def interval_ns(self) -> int:
        """Nanoseconds per token: the period divided by the count, rounded up."""
    @property
    def window(self) -> int:
        """The window ``w`` of the headers in whole seconds: ``per × burst / count``, rounded (at least 1)."""
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Decision:
    """The answer for one request: whether it is allowed, and the state of the tier's rates.

    The scalar fields describe the *binding* rate: the one that refused (the longest wait) or, when the
    request was admitted, the one with the fewest requests left. ``bool(decision)`` is ``allowed``.
    """

    def __new__(
        cls,
        allowed: object,
        tier: str,
        rates: Iterable[tuple[int, int, int, float, float]] | None = None,
        *,
        retry_after: float = 0.0,
        source: str = "local",
    ) -> Decision:
        """Build a decision (for limiters written in Python): one ``(limit, window, remaining, reset_after,
        retry_after)`` tuple per rate; ``source`` is ``local``, ``redis``, ``fallback``, ``open`` or ``closed``."""
    @property
    def allowed(self) -> bool:
        """Whether the request is admitted."""
    @property
    def limit(self) -> int:
        """The binding rate's quota (its burst); 0 when the tier is unlimited or was not checked."""
    @property
    def remaining(self) -> int:
        """Whole requests left in the binding rate (after this one, when admitted)."""
    @property
    def reset_after(self) -> float:
        """Seconds until the binding rate's bucket is full again."""
    @property
    def retry_after(self) -> float:
        """Seconds until the same request can succeed; 0.0 when allowed."""
    @property
    def tier(self) -> str:
        """The tier that decided (the default one when none, or an unknown one, was named)."""
    @property
    def source(self) -> str:
        """``local`` (in-process), ``redis``, or when Redis failed ``fallback`` (the in-process limiter),
        ``open`` (admitted unchecked) or ``closed`` (refused unchecked)."""
    @property
    def degraded(self) -> bool:
        """True when the shared limiter could not be asked (``fallback``, ``open`` or ``closed``)."""
    @property
    def unlimited(self) -> bool:
        """True for an unlimited tier (no rates, no headers)."""
    @property
    def rates(self) -> list[tuple[int, int, int, float, float]]:
        """Every rate of the tier as ``(limit, window, remaining, reset_after, retry_after)``."""
    def headers(self) -> list[tuple[str, str]]:
        """The draft-ietf-httpapi-ratelimit-headers fields and, when refused, ``Retry-After``.

        ``[("RateLimit-Policy", '"tier";q=100;w=60'), ("RateLimit", '"tier";r=57;t=1')]``; a tier with several
        rates lists them as ``"tier.0"``, ``"tier.1"``, …; ``t`` and ``Retry-After`` are whole seconds, rounded
        up (``Retry-After`` at least 1). An unlimited tier sends none.
        """
    @staticmethod
    def _from_resp(tier: str, shape: Sequence[tuple[int, int]], data: bytes) -> Decision | None:
        """The decision in a raw reply of ``RedisRateLimiter``'s script (``None`` if malformed)."""
    def _relabel(self, source: str) -> Decision:
        """The same decision reported by another ``source``."""
    def __bool__(self) -> bool: ...

@final
class RateLimiter:
    """An in-process, thread-safe rate limiter over named tiers (GCRA, one atomic per key and rate).

    ``policies``: tier name → ``Rate``, list of ``Rate`` (all-or-nothing, at most 4) or ``None`` (unlimited).
    ``default``: the tier used when none is named — and when an unknown one is (required with several
    tiers). ``max_keys`` (default 1,000,000; 21–43 bytes of table a key): live keys held at most; a new
    key arriving when that many buckets are live (none full again) is refused, with ``retry_after`` the
    time until one can be evicted; keys already held are unaffected. ``clock``: a callable returning
    monotonic nanoseconds (tests); default the OS monotonic clock.
    Raises ``ConfigurationError`` for anything it cannot enforce.
    """

    def __new__(
        cls,
        policies: Mapping[str, Rate | Sequence[Rate] | None],
        default: str | None = None,
        max_keys: int | None = None,
        clock: Callable[[], int] | None = None,
    ) -> RateLimiter: ...
    def allow(self, key: str | bytes, tier: str | None = None) -> bool:
        """True if ``key`` may make one request now (and takes the token). The fastest path."""
    def check(self, key: str | bytes, tier: str | None = None, cost: int = 1) -> Decision:
        """Take ``cost`` tokens from ``key``'s bucket if every rate of the tier has them; report the state.

        ``cost=0`` only looks. A cost above the tier's smallest burst raises ``ConfigurationError``.
        """
    def acquire(self, key: str | bytes, tier: str | None = None, cost: int = 1) -> Decision:
        """Like :meth:`check`, but raise ``bastion.RateLimited`` (with ``retry_after``) when refused."""
    def reset(self, key: str | bytes, tier: str | None = None) -> bool:
        """Forget ``key`` in ``tier`` (its bucket is full again); True if it was held."""
    def sweep(self) -> int:
        """Evict every key whose bucket is full again and return how many went (this also happens by itself)."""
    @property
    def key_count(self) -> int:
        """Live keys held across all tiers."""
    @property
    def max_keys(self) -> int:
        """The cap on live keys."""
    @property
    def default(self) -> str:
        """The default tier."""
    @property
    def policies(self) -> dict[str, list[Rate] | None]:
        """The tiers and their rates (``None``: unlimited), in the order given."""
    def _table_bytes(self) -> int:
        """Bytes allocated by the key tables."""

def _redis_key_digest(key: str | bytes) -> bytes:
    """BLAKE3-128 of a rate-limit key as 32 hex digits: how ``RedisRateLimiter`` names an identity."""
