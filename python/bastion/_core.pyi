"""Type stubs for the Rust extension ``bastion._core`` (hand-written; checked by ``mypy.stubtest``)."""

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, Self, final

from typing_extensions import disjoint_base

from bastion.errors import AuthError

__version__: str
#: Every error code the core can raise, in table order (see ``bastion.errors.ERRORS_BY_CODE``).
ERROR_CODES: list[str]
__all__ = ["ERROR_CODES", "__version__"]

# JWT: keys, verification, signing
__all__ += ["JWT_ALGORITHMS", "JWTSigner", "JWTVerifier", "Key", "KeySet", "_decode_unverified", "_verify_jws"]
#: Every JWS algorithm bastion implements.
JWT_ALGORITHMS: list[str]

@final
class Key:
    """A signing or verification key, bound to one algorithm family (or, with ``alg``, one algorithm).

    Hygiene is checked at load time: RSA 2048-8192 bits with an odd exponent >= 3, HMAC secrets of at least
    32 bytes (and at least the hash size of every HMAC algorithm a verifier allows), EC points on their curve.
    ``repr()`` never shows key material.
    """

    @staticmethod
    def hmac(secret: bytes | str, *, kid: str | None = None, alg: str | None = None) -> Key:
        """An HMAC secret for HS256/384/512 (at least 32 bytes; 48 for HS384, 64 for HS512)."""

    @staticmethod
    def generate(alg: str, *, kid: str | None = None) -> Key:
        """A new random private key bound to ``alg``: an HMAC secret of the hash size, RSA 2048 bits, or an
        EC / Ed25519 key pair (for tests, demos and key rotation; publish ``KeySet([...]).to_jwks()``)."""

    @staticmethod
    def from_pem(pem: bytes | str, *, kid: str | None = None, alg: str | None = None) -> Key:
        """A PEM key: SPKI, PKCS#1 or PKCS#8 (and SEC 1 EC private keys); RSA, EC P-256/384/521, Ed25519."""

    @staticmethod
    def from_jwk(jwk: dict[str, Any] | str | bytes) -> Key:
        """A JWK (RFC 7517). Its ``alg`` binds the key; ``use`` other than ``sig`` or ``key_ops`` without
        ``verify`` keep it from verifying."""

    @property
    def kid(self) -> str | None:
        """The key id."""

    @property
    def alg(self) -> str | None:
        """The one algorithm this key is bound to, if any."""

    @property
    def kty(self) -> str:
        """The JWK key type: ``oct``, ``RSA``, ``EC`` or ``OKP``."""

    @property
    def is_private(self) -> bool:
        """True when the key can sign (always for HMAC secrets)."""

    def public_jwk(self) -> dict[str, Any]:
        """The public members as a JWK; raises :class:`bastion.InvalidKeyError` for HMAC secrets."""

@final
class KeySet:
    """Keys indexed by ``kid``; two keys with the same kid are refused."""

    def __new__(cls, keys: Key | Sequence[Key]) -> Self: ...
    @staticmethod
    def from_jwks(jwks: dict[str, Any] | str | bytes, *, allow_symmetric: bool = False) -> KeySet:
        """A JWK Set. Members for encryption (``use`` not ``sig``) or non-JWS algorithms are skipped.

        A JWKS is normally published by an identity provider and fetched over the network, so a symmetric
        (``"kty": "oct"``) member in it is a leaked secret or lets whoever can alter the set mint HS* tokens:
        unless ``allow_symmetric=True``, any ``oct`` member (whatever its ``use``) raises
        :class:`bastion.InvalidKeyError` naming the member's position and kid, never its secret. Pass
        ``allow_symmetric=True`` only for a JWKS you keep secret yourself; ``Key.from_jwk`` (one explicit key)
        always accepts ``oct``. ``allow_symmetric`` must be a bool (else :class:`bastion.ConfigurationError`).
        """

    def to_jwks(self) -> dict[str, Any]:
        """The public JWK Set: public members only. HMAC secrets are never exported (a set of HMAC keys only
        gives ``{"keys": []}``), so the result always reloads with ``from_jwks`` and its default."""

    def keys(self) -> list[Key]:
        """The keys, in order."""

    @property
    def kids(self) -> list[str]:
        """The key ids."""

    def __len__(self) -> int: ...

