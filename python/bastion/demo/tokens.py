"""The demo's credentials: one of each kind a client of the API might hold, good and bad.

Good: a user's JWT, a third-party opaque API key, an internal service's JWT, an admin's JWT. Bad: an expired
JWT, a revoked API key, a JWT signed by another key under the same ``kid``, a JWT for another audience, a
well-formed API key no store here issued. They are printed (``curl`` lines) because the demo is the user's own
throwaway; the audit log must never see them, and the tour checks that it does not.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import bastion
from bastion.demo.app import AUDIENCE, ISSUER, Service

USER = "user_8c1f2b7e"
PARTNER = "app_42"
SERVICE = "svc-billing"
ADMIN = "admin_01"


@dataclass(frozen=True)
class Tokens:
    user: str
    third_party: str
    internal: str
    admin: str
    expired: str
    revoked: str
    forged: str
    other_audience: str
    unknown: str

    def secrets(self) -> list[str]:
        """Every token, for the check that none reaches a log."""
        return list(vars(self).values())


def mint(svc: Service) -> Tokens:
    """Sign the JWTs with the service's key and issue the opaque tokens in its store (one then revoked)."""
    signer = bastion.JWTSigner(svc.key, "HS256", issuer=ISSUER, audience=AUDIENCE, ttl=3600)
    user_claims = {"sub": USER, "scope": "read:reports", "role": "analyst", "tier": "internal"}
    partner = svc.store.issue(
        PARTNER, client_id=PARTNER, scopes=["read:reports"], tier="third_party", ttl=86400, name="partner dashboard"
    )
    revoked = svc.store.issue(PARTNER, client_id=PARTNER, scopes=["read:reports"], tier="third_party", ttl=86400)
    svc.store.revoke_id(revoked.id, reason="leaked in a public repository")
    impostor = bastion.Key.hmac(secrets.token_bytes(32), kid="demo-hs256")  # same kid, another secret
    stranger = bastion.TokenStore(None)  # its own pepper: its tokens are well formed, and unknown here
    try:
        unknown = stranger.issue(PARTNER, ttl=60).token
    finally:
        stranger.close()
    return Tokens(
        user=signer.sign(user_claims),
        third_party=partner.token,
        internal=signer.sign({"sub": SERVICE, "client_id": SERVICE, "scope": "read:metrics", "tier": "internal"}),
        admin=signer.sign({"sub": ADMIN, "role": "admin", "scope": "read:reports", "tier": "admin"}),
        expired=signer.sign(user_claims, now=time.time() - 7200),
        revoked=revoked.token,
        forged=bastion.JWTSigner(impostor, "HS256", issuer=ISSUER, audience=AUDIENCE).sign(
            {**user_claims, "role": "admin"}
        ),
        other_audience=bastion.JWTSigner(svc.key, "HS256", issuer=ISSUER, audience="api://billing").sign(user_claims),
        unknown=unknown,
    )


def curl_lines(url: str, tokens: Tokens) -> list[str]:
    """Ready-to-paste requests against the running demo."""
    return [
        f"curl -i {url}/health",
        f"curl -i {url}/api/v1/me -H 'Authorization: Bearer {tokens.user}'",
        f"curl -i {url}/api/v1/reports -H 'Authorization: Bearer {tokens.user}'",
        f"curl -i {url}/api/v1/reports -H 'X-API-Key: {tokens.third_party}'",
        f"curl -i {url}/api/v1/reports -H 'Authorization: Bearer {tokens.internal}'",
        f"curl -i -X DELETE {url}/api/v1/reports/7 -H 'Authorization: Bearer {tokens.admin}'",
        f"curl -i {url}/api/v1/me -H 'Authorization: Bearer {tokens.expired}'",
        f"curl -i {url}/api/v1/me -H 'X-API-Key: {tokens.revoked}'",
    ]
