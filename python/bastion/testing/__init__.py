"""Helpers for an application's own tests: tokens minted for a test, and a fixed principal.

- :func:`mint_token` — a real token, verified by the application's Authenticator as any other: a JWT from a
  :class:`bastion.JWTSigner`, or an opaque token from a :class:`bastion.TokenStore` (or the store of an
  Authenticator). Use it to test the whole request path.
- :func:`principal` — a :class:`bastion.Principal` built without a token, for overriding authentication in a
  framework's tests (:mod:`bastion.testing.fastapi`) or for calling code that takes a principal.

Never use either outside tests: a fixed principal is authentication switched off.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from bastion import _core
from bastion._core import JWTSigner, Principal
from bastion.auth import Authenticator
from bastion.errors import ConfigurationError
from bastion.rules import _names as names_of
from bastion.tokens import TokenStore

__all__ = ["DEFAULT_TTL", "mint_token", "principal"]

#: the lifetime of a minted token unless ``ttl=`` says otherwise: long enough for a slow test, short enough
#: that a token copied out of a test log is soon useless
DEFAULT_TTL = 900


def mint_token(
    issuer: JWTSigner | TokenStore | Authenticator,
    subject: str,
    *,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    tier: str | None = None,
    ttl: float = DEFAULT_TTL,
    claims: Mapping[str, Any] | None = None,
) -> str:
    """A token for ``subject`` with ``scopes``, ``roles`` and ``tier``, valid ``ttl`` seconds (default 900).

    ``issuer``: a :class:`bastion.JWTSigner` — a JWT whose ``scope`` is the space-separated scopes, ``roles`` a
    list, ``tier`` and ``exp`` set, plus ``claims`` (which may override any of them), with the signer's ``iss``,
    ``aud`` and ``typ``; a :class:`bastion.TokenStore` — an opaque token issued by it (``claims`` become the
    record's metadata); an :class:`bastion.Authenticator` — an opaque token from its store (an Authenticator
    verifies JWTs, it cannot sign them: pass the signer for a JWT). ``ConfigurationError`` for anything else.
    """
    if not isinstance(subject, str) or not subject:
        raise ConfigurationError("subject must be a non-empty string")
    scope_names, role_names = names_of(scopes, "scopes"), names_of(roles, "roles")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise ConfigurationError("ttl must be a positive number of seconds")
    if claims is not None and not isinstance(claims, Mapping):
        raise ConfigurationError("claims must be a mapping")
    if isinstance(issuer, JWTSigner):
        payload: dict[str, Any] = {"sub": subject, "exp": int(time.time() + ttl)}
        if scope_names:
            payload["scope"] = " ".join(scope_names)
        if role_names:
            payload["roles"] = list(role_names)
        if tier is not None:
            payload["tier"] = tier
        payload.update(claims or {})
        return issuer.sign(payload)
    if isinstance(issuer, Authenticator):
        store = issuer._tokens
        if store is None:
            raise ConfigurationError(
                "this Authenticator has no TokenStore to issue an opaque token: pass the JWTSigner to mint a JWT"
            )
        issuer = store
    if isinstance(issuer, TokenStore):
        issued = issuer.issue(
            subject, scopes=scope_names, roles=role_names, tier=tier, ttl=ttl, metadata=dict(claims or {})
        )
        return issued.token
    raise ConfigurationError("mint_token takes a bastion.JWTSigner, a bastion.TokenStore or a bastion.Authenticator")


# the claims a verifier turns into a principal's fields: principal() takes those as arguments
_OWN_CLAIMS = frozenset({"sub", "scope", "scp", "roles", "role", "tier", "client_id", "azp", "iss", "jti", "exp"})


def principal(
    subject: str,
    *,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    tier: str | None = None,
    client_id: str | None = None,
    token_type: Literal["jwt", "opaque"] = "jwt",  # noqa: S107 - a kind of token, not a secret
    token_id: str | None = None,
    issuer: str | None = None,
    expires_at: float | None = None,
    claims: Mapping[str, Any] | None = None,
) -> Principal:
    """A :class:`bastion.Principal` as bastion would build it from a verified token with these values, without one.

    ``client_id`` equal to ``subject`` makes it a machine client (``rate_limit_key`` is then the client id);
    ``expires_at`` None: no expiry; ``claims`` (JSON values) are what ``Principal.claims`` shows. Built through the
    Principal's own pickle constructor, so it is the real (immutable, Rust) type."""
    optional = {"tier": tier, "client_id": client_id, "token_id": token_id, "issuer": issuer}
    if not isinstance(subject, str) or not subject:
        raise ConfigurationError("subject must be a non-empty string")
    for name, value in optional.items():
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{name} must be a string or None")
    if token_type not in ("jwt", "opaque"):
        raise ConfigurationError('token_type is "jwt" or "opaque"')
    if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, (int, float))):
        raise ConfigurationError("expires_at must be epoch seconds or None")
    scope_names, role_names = names_of(scopes, "scopes"), names_of(roles, "roles")
    if not all(isinstance(n, str) for n in (*scope_names, *role_names)):
        raise ConfigurationError("scopes and roles must be strings")
    clash = _OWN_CLAIMS & set(claims or ())
    if clash:  # the principal's fields are the arguments: a claim of the same name would contradict one
        raise ConfigurationError(f"claims= cannot set {', '.join(sorted(clash))}: use the arguments of that name")
    try:
        text = None if claims is None else json.dumps(dict(claims), allow_nan=False)
    except (TypeError, ValueError):
        raise ConfigurationError("claims must be a mapping of JSON values") from None
    state = (
        subject,
        client_id,
        list(scope_names),
        list(role_names),
        tier,
        token_type,
        token_id,
        issuer,
        math.inf if expires_at is None else float(expires_at),
        client_id == subject,
        text,
    )
    return _core._restore_principal(state)