@final
class JWTVerifier:
    """Verifies JWTs: explicit algorithm allow-list, strict parsing, signature, then claims.

    ``algorithms`` is required (no default). Defaults: ``issuer=None`` and ``audience=None`` (not checked,
    and a token carrying ``aud`` is refused), ``leeway=0`` seconds, ``require=("exp",)`` (registered claims
    only), ``typ=None`` (not checked; ``"at+jwt"`` also matches ``AT+JWT`` and ``application/at+jwt``),
    ``max_token_bytes=8192`` (larger tokens are refused with ``token_too_large`` before any decoding; a
    ``str`` with more characters than that before it is even encoded to UTF-8), ``cache_size=0``. With
    ``cache_size > 0`` up to that many verified tokens are kept; every hit re-checks exp/nbf/iat against the
    clock and returns a fresh dict. ``key_source``: what :meth:`bastion.JWKSClient.verifier` passes (then
    ``keys`` may be ``None``: the verifier starts empty and the source fills it); on the request path an
    unknown kid is then fetched for once instead of refused at once.
    """

    def __new__(
        cls,
        keys: Key | KeySet | Sequence[Key] | None,
        *,
        algorithms: Sequence[str] | str,
        issuer: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        leeway: float | None = ...,
        require: Sequence[str] | None = ...,
        typ: str | None = None,
        max_token_bytes: int | None = ...,
        cache_size: int | None = ...,
        key_source: Any = None,
    ) -> Self: ...
    def verify(self, token: str | bytes, *, now: float | None = None) -> dict[str, Any]:
        """The claims of a valid token; raises a :class:`bastion.AuthError` subclass otherwise."""

    def clear_cache(self) -> None:
        """Forget every cached token."""

    def replace_keys(self, keys: Key | KeySet | Sequence[Key]) -> None:
        """Replace every key at once (rotation), while other threads verify: checked as the constructor checks
        keys (a refused set leaves the current keys in place); every cached token is forgotten."""

    def clear_keys(self) -> None:
        """Drop every key of a verifier fed by a key source (its last good set is too old)."""

    def has_kid(self, kid: str) -> bool:
        """Whether a key with this kid is loaded."""

    @property
    def key_source(self) -> Any:
        """The key source given at construction (a :class:`bastion.JWKSClient`), or ``None``."""

    @property
    def issuers(self) -> list[str] | None:
        """The accepted issuers (``None``: any)."""

    @property
    def algorithms(self) -> list[str]:
        """The allow-list."""

@final
class JWTSigner:
    """Mints JWTs; adds ``iat``, ``exp`` (``iat + ttl``, default ttl 900 s; ``None`` for no exp) and a random
    ``jti`` unless the claims have them, and the configured ``iss``/``aud``/``typ``."""

    def __new__(
        cls,
        private_key: Key,
        algorithm: str | None = None,
        *,
        issuer: str | None = None,
        audience: str | Sequence[str] | None = None,
        ttl: int | None = ...,
        typ: str | None = None,
    ) -> Self: ...
    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None, *, now: float | None = None) -> str:
        """A compact JWS of ``claims``; ``headers`` adds members such as ``typ`` (``alg`` cannot be set)."""

    @property
    def algorithm(self) -> str:
        """The ``alg`` of every token."""

def _decode_unverified(token: str | bytes, *, max_token_bytes: int | None = None) -> dict[str, dict[str, Any]]: ...
def _verify_jws(
    token: str | bytes,
    keys: Key | KeySet | Sequence[Key],
    *,
    algorithms: Sequence[str] | str,
    max_token_bytes: int | None = None,
) -> bytes: ...

# Opaque tokens: the in-memory index and the Principal

__all__ += ["OpaqueIndex", "Principal", "_Miss", "_restore_principal"]

