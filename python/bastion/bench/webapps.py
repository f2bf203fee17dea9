"""The web apps and request drivers the middleware benchmark times (``bastion.bench.middleware``).

The bare apps, the peers' middlewares (the one a user writes with PyJWT, for ASGI and WSGI; Starlette's
``AuthenticationMiddleware`` with a PyJWT backend; flask-jwt-extended) and the drivers that feed them a
request in process. ASGI: one event loop; a pre-built scope (``GET /api/items``, the Authorization header as
bytes, a client address), copied per request; a ``receive`` that returns one ``http.request``; a ``send``
that keeps nothing but whether the response started with 200, so that every timed batch can be checked to
have measured admitted requests, not refusals. ``REQUESTS_PER_CALL`` requests run inside one coroutine per
call, so the loop's own cost of running a coroutine is spread over them (and cancels against the bare app's).
WSGI: a pre-built environ, copied per request (middlewares write into it), a ``start_response`` that keeps
the status, and the body iterated and closed as a server does.
"""

from __future__ import annotations

import asyncio
import atexit
import io
import itertools
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

PATH = "/api/items"
BODY = b'{"items":[]}'
#: ASGI requests per call of a case (one coroutine, one ``run_until_complete``)
REQUESTS_PER_CALL = 100

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


# -- the floor: a middleware that does what bastion's must, but authenticates nothing ------------------------


class PassThroughMiddleware:
    """What any ASGI middleware in bastion's place does before it authenticates anything: copy the scope and
    give it a key, and wrap ``send`` to learn the response's status (what an audit record needs). Its overhead
    over the bare app is the floor the interpreter sets for bastion's rows."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [0]

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app({**scope, "user": None}, receive, watching)


class PassThroughWSGIMiddleware:
    """The same floor for WSGI: a key in the environ, ``start_response`` wrapped to learn the status."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        status = [""]

        def watching(line: str, headers: list[tuple[str, str]], exc_info: object = None) -> Callable[[bytes], None]:
            status[0] = line
            return start_response(line, headers, exc_info)  # type: ignore[no-any-return]

        environ["floor.user"] = None
        return self.app(environ, watching)


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


def starlette_apps(key: bytes) -> tuple[Any, Any]:
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
                claims = jwt.decode(token, key, algorithms=["HS256"])
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


def flask_apps(secret: bytes) -> tuple[Any, Any]:
    """The bare Flask app (one route) and the same route under flask-jwt-extended's ``@jwt_required()``; an
    invalid token is answered 401 (its default is 422)."""
    from flask import Flask
    from flask_jwt_extended import JWTManager, jwt_required

    def items() -> dict[str, list[object]]:
        return {"items": []}

    bare = Flask("bastion_bench_bare")
    bare.add_url_rule(PATH, "items", items)
    guarded = Flask("bastion_bench_fjwt")
    guarded.config.update(JWT_SECRET_KEY=secret.decode(), JWT_ALGORITHM="HS256", JWT_TOKEN_LOCATION=["headers"])
    manager = JWTManager(guarded)

    @manager.invalid_token_loader
    def invalid(reason: str) -> tuple[dict[str, str], int]:
        return {"error": "invalid_token"}, 401

    guarded.add_url_rule(PATH, "items", jwt_required()(items))
    return bare, guarded
