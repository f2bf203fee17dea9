"""Middleware cases for ``python -m bastion bench middleware`` (``benches/bench_middleware.py`` runs the same
cases under pytest-benchmark): what authentication adds to one request, in process, over the bare app.

ASGI: one event loop; a pre-built scope (``GET /api/items``, the Authorization header as bytes, a client
address), copied per request; a ``receive`` that returns one ``http.request``; a ``send`` that keeps nothing
but whether the response started with 200 — so that every timed batch can be checked to have measured
admitted requests, not refusals. ``REQUESTS_PER_CALL`` requests run inside one coroutine per call, so the
loop's own cost of running a coroutine is spread over them (and cancels against the bare app's anyway).
WSGI: a pre-built environ, copied per request (middlewares write into it), a ``start_response`` that keeps
the status, and the body iterated and closed as a server does.

Every group has its bare app as the baseline: a case's figure is its overhead over that app, measured in the
same rounds. The peers are the middleware a user would write with PyJWT (raw ASGI and raw WSGI), Starlette's
``AuthenticationMiddleware`` with a PyJWT backend (over the bare Starlette app) and flask-jwt-extended's
``@jwt_required`` (over the bare Flask app). Bastion runs with its HS256 verifier (no cache), an opaque token
and a repeated token (``cache_size=1024``), the rate limiter and the audit log on, and a route rule needing
scope ``read``. The audit log writes JSON lines to a temporary file from its thread: what that thread takes
during a bastion batch is billed to that batch, and its queue is drained after each batch (untimed) so that
the next case never pays for it.

Until ``bastion.Authenticator`` exists in the tree, bastion's rows are listed as not built and the rest runs.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import io
import itertools
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import bastion
from bastion.bench import NOT_INSTALLED, Case, Group, Row, fmt_ratio, fmt_time

PATH = "/api/items"
SECRET = b"bench-middleware-secret-0123456789abcdef"
#: the key the bad JWT is signed with: a well-formed token that every stack must refuse
WRONG_SECRET = b"another-secret-entirely-0123456789abcdef"
SUBJECT = "user_8c1f2b7e"
BODY = b'{"items":[]}'
#: ASGI requests per call of a case (one coroutine, one ``run_until_complete``)
REQUESTS_PER_CALL = 100
NOT_BUILT = "not built in this tree: bastion.Authenticator is missing"

ASGI_RAW = "ASGI: raw app, GET /api/items (per request)"
ASGI_STARLETTE = "ASGI: Starlette app, GET /api/items (per request)"
WSGI_RAW = "WSGI: raw callable, GET /api/items (per request)"
WSGI_FLASK = "WSGI: Flask app, GET /api/items (per request)"

BASTION_HS256 = "bastion, HS256 (limiter + audit)"
BASTION_OPAQUE = "bastion, opaque token (limiter + audit)"
BASTION_CACHED = "bastion, repeated HS256 token (cache_size=1024)"
PYJWT = "PyJWT middleware (hand-written)"
STARLETTE_AUTH = "Starlette AuthenticationMiddleware + PyJWT"
FLASK_JWT = "flask-jwt-extended @jwt_required"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]

_JSON = (b"content-type", b"application/json")
_START_200: Message = {"type": "http.response.start", "status": 200, "headers": [_JSON]}
_BODY_200: Message = {"type": "http.response.body", "body": BODY}
_UNAUTHORIZED = b'{"error":"invalid_token"}'
_START_401: Message = {
    "type": "http.response.start",
    "status": 401,
    "headers": [_JSON, (b"www-authenticate", b'Bearer error="invalid_token"')],
}
_BODY_401: Message = {"type": "http.response.body", "body": _UNAUTHORIZED}
_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


# -- the bare apps ------------------------------------------------------------------------------------------


async def bare_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """The smallest ASGI app: 200 with a small JSON body."""
    await send(_START_200)
    await send(_BODY_200)


def bare_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The smallest WSGI app: 200 with a small JSON body."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]


# -- the hand-written PyJWT middlewares ---------------------------------------------------------------------


class PyJWTMiddleware:
    """The shortest correct bearer middleware a user writes with PyJWT: the claims in ``scope["user"]``,
    401 JSON with a ``WWW-Authenticate`` challenge otherwise. The scope is copied before it is changed."""

    def __init__(self, app: ASGIApp, key: bytes) -> None:
        import jwt  # what the user's module imports at its top

        self.app = app
        self.key = key
        self.jwt = jwt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        jwt = self.jwt
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = value.decode("latin-1").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise jwt.InvalidTokenError("no bearer token")
            claims = jwt.decode(token, self.key, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            await send(_START_401)
            await send(_BODY_401)
            return
        await self.app({**scope, "user": claims}, receive, send)


class PyJWTWSGIMiddleware:
    """The same middleware for WSGI: the claims in ``environ["jwt.claims"]``."""

    def __init__(self, app: WSGIApp, key: bytes) -> None:
        import jwt

        self.app = app
        self.key = key
        self.jwt = jwt

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        jwt = self.jwt
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise jwt.InvalidTokenError("no bearer token")
            environ["jwt.claims"] = jwt.decode(token, self.key, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            start_response(
                "401 Unauthorized",
                [("Content-Type", "application/json"), ("WWW-Authenticate", 'Bearer error="invalid_token"')],
            )
            return [_UNAUTHORIZED]
        return self.app(environ, start_response)


# -- the drivers --------------------------------------------------------------------------------------------

_LOOP: asyncio.AbstractEventLoop | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    """The one event loop every ASGI case runs on (closed at exit)."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        atexit.register(_LOOP.close)
    return _LOOP


