"""``bastion.oauth.Provider``: the authorization server of an API's machine clients.

One object holds the configuration (issuer, signing keys, token kind and lifetimes, the limiter) and answers
every endpoint from a :class:`~bastion.oauth.http.Request`. Each endpoint is a flow (see
:mod:`bastion.tokens.store`) driven by the token store: :meth:`Provider.handle` blocking (WSGI),
:meth:`Provider.ahandle` awaited (ASGI), one body for both. Every request is throttled per address and per
claimed client id before any work, and failed client authentications count against a smaller budget:
repeated failures end in 429 with ``Retry-After``, never in a 5xx.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from bastion._core import JWTSigner, JWTVerifier, Rate, RateLimiter
from bastion.errors import AuthUnavailable, BastionError, ConfigurationError
from bastion.oauth import authn, grants, introspection
from bastion.oauth.clients import ASSERTION_ALGORITHMS, ClientRegistry
from bastion.oauth.http import MAX_BODY, OAuthError, Request, Response, form, json_response
from bastion.oauth.keys import KeyRing
from bastion.tokens.store import Flow, TokenStore
from bastion.tokens.validate import MAX_TTL, exact_str, names, number

if TYPE_CHECKING:
    from bastion.oauth.apps import ASGIApp, WSGIApp

__all__ = ["FAILURES_TIER", "REQUESTS_TIER", "Provider"]

TOKEN_PATH = "/oauth/token"
INTROSPECT_PATH = "/oauth/introspect"
REVOKE_PATH = "/oauth/revoke"
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"
RESOURCE_PATH = "/.well-known/oauth-protected-resource"

#: the limiter tier every request to a POST endpoint takes a token from (per address and per client id)
REQUESTS_TIER = "oauth_requests"
#: the tier a failed client authentication takes a token from; once empty, the caller gets 429
FAILURES_TIER = "oauth_failures"


def default_limiter() -> RateLimiter:
    """600 requests a minute per address and per client (bursts of 100); 10 failed authentications a minute."""
    return RateLimiter({REQUESTS_TIER: Rate(600, 60, burst=100), FAILURES_TIER: Rate(10, 60)}, default=REQUESTS_TIER)


def _throttled(retry_after: float) -> OAuthError:
    seconds = max(1, math.ceil(retry_after))
    return OAuthError("slow_down", "too many requests; retry later", 429, headers=[("retry-after", str(seconds))])


class Provider:
    """An OAuth 2.0 authorization server for machine clients over a :class:`bastion.TokenStore`.

    ``issuer``: the server's URL (``https://auth.example.com``; the endpoints hang under it). ``keys``: the
    :class:`KeyRing` signing JWT access tokens (default: a new ES256 key, for a single process).
    ``access_tokens``: ``"jwt"`` (RFC 9068, verified by anyone with the JWKS) or ``"opaque"`` (records in the
    store, revocable at once everywhere the store is read). ``audience``: the ``aud`` of access tokens (default
    the issuer). ``access_ttl`` (default 900 s) and ``refresh_ttl`` (default 30 days). ``limiter``: a
    :class:`bastion.RateLimiter` with the tiers ``oauth_requests`` and ``oauth_failures`` (default
    :func:`default_limiter`). ``scopes_supported``: advertised in the metadata (default: not advertised).
    """

    def __init__(
        self,
        store: TokenStore,
        *,
        issuer: str,
        keys: KeyRing | None = None,
        access_tokens: Literal["jwt", "opaque"] = "jwt",
        audience: str | None = None,
        access_ttl: float = 900.0,
        refresh_ttl: float = 30 * 86400.0,
        limiter: RateLimiter | None = None,
        scopes_supported: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(store, TokenStore):
            raise ConfigurationError("a Provider needs a bastion.TokenStore")
        # exact str copies: a str subclass's own methods are never called
        issuer_s, mode, audience_s = exact_str(issuer), exact_str(access_tokens), exact_str(audience)
        if issuer_s is None or not issuer_s.startswith(("https://", "http://")) or "?" in issuer_s or "#" in issuer_s:
            raise ConfigurationError("issuer is the server's https:// URL, without query or fragment")
        if keys is not None and not isinstance(keys, KeyRing):
            raise ConfigurationError("keys must be a bastion.oauth.KeyRing")
        if mode not in ("jwt", "opaque"):
            raise ConfigurationError("access_tokens is 'jwt' or 'opaque'")
        if audience is not None and not audience_s:
            raise ConfigurationError("audience is a non-empty str")
        if limiter is None:
            limiter = default_limiter()
        elif not isinstance(limiter, RateLimiter) or not {REQUESTS_TIER, FAILURES_TIER} <= set(limiter.policies):
            raise ConfigurationError(
                f"limiter must be a bastion.RateLimiter with tiers {REQUESTS_TIER!r}, {FAILURES_TIER!r}"
            )
        supported = None if scopes_supported is None else names(scopes_supported, "scopes_supported")
        self.store = store
        self.clients = ClientRegistry(store)
        self.issuer = issuer_s.rstrip("/")
        self._base = urlsplit(self.issuer).path
        self.keys = keys if keys is not None else KeyRing.generate()
        self.access_tokens = mode
        self.audience = audience_s or self.issuer
        self.access_ttl = number(access_ttl, "access_ttl", low=1, high=86400)
        self.refresh_ttl = number(refresh_ttl, "refresh_ttl", low=1, high=MAX_TTL)
        self.limiter = limiter
        self.scopes_supported = supported
        self._lock = threading.Lock()
        self._signers: tuple[str | None, JWTSigner] | None = None
        self._verifiers: tuple[tuple[str, ...], JWTVerifier] | None = None
        self._assertion_verifiers: dict[str, tuple[str, JWTVerifier]] = {}

    # ------------------------------------------------------------------------------------------ keys

    def _signer(self) -> JWTSigner:
        current = self.keys.current
        cached = self._signers
        if cached is None or cached[0] != current.kid:
            signer = self.keys.signer(issuer=self.issuer, audience=self.audience, ttl=int(self.access_ttl))
            self._signers = cached = (current.kid, signer)
        return cached[1]

    def verifier(self) -> JWTVerifier:
        """A verifier of this provider's JWT access tokens (every published key, its issuer and audience,
        ``typ: at+jwt``): what an ``Authenticator`` in the same process takes as ``jwt=``."""
        keyset = self.keys.keyset()
        kids = tuple(keyset.kids)
        cached = self._verifiers
        if cached is None or cached[0] != kids:
            verifier = JWTVerifier(
                keyset, algorithms=self.keys.algorithms(), issuer=self.issuer, audience=self.audience, typ="at+jwt"
            )
            self._verifiers = cached = (kids, verifier)
        return cached[1]

    # ------------------------------------------------------------------------------------------ documents

    def endpoint_urls(self) -> list[str]:
        return [self.issuer + p for p in (TOKEN_PATH, INTROSPECT_PATH, REVOKE_PATH)]

    def metadata(self) -> dict[str, Any]:
        """The RFC 8414 authorization server metadata."""
        methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
        doc: dict[str, Any] = {
            "issuer": self.issuer,
            "token_endpoint": self.issuer + TOKEN_PATH,
            "jwks_uri": self.issuer + JWKS_PATH,
            "grant_types_supported": ["client_credentials", "refresh_token"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "introspection_endpoint": self.issuer + INTROSPECT_PATH,
            "introspection_endpoint_auth_methods_supported": methods,
            "revocation_endpoint": self.issuer + REVOKE_PATH,
            "revocation_endpoint_auth_methods_supported": methods,
        }
        if self.scopes_supported is not None:
            doc["scopes_supported"] = self.scopes_supported
        return doc

    def resource_metadata(self) -> dict[str, Any]:
        """The RFC 9728 protected resource metadata of the API the tokens are for."""
        doc: dict[str, Any] = {
            "resource": self.audience,
            "authorization_servers": [self.issuer],
            "jwks_uri": self.issuer + JWKS_PATH,
            "bearer_methods_supported": ["header"],
        }
        if self.scopes_supported is not None:
            doc["scopes_supported"] = self.scopes_supported
        return doc

    # ------------------------------------------------------------------------------------------ requests

    def _gate(self, request: Request, params: dict[str, str]) -> list[str]:
        """Take one request from the budgets of the caller's address and claimed client id; refuse when
        either is spent, or when its failures are. Returns the keys, to charge failures to."""
        keys = ["addr:" + (request.client or "unknown")]
        claimed = authn.claimed_client_id(request, params)
        if claimed:
            keys.append("client:" + claimed[:128])
        for key in keys:
            look = self.limiter.check(key, FAILURES_TIER, cost=0)
            if look.remaining <= 0:
                raise _throttled(self._failure_interval())
        for key in keys:
            decision = self.limiter.check(key, REQUESTS_TIER)
            if not decision.allowed:
                raise _throttled(decision.retry_after)
        return keys

    def _failure_interval(self) -> float:
        rates = self.limiter.policies.get(FAILURES_TIER) or []
        return max((r.per / r.count for r in rates), default=1.0)

    def _failed(self, keys: list[str]) -> None:
        for key in keys:
            self.limiter.check(key, FAILURES_TIER)

    def _flow(self, request: Request) -> Flow[Response]:
        # mounted where the issuer URL points: its own path (https://api.example/auth) prefixes every endpoint
        path = request.path
        if self._base and path.startswith(self._base + "/"):
            path = path[len(self._base) :]
        if path in (METADATA_PATH, JWKS_PATH, RESOURCE_PATH):
            if request.method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            doc = {METADATA_PATH: self.metadata, JWKS_PATH: self.keys.jwks, RESOURCE_PATH: self.resource_metadata}
            return json_response(doc[path](), cache="public, max-age=300")
        if path not in (TOKEN_PATH, INTROSPECT_PATH, REVOKE_PATH):
            return json_response({"error": "not_found"}, 404)
        if request.method != "POST":
            return _not_allowed("POST")
        if len(request.body) > MAX_BODY:
            raise OAuthError("invalid_request", "the request body is too large", 413)
        params = form(request)
        keys = self._gate(request, params)
        try:
            client = yield from authn.authenticate(self, request, params)
        except OAuthError as exc:
            if exc.error == "invalid_client":
                self._failed(keys)
            raise
        try:
            return (yield from self._answer(path, client, params))
        except OAuthError as exc:
            if exc.error == "invalid_grant":  # a guessed or replayed refresh token
                self._failed(keys)
            raise

    def _answer(self, path: str, client: Any, params: dict[str, str]) -> Flow[Response]:
        if path == TOKEN_PATH:
            grant = params.get("grant_type")
            if grant == "client_credentials":
                return json_response((yield from grants.client_credentials(self, client, params)))
            if grant == "refresh_token":
                return json_response((yield from grants.refresh(self, client, params)))
            if grant is None:
                raise OAuthError("invalid_request", "grant_type is required")
            raise OAuthError("unsupported_grant_type", "this server issues client_credentials and refresh_token grants")
        if path == INTROSPECT_PATH:
            return json_response((yield from introspection.introspect(self, client, params)))
        yield from introspection.revoke(self, client, params)
        return json_response({}, 200)

    def handle(self, request: Request) -> Response:
        """Answer ``request`` (blocking: a WSGI server's thread)."""
        clean = _clean(request)
        try:
            return self.store._run(self._flow(clean))
        except (OAuthError, BastionError) as exc:
            return _error(exc)

    async def ahandle(self, request: Request) -> Response:
        """Answer ``request`` (awaited: an ASGI server's event loop)."""
        clean = _clean(request)
        try:
            return await self.store._arun(self._flow(clean))
        except (OAuthError, BastionError) as exc:
            return _error(exc)

    def issue_tokens(self, *, subject: str, client_id: str, scopes: Sequence[str] | None = None) -> dict[str, Any]:
        """An RFC 6749 §5.1 token response for ``subject`` (a user the application's own login route has
        authenticated) through the registered client ``client_id``: an access token, and a refresh token when
        the client may use the refresh grant. ``scopes`` must be within the client's (default: all of them)."""
        return self.store._run(grants.issue(self, subject, client_id, scopes))

    async def aissue_tokens(
        self, *, subject: str, client_id: str, scopes: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Async :meth:`issue_tokens`."""
        return await self.store._arun(grants.issue(self, subject, client_id, scopes))

    def asgi(self) -> ASGIApp:
        """This provider as an ASGI application."""
        from bastion.oauth.apps import ASGIApp

        return ASGIApp(self)

    def wsgi(self) -> WSGIApp:
        """This provider as a WSGI application."""
        from bastion.oauth.apps import WSGIApp

        return WSGIApp(self)


def _clean(request: object) -> Request:
    """``request`` rebuilt from exact built-in values (a subclass's own methods are never called later), or
    ConfigurationError."""
    if not isinstance(request, Request):
        raise ConfigurationError("handle() takes a bastion.oauth.Request")
    method, path, client = exact_str(request.method), exact_str(request.path), request.client
    headers, body = request.headers, request.body
    if method is None or path is None or not isinstance(body, bytes) or not isinstance(headers, dict):
        raise ConfigurationError("a Request holds a str method and path, a dict of headers and a bytes body")
    pairs = {exact_str(k): exact_str(v) for k, v in dict.items(headers)}
    if None in pairs or None in pairs.values() or (client is not None and exact_str(client) is None):
        raise ConfigurationError("a Request's header names and values, and its client, are str")
    repeated = request.repeated if isinstance(request.repeated, frozenset) else frozenset()
    return Request(
        method,
        path,
        {k.lower(): v for k, v in pairs.items() if k is not None and v is not None},
        bytes.__bytes__(body) if type(body) is not bytes else body,
        None if client is None else exact_str(client),
        frozenset(r for r in repeated if exact_str(r) is not None),
    )


def _not_allowed(allow: str) -> Response:
    return json_response({"error": "method_not_allowed"}, 405, extra=[("allow", allow)])


def _error(exc: BaseException) -> Response:
    if isinstance(exc, OAuthError):
        return exc.response()
    if isinstance(exc, AuthUnavailable):
        retry = [("retry-after", str(max(1, math.ceil(exc.retry_after or 1))))]
        return OAuthError("temporarily_unavailable", exc.message, 503, headers=retry).response()
    # a value the client sent that a store check refused (a subject, a scope name): the client's error
    message = exc.message if isinstance(exc, BastionError) else "invalid request"
    return OAuthError("invalid_request", message).response()
