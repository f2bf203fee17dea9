"""The project's bastion objects: ``settings.BASTION`` points here.

Opaque tokens come from an SQLite store (``BASTION_TOKENS_URL``, keyed by the secret ``BASTION_PEPPER``); DRF's
``BastionThrottle`` limits each identity by the tier its token was issued with.
"""

from __future__ import annotations

import os

import bastion

#: the limiter of DRF's BastionThrottle (settings.BASTION["THROTTLE_LIMITER"])
THROTTLE = bastion.RateLimiter(
    {"standard": bastion.Rate(100, per=60), "trial": bastion.Rate(3, per=60), "admin": None},
    default="trial",
)


def make_authenticator() -> bastion.Authenticator:
    """The Authenticator of this process (settings.BASTION["AUTHENTICATOR"]), configured from the environment."""
    pepper = os.environ.get("BASTION_PEPPER")
    if not pepper:
        raise bastion.ConfigurationError("set BASTION_PEPPER: the secret that keys the stored token digests")
    store = bastion.TokenStore(os.environ.get("BASTION_TOKENS_URL", "sqlite:///tokens.db"), pepper=pepper.encode())
    return bastion.Authenticator(tokens=store, audit=bastion.audit.AuditLog())