def asgi_scope(authorization: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"api.example.com"),
            (b"accept", b"application/json"),
            (b"authorization", authorization.encode("latin-1")),
        ],
        "client": ("203.0.113.7", 50123),
        "server": ("10.0.0.2", 8000),
    }


def asgi_batch(app: ASGIApp, token: str, n: int = REQUESTS_PER_CALL) -> Callable[[], int]:
    """A call that sends ``n`` requests bearing ``token`` through ``app`` in one coroutine; it returns how
    many were answered 200."""
    loop = event_loop()
    scope = asgi_scope(f"Bearer {token}")
    admitted = [0]

    async def receive() -> Message:
        return _REQUEST

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 200:
            admitted[0] += 1

    async def batch() -> None:
        for _ in itertools.repeat(None, n):
            await app(dict(scope), receive, send)

    def run() -> int:
        admitted[0] = 0
        loop.run_until_complete(batch())
        return admitted[0]

    return run


def asgi_status(app: ASGIApp, token: str) -> int:
    """The status of one request bearing ``token`` (0 if the app sent no response)."""
    statuses: list[int] = []

    async def receive() -> Message:
        return _REQUEST

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    event_loop().run_until_complete(app(asgi_scope(f"Bearer {token}"), receive, send))
    return statuses[0] if statuses else 0


def wsgi_environ(authorization: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "SERVER_NAME": "api.example.com",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "REMOTE_PORT": "50123",
        "HTTP_HOST": "api.example.com",
        "HTTP_ACCEPT": "application/json",
        "HTTP_AUTHORIZATION": authorization,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def wsgi_call(app: WSGIApp, token: str) -> Callable[[], int]:
    """A call that sends one request bearing ``token`` through ``app`` and returns its status; the body is
    iterated and closed, as a server does (a middleware may write its audit record on close)."""
    environ = wsgi_environ(f"Bearer {token}")
    status = [0]

    def write(data: bytes) -> None:
        return None

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: object = None) -> Callable[[bytes], None]:
        status[0] = int(line[:3])
        return write

    def run() -> int:
        status[0] = 0
        body = app(environ.copy(), start_response)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return status[0]

    return run


