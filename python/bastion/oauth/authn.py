"""Client authentication at the provider's endpoints: client_secret_basic, client_secret_post and
private_key_jwt (RFC 7523), exactly one per request (RFC 6749 §2.3).

Every refusal is the same ``invalid_client`` (401, with a Basic challenge): an unknown client, a disabled one,
a wrong secret and a bad assertion look alike from outside. The secret is compared by keyed digest in
constant time; an assertion's ``jti`` is remembered until it expires, so a replayed assertion is refused.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bastion._core import JWTVerifier, KeySet, _decode_unverified
from bastion.errors import BastionError
from bastion.oauth import sql
from bastion.oauth.clients import ASSERTION_ALGORITHMS, secret_matches
from bastion.oauth.http import OAuthError, Request, basic_credentials
from bastion.tokens.store import Flow, _Sql

if TYPE_CHECKING:
    from bastion.oauth.provider import Provider

__all__ = ["JWT_BEARER", "authenticate", "claimed_client_id", "invalid_client"]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: the longest an assertion may live (exp - now): its jti is remembered that long
MAX_ASSERTION_LIFE = 600.0


def invalid_client(description: str = "client authentication failed") -> OAuthError:
    return OAuthError("invalid_client", description, 401, headers=[("www-authenticate", 'Basic realm="oauth"')])


def _assertion_issuer(assertion: str) -> str | None:
    try:
        claims = _decode_unverified(assertion, max_token_bytes=8192)["claims"]
    except BastionError:
        return None
    iss = claims.get("iss")
    return iss if isinstance(iss, str) else None


def claimed_client_id(request: Request, params: dict[str, str]) -> str | None:
    """The client id the request says it is, before any check (for throttling the failures of that id)."""
    try:
        basic = basic_credentials(request)
    except OAuthError:
        basic = None
    if basic is not None:
        return basic[0]
    if "client_assertion" in params:
        return _assertion_issuer(params["client_assertion"])
    return params.get("client_id")


def authenticate(provider: Provider, request: Request, params: dict[str, str]) -> Flow[sql.ClientRow]:
    """The authenticated client of ``request``, or raise ``invalid_client``."""
    if "authorization" in request.repeated:
        raise OAuthError("invalid_request", "the Authorization header is repeated")
    basic = basic_credentials(request)
    posted = "client_secret" in params
    asserted = "client_assertion" in params or "client_assertion_type" in params
    if (basic is not None and (posted or asserted)) or (posted and asserted):
        raise OAuthError("invalid_request", "use one client authentication method")
    now = time.time()
    if asserted:
        return (yield from _private_key_jwt(provider, params, now))
    if basic is not None:
        client_id, secret = basic
        if "client_id" in params and params["client_id"] != client_id:
            raise invalid_client()
    elif posted:
        client_id, secret = params.get("client_id", ""), params["client_secret"]
    else:
        raise invalid_client("client authentication is required")
    row = yield from _client(client_id)
    if row.secret_digest is None or not secret_matches(provider.store, row, secret, now):
        raise invalid_client()
    return row


def _client(client_id: str) -> Flow[sql.ClientRow]:
    if not client_id or len(client_id) > 128:
        raise invalid_client()
    row: sql.ClientRow | None = yield _Sql(sql.get_client(client_id))
    if row is None or row.disabled:
        raise invalid_client()
    return row


def _private_key_jwt(provider: Provider, params: dict[str, str], now: float) -> Flow[sql.ClientRow]:
    if params.get("client_assertion_type") != JWT_BEARER or "client_assertion" not in params:
        raise invalid_client("client_assertion_type must be " + JWT_BEARER)
    assertion = params["client_assertion"]
    client_id = _assertion_issuer(assertion)
    if client_id is None or ("client_id" in params and params["client_id"] != client_id):
        raise invalid_client()
    row = yield from _client(client_id)
    if row.jwks is None:
        raise invalid_client()
    try:
        claims = _verifier(provider, row.jwks, client_id).verify(assertion, now=now)
    except BastionError:
        raise invalid_client() from None
    exp, jti = claims.get("exp"), claims.get("jti")
    if claims.get("sub") != client_id or not isinstance(jti, str) or not jti or len(jti) > 256:
        raise invalid_client()
    if not isinstance(exp, int | float) or exp - now > MAX_ASSERTION_LIFE:
        raise invalid_client("the assertion lives too long")
    if (yield _Sql(sql.seen_assertion(client_id, jti, float(exp), now), write=True)):
        raise invalid_client("the assertion was used before")
    return row


def _verifier(provider: Provider, jwks: str, client_id: str) -> JWTVerifier:
    cached = provider._assertion_verifiers.get(client_id)
    if cached is not None and cached[0] == jwks:
        return cached[1]
    audience: Sequence[str] = [provider.issuer, *provider.endpoint_urls()]
    verifier = JWTVerifier(
        KeySet.from_jwks(jwks),
        algorithms=list(ASSERTION_ALGORITHMS),
        issuer=client_id,
        audience=list(audience),
        require=["exp", "iss", "sub", "aud", "jti"],
        leeway=30,
    )
    if len(provider._assertion_verifiers) > 10_000:
        provider._assertion_verifiers.clear()
    provider._assertion_verifiers[client_id] = (jwks, verifier)
    return verifier
