"""bastion's error taxonomy.

Every failure bastion reports is a :class:`BastionError`. Problems found while *building* objects (a weak
key, an impossible rate, an unknown tier) are :class:`ConfigurationError`, which is also a ``ValueError``.
Problems found while *handling a request* are :class:`AuthError` subclasses: each has a stable snake_case
``code`` (the ``"error"`` member of the JSON body), an HTTP ``status``, the RFC 6750 ``rfc6750_error`` for the
``WWW-Authenticate`` header (or ``None``), and a client-safe ``message``. Messages never contain a token, a
secret, key material, a kid or an unverified claim value.

The Rust core raises these classes by code (``ERRORS_BY_CODE``); a test checks that the two lists agree.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ERRORS_BY_CODE",
    "AuthError",
    "AuthUnavailable",
    "BastionError",
    "ConfigurationError",
    "Forbidden",
    "InsufficientScope",
    "InvalidAudience",
    "InvalidClaim",
    "InvalidConfiguration",
    "InvalidIssuer",
    "InvalidKeyError",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidToken",
    "InvalidType",
    "MissingClaim",
    "MissingToken",
    "RateLimited",
    "TokenExpired",
    "TokenMalformed",
    "TokenNotYetValid",
    "TokenRevoked",
    "TokenTooLarge",
    "UnknownKey",
    "UnknownToken",
    "UnsupportedAlgorithm",
    "UnsupportedHeader",
    "WeakKeyError",
]


class BastionError(Exception):
    """Base of every bastion error. ``code`` is stable; ``message`` is safe to show a client."""

    code: ClassVar[str] = "bastion_error"
    default_message: ClassVar[str] = "bastion error"

    def __init__(self, message: str | None = None) -> None:
        self.message: str = message if message is not None else self.default_message
        super().__init__(self.message)

    def _extra(self) -> dict[str, Any]:
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._extra()))

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._extra().items() if v is not None)
        return f"{type(self).__name__}({self.message!r}{extra})"


def _rebuild(cls: type[BastionError], message: str, extra: dict[str, Any]) -> BastionError:
    return cls(message, **extra)


# --------------------------------------------------------------------------------------------------
# construction time


class ConfigurationError(BastionError, ValueError):
    """A key, verifier, store or limiter was configured in a way bastion refuses."""

    code: ClassVar[str] = "invalid_configuration"
    default_message = "invalid configuration"


InvalidConfiguration = ConfigurationError


class WeakKeyError(ConfigurationError):
    """A key is too weak for its algorithm (short HMAC secret, RSA modulus under 2048 bits, e < 3)."""

    code = "weak_key"
    default_message = "the key is too weak for its algorithm"


class InvalidKeyError(ConfigurationError):
    """A key could not be loaded or used (bad PEM/JWK, wrong curve, point not on the curve, …)."""

    code = "invalid_key"
    default_message = "the key is invalid"


# --------------------------------------------------------------------------------------------------
# request time


class AuthError(BastionError):
    """A request failed authentication, authorization or throttling.

    ``status`` is the HTTP status to answer with; ``rfc6750_error`` the RFC 6750 ``error`` parameter of the
    ``WWW-Authenticate: Bearer`` header (``None`` when the header carries no error or is not sent).
    """

    code: ClassVar[str] = "auth_error"
    status: ClassVar[int] = 401
    rfc6750_error: ClassVar[str | None] = "invalid_token"
    default_message = "authentication failed"

    def to_dict(self) -> dict[str, str]:
        """The JSON body: ``{"error": code, "message": message}``."""
        return {"error": self.code, "message": self.message}


class MissingToken(AuthError):
    code = "missing_token"
    rfc6750_error = None
    default_message = "an Authorization: Bearer token is required"


class InvalidRequest(AuthError):
    code = "invalid_request"
    status = 400
    rfc6750_error = "invalid_request"
    default_message = "the Authorization header is malformed"


class InvalidToken(AuthError):
    """Base of every 401 ``invalid_token`` error: the token was presented but is not acceptable."""

    code = "invalid_token"
    default_message = "the token is invalid"


class TokenMalformed(InvalidToken):
    code = "token_malformed"
    default_message = "the token is not well formed"


class TokenTooLarge(InvalidToken):
    code = "token_too_large"
    default_message = "the token is too large"


class UnsupportedAlgorithm(InvalidToken):
    code = "unsupported_algorithm"
    default_message = "the token's algorithm is not allowed"


class UnsupportedHeader(InvalidToken):
    code = "unsupported_header"
    default_message = "the token uses a header bastion does not support"


class UnknownKey(InvalidToken):
    code = "unknown_key"
    default_message = "no key matches the token"


class InvalidSignature(InvalidToken):
    code = "invalid_signature"
    default_message = "the token's signature is invalid"


class _ClaimError(InvalidToken):
    """An error about one claim; ``claim`` names it (never its value)."""

    def __init__(self, message: str | None = None, *, claim: str | None = None) -> None:
        super().__init__(message)
        self.claim: str | None = claim

    def _extra(self) -> dict[str, Any]:
        return {"claim": self.claim}


class TokenExpired(_ClaimError):
    code = "token_expired"
    default_message = "the token has expired"

    def __init__(self, message: str | None = None, *, claim: str | None = "exp") -> None:
        super().__init__(message, claim=claim)


class TokenNotYetValid(_ClaimError):
    code = "token_not_yet_valid"
    default_message = "the token is not valid yet"

    def __init__(self, message: str | None = None, *, claim: str | None = "nbf") -> None:
        super().__init__(message, claim=claim)


class InvalidIssuer(_ClaimError):
    code = "invalid_issuer"
    default_message = "the token's issuer is not accepted"

    def __init__(self, message: str | None = None, *, claim: str | None = "iss") -> None:
        super().__init__(message, claim=claim)


class InvalidAudience(_ClaimError):
    code = "invalid_audience"
    default_message = "the token's audience is not accepted"

    def __init__(self, message: str | None = None, *, claim: str | None = "aud") -> None:
        super().__init__(message, claim=claim)


class InvalidType(_ClaimError):
    code = "invalid_type"
    default_message = "the token's type is not accepted"

    def __init__(self, message: str | None = None, *, claim: str | None = "typ") -> None:
        super().__init__(message, claim=claim)


class MissingClaim(_ClaimError):
    code = "missing_claim"
    default_message = "a required claim is missing"


class InvalidClaim(_ClaimError):
    code = "invalid_claim"
    default_message = "a claim has the wrong type or value"


class UnknownToken(InvalidToken):
    code = "unknown_token"
    default_message = "the token is not known"


class TokenRevoked(InvalidToken):
    code = "token_revoked"
    default_message = "the token has been revoked"


class InsufficientScope(AuthError):
    """Authenticated, but the token's scopes do not cover the route; ``required_scopes`` lists them."""

    code = "insufficient_scope"
    status = 403
    rfc6750_error = "insufficient_scope"
    default_message = "the token does not carry the scopes this resource requires"

    def __init__(self, message: str | None = None, *, required_scopes: tuple[str, ...] | list[str] = ()) -> None:
        super().__init__(message)
        self.required_scopes: tuple[str, ...] = tuple(required_scopes)

    def _extra(self) -> dict[str, Any]:
        return {"required_scopes": self.required_scopes}


class Forbidden(AuthError):
    code = "forbidden"
    status = 403
    rfc6750_error = "insufficient_scope"
    default_message = "this identity is not allowed to use this resource"


class _RetryableError(AuthError):
    rfc6750_error = None

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after: float | None = retry_after

    def _extra(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class RateLimited(_RetryableError):
    """Over the identity's rate; ``retry_after`` (seconds) says when a retry can succeed."""

    code = "rate_limited"
    status = 429
    default_message = "too many requests"


class AuthUnavailable(_RetryableError):
    """The token store or key source could not be reached; bastion fails closed."""

    code = "auth_unavailable"
    status = 503
    default_message = "authentication is temporarily unavailable"


def _leaf_classes() -> dict[str, type[BastionError]]:
    found: dict[str, type[BastionError]] = {}
    stack: list[type[BastionError]] = [BastionError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.code not in ("bastion_error", "auth_error", "invalid_token") and not cls.__name__.startswith("_"):
            found.setdefault(cls.code, cls)
    return found


#: Every error class bastion raises, by its code. The Rust core raises through this mapping.
ERRORS_BY_CODE: dict[str, type[BastionError]] = _leaf_classes()