# -- the stacks ---------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """One app as a request reaches it: ``run`` times it (``per_call`` requests), ``status(token)`` answers
    one request. ``app`` is None when the stack cannot be built here (``missing`` says why)."""

    group: str
    name: str
    kind: str  # "asgi" or "wsgi"
    app: Any
    token: str = ""
    bad_token: str = ""
    missing: str = ""
    is_bastion: bool = False
    is_baseline: bool = False
    settle: Callable[[], object] | None = None

    def status(self, token: str) -> int:
        if self.kind == "asgi":
            return asgi_status(self.app, token)
        return wsgi_call(self.app, token)()

    def case(self) -> Case:
        if self.app is None:
            return Case(self.group, self.name, None, self.missing, self.is_bastion, is_baseline=self.is_baseline)
        if self.kind == "asgi":
            return Case(
                self.group,
                self.name,
                asgi_batch(self.app, self.token),
                is_bastion=self.is_bastion,
                ok=_all_admitted,
                is_baseline=self.is_baseline,
                per_call=REQUESTS_PER_CALL,
                settle=self.settle,
            )
        return Case(
            self.group,
            self.name,
            wsgi_call(self.app, self.token),
            is_bastion=self.is_bastion,
            ok=_admitted,
            is_baseline=self.is_baseline,
            settle=self.settle,
        )


def _all_admitted(admitted: int) -> bool:
    return admitted == REQUESTS_PER_CALL


def _admitted(status: int) -> bool:
    return status == 200


@dataclass
class Tokens:
    jwt: str
    bad_jwt: str
    opaque: str = ""
    bad_opaque: str = ""


def mint_tokens() -> Tokens:
    """The HS256 token every stack verifies, minted by PyJWT (a neutral party), and one signed with another
    key. ``type`` and ``fresh`` are flask-jwt-extended's claims; the others ignore them."""
    import jwt

    now = int(time.time())
    claims = {
        "sub": SUBJECT,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": "4f1c6a2e-8a4b-4f7e-9d3c-1b2a3c4d5e6f",
        "scope": "read",
        "type": "access",
        "fresh": False,
    }
    return Tokens(jwt.encode(claims, SECRET, algorithm="HS256"), jwt.encode(claims, WRONG_SECRET, algorithm="HS256"))


