"""A real :class:`bastion.Principal` for tests, made the only way bastion makes one: by verifying a token.

``Principal`` has no public constructor (it is built in Rust from a verified token or record). :func:`principal`
signs a JWT with a throwaway HMAC key and verifies it, so the result is exactly what a request with such a token
would see — its scopes, roles, tier, client id and claims — and the key dies with the call.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from bastion._core import JWTSigner, JWTVerifier, Key, Principal
from bastion.auth import Authenticator
from bastion.errors import ConfigurationError
from bastion.rules import Rule
from bastion.rules import _names as names_of

__all__ = ["principal"]

# the claims principal() writes from its own arguments: claims= may not set them behind their backs
_OWN_CLAIMS = frozenset({"sub", "scope", "scp", "roles", "role", "tier", "client_id", "azp"})


def principal(
    subject: str = "test-user",
    *,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    tier: str | None = None,
    client_id: str | None = None,
    claims: Mapping[str, Any] | None = None,
    ttl: int = 3600,
) -> Principal:
    """A :class:`bastion.Principal` of ``subject`` with ``scopes``, ``roles``, ``tier``, ``client_id`` (a machine
    client when it equals ``subject``) and extra ``claims`` (JSON values), valid for ``ttl`` seconds.
    ``ConfigurationError`` for a bad name or a claim that the other arguments own."""
    if not isinstance(subject, str) or not subject:
        raise ConfigurationError("subject must be a non-empty string")
    checked = Rule("/", scopes=names_of(scopes, "scopes"), roles=names_of(roles, "roles"))
    extra = dict(claims or {})
    clash = _OWN_CLAIMS & set(extra)
    if clash:
        raise ConfigurationError(f"claims= cannot set {', '.join(sorted(clash))}: use the arguments of that name")
    payload: dict[str, Any] = {**extra, "sub": subject}
    if checked.scopes:
        payload["scope"] = " ".join(checked.scopes)
    if checked.roles:
        payload["roles"] = list(checked.roles)
    if tier is not None:
        payload["tier"] = tier
    if client_id is not None:
        payload["client_id"] = client_id
    key = Key.hmac(secrets.token_bytes(32))
    token = JWTSigner(key, "HS256", ttl=ttl).sign(payload)
    verifier = JWTVerifier(key, algorithms=["HS256"], require=())
    found = Authenticator(jwt=verifier).authenticate(f"Bearer {token}")
    assert found is not None  # the default rule requires a token, and this one verifies
    return found
