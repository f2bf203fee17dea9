"""What both example apps are configured with: environment variables, or defaults fit for a local try-out.

- ``BASTION_JWT_SECRET``: the HS256 secret of the access tokens (at least 32 bytes). Default: a random one per
  process, so that no secret is ever written in the code (JWTs minted elsewhere then fail, as they should).
- ``BASTION_TOKEN_DB``: the opaque-token store (default ``sqlite:///bastion-example.db``).
- ``BASTION_PEPPER``: the store's pepper (at least 32 bytes). Default: a random one per process (opaque tokens
  issued by an earlier run are then unknown).
- ``BASTION_AUDIT_FILE``: a file the audit records are appended to, one JSON object per line (default: none, the
  records go to the ``bastion.audit`` logger and wherever logging sends it).

Tiers: ``standard`` (600 requests a minute), ``trial`` (5 a minute), ``admin`` (unlimited).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import bastion

ISSUER = "https://auth.example.com"
TIERS: dict[str, bastion.Rate | None] = {
    "standard": bastion.Rate(600, per=60),
    "trial": bastion.Rate(5, per=60),
    "admin": None,
}


@dataclass
class Service:
    """The configured pieces an app is built from, and what it closes when it stops."""

    auth: bastion.Authenticator
    store: bastion.TokenStore
    audit: bastion.audit.AuditLog
    handler: logging.Handler | None

    def close(self) -> None:
        """Write the queued audit records, then close the store (a graceful shutdown calls this)."""
        self.audit.close()
        self.store.close()
        if self.handler is not None:
            logging.getLogger("bastion.audit").removeHandler(self.handler)
            self.handler.close()


def configure(env: Mapping[str, str] = os.environ) -> Service:
    """The Authenticator (HS256 JWTs and opaque tokens, rate-limited by tier, audited) from ``env``."""
    secret = env.get("BASTION_JWT_SECRET", "").encode() or secrets.token_bytes(32)
    pepper = env.get("BASTION_PEPPER", "").encode() or secrets.token_bytes(32)
    store = bastion.TokenStore(env.get("BASTION_TOKEN_DB", "sqlite:///bastion-example.db"), pepper=pepper)
    handler: logging.Handler | None = None
    if env.get("BASTION_AUDIT_FILE"):
        handler = logging.FileHandler(env["BASTION_AUDIT_FILE"], encoding="utf-8")
        handler.setFormatter(bastion.audit.JSONFormatter())
        log = logging.getLogger("bastion.audit")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    audit = bastion.audit.AuditLog()
    verifier = bastion.JWTVerifier(bastion.Key.hmac(secret, kid="k1"), algorithms=["HS256"], issuer=ISSUER)
    limiter = bastion.RateLimiter(TIERS, default="standard")
    auth = bastion.Authenticator(jwt=verifier, tokens=store, limiter=limiter, audit=audit)
    return Service(auth, store, audit, handler)
