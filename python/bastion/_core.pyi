"""Type stubs for the Rust extension ``bastion._core`` (hand-written; checked by ``mypy.stubtest``)."""

from collections.abc import Sequence  # jwt (issue 2)
from typing import Any  # jwt (issue 2)

__version__: str
#: Every error code the core can raise, in table order (see ``bastion.errors.ERRORS_BY_CODE``).
ERROR_CODES: list[str]

# -- jwt (issue 2) --
#: Every JWS algorithm bastion implements.
JWT_ALGORITHMS: list[str]

class Key:
    """A signing or verification key, bound to one algorithm family (or, with ``alg``, one algorithm).

    Hygiene is checked at load time: RSA 2048–8192 bits with an odd exponent >= 3, HMAC secrets of at least
    32 bytes (and at least the hash size of every HMAC algorithm a verifier allows), EC points on their curve.
    ``repr()`` never shows key material.
    """

    @staticmethod
    def hmac(secret: bytes | str, *, kid: str | None = None, alg: str | None = None) -> Key:
        """An HMAC secret for HS256/384/512 (at least 32 bytes; 48 for HS384, 64 for HS512)."""

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

class KeySet:
    """Keys indexed by ``kid``; two keys with the same kid are refused."""

    def __init__(self, keys: Key | Sequence[Key]) -> None: ...
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

class JWTVerifier:
    """Verifies JWTs: explicit algorithm allow-list, strict parsing, signature, then claims.

    ``require`` names registered claims (default ``("exp",)``). A token with ``aud`` is refused unless
    ``audience`` is configured. ``cache_size > 0`` keeps that many verified tokens (by BLAKE3 digest of the
    whole token); every hit re-checks exp/nbf/iat against the clock and returns a fresh dict.
    """

    def __init__(
        self,
        keys: Key | KeySet | Sequence[Key],
        *,
        algorithms: Sequence[str] | str,
        issuer: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        leeway: float = 0,
        require: Sequence[str] | None = ("exp",),
        typ: str | None = None,
        max_token_bytes: int = 8192,
        cache_size: int = 0,
    ) -> None: ...
    def verify(self, token: str | bytes, *, now: float | None = None) -> dict[str, Any]:
        """The claims of a valid token; raises a :class:`bastion.AuthError` subclass otherwise."""

    def clear_cache(self) -> None:
        """Forget every cached token."""

    @property
    def algorithms(self) -> list[str]:
        """The allow-list."""

class JWTSigner:
    """Mints JWTs; adds ``iat``, ``exp`` (``iat + ttl``) and a random ``jti`` unless the claims have them."""

    def __init__(
        self,
        private_key: Key,
        algorithm: str = "ES256",
        *,
        issuer: str | None = None,
        audience: str | Sequence[str] | None = None,
        ttl: int | None = 900,
        typ: str | None = None,
    ) -> None: ...
    def sign(
        self, claims: dict[str, Any], headers: dict[str, Any] | None = None, *, now: float | None = None
    ) -> str:
        """A compact JWS of ``claims``; ``headers`` adds members such as ``typ`` (``alg`` cannot be set)."""

    @property
    def algorithm(self) -> str:
        """The ``alg`` of every token."""

def _decode_unverified(token: str | bytes, *, max_token_bytes: int = 8192) -> dict[str, dict[str, Any]]: ...
def _verify_jws(
    token: str | bytes,
    keys: Key | KeySet | Sequence[Key],
    *,
    algorithms: Sequence[str] | str,
    max_token_bytes: int = 8192,
) -> bytes: ...

# -- opaque (issue 3) --

# -- ratelimit (issue 4) --