@final
class Principal:
    """An authenticated identity, immutable and built by bastion (never by the caller).

    Starlette's ``BaseUser`` duck type: ``is_authenticated``, ``display_name``, ``identity``. The repr names the
    subject, token id, scopes, roles and tier, never a token.
    """

    @property
    def subject(self) -> str:
        """The subject (user or client id)."""
    @property
    def client_id(self) -> str | None:
        """The OAuth client the token was issued to, if any."""
    @property
    def scopes(self) -> frozenset[str]:
        """The token's scopes."""
    @property
    def roles(self) -> frozenset[str]:
        """The token's roles."""
    @property
    def tier(self) -> str | None:
        """The rate-limit tier, if any."""
    @property
    def token_type(self) -> str:
        """``"jwt"`` or ``"opaque"``."""
    @property
    def token_id(self) -> str | None:
        """The jti or opaque record id: public, safe to log, never the secret."""
    @property
    def issuer(self) -> str | None:
        """The issuer (``iss``), if any."""
    @property
    def expires_at(self) -> float | None:
        """Expiry, epoch seconds."""
    @property
    def claims(self) -> MappingProxyType[str, Any]:
        """The verified claims (JWT) or the token's metadata (opaque), read-only all the way down: nested arrays are
        tuples, nested objects read-only mappings (the object is shared by every request with the same token)."""
    @property
    def rate_limit_key(self) -> str:
        """The client id for machine clients, else the subject. Never the token."""
    @property
    def is_authenticated(self) -> bool:
        """Always True."""
    @property
    def display_name(self) -> str:
        """The subject."""
    @property
    def identity(self) -> str:
        """The subject."""
    def has_scopes(self, *scopes: str) -> bool:
        """True when the token carries every one of ``scopes``."""
    def has_role(self, role: str) -> bool:
        """True when the token carries ``role``."""
    def __copy__(self) -> Self:
        """Immutable: the object itself."""
    def __deepcopy__(self, memo: Any, /) -> Self:
        """Immutable: the object itself."""
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickles by value (never a token); the unpickled Principal is detached from any store."""

def _restore_principal(state: tuple[Any, ...]) -> Principal: ...

@final
class _Miss:
    """An index miss, settled by ``OpaqueIndex._settle`` after the backend lookup."""

    @property
    def candidates(self) -> list[tuple[str, str | None, bytes]]: ...
    @property
    def digest(self) -> bytes: ...

@disjoint_base
class OpaqueIndex:
    """The Rust index behind :class:`bastion.TokenStore`: token format, keyed digests, lookups and checks."""

    def __new__(
        cls,
        prefix: str,
        peppers: Mapping[str, bytes],
        pepper_id: str,
        *,
        foreign_tokens: bool = False,
        negative_capacity: int = 65536,
        negative_ttl: float = 5.0,
    ) -> Self: ...
    def verify(self, token: str | bytes, *, now: float | None = None) -> Principal:
        """Verify a token and return its :class:`Principal` (constant-time digest comparison).

        Raises ``TokenMalformed`` (format, prefix, type letter or checksum; before any lookup), ``UnknownToken``,
        ``TokenRevoked``, ``TokenExpired``, or ``AuthUnavailable`` when the backend cannot be reached.
        """
    def _probe(self, token: str | bytes, now: float | None = None) -> Principal | _Miss: ...
    def _settle(self, miss: _Miss, row: Any, now: float | None = None) -> Principal | None: ...
    def _new_token(self, kind: str) -> tuple[str, bytes]: ...
    def _new_id(self) -> str: ...
    def _lookup_keys(self, token: object) -> list[tuple[str, str | None, bytes]]: ...
    def _insert(self, digest: bytes, row: Any) -> None: ...
    def _evict(self, id: str) -> bool: ...
    def _subject_cutoff(self, subject: str, valid_after: float) -> None: ...
    def subject_valid_after(self, subject: str) -> float | None:
        """The subject's "valid after" time (epoch seconds) set by ``revoke_subject``, if any (None for anything that
        is not a known subject, a non-str included): every token of the subject issued at or before it, opaque or JWT,
        is revoked. For a JWT compare its ``iat`` (``iat <= valid_after`` is revoked); ``iat`` is whole seconds, so a
        JWT minted later within the same second as the cut is rejected too (the safe side)."""
    def _clear(self) -> None: ...
    def _mark_closed(self) -> None: ...
    def _deny_jti(self, jti: str, until: float) -> None: ...
    def _jti_denied(self, jti: str, now: float | None = None) -> bool: ...
    def _sweep(self, now: float) -> int: ...
    def _drain_usage(self) -> list[tuple[str, int, float]]: ...
    @property
    def prefix(self) -> str:
        """The token prefix."""
    @property
    def pepper_id(self) -> str:
        """The current pepper id."""
    @property
    def pepper_ids(self) -> list[str]:
        """Every configured pepper id, the current one first."""
    def __len__(self) -> int:
        """Records held in memory."""

# Rate limiting

__all__ += ["Decision", "Rate", "RateLimiter", "_redis_key_digest"]

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
    def _success_headers(self) -> list[tuple[str, str]]:
        """The fields of :meth:`headers` an admitted response carries (no ``Retry-After``)."""
    def _asgi_success_headers(self) -> list[tuple[bytes, bytes]]:
        """The fields of :meth:`headers` an admitted response carries (no ``Retry-After``), as ASGI byte pairs."""
    def headers(self) -> list[tuple[str, str]]:
        """The draft-ietf-httpapi-ratelimit-headers fields and, when refused, ``Retry-After``.

        ``[("RateLimit-Policy", '"tier";q=100;w=60'), ("RateLimit", '"tier";r=57;t=1')]``; a tier with several
        rates lists them as ``"tier.0"``, ``"tier.1"``, …; ``t`` and ``Retry-After`` are whole seconds, rounded
        up (``Retry-After`` at least 1). An unlimited tier sends none.
        """
    @staticmethod
    def _from_resp(tier: str, rates: bytes, cost: int, data: bytes) -> Decision | None:
        """The decision in a raw reply of ``RedisRateLimiter``'s script (``None`` if malformed): ``rates`` packs
        each rate's limit, window (s), interval and tau (µs) as four little-endian u64; ``cost``: tokens asked."""
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

