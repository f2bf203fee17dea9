"""bastion: the bearer-token layer for Python APIs.

Verify JWTs and opaque (database) tokens, enforce scopes and roles, throttle by identity and audit every
request, with the per-request work done in Rust. See README.md for the tour and DESIGN (docs/) for the
contract.
"""

from __future__ import annotations

from bastion import errors
from bastion._core import __version__
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

# -- jwt (issue 2) --
# isort: split
from bastion import dangerous
from bastion._core import JWTSigner, JWTVerifier, Key, KeySet

# -- opaque (issue 3) --
from bastion.tokens import IssuedToken, Principal, TokenInfo, TokenStore

# -- ratelimit (issue 4) --
# isort: split
from bastion._core import Decision, Rate, RateLimiter
from bastion.ratelimit.redis import RedisRateLimiter

__all__ = [  # noqa: RUF022 - one sorted section per domain, so that merges stay trivial
    "AuthError",
    "AuthUnavailable",
    "BastionError",
    "ConfigurationError",
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
    "__version__",
    "errors",
    # -- jwt (issue 2) --
    "JWTSigner",
    "JWTVerifier",
    "Key",
    "KeySet",
    "dangerous",
    # -- opaque (issue 3) --
    "IssuedToken",
    "Principal",
    "TokenInfo",
    "TokenStore",
    # -- ratelimit (issue 4) --
    "Decision",
    "Rate",
    "RateLimiter",
    "RedisRateLimiter",
]
