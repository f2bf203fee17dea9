"""The provider mounted as an ASGI application and as a WSGI application: each turns its server's request
into a :class:`~bastion.oauth.http.Request`, lets the provider answer, and sends the
:class:`~bastion.oauth.http.Response` back. Bodies over ``MAX_BODY`` are refused without being read whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from bastion.oauth.http import MAX_BODY, OAuthError, Request, Response

if TYPE_CHECKING:
    from bastion.oauth.provider import Provider

__all__ = ["ASGIApp", "WSGIApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def _too_large() -> Response:
    return OAuthError("invalid_request", "the request body is too large", 413).response()


class ASGIApp:
    """``Provider.asgi()``: an ASGI 3 application serving the provider's endpoints (HTTP only)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = bytearray()
        response: Response | None = None
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                response = _too_large()
                break
            if not message.get("more_body", False):
                break
        if response is None:
            pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]
            client = scope.get("client")
            path = scope.get("path", "")  # the full path (ASGI: it includes any root_path)
            request = Request.from_pairs(scope["method"], path, pairs, bytes(body), client[0] if client else None)
            response = await self.provider.ahandle(request)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


class WSGIApp:
    """``Provider.wsgi()``: a WSGI (PEP 3333) application serving the provider's endpoints."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            response = _too_large() if length > MAX_BODY else OAuthError("invalid_request", "bad length").response()
        else:
            body = environ["wsgi.input"].read(length) if length else b""
            pairs = [
                (k[5:].replace("_", "-"), v) for k, v in environ.items() if k.startswith("HTTP_") and isinstance(v, str)
            ]
            for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
                if environ.get(key):
                    pairs.append((name, environ[key]))
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            request = Request.from_pairs(
                environ.get("REQUEST_METHOD", "GET"), path, pairs, body, environ.get("REMOTE_ADDR")
            )
            response = self.provider.handle(request)
        phrase = HTTPStatus(response.status).phrase
        headers = [*response.headers, ("content-length", str(len(response.body)))]
        start_response(f"{response.status} {phrase}", headers)
        return [response.body]