# bearer credentials (RFC 6750)
__all__ += ["DEFAULT_MAX_HEADER_BYTES", "bearer_challenge", "parse_api_key", "parse_authorization"]
#: The default cap on one header value: 8192 bytes of token plus ``"Bearer "``.
DEFAULT_MAX_HEADER_BYTES: int

def parse_authorization(values: Sequence[bytes | str] | bytes | str | None, *, max_bytes: int = ...) -> bytes:
    """The bearer token of a request's ``Authorization`` header values (RFC 6750 §2.1), borrowed from them.

    ``values``: every value the request carries (``None`` or an empty list: no header); a ``str`` holds one
    byte per code point, as WSGI gives headers. The scheme is case-insensitive and followed by one or more
    spaces and exactly one b64token; surrounding SP/HTAB is ignored. ``max_bytes`` caps each value.
    Raises ``bastion.MissingToken`` (no header, or another scheme) or ``bastion.InvalidRequest`` (several
    headers, over the cap, control bytes, or a malformed Bearer value); ``ConfigurationError`` for a bad
    ``max_bytes``.
    """

def parse_api_key(values: Sequence[bytes | str] | bytes | str | None, *, max_bytes: int = ...) -> bytes:
    """The bare token of an API-key header (``X-API-Key``): one b64token, no scheme; same rules and errors
    as :func:`parse_authorization` (an empty value is ``InvalidRequest``)."""

