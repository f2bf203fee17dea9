"""Starlette: ``requires(scopes=..., roles=...)`` on endpoints, with or without the middleware in front.

Usage::

    guard = Guard(auth)

    @guard.requires(scopes=["read:reports"])
    async def reports(request: Request) -> Response:
        return JSONResponse({"subject": request.user.subject})

``guard.requires(scopes=(), roles=(), *, optional=False)`` decorates a request endpoint (async or sync, a
function or an ``HTTPEndpoint`` method) or a WebSocket endpoint (its parameter is named ``websocket``).
``request.user`` is the :class:`bastion.Principal` (or ``bastion.ANONYMOUS``), ``request.auth`` its scopes
(``.scopes``), ``request.scope["bastion"]`` the :class:`bastion.AuthContext` — as
:class:`bastion.asgi.AuthMiddleware` sets them. Behind the middleware the guard reuses its decision (the token is
read once) and only adds the endpoint's scopes and roles; without it, the guard decides the request itself
(``await auth.decide_async(...)``) and writes the request's one audit record when the response has been sent.
A refused request gets bastion's response (``{"error", "message"}``, the RFC 6750 challenge, ``Retry-After``);
a refused WebSocket handshake is closed with 1008 before it is accepted.

There is no ``AuthenticationBackend`` adapter on purpose: Starlette's ``AuthenticationMiddleware`` sees neither
the response status (the audit record needs it) nor the rate decision (the 429 headers need it), and
``bastion.asgi.AuthMiddleware`` already sets ``request.user`` and ``request.auth`` as it would.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from bastion._gate import AuthContext
from bastion.asgi import WS_POLICY_VIOLATION, Receive, Scope, Send
from bastion.errors import AuthError, ConfigurationError
from bastion.integrations._asgi import PENDING, Integration, Pending, Requirement, refusal_response

__all__ = ["Guard"]

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class Guard(Integration):
    """Endpoint requirements for a Starlette app: ``Guard(auth, *, problem_details=False, ratelimit_headers=True,
    trusted_proxies=(), request_id_header="X-Request-ID")`` (the middleware's options; behind the middleware,
    give them its values)."""

    __slots__ = ()

    def requires(
        self, scopes: Iterable[str] = (), roles: Iterable[str] = (), *, optional: bool = False
    ) -> Callable[[Endpoint], Endpoint]:
        """A decorator: the endpoint runs for a principal with every one of ``scopes`` and one of ``roles``
        (``optional=True``: for anonymous requests too; a bad token is still refused)."""
        requirement = Requirement.of(scopes, roles, optional=optional)

        def decorate(endpoint: Endpoint) -> Endpoint:
            index, websocket = _connection_parameter(endpoint)
            if websocket:
                return self._websocket(endpoint, index, requirement)  # type: ignore[return-value]
            return self._http(endpoint, index, requirement)  # type: ignore[return-value]

        return decorate

    def _pending(self, scope: Scope, websocket: bool) -> Pending | None:
        """A :class:`Pending` when this request is decided here, else None (the middleware, or an outer guard
        of the same request, decided it and writes its record)."""
        if isinstance(scope.get("bastion"), AuthContext) or PENDING in scope:
            return None
        pending = Pending(websocket)
        scope[PENDING] = pending
        return pending

    def _http(self, endpoint: Callable[..., Any], index: int, requirement: Requirement) -> Callable[..., Any]:
        blocking = not inspect.iscoroutinefunction(endpoint)
        gate = self.gate

        @functools.wraps(endpoint)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            connection: HTTPConnection = kwargs["request"] if "request" in kwargs else args[index]
            scope = connection.scope
            pending = self._pending(scope, False)
            try:
                await self.principal(scope, requirement)
                if blocking:
                    response = await run_in_threadpool(endpoint, *args, **kwargs)
                else:
                    response = await endpoint(*args, **kwargs)
            except AuthError as error:  # the requirement's refusal, or one the endpoint raised: bastion's response
                response = refusal_response(self.refusal(scope, error))
            except BaseException as exc:
                if pending is not None:
                    if isinstance(exc, HTTPException):  # answered by the app's handler with its status
                        pending.status = exc.status_code
                    pending.finish(gate)
                raise
            return response if pending is None else _AuditedResponse(response, pending, self)

        return guarded

    def _websocket(self, endpoint: Callable[..., Any], index: int, requirement: Requirement) -> Callable[..., Any]:
        gate = self.gate

        @functools.wraps(endpoint)
        async def guarded(*args: Any, **kwargs: Any) -> None:
            connection: WebSocket = kwargs["websocket"] if "websocket" in kwargs else args[index]
            scope = connection.scope
            pending = self._pending(scope, True)
            try:
                await self.principal(scope, requirement)
            except AuthError as error:
                self.settle(scope, error)
                await connection.close(code=WS_POLICY_VIOLATION, reason=error.code)
                if pending is not None:
                    pending.status = 403
                    pending.finish(gate)
                return
            try:
                await endpoint(*args, **kwargs)
            finally:
                if pending is not None:
                    pending.finish(gate)

        return guarded


class _AuditedResponse:
    """An endpoint's response, sent with the RateLimit fields of its decision and audited once it has been sent."""

    __slots__ = ("_guard", "_pending", "response")

    def __init__(self, response: Any, pending: Pending, guard: Guard) -> None:
        self.response = response
        self._pending = pending
        self._guard = guard

    def __getattr__(self, name: str) -> Any:  # status_code, headers, background: the response's own
        return getattr(self.response, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self._guard.gate
        try:
            await self.response(scope, receive, self._pending.sender(gate, send))
        finally:
            self._pending.finish(gate)


def _connection_parameter(endpoint: Callable[..., Any]) -> tuple[int, bool]:
    """The position of the endpoint's ``request`` or ``websocket`` parameter (as Starlette's ``requires`` finds
    it), and whether it is a WebSocket endpoint."""
    if not callable(endpoint):
        raise ConfigurationError("requires() decorates an endpoint function")
    for index, parameter in enumerate(inspect.signature(endpoint).parameters.values()):
        if parameter.name in ("request", "websocket"):
            websocket = parameter.name == "websocket"
            if websocket and not inspect.iscoroutinefunction(endpoint):
                raise ConfigurationError("a WebSocket endpoint must be an async function")
            return index, websocket
    name = getattr(endpoint, "__qualname__", repr(endpoint))
    raise ConfigurationError(f"{name} has no 'request' or 'websocket' parameter")
