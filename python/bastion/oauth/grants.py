"""Token issuance: the client_credentials grant (RFC 6749 §4.4), the refresh_token grant (§6) with rotation
and reuse detection (RFC 9700 §4.14), and ``Provider.issue_tokens`` for the application's own login route.

Tokens are minted in two halves: :func:`_mint` prepares the rows (the SQL to run, inside the caller's
transaction) and the response, and ``finish`` puts the new opaque records in this process's index once that
transaction has committed. A refresh exchange marks the old token used and inserts its successors in one
transaction, so a crash in between leaves either both or neither.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from bastion.errors import AuthError, ConfigurationError
from bastion.oauth import events, sql
from bastion.oauth.clients import apply_killed, check_client_id
from bastion.oauth.http import OAuthError
from bastion.tokens import ops
from bastion.tokens.ops import Op
from bastion.tokens.store import Flow, _Sql
from bastion.tokens.validate import names, plain

if TYPE_CHECKING:
    from bastion.oauth.provider import Provider

__all__ = ["client_credentials", "issue", "refresh", "requested_scopes"]

#: RFC 6749 §3.3 scope-token: printable ASCII but space, '"' and '\'
_SCOPE_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")


class _Minted(NamedTuple):
    response: dict[str, Any]
    op: Op
    finish: Callable[[], None]
    access_id: str
    refresh_id: str | None


def requested_scopes(params: dict[str, str]) -> list[str] | None:
    """The ``scope`` parameter as a list (None when absent); a malformed one is ``invalid_scope``."""
    text = params.get("scope")
    if text is None:
        return None
    scopes = [s for s in text.split(" ") if s]
    if not scopes or len(scopes) > 64 or not all(_SCOPE_RE.match(s) for s in scopes):
        raise OAuthError("invalid_scope", "the scope parameter is malformed")
    return list(dict.fromkeys(scopes))


def _within(requested: list[str] | None, allowed: Iterable[str]) -> list[str]:
    allowed = list(allowed)
    if requested is None:
        return allowed
    if not set(requested) <= set(allowed):
        raise OAuthError("invalid_scope", "a requested scope is not allowed for this client")
    return requested


def _mint(
    provider: Provider,
    client: sql.ClientRow,
    subject: str,
    scopes: list[str],
    *,
    family_id: str | None,
    parent_id: str | None,
    refresh_scopes: list[str] | None,
) -> _Minted:
    """The rows and response of a new access token, and of a refresh token when ``refresh_scopes`` is given
    (``family_id`` None starts a new family)."""
    store, now = provider.store, time.time()
    parts: list[Op] = []
    #: the opaque rows to index here once committed: (values, token, digest)
    fresh: list[tuple[dict[str, Any], str, bytes]] = []
    response: dict[str, Any] = {"token_type": "Bearer", "expires_in": int(provider.access_ttl)}
    refresh_id = None
    if refresh_scopes is not None:
        values, token, digest = store._prepare(
            subject, refresh_scopes, None, client.tier, provider.refresh_ttl, None, None, "r", client.client_id, now
        )
        family_id = family_id or values["id"]
        values["family_id"], values["parent_id"], refresh_id = family_id, parent_id, values["id"]
        parts.append(ops.insert_token(values))
        fresh.append((values, token, digest))
        response["refresh_token"] = token
    if provider.access_tokens == "jwt":
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {"sub": subject, "client_id": client.client_id, "jti": jti}
        if scopes:
            claims["scope"] = " ".join(scopes)
        if client.tier:
            claims["tier"] = client.tier
        response["access_token"] = provider._signer().sign(claims, now=now)
        parts.append(sql.record_jwt(jti, client.client_id, family_id, now + provider.access_ttl, now))
        access_id = jti
    else:
        values, token, digest = store._prepare(
            subject, scopes, None, client.tier, provider.access_ttl, None, None, "a", client.client_id, now
        )
        values["family_id"] = family_id
        parts.append(ops.insert_token(values))
        fresh.append((values, token, digest))
        response["access_token"] = token
        access_id = values["id"]
    response["scope"] = " ".join(scopes)

    def op() -> Op:
        for part in parts:
            yield from part

    def finish() -> None:
        for values, token, digest in fresh:
            store._issued(values, token, digest)

    return _Minted(response, op(), finish, access_id, refresh_id)


def client_credentials(provider: Provider, client: sql.ClientRow, params: dict[str, str]) -> Flow[dict[str, Any]]:
    """RFC 6749 §4.4: an access token for the client itself; never a refresh token (§4.4.3)."""
    if "client_credentials" not in json.loads(client.grant_types):
        raise OAuthError("unauthorized_client", "this client may not use the client_credentials grant")
    scopes = _within(requested_scopes(params), json.loads(client.scopes))
    minted = _mint(provider, client, client.client_id, scopes, family_id=None, parent_id=None, refresh_scopes=None)
    yield _Sql(minted.op, write=True)
    minted.finish()
    events.emit(
        "token_issued", grant="client_credentials", client_id=client.client_id, subject=client.client_id,
        token_id=minted.access_id, scopes=scopes,
    )  # fmt: skip
    return minted.response


def refresh(provider: Provider, client: sql.ClientRow, params: dict[str, str]) -> Flow[dict[str, Any]]:
    """RFC 6749 §6 with rotation: every answer carries a new refresh token, and the one presented is spent. A
    spent one presented again revokes its whole family — refresh and live access tokens alike."""
    if "refresh_token" not in json.loads(client.grant_types):
        raise OAuthError("unauthorized_client", "this client may not use the refresh_token grant")
    presented = params.get("refresh_token")
    if presented is None:
        raise OAuthError("invalid_request", "refresh_token is required")
    store = provider.store
    try:
        keys = [c for c in store._lookup_keys(presented) if c[0] == "blake3"]
    except AuthError:
        raise OAuthError("invalid_grant", "the refresh token is invalid") from None
    found: sql.TokenRow | None = yield _Sql(sql.find_record(keys))
    if found is None:
        raise OAuthError("invalid_grant", "the refresh token is invalid")
    token_id, granted = found.id, sql.scopes_of(found.scopes)
    allowed = set(json.loads(client.scopes))
    # the new tokens keep the grant's scopes that the client is still allowed (§6: never more than granted)
    kept = [s for s in granted if s in allowed]
    scopes = _within(requested_scopes(params), kept)
    minted: list[_Minted] = []

    def mint(row: sql.TokenRow) -> Op:
        successor = _mint(
            provider, client, row.subject, scopes, family_id=row.family, parent_id=row.id, refresh_scopes=kept
        )
        minted.append(successor)
        return successor.op

    now = time.time()
    outcome: sql.Refreshed = yield _Sql(
        sql.use_refresh(store._dialect, token_id, client.client_id, now, mint), write=True
    )
    if outcome.state == "reuse":
        assert outcome.killed is not None
        assert outcome.row is not None
        store._evict(token_id)
        apply_killed(store, outcome.killed)
        events.emit(
            "refresh_reuse_detected", client_id=client.client_id, subject=outcome.row.subject, token_id=token_id,
            family_id=outcome.row.family, tokens_revoked=len(outcome.killed.ids) + len(outcome.killed.jtis),
        )  # fmt: skip
        raise OAuthError("invalid_grant", "the refresh token is invalid")
    if outcome.state != "ok":
        raise OAuthError("invalid_grant", "the refresh token is invalid")
    store._evict(token_id)
    done = minted[0]
    done.finish()
    events.emit(
        "token_refreshed", client_id=client.client_id, subject=found.subject, token_id=done.access_id,
        refresh_token_id=done.refresh_id, parent_id=token_id, scopes=scopes,
    )  # fmt: skip
    return done.response


def issue(provider: Provider, subject: object, client_id: object, scopes: object) -> Flow[dict[str, Any]]:
    """``Provider.issue_tokens``: an RFC 6749 §5.1 response for ``subject`` (a user the application has just
    authenticated) through ``client_id``; a refresh token too when the client may use the refresh grant."""
    subject = plain(subject, "subject")
    cid = check_client_id(client_id)
    client: sql.ClientRow | None = yield _Sql(sql.get_client(cid))
    if client is None or client.disabled:
        raise ConfigurationError(f"no enabled client has the id {cid!r}")
    wanted = None if scopes is None else names(scopes, "scopes")  # type: ignore[arg-type]
    if wanted is not None and not all(_SCOPE_RE.match(s) for s in wanted):
        raise ConfigurationError("each scope is printable ASCII without spaces, quotes or backslashes")
    try:
        granted = _within(wanted, json.loads(client.scopes))
    except OAuthError:
        raise ConfigurationError("scopes must be within the client's allowed scopes") from None
    with_refresh = "refresh_token" in json.loads(client.grant_types)
    minted = _mint(
        provider, client, subject, granted, family_id=None, parent_id=None,
        refresh_scopes=granted if with_refresh else None,
    )  # fmt: skip
    yield _Sql(minted.op, write=True)
    minted.finish()
    events.emit(
        "token_issued", grant="login", client_id=client.client_id, subject=subject, token_id=minted.access_id,
        refresh_token_id=minted.refresh_id, scopes=granted,
    )  # fmt: skip
    return minted.response