def bearer_challenge(
    realm: str, error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    """The ``WWW-Authenticate`` value of RFC 6750 §3: ``Bearer realm="…", error="…", error_description="…",
    scope="…"``, each attribute only when non-empty. Characters the RFC does not allow (quotes, backslashes,
    control and non-ASCII characters) become ``?`` (the realm's quotes and backslashes are escaped), so no
    input can leave its quoted string or the header. Raises ``ConfigurationError`` for a non-``str``."""

# route rules
__all__ += ["AUTH_MODES", "RuleSet"]
#: The ``auth=`` modes a rule accepts.
AUTH_MODES: list[str]

@final
class RuleSet:
    """Compiled route rules, matched in order; the first whose method and path match applies.

    ``rules``: ``(path, methods | None, scopes, roles, auth)`` tuples (see ``bastion.rules.Rule``);
    ``default`` (``"required"`` unless given): the mode for paths no rule matches. Raises
    ``ConfigurationError`` naming the rule and what to change.
    """

    #: The fields of a rule tuple, in order.
    FIELDS: tuple[str, str, str, str, str]
    def __new__(
        cls,
        rules: Sequence[tuple[str, Sequence[str] | None, Sequence[str], Sequence[str], str]],
        default: str | None = None,
    ) -> RuleSet: ...
    def match(self, method: str | bytes, path: str | bytes) -> int | None:
        """The index of the first rule matching ``method`` (case-insensitive; ``GET`` covers ``HEAD``) and the
        decoded ``path``, or ``None`` when the default applies. A path with ``.``/``..`` segments or an empty
        segment before the last raises ``bastion.InvalidRequest``."""
    @property
    def default(self) -> str:
        """The mode for paths no rule matches."""
    def __len__(self) -> int: ...
    def __getitem__(self, i: int, /) -> tuple[str, tuple[str, ...] | None, tuple[str, ...], tuple[str, ...], str]:
        """Rule ``i`` as compiled: methods upper-case, duplicates dropped."""

# -- the request path ----------------------------------------------------------------------------------
__all__ += ["Authenticator", "Outcome"]

@final
class Outcome:
    """Where a request stands after a call of :class:`Authenticator`: answered (``DONE``, ``REFUSED``), or
    waiting for a record (``NEED_RECORD``: ``need`` is the miss) or a shared limiter's decision (``NEED_LIMIT``:
    ``need`` is ``(key, tier)``) or a key source's fresh keys (``NEED_KEY``: ``need`` is ``(source, kid)``; the
    request then runs again once)."""

    DONE: ClassVar[int]
    REFUSED: ClassVar[int]
    NEED_RECORD: ClassVar[int]
    NEED_LIMIT: ClassVar[int]
    NEED_KEY: ClassVar[int]
    def __new__(
        cls,
        kind: int,
        principal: Principal | None = None,
        decision: Decision | None = None,
        error: BaseException | None = None,
        rule: int = ...,
        need: object = None,
    ) -> Outcome: ...
    @property
    def kind(self) -> int:
        """``DONE``, ``REFUSED``, ``NEED_RECORD``, ``NEED_LIMIT`` or ``NEED_KEY``."""
    @property
    def principal(self) -> Principal | None:
        """The authenticated principal (``None``: anonymous, or not known yet)."""
    @property
    def decision(self) -> Decision | None:
        """The rate decision, when one was made."""
    @property
    def error(self) -> AuthError | None:
        """The refusal (``REFUSED``), never raised by the core: the shell renders it."""
    @property
    def rule(self) -> int:
        """The index of the rule that matched, ``-1`` for the default."""
    @property
    def need(self) -> Any:
        """What the shell must supply: the ``_Miss`` of ``NEED_RECORD``, the ``(key, tier)`` of ``NEED_LIMIT``."""

@final
class Authenticator:
    """The fused per-request call under :class:`bastion.Authenticator` (use that)."""

    def __new__(
        cls,
        jwt: JWTVerifier | Sequence[JWTVerifier] | None,
        tokens: OpaqueIndex | None,
        limiter: RateLimiter | None,
        *,
        remote_limit: bool = False,
        tier_of: Callable[[Principal], str | None] | None = None,
        api_key_header: str | None = None,
        max_header_bytes: int | None = None,
    ) -> Authenticator: ...
    def step(
        self,
        rules: RuleSet,
        method: str,
        path: str,
        headers: Sequence[tuple[bytes, bytes]] | None = None,
        authorization: str | bytes | None = None,
        api_key: str | bytes | None = None,
        now: float | None = None,
        refetched: bool = False,
    ) -> Outcome:
        """One request, from its rule and credential to its outcome (or what it needs); ``refetched``: it runs
        again after a ``NEED_KEY`` was supplied, so an unknown kid is final."""
    def resume(
        self,
        rules: RuleSet,
        outcome: Outcome,
        principal: Principal,
        decision: Decision | None = None,
        now: float | None = None,
    ) -> Outcome:
        """Resume after a record was settled (``decision`` None) or a shared limiter decided."""

# -- audit lines (rust/audit.rs) ----------------------------------------------------------------------
__all__ += ["AUDIT_FIELD_NAMES", "audit_lines", "audit_timestamp", "audit_values"]

#: The output name of every audit field, in output order.
AUDIT_FIELD_NAMES: tuple[str, ...]

def audit_lines(records: list[tuple[Any, ...]], level: str, logger: str) -> str:
    """The JSON line of each record, newline-terminated: a request tuple ``(outcome, rule, method, path, status,
    request_id, client_address, duration_ms, timestamp, reason)`` or ``(timestamp, *values)`` in field order."""

def audit_values(request: tuple[Any, ...]) -> tuple[Any, ...]:
    """The field values of one request tuple, in field order (roles and scopes as sorted tuples)."""

def audit_timestamp(epoch: float) -> str:
    """``2026-12-02T05:40:01.123Z``: epoch seconds in UTC with milliseconds (truncated)."""

# -- the audit queue (rust/py/audit_queue/) -------------------------------------------------------------
__all__ += ["AuditQueue"]

@final
class AuditQueue:
    """The bounded queue between the request path and the audit writer: a put never blocks (a full or closed
    queue counts the record dropped). A file writer takes a batch with ``lines`` and reports it with ``done``; a
    logger writer ``peek`` s a record and ``pop`` s it once written. ``len`` counts what is not written yet."""

    def __new__(cls, max: int, wake: Any) -> AuditQueue: ...
    def put(self, record: object) -> None:
        """Queue a hand-built record (or count it dropped); set ``wake`` if the writer is idle."""
    def put_request(self, request: tuple[Any, ...]) -> None:
        """Queue a request's record, given as ``AuditLog.request``'s arguments (read into Rust data now; values it
        cannot read are counted in ``failed``)."""
    def peek(self, count: int) -> list[Any]:
        """The first ``count`` records (or fewer), left in the queue: a request's as ``(timestamp, *values)``."""
    def pop(self, count: int) -> None:
        """Remove the first ``count`` records."""
    def lines(self, count: int, level: str, logger: str) -> tuple[str, int, int]:
        """Take up to ``count`` records: ``(their JSON lines, how many were taken, how many could not be read)``."""
    def done(self, taken: int) -> None:
        """``taken`` records of ``lines`` are written."""
    def write(self, level: str, logger: str) -> tuple[int, int]:
        """Append every queued record to the ``open`` file without the GIL: ``(written, failed)``."""
    def serve(self, level: str, logger: str, linger: float) -> None:
        """The file writer thread's loop, off the GIL: returns once the queue is closed and empty."""
    def flush(self, timeout: float | None) -> bool:
        """Wait until the serving thread wrote every record, at most ``timeout`` seconds: True when none is left."""
    def open(self, path: str | os.PathLike[str]) -> None:
        """Open ``path`` for appending (created if missing); ConfigurationError when it cannot be."""
    def close_file(self) -> None:
        """Close the ``open`` file."""
    def clear(self) -> None:
        """Forget every record (a forked child starts empty)."""
    def close(self) -> None:
        """Refuse every later record (counted as dropped)."""
    @property
    def closing(self) -> bool: ...
    @property
    def dropped(self) -> int:
        """Records refused because the queue was full or closed."""
    @property
    def failed(self) -> int:
        """Records the core could not read (a request's values) or the file writer could not write."""
    @property
    def idle(self) -> bool:
        """Set by the writer while it sleeps."""
    @idle.setter
    def idle(self, idle: bool) -> None: ...
    def __len__(self) -> int: ...

# -- the middlewares' glue (rust/py/gate/) -------------------------------------------------------------
__all__ += ["Admitted", "AuthContext", "Credentials", "GateCore", "_Sending", "_Starting", "_reseed_request_ids"]
__all__ += ["new_request_id"]

def new_request_id() -> str:
    """A fresh request id: 32 hex digits, unique within the process, keyed per process."""

def _reseed_request_ids() -> None:
    """Draw new request-id keys (a forked child)."""

@final
class AuthContext:
    """``scope["bastion"]`` / ``environ["bastion.auth"]``: what bastion decided about this request."""

    def __new__(
        cls,
        principal: Principal | None,
        decision: Decision | None,
        request_id: str,
        client_address: str | None,
        rule: Any,
    ) -> AuthContext: ...
    @property
    def principal(self) -> Principal | None:
        """The authenticated principal, or ``None`` for an anonymous request."""
    @property
    def decision(self) -> Decision | None:
        """The rate-limit decision, when the request was rate-limited."""
    @property
    def request_id(self) -> str: ...
    @property
    def client_address(self) -> str | None:
        """The client's address: the peer, or what trusted proxies said."""
    @property
    def rule(self) -> Any:
        """The :class:`bastion.Rule` that applied (``None``: the default)."""
    @property
    def refusal(self) -> AuthError | None:
        """The refusal of a check made after the middleware admitted the request (a framework integration's
        scopes or roles on an endpoint): the middleware's audit record then names its code."""
    @refusal.setter
    def refusal(self, refusal: AuthError | None) -> None: ...

@final
class Credentials:
    """``scope["auth"]``: the granted scopes in the shape of Starlette's ``AuthCredentials``."""

    def __new__(cls, scopes: Iterable[str] | None = None) -> Credentials: ...
    @classmethod
    def of(cls, principal: Principal) -> Credentials:
        """The credentials of ``principal``, read when first asked for."""
    @property
    def scopes(self) -> list[str]:
        """The granted scopes, sorted."""

@final
class Admitted:
    """An admitted request: the app is called with ``scope`` (ASGI; the environ under WSGI) and ``send`` (the
    ``send`` or ``start_response`` to give it, ``None`` for a WebSocket); ``finish()`` once it is done."""

    @property
    def scope(self) -> Any: ...
    @property
    def send(self) -> Any: ...
    @property
    def context(self) -> AuthContext: ...
    @property
    def audited(self) -> bool:
        """Whether :meth:`finish` writes an audit record."""
    def unbind(self) -> None:
        """Restore the audit context the request replaced (idempotent)."""
    def finish(self, status: int | None = None) -> None:
        """Unbind, and queue the audit record once (``status``, or what the app sent: 500 when nothing)."""

@final
class GateCore:
    """One middleware's configuration for the per-request glue (built by ``bastion._gate.Gate``)."""

    def __new__(
        cls,
        auth: Any,
        rules: RuleSet,
        rule_list: tuple[Any, ...],
        ratelimit_headers: bool,
        trusting: bool,
        api_key_environ: str | None,
        var: Any,
        anonymous: Any,
        audit_log_type: type,
        emit: Callable[[Any, tuple[Any, ...]], None],
    ) -> GateCore: ...
    def asgi(self, scope: Any, send: Any) -> Admitted | Outcome | None:
        """An ASGI HTTP request: admitted, or the core's outcome (refused, or waiting for I/O), or None (the
        shell decides: a trusted proxy's headers, an ``OPTIONS`` request)."""
    def admit_asgi(
        self, scope: Any, outcome: Outcome | None, send: Any, request_id: str, address: str | None, waited: float
    ) -> Admitted:
        """Admit an ASGI request the shell decided (``outcome`` None: a preflight; ``send`` None: a WebSocket)."""
    def wsgi(self, environ: Any, start_response: Any) -> Admitted | Outcome | None:
        """A WSGI request: as :meth:`asgi`, the environ given its keys when admitted."""
    def admit_wsgi(
        self,
        environ: Any,
        outcome: Outcome | None,
        start_response: Any,
        request_id: str,
        address: str | None,
        waited: float,
    ) -> Admitted:
        """Admit a WSGI request the shell decided (``outcome`` None: a preflight)."""

@final
class _Sending:
    """The ``send`` an admitted ASGI app gets: learns the status, adds the RateLimit fields."""

    def __call__(self, message: Any) -> Any: ...

@final
class _Starting:
    """The ``start_response`` an admitted WSGI app gets: learns the status, adds the RateLimit fields."""

    def __call__(self, status: str, headers: Any, exc_info: Any = None) -> Any: ...
