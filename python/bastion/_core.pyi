"""Type stubs for the Rust extension ``bastion._core`` (hand-written; checked by ``mypy.stubtest``)."""

from collections.abc import Sequence  # jwt (issue 2)
from typing import Any, Self, final  # jwt (issue 2)

__version__: str
#: Every error code the core can raise, in table order (see ``bastion.errors.ERRORS_BY_CODE``).
ERROR_CODES: list[str]
__all__ = ["ERROR_CODES", "__version__"]

# -- jwt (issue 2) --
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
    def from_jwks(jwks: dict[str, Any] | str | bytes) -> KeySet:
        """A JWK Set. Members for encryption (``use`` not ``sig``) or non-JWS algorithms are skipped."""

    def to_jwks(self) -> dict[str, Any]:
        """The public JWK Set (public members only; HMAC secrets are left out)."""

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
    ``max_token_bytes=8192`` (larger tokens are refused before any decoding), ``cache_size=0``. With
    ``cache_size > 0`` up to that many verified tokens are kept; every hit re-checks exp/nbf/iat against the
    clock and returns a fresh dict.
    """

    def __new__(
        cls,
        keys: Key | KeySet | Sequence[Key],
        *,
        algorithms: Sequence[str] | str,
        issuer: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        leeway: float | None = ...,
        require: Sequence[str] | None = ...,
        typ: str | None = None,
        max_token_bytes: int | None = ...,
        cache_size: int | None = ...,
    ) -> Self: ...
    def verify(self, token: str | bytes, *, now: float | None = None) -> dict[str, Any]:
        """The claims of a valid token; raises a :class:`bastion.AuthError` subclass otherwise."""

    def clear_cache(self) -> None:
        """Forget every cached token."""

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
        algorithm: str = "ES256",
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

def _decode_unverified(token: str | bytes, *, max_token_bytes: int = ...) -> dict[str, dict[str, Any]]: ...
def _verify_jws(
    token: str | bytes,
    keys: Key | KeySet | Sequence[Key],
    *,
    algorithms: Sequence[str] | str,
    max_token_bytes: int = ...,
) -> bytes: ...

# -- opaque (issue 3) --
from collections.abc import Mapping  # noqa: E402 - imports of this domain's section
from types import MappingProxyType  # noqa: E402

from typing_extensions import disjoint_base  # noqa: E402

__all__ += ["OpaqueIndex", "Principal", "_Miss"]

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
        """The verified claims (JWT) or the token's metadata (opaque), read-only."""
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
        """The subject's "valid after" time (epoch seconds) set by ``revoke_subject``, if any: every token of the
        subject issued at or before it, opaque or JWT (compare the JWT's ``iat``), is revoked."""
    def _clear(self) -> None: ...
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

# -- ratelimit (issue 4) --
