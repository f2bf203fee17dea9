"""`bastion.asgi.AuthMiddleware`: authenticate every HTTP request and WebSocket handshake of an ASGI app.

Usage::

    app = bastion.asgi.AuthMiddleware(app, auth, rules=[bastion.Rule("/health", auth="none")])

``scope["user"]`` is the :class:`bastion.Principal` (or an anonymous user, ``is_authenticated`` false),
``scope["auth"]`` the granted scopes (Starlette's ``AuthCredentials`` shape), ``scope["bastion"]`` the
request's :class:`bastion.AuthContext`. A refused request gets its error response here (JSON
``{"error", "message"}``, the RFC 6750 challenge, 429/503 with ``Retry-After``) and never reaches the app;
a refused WebSocket handshake is closed with code 1008 before it is accepted. Lifespan and any other scope
type pass through untouched. The scope is copied before it is changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any, Final

from bastion import _core
from bastion._gate import ANONYMOUS, Credentials, Gate, is_preflight
from bastion.audit.context import bind, reset

__all__ = ["AuthMiddleware"]

# loose on purpose: apps, servers and test clients each spell these types their own way
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

_REFUSED: Final = _core.Outcome.REFUSED
#: WebSocket close code for a refused handshake: 1008, policy violation (RFC 6455 §7.4.1)
WS_POLICY_VIOLATION: Final = 1008


class AuthMiddleware(Gate):
    """ASGI middleware: ``AuthMiddleware(app, auth, *, rules=(), exempt=(), default="required",
    problem_details=False, ratelimit_headers=True, trusted_proxies=(), request_id_header="X-Request-ID")``.

    ``rules``: :class:`bastion.Rule` objects, the first whose path and method match applies; ``exempt``: paths
    that need no token (shorthand for ``Rule(path, auth="none")``, checked first); ``default``: the auth mode
    of a path no rule matches (``"required"``: secure by default); ``problem_details``: answer refusals as RFC
    9457 ``application/problem+json`` (keeping the ``error`` and ``message`` members); ``ratelimit_headers``:
    add the RateLimit fields to admitted responses too; ``trusted_proxies``: CIDRs whose ``Forwarded`` /
    ``X-Forwarded-For`` and request id are believed (none by default).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the HTTP request is the hot path: handled here, one coroutine deep. The core's first step is called
        # directly (Authenticator.decide_async's first line): a coroutine is only awaited when it asks for a
        # record or a shared limiter's answer, which the Authenticator's own resolver supplies.
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        started = perf_counter()
        gate = self
        method: str = scope["method"]
        headers = scope["headers"]
        client = scope.get("client")
        request_id, address = gate.identify(client[0] if client else None, headers)
        if method == "OPTIONS" and is_preflight(method, headers):
            await self._preflight(scope, receive, send, request_id, address, started)
            return

        outcome = self.auth._core.step(gate.rules, method, scope["path"], headers, None, None, None)
        if outcome.kind > _REFUSED:
            outcome = await self._resolve(outcome, scope, method)
        if outcome.error is not None:
            refusal = gate.refusal(outcome)
            await send({"type": "http.response.start", "status": refusal.status, "headers": refusal.asgi_headers()})
            await send({"type": "http.response.body", "body": refusal.body})
            gate.audit(outcome, method, scope["path"], refusal.status, request_id, address, started)
            return

        audited = self.auth.audit is not None
        extra = gate.asgi_success_headers(outcome)
        status = [500]
        if not audited and not extra:
            sending = send  # nothing to learn from the response, nothing to add to it: the app sends as is
        else:

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                    if extra:
                        message = dict(message)
                        message["headers"] = [*message.get("headers", ()), *extra]
                await send(message)

        scope = self._scope(scope, outcome, request_id, address)
        token = bind(outcome.principal, request_id)
        try:
            await self.app(scope, receive, sending)
        finally:
            reset(token)
            if audited:
                refused = scope["bastion"].refusal
                reason = refused.code if refused is not None else None
                gate.audit(outcome, method, scope["path"], status[0], request_id, address, started, reason)

    async def _resolve(self, step: _core.Outcome, scope: Scope, method: str) -> _core.Outcome:
        """Supply what the core's first step asked for (a record, a shared limiter's answer), awaited."""
        auth = self.auth
        gen = auth._resolve(self.rules, step, method, scope["path"], scope["headers"], None, None, None)
        return await auth._adrive(gen)

    async def _preflight(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, address: str | None, started: float
    ) -> None:
        """A CORS preflight goes to the app anonymous, undecided (see :func:`bastion._gate.is_preflight`)."""
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        scope = self._scope(scope, None, request_id, address)
        try:
            await self.app(scope, receive, sending)
        finally:
            self.audit(None, "OPTIONS", scope["path"], status[0], request_id, address, started)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        gate = self
        client = scope.get("client")
        request_id, address = gate.identify(client[0] if client else None, scope["headers"])
        outcome = self.auth._core.step(gate.rules, "GET", scope["path"], scope["headers"], None, None, None)
        if outcome.kind > _REFUSED:
            outcome = await self._resolve(outcome, scope, "GET")
        if outcome.error is not None:
            # close before accept: the server answers the handshake with 403 and no connection is opened
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": outcome.error.code})
            gate.audit(outcome, "GET", scope["path"], 403, request_id, address, started)
            return
        scope = self._scope(scope, outcome, request_id, address)
        token = bind(outcome.principal, request_id)
        try:
            await self.app(scope, receive, send)
        finally:
            reset(token)
            # an endpoint's own check may still refuse the handshake (closed before accept: 403)
            refused = scope["bastion"].refusal
            status, reason = (403, refused.code) if refused is not None else (101, None)
            gate.audit(outcome, "GET", scope["path"], status, request_id, address, started, reason)

    def _scope(self, scope: Scope, outcome: _core.Outcome | None, request_id: str, address: str | None) -> Scope:
        """A copy of ``scope`` with bastion's keys (``outcome`` None: a preflight, passed through anonymous)."""
        principal = outcome.principal if outcome is not None else None
        context = self.context(outcome, request_id, address)
        if principal is None:
            return {**scope, "user": ANONYMOUS, "auth": Credentials(), "bastion": context}
        return {**scope, "user": principal, "auth": Credentials.of(principal), "bastion": context}
