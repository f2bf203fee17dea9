"""bastion: the bearer-token layer for Python APIs.

Verify JWTs and opaque (database) tokens, enforce scopes and roles, throttle by identity and audit every
request, with the per-request work done in Rust. See README.md for the tour and DESIGN (docs/) for the
contract.
"""

from __future__ import annotations

from bastion import dangerous, errors
from bastion._core import Decision, JWTSigner, JWTVerifier, Key, KeySet, Rate, RateLimiter, __version__
from bastion.errors import (
    AuthError,
    AuthUnavailable,
    BastionError,
    ConfigurationError,
    Forbidden,
    InsufficientScope,
    InvalidAudience,
    InvalidClaim,
    InvalidIssuer,
    InvalidKeyError,
    InvalidRequest,
    InvalidSignature,
    InvalidToken,
    InvalidType,
    MissingClaim,
    MissingToken,
    RateLimited,
    TokenExpired,
    TokenMalformed,
    TokenNotYetValid,
    TokenRevoked,
    TokenTooLarge,
    UnknownKey,
    UnknownToken,
    UnsupportedAlgorithm,
    UnsupportedHeader,
    WeakKeyError,
)
from bastion.ratelimit.redis import RedisRateLimiter
from bastion.tokens import IssuedToken, Principal, TokenInfo, TokenStore

# isort: split
# the request path builds on everything above
from bastion import asgi, audit, wsgi
from bastion._gate import ANONYMOUS, Anonymous, AuthContext
from bastion.auth import Authenticator, Outcome
from bastion.jwks import JWKSClient
from bastion.rules import Rule

__all__ = [
    "ANONYMOUS",
    "Anonymous",
    "AuthContext",
    "AuthError",
    "AuthUnavailable",
    "Authenticator",
    "BastionError",
    "ConfigurationError",
    "Decision",
    "Forbidden",
    "InsufficientScope",
    "InvalidAudience",
    "InvalidClaim",
    "InvalidIssuer",
    "InvalidKeyError",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidToken",
    "InvalidType",
    "IssuedToken",
    "JWKSClient",
    "JWTSigner",
    "JWTVerifier",
    "Key",
    "KeySet",
    "MissingClaim",
    "MissingToken",
    "Outcome",
    "Principal",
    "Rate",
    "RateLimited",
    "RateLimiter",
    "RedisRateLimiter",
    "Rule",
    "TokenExpired",
    "TokenInfo",
    "TokenMalformed",
    "TokenNotYetValid",
    "TokenRevoked",
    "TokenStore",
    "TokenTooLarge",
    "UnknownKey",
    "UnknownToken",
    "UnsupportedAlgorithm",
    "UnsupportedHeader",
    "WeakKeyError",
    "__version__",
    "asgi",
    "audit",
    "dangerous",
    "errors",
    "wsgi",
]
