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
from bastion._gate import Gate, is_preflight

__all__ = ["AuthMiddleware"]

# loose on purpose: apps, servers and test clients each spell these types their own way
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

_REFUSED: Final = _core.Outcome.REFUSED
_Admitted: Final = _core.Admitted
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
        # the HTTP request is the hot path, one call into the core each way: ``GateCore.asgi`` steps the request
        # and, when it is admitted, builds the child scope, the context and the send wrapper; ``finish`` queues
        # the audit record. What the core hands back instead (a refusal, I/O to do, a request it leaves to the
        # shell) is handled here, in :meth:`_decide`.
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        admitted = self._glue.asgi(scope, send)
        if not isinstance(admitted, _Admitted):
            admitted = await self._decide(scope, send, admitted)
            if admitted is None:
                return
        try:
            await self.app(admitted.scope, receive, admitted.send)
        finally:
            admitted.finish()

    async def _decide(self, scope: Scope, send: Send, outcome: _core.Outcome | None) -> _core.Admitted | None:
        """A request the core did not admit at once: ``outcome`` refused or waiting for I/O, or None (a trusted
        proxy's headers to read, an ``OPTIONS`` request). The refusal is sent here; an admission is returned."""
        started = perf_counter()
        gate = self
        method: str = scope["method"]
        client = scope.get("client")
        request_id, address = gate.identify(client[0] if client else None, scope["headers"])
        if outcome is None:
            if is_preflight(method, scope["headers"]):  # passed to the app anonymous, undecided
                return gate._glue.admit_asgi(scope, None, send, request_id, address, perf_counter() - started)
            outcome = self.auth._core.step(gate.rules, method, scope["path"], scope["headers"], None, None, None)
        if outcome.kind > _REFUSED:
            outcome = await self._resolve(outcome, scope, method)
        if outcome.error is not None:
            refusal = gate.refusal(outcome)
            await send({"type": "http.response.start", "status": refusal.status, "headers": refusal.asgi_headers()})
            await send({"type": "http.response.body", "body": refusal.body})
            gate.audit(outcome, method, scope["path"], refusal.status, request_id, address, started)
            return None
        return gate._glue.admit_asgi(scope, outcome, send, request_id, address, perf_counter() - started)

    async def _resolve(self, step: _core.Outcome, scope: Scope, method: str) -> _core.Outcome:
        """Supply what the core's first step asked for (a record, a shared limiter's answer), awaited."""
        auth = self.auth
        gen = auth._resolve(self.rules, step, method, scope["path"], scope["headers"], None, None, None)
        return await auth._adrive(gen)

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
        admitted = gate._glue.admit_asgi(scope, outcome, None, request_id, address, perf_counter() - started)
        try:
            await self.app(admitted.scope, receive, send)
        finally:
            # an endpoint's own check may still refuse the handshake (closed before accept: 403)
            admitted.finish(403 if admitted.context.refusal is not None else 101)
