"""The request path under test: authenticators for every token/store/limiter combination, the same small API
as a Starlette (ASGI) and a Flask (WSGI) app behind bastion's middleware, and one client shape for both."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import bastion
from bastion.rules import Rule
from flask import Flask, g, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from tests import jwt_tokens, secrets_registry
from tests.opaque_support import PEPPER

ISSUER = "https://issuer.test"
SECRET = jwt_tokens.SECRET
secrets_registry.remember(SECRET)
secrets_registry.remember(PEPPER)

#: the audit log of every Authenticator made by :func:`make_auth` without one: its records reach the root
#: logger (not ``bastion.audit``, which some tests collect from), where the session searches them for secrets
AUDIT = bastion.audit.AuditLog("tests.audit")

RULES = [
    Rule("/health", auth="none"),
    Rule("/public/*", auth="optional"),
    Rule("/api/reports/{id}", methods=["DELETE"], roles=["admin"]),
    Rule("/api/reports*", scopes=["read:reports"]),
    Rule("/api/*"),
]

TIERS: dict[str, bastion.Rate | None] = {
    "default": bastion.Rate(100_000, per=1),
    "tight": bastion.Rate(1, per=3600, burst=1),
    "admin": None,
}


@dataclass
class Keys:
    """How to mint tokens for one algorithm: the verifier's keys and a raw signer for crafted tokens."""

    alg: str
    kid: str
    verify_key: bastion.Key
    raw_key: Any  # the secret (HS) or a cryptography private key, for tests.jwt_tokens.make

    def token(self, claims: dict[str, Any] | None = None, **header: Any) -> str:
        """A token with default claims (sub, scope, exp, iat, jti, iss, typ at+jwt) updated by ``claims``;
        a claim given as None is left out."""
        now = time.time()
        base: dict[str, Any] = {
            "sub": "user_1",
            "scope": "read:reports",
            "iss": ISSUER,
            "iat": int(now) - 5,
            "exp": int(now) + 600,
            "jti": f"jti-{time.perf_counter_ns()}",
        }
        base.update(claims or {})
        payload = {k: v for k, v in base.items() if v is not None}
        h: dict[str, Any] = {"alg": self.alg, "kid": self.kid, "typ": "at+jwt"}
        h.update(header)
        h = {k: v for k, v in h.items() if v is not None}
        token = jwt_tokens.make(h, payload, self.raw_key, alg=h.get("alg", self.alg) if "alg" in header else self.alg)
        secrets_registry.remember(token)
        return token


def hs_keys() -> Keys:
    return Keys("HS256", "k1", bastion.Key.hmac(SECRET, kid="k1"), SECRET)


def es_keys() -> Keys:
    pair = jwt_tokens.ec_pair("P-256")
    return Keys("ES256", "e1", bastion.Key.from_pem(pair.public_pem, kid="e1"), pair.private)


KEYS: dict[str, Callable[[], Keys]] = {"HS256": hs_keys, "ES256": es_keys}


@dataclass
class Stack:
    """One configured request path: its keys, store, limiter and Authenticator."""

    keys: Keys
    store: bastion.TokenStore
    limiter: Any
    auth: bastion.Authenticator
    records: list[bastion.audit.AuditRecord] = field(default_factory=list)


def make_auth(keys: Keys, store: bastion.TokenStore, limiter: Any, **kw: Any) -> bastion.Authenticator:
    """An Authenticator over ``keys`` and ``store``, writing its audit records to :data:`AUDIT` unless ``audit=``
    says otherwise."""
    verifier = bastion.JWTVerifier(keys.verify_key, algorithms=[keys.alg], issuer=ISSUER, typ="at+jwt")
    kw.setdefault("audit", AUDIT)
    return bastion.Authenticator(jwt=verifier, tokens=store, limiter=limiter, **kw)


def issue(store: bastion.TokenStore, subject: str, **kw: Any) -> bastion.IssuedToken:
    """``store.issue(subject, **kw)``, its token remembered as a secret that no log record may contain."""
    issued = store.issue(subject, **kw)
    secrets_registry.remember(issued.token)
    return issued


# -- the applications ------------------------------------------------------------------------------------


class Boom(Exception):
    """An application bug: must reach the server as an exception, never become a 401."""