def audit_log(folder: str) -> Any:
    """An AuditLog whose logger writes JSON lines to a file in ``folder`` (a real handler, not a null one)."""
    from bastion.audit import AuditLog, JSONFormatter

    logger = logging.getLogger("bastion.bench.middleware.audit")
    logger.handlers.clear()
    handler = logging.FileHandler(f"{folder}/audit.jsonl", encoding="utf-8")
    handler.setFormatter(JSONFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return AuditLog(logger=logger)


class _Bastion:
    """Bastion's pieces, built against the ``Authenticator`` API; None where it is not in this tree."""

    def __init__(self, tokens: Tokens) -> None:
        self.authenticator = getattr(bastion, "Authenticator", None)
        if self.authenticator is None:
            return
        # lives as long as this object, which every bastion stack holds through its ``settle``
        self.folder = tempfile.TemporaryDirectory(prefix="bastion-bench-audit-")
        self.asgi: Any = importlib.import_module("bastion.asgi")
        self.wsgi: Any = importlib.import_module("bastion.wsgi")
        self.rules = [bastion.Rule("/api/*", scopes=["read"])]  # type: ignore[attr-defined, unused-ignore]
        store = bastion.TokenStore(None)
        tokens.opaque = store.issue(SUBJECT, scopes=["read"]).token
        tokens.bad_opaque = bastion.TokenStore(None).issue(SUBJECT, scopes=["read"]).token  # another store's
        limiter = bastion.RateLimiter({"default": bastion.Rate(10**9, per=1)}, default="default")
        self.audit = audit_log(self.folder.name)
        key = bastion.Key.hmac(SECRET)
        self.plain = self.authenticator(
            jwt=bastion.JWTVerifier(key, algorithms=["HS256"], cache_size=0),
            tokens=store,
            limiter=limiter,
            audit=self.audit,
        )
        self.cached = self.authenticator(
            jwt=bastion.JWTVerifier(key, algorithms=["HS256"], cache_size=1024),
            tokens=store,
            limiter=limiter,
            audit=self.audit,
        )

    def settle(self) -> None:
        """Write what the audit log has queued (after each timed batch, untimed)."""
        self.audit.flush()

    def stacks(self, group: str, kind: str, app: Any, tokens: Tokens, *, all_tokens: bool) -> list[Stack]:
        """Bastion's middleware around ``app``: the HS256 row (the group's reference) and, with
        ``all_tokens``, the opaque and the cached rows."""
        names = [BASTION_HS256, BASTION_OPAQUE, BASTION_CACHED] if all_tokens else [BASTION_HS256]
        if self.authenticator is None or app is None:
            why = NOT_BUILT if self.authenticator is None else NOT_INSTALLED
            return [Stack(group, name, kind, None, missing=why, is_bastion=name == BASTION_HS256) for name in names]
        middleware = (self.asgi if kind == "asgi" else self.wsgi).AuthMiddleware
        plain = middleware(app, self.plain, rules=self.rules)
        settle = self.settle
        out = [Stack(group, BASTION_HS256, kind, plain, tokens.jwt, tokens.bad_jwt, is_bastion=True, settle=settle)]
        if all_tokens:
            cached = middleware(app, self.cached, rules=self.rules)
            out.append(Stack(group, BASTION_OPAQUE, kind, plain, tokens.opaque, tokens.bad_opaque, settle=settle))
            out.append(Stack(group, BASTION_CACHED, kind, cached, tokens.jwt, tokens.bad_jwt, settle=settle))
        return out


def starlette_apps() -> tuple[Any, Any]:
    """The bare Starlette app (one route) and the same route behind ``AuthenticationMiddleware`` with a PyJWT
    backend and ``@requires("read")``; a bad token is answered 401 JSON by ``on_error``."""
    import jwt
    from starlette.applications import Starlette
    from starlette.authentication import (
        AuthCredentials,
        AuthenticationBackend,
        AuthenticationError,
        SimpleUser,
        requires,
    )
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    class PyJWTBackend(AuthenticationBackend):
        async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
            value = conn.headers.get("authorization")
            if value is None:
                return None
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer":
                return None
            try:
                claims = jwt.decode(token, SECRET, algorithms=["HS256"])
            except jwt.InvalidTokenError as exc:
                raise AuthenticationError("invalid_token") from exc
            return AuthCredentials(str(claims.get("scope", "")).split()), SimpleUser(claims["sub"])

    def on_error(conn: HTTPConnection, exc: Exception) -> Response:
        return JSONResponse(
            {"error": "invalid_token"}, status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )

    async def items(request: Request) -> Response:
        return JSONResponse({"items": []})

    bare = Starlette(routes=[Route(PATH, items)])
    guarded = Starlette(
        routes=[Route(PATH, requires("read")(items))],
        middleware=[Middleware(AuthenticationMiddleware, backend=PyJWTBackend(), on_error=on_error)],
    )
    return bare, guarded


def flask_apps() -> tuple[Any, Any]:
    """The bare Flask app (one route) and the same route under flask-jwt-extended's ``@jwt_required()``; an
    invalid token is answered 401 (its default is 422)."""
    from flask import Flask
    from flask_jwt_extended import JWTManager, jwt_required

    def items() -> dict[str, list[object]]:
        return {"items": []}

    bare = Flask("bastion_bench_bare")
    bare.add_url_rule(PATH, "items", items)
    guarded = Flask("bastion_bench_fjwt")
    guarded.config.update(JWT_SECRET_KEY=SECRET.decode(), JWT_ALGORITHM="HS256", JWT_TOKEN_LOCATION=["headers"])
    manager = JWTManager(guarded)

    @manager.invalid_token_loader
    def invalid(reason: str) -> tuple[dict[str, str], int]:
        return {"error": "invalid_token"}, 401

    guarded.add_url_rule(PATH, "items", jwt_required()(items))
    return bare, guarded


def _optional(build: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
    try:
        return build()
    except ImportError:
        return None, None


def stacks(quick: bool = False) -> list[Stack]:
    """Every stack of every group, bare apps first. Raises ImportError without PyJWT (it mints the tokens)."""
    tokens = mint_tokens()
    ours = _Bastion(tokens)
    out: list[Stack] = []

    out.append(Stack(ASGI_RAW, "bare ASGI app", "asgi", bare_asgi, tokens.jwt, is_baseline=True))
    out += ours.stacks(ASGI_RAW, "asgi", bare_asgi, tokens, all_tokens=True)
    out.append(Stack(ASGI_RAW, PYJWT, "asgi", PyJWTMiddleware(bare_asgi, SECRET), tokens.jwt, tokens.bad_jwt))

    bare_star, guarded_star = _optional(starlette_apps)
    why = "" if bare_star is not None else NOT_INSTALLED
    out.append(Stack(ASGI_STARLETTE, "bare Starlette app", "asgi", bare_star, tokens.jwt, "", why, is_baseline=True))
    out += ours.stacks(ASGI_STARLETTE, "asgi", bare_star, tokens, all_tokens=False)
    out.append(Stack(ASGI_STARLETTE, STARLETTE_AUTH, "asgi", guarded_star, tokens.jwt, tokens.bad_jwt, why))

    out.append(Stack(WSGI_RAW, "bare WSGI callable", "wsgi", bare_wsgi, tokens.jwt, is_baseline=True))
    out += ours.stacks(WSGI_RAW, "wsgi", bare_wsgi, tokens, all_tokens=True)
    out.append(Stack(WSGI_RAW, PYJWT, "wsgi", PyJWTWSGIMiddleware(bare_wsgi, SECRET), tokens.jwt, tokens.bad_jwt))

    bare_flask, guarded_flask = _optional(flask_apps)
    why = "" if bare_flask is not None else NOT_INSTALLED
    out.append(Stack(WSGI_FLASK, "bare Flask app", "wsgi", bare_flask, tokens.jwt, "", why, is_baseline=True))
    out += ours.stacks(WSGI_FLASK, "wsgi", bare_flask, tokens, all_tokens=False)
    out.append(Stack(WSGI_FLASK, FLASK_JWT, "wsgi", guarded_flask, tokens.jwt, tokens.bad_jwt, why))
    return out


def check(stack: Stack) -> None:
    """Raise AssertionError unless ``stack`` admits its token with 200 and (bare apps aside) answers a token
    signed with another key, or unknown to the store, with 401: a benchmark of refusals would be wrong."""
    got = stack.status(stack.token)
    assert got == 200, f"{stack.group}: {stack.name}: the benchmark's token got {got}, not 200"
    if not stack.is_baseline:
        got = stack.status(stack.bad_token)
        assert got == 401, f"{stack.group}: {stack.name}: a bad token got {got}, not 401"


def cases(quick: bool = False) -> list[Case]:
    """The same cases whatever ``quick`` says; every stack is checked (:func:`check`) before it is timed."""
    out = []
    for stack in stacks(quick):
        if stack.app is not None:
            check(stack)
        out.append(stack.case())
    return out


# -- the budgets --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """A row's overhead over the bare app at most ``max_s``, or a peer's overhead at least ``min_ratio``
    times bastion's (the group's reference row)."""

    group: str
    case: str
    label: str
    max_s: float | None = None
    min_ratio: float | None = None

    def verdict(self, groups: Sequence[Group]) -> str:
        row = _row(groups, self.group, self.case)
        if self.max_s is not None:
            limit = f"≤ {fmt_time(self.max_s)}"
            if row is None or row.overhead_s is None:
                return f"{self.label} {limit}: not measured{_why(groups, self.group, row)}"
            met = "met" if row.overhead_s <= self.max_s else "NOT MET"
            return f"{self.label} {limit}: {fmt_time(row.overhead_s)} over the bare app — {met}"
        assert self.min_ratio is not None
        limit = f"≥ {self.min_ratio:g}× less than {self.case}"
        if row is None or row.ratio is None:
            return f"{self.label} {limit}: not measured{_why(groups, self.group, row)}"
        met = "met" if row.ratio >= self.min_ratio else "NOT MET"
        return f"{self.label} {limit}: {fmt_ratio(row.ratio)} — {met}"


def _row(groups: Sequence[Group], group: str, case: str) -> Row | None:
    for g in groups:
        if g.name == group:
            return next((r for r in g.rows if r.name == case), None)
    return None


def _why(groups: Sequence[Group], group: str, row: Row | None) -> str:
    """Why a budget could not be judged: the missing row's reason, else bastion's, else the noise."""
    if row is not None and row.missing:
        return f" ({row.missing})"
    reference = next((r for g in groups if g.name == group for r in g.rows if r.is_bastion), None)
    if reference is not None and reference.missing:
        return f" (bastion: {reference.missing})"
    if reference is not None and reference.overhead_s is not None and reference.overhead_s <= 0:
        return " (bastion's overhead is lost in the noise: time longer, --seconds)"
    return ""


BUDGETS = tuple(
    budget
    for kind, group in (("ASGI", ASGI_RAW), ("WSGI", WSGI_RAW))
    for budget in (
        Budget(group, BASTION_HS256, f"{kind} bastion HS256, limiter + audit:", max_s=3e-6),
        Budget(group, BASTION_OPAQUE, f"{kind} bastion opaque token:", max_s=2e-6),
        Budget(group, BASTION_CACHED, f"{kind} bastion repeated token (cache):", max_s=2e-6),
        Budget(group, PYJWT, f"{kind} bastion HS256", min_ratio=15),
    )
)


def footer(groups: Sequence[Group]) -> list[str]:
    """What the columns mean, then the budgets, met or not in this run."""
    return [
        "over bare: the median over rounds of (this case − its group's bare app in the same round);",
        f"vs bastion: this overhead / the overhead of '{BASTION_HS256}' in the same group.",
        "",
        "budgets (this run):",
        *(f"  {b.verdict(groups)}" for b in BUDGETS),
    ]
