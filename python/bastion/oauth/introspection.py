"""Token introspection (RFC 7662) and revocation (RFC 7009), for callers authenticated as clients.

Whatever is not a live token of this provider — unknown, expired, revoked, malformed, signed by someone else,
an API key of the store, or issued to another client when the caller may not see those — introspects as
``{"active": false}`` and nothing more. Revocation answers 200 for every token it cannot or need not revoke
(RFC 7009 §2.2), so it tells nothing about tokens either; revoking a refresh token revokes its family.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bastion._core import _Miss
from bastion.errors import AuthError, BastionError
from bastion.oauth import events, sql
from bastion.oauth.clients import apply_killed
from bastion.oauth.http import OAuthError
from bastion.tokens import ops
from bastion.tokens.store import Flow, _Sql

if TYPE_CHECKING:
    from bastion.oauth.provider import Provider

__all__ = ["introspect", "revoke"]

INACTIVE: dict[str, Any] = {"active": False}


def _token(params: dict[str, str]) -> str:
    token = params.get("token")
    if token is None:
        raise OAuthError("invalid_request", "the token parameter is required")
    return token


def _jwt_claims(provider: Provider, token: str) -> dict[str, Any] | None:
    """The claims of a live access JWT of this provider, or None."""
    store = provider.store
    try:
        claims = provider.verifier().verify(token)
    except BastionError:
        return None
    jti, sub, iat = claims.get("jti"), claims.get("sub"), claims.get("iat")
    if not isinstance(jti, str) or not isinstance(sub, str) or store._jti_denied(jti):
        return None
    cut = store.subject_valid_after(sub)
    if cut is not None and (not isinstance(iat, int | float) or iat <= cut):
        return None
    return claims


def _opaque(provider: Provider, token: str) -> Flow[Any]:
    """The record (TokenInfo) of a live access or refresh token of this provider, or None."""
    store = provider.store
    try:
        probed = store._probe(token, None)
        principal = probed if not isinstance(probed, _Miss) else (yield from store._verified(token, None, probed))
    except AuthError:
        return None
    info = yield from store._get(principal.token_id)
    if info is None or info.kind not in ("a", "r") or info.client_id is None:
        return None
    return info


def introspect(provider: Provider, caller: sql.ClientRow, params: dict[str, str]) -> Flow[dict[str, Any]]:
    token = _token(params)
    if token.count(".") == 2:
        claims = _jwt_claims(provider, token)
        if claims is None or (claims.get("client_id") != caller.client_id and not caller.introspect_any):
            return INACTIVE
        doc = {"active": True, "token_type": "Bearer"}
        doc.update(
            {k: claims[k] for k in ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti") if k in claims}
        )
        return doc
    info = yield from _opaque(provider, token)
    if info is None or (info.client_id != caller.client_id and not caller.introspect_any):
        return INACTIVE
    doc = {
        "active": True,
        "token_type": "Bearer" if info.kind == "a" else "refresh_token",
        "scope": " ".join(info.scopes),
        "client_id": info.client_id,
        "sub": info.subject,
        "exp": int(info.expires_at),
        "iat": int(info.created_at),
        "iss": provider.issuer,
    }
    if info.kind == "a":
        doc["aud"] = provider.audience
    return doc


def revoke(provider: Provider, caller: sql.ClientRow, params: dict[str, str]) -> Flow[None]:
    token = _token(params)
    store, now = provider.store, time.time()
    if token.count(".") == 2:
        claims = _jwt_claims(provider, token)
        if claims is not None and claims.get("client_id") == caller.client_id:
            jti, exp = claims["jti"], float(claims.get("exp", now + provider.access_ttl))
            yield _Sql(sql.serialized(store._dialect, ops.revoke_jti(store._dialect, jti, exp, now)), write=True)
            store._deny_jti(jti, exp)
            events.emit("token_revoked", client_id=caller.client_id, token_id=claims["jti"], token_type="jwt")
        return None
    try:
        keys = [c for c in store._lookup_keys(token) if c[0] == "blake3"]
    except AuthError:
        return None
    row: sql.TokenRow | None = yield _Sql(sql.find_record(keys))
    if row is None or row.client_id != caller.client_id or row.kind not in ("a", "r"):
        return None  # unknown, or another client's: RFC 7009 §2.2 answers 200 all the same
    if row.kind == "r":
        killed = yield _Sql(sql.revoke_family(store._dialect, row.family, "oauth_revoke", now), write=True)
        apply_killed(store, killed)
        store._evict(row.id)
        events.emit(
            "token_revoked", client_id=caller.client_id, token_id=row.id, token_type="refresh_token",
            family_id=row.family, tokens_revoked=len(killed.ids) + len(killed.jtis),
        )  # fmt: skip
    else:
        yield _Sql(sql.serialized(store._dialect, ops.revoke(store._dialect, row.id, "oauth_revoke", now)), write=True)
        store._evict(row.id)
        events.emit("token_revoked", client_id=caller.client_id, token_id=row.id, token_type="access_token")
    return None
