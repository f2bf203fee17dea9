"""A minimal Flask API behind bastion: opaque tokens from an SQLite store, rate limits by tier, one audit
record per request as a JSON line.

    GET    /health                open
    GET    /api/v1/me             any valid token
    GET    /api/v1/reports        the scope read:reports
    DELETE /api/v1/reports/{id}   the role admin

Run it (the pepper keys the token digests: keep it secret, and the same for every process)::

    export BASTION_PEPPER=... BASTION_TOKENS_URL=sqlite:///tokens.db
    gunicorn 'examples.flask_app:create_app()'

``BASTION_AUDIT_FILE`` names a file for the audit lines (default: standard error).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import bastion
from bastion.integrations.flask import Bastion, current_principal, requires
from flask import Flask

#: the rate-limit tiers; a token's tier is chosen when it is issued (``store.issue(..., tier="standard")``)
TIERS: dict[str, bastion.Rate | None] = {
    "standard": bastion.Rate(100, per=60),
    "trial": bastion.Rate(3, per=60),
    "admin": None,
}
RULES = [bastion.Rule("/health", auth="none")]


def make_authenticator() -> bastion.Authenticator:
    """The Authenticator this process serves with, configured from the environment."""
    pepper = os.environ.get("BASTION_PEPPER")
    if not pepper:
        raise bastion.ConfigurationError("set BASTION_PEPPER: the secret that keys the stored token digests")
    store = bastion.TokenStore(os.environ.get("BASTION_TOKENS_URL", "sqlite:///tokens.db"), pepper=pepper.encode())
    limiter = bastion.RateLimiter(TIERS, default="trial")
    return bastion.Authenticator(tokens=store, limiter=limiter, audit=bastion.audit.AuditLog())


def log_audit_records() -> None:
    """Write the ``bastion.audit`` records as JSON lines, to ``BASTION_AUDIT_FILE`` or standard error."""
    log = logging.getLogger("bastion.audit")
    if log.handlers:
        return
    path = os.environ.get("BASTION_AUDIT_FILE")
    handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(bastion.audit.JSONFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def create_app(auth: bastion.Authenticator | None = None) -> Flask:
    """The app; ``auth`` defaults to :func:`make_authenticator`."""
    app = Flask(__name__)
    log_audit_records()
    Bastion(app, auth or make_authenticator(), rules=RULES)

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    @app.get("/api/v1/me")
    def me() -> Any:
        p = current_principal
        return {"subject": p.subject, "scopes": sorted(p.scopes), "roles": sorted(p.roles)}

    @app.get("/api/v1/reports")
    @requires(scopes=["read:reports"])
    def reports() -> Any:
        return {"reports": [{"id": "1", "owner": current_principal.subject}]}

    @app.delete("/api/v1/reports/<report_id>")
    @requires(roles=["admin"])
    def delete_report(report_id: str) -> Any:
        return {"deleted": report_id}

    return app