def _who(principal: Any) -> dict[str, Any]:
    if principal is None or not getattr(principal, "is_authenticated", False):
        return {"subject": None}
    return {"subject": principal.subject, "scopes": sorted(principal.scopes), "type": principal.token_type}


def starlette_app() -> Starlette:
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({**_who(request.user), "request_id": request.scope["bastion"].request_id})

    async def boom(request: Request) -> JSONResponse:
        raise Boom("application bug")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(_who(websocket.scope["user"]))
        await websocket.close()

    routes = [
        Route("/health", me),
        Route("/public/info", me),
        Route("/api/me", me),
        Route("/api/reports", me),
        Route("/api/reports/{id}", me, methods=["GET", "DELETE", "OPTIONS"]),
        Route("/api/boom", boom),
        WebSocketRoute("/api/ws", ws),
    ]
    return Starlette(routes=routes)


def flask_app() -> Flask:
    app = Flask("bastion_test")

    def me() -> Any:
        ctx = request.environ.get("bastion.auth")
        return {**_who(request.environ.get("bastion.principal")), "request_id": ctx.request_id if ctx else None}

    for path in ("/health", "/public/info", "/api/me", "/api/reports"):
        app.add_url_rule(path, path, me)
    app.add_url_rule("/api/reports/<id>", "report", lambda id: me(), methods=["GET", "DELETE", "OPTIONS"])

    @app.route("/api/boom")
    def boom() -> Any:
        g.unused = True
        raise Boom("application bug")

    app.config["PROPAGATE_EXCEPTIONS"] = True
    return app


# -- one client shape for both worlds --------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lowercase names
    body: Any


class Client:
    """``request(method, path, headers)`` over the ASGI app (Starlette's TestClient) or the WSGI app (Flask's)."""

    def __init__(self, kind: str, auth: bastion.Authenticator, **mw: Any) -> None:
        self.kind = kind
        if kind == "asgi":
            self.app: Any = bastion.asgi.AuthMiddleware(starlette_app(), auth, rules=RULES, **mw)
            self._client: Any = TestClient(self.app, raise_server_exceptions=True)
        else:
            flask = flask_app()
            flask.wsgi_app = bastion.wsgi.AuthMiddleware(flask.wsgi_app, auth, rules=RULES, **mw)  # type: ignore[method-assign]
            self.app = flask
            self._client = flask.test_client()

    def request(
        self, method: str, path: str, headers: dict[str, str] | list[tuple[str, str]] | None = None
    ) -> Response:
        if self.kind == "asgi":
            r = self._client.request(method, path, headers=headers)
            hdrs = {k.lower(): v for k, v in r.headers.items()}
            body = r.json() if r.content and "json" in hdrs.get("content-type", "") else r.content
            return Response(r.status_code, hdrs, body)
        r = self._client.open(path, method=method, headers=headers)
        hdrs = {k.lower(): v for k, v in r.headers.items()}
        data = r.get_data()
        r.close()  # as a server does once the body is sent (PEP 3333): the streamed response's audit record
        body = json.loads(data) if data and "json" in hdrs.get("content-type", "") else data
        return Response(r.status_code, hdrs, body)

    def get(self, path: str, token: str | None = None, **headers: str) -> Response:
        h = {k.replace("_", "-"): v for k, v in headers.items()}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return self.request("GET", path, h)


@contextmanager
def collecting(logger: str = "bastion.audit") -> Iterator[list[Any]]:
    """Every LogRecord that reaches ``logger`` while the block runs (what any audit log queued before the block
    is written first: a log lets records gather for a few milliseconds, and an earlier test's may share the
    logger's name)."""
    import logging

    from bastion.audit.writer import _LIVE

    for live in list(_LIVE):
        live.flush()
    got: list[Any] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record)

    log = logging.getLogger(logger)
    handler = Keep()
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    try:
        yield got
    finally:
        log.removeHandler(handler)
        log.setLevel(old)


__all__ = [
    "AUDIT",
    "KEYS",
    "PEPPER",
    "RULES",
    "TIERS",
    "Boom",
    "Client",
    "Keys",
    "Response",
    "Stack",
    "issue",
    "make_auth",
]
