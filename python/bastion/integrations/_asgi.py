"""What the FastAPI and the Starlette integrations share: one endpoint requirement, decided once per request.

An endpoint's requirement (a principal, or an optional one; scopes, every one; roles, any one) is met in one of
two ways:

- behind :class:`bastion.asgi.AuthMiddleware`, the request is already decided: its ``scope["bastion"]``
  (:class:`bastion.AuthContext`) holds the principal and the rate decision, and the token is never read again;
- without it, the integration decides the request itself, once, with ``await auth.decide_async(...)`` (the
  same core call, rate limit included), records the decision in the scope as the middleware would, and writes
  the request's one audit record through :meth:`bastion._gate.Gate.audit` when the response has ended.

Either way the endpoint's own scopes and roles are checked by :func:`check`, and every refusal is rendered by
:func:`bastion._http.render` with the rate decision, so the response is the middleware's, byte for byte.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Unpack

from starlette.responses import Response

from bastion import _core, _http
from bastion._gate import ANONYMOUS, AuthContext, Credentials, EndpointOptions, Gate
from bastion.audit.context import bind, reset
from bastion.auth import Authenticator
from bastion.errors import AuthError, ConfigurationError, Forbidden, InsufficientScope, MissingToken
from bastion.rules import _names as names_of
from bastion.rules import compile as compile_rules

if TYPE_CHECKING:
    from bastion._core import Decision

__all__ = ["PENDING", "Integration", "Pending", "Requirement", "check", "refusal_response"]

Scope = MutableMapping[str, Any]
Send = Callable[[Any], Awaitable[None]]

#: the scope key under which an integration keeps the request it decided itself (see :class:`Pending`)
PENDING: Final = "bastion.pending"
_REFUSED: Final = _core.Outcome.REFUSED


class Requirement(NamedTuple):
    """What an endpoint needs: ``optional`` (an anonymous request passes), ``scopes`` (all), ``roles`` (any)."""

    optional: bool = False
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    @classmethod
    def of(cls, scopes: Iterable[str] = (), roles: Iterable[str] = (), *, optional: bool = False) -> Requirement:
        """A checked requirement; a ``ConfigurationError`` says what to change (as ``bastion.Rule`` does)."""
        if not isinstance(optional, bool):
            raise ConfigurationError("optional is True or False")
        wanted = names_of(scopes, "scopes"), names_of(roles, "roles")
        for names, field in zip(wanted, ("scopes", "roles"), strict=True):
            if not all(isinstance(n, str) and n for n in names):
                raise ConfigurationError(f"{field} must be non-empty strings")
        if optional and (wanted[0] or wanted[1]):
            raise ConfigurationError("scopes and roles need an authenticated principal: they cannot be optional")
        return cls(optional, *wanted)


def check(principal: Any, requirement: Requirement) -> AuthError | None:
    """The refusal for ``principal`` (None: anonymous) under ``requirement``, or None when it is met.

    The same verdict as a route rule in the core (``rust/auth/rules.rs``, ``authorize``): roles first (a
    principal without the role is not helped by more scopes), then every scope; the errors carry the core's
    messages (their defaults), and ``insufficient_scope`` names the required scopes for the challenge."""
    if principal is None or not principal.is_authenticated:
        return None if requirement.optional else MissingToken()
    roles = requirement.roles
    if roles and not any(principal.has_role(r) for r in roles):
        return Forbidden()
    scopes = requirement.scopes
    if scopes and not principal.has_scopes(*scopes):
        return InsufficientScope(required_scopes=scopes)
    return None


def refusal_response(refusal: _http.Refusal) -> Response:
    """``refusal`` as a Starlette response, its headers exactly as rendered (no second Content-Type/Length)."""
    response = Response(refusal.body, status_code=refusal.status)
    response.raw_headers = refusal.asgi_headers()
    return response


class Pending:
    """A request an integration decides itself (no middleware in front): its outcome, and the one audit record
    written when its response ends (:meth:`finish`), with the status :meth:`sender` saw."""

    __slots__ = ("address", "method", "outcome", "path", "request_id", "started", "status", "token", "websocket")

    def __init__(self, websocket: bool = False) -> None:
        self.started = time.perf_counter()
        self.websocket = websocket
        self.outcome: _core.Outcome | None = None
        self.status = 500  # what the audit says when the app raised before answering, as the middleware's
        self.method = "GET"
        self.path = ""
        self.request_id = ""
        self.address: str | None = None
        self.token: Any = None

    def refuse(self, error: AuthError) -> None:
        """The request was refused after its decision (an endpoint's scopes or roles, or the app raised one)."""
        outcome = self.outcome
        if outcome is not None and outcome.error is not error:
            self.outcome = _core.Outcome(_REFUSED, outcome.principal, outcome.decision, error, outcome.rule, None)

    def sender(self, gate: Gate, send: Send) -> Send:
        """``send`` that notes the status and adds the RateLimit fields to an admitted request's response."""

        async def sending(message: Any) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                self.status = message["status"]
                outcome = self.outcome
                if outcome is not None and outcome.error is None:
                    extra = gate.asgi_success_headers(outcome)
                    if extra:
                        message = {**message, "headers": [*message.get("headers", ()), *extra]}
            elif kind == "websocket.accept":
                self.status = 101
            elif kind == "websocket.close" and self.status == 500:
                self.status = 403  # closed before it was accepted: the server answers the handshake with 403
            await send(message)

        return sending

    def finish(self, gate: Gate) -> None:
        """Write the audit record, once; nothing when the request was never decided here."""
        outcome, self.outcome = self.outcome, None
        if outcome is None:
            return
        if self.token is not None:
            with contextlib.suppress(ValueError):  # bound in another (copied) context: it ends with that one
                reset(self.token)
            self.token = None
        status = 101 if self.websocket and outcome.error is None else self.status
        gate.audit(outcome, self.method, self.path, status, self.request_id, self.address, self.started)


class Integration:
    """The configuration of one integration (the middleware's options that concern an endpoint) and its steps.

    ``problem_details``, ``ratelimit_headers``, ``trusted_proxies`` and ``request_id_header`` mean what they
    mean on :class:`bastion.asgi.AuthMiddleware`; behind the middleware, give them the same values, so that an
    endpoint's refusal looks like the middleware's."""

    __slots__ = ("_optional", "gate")

    def __init__(self, auth: Authenticator, **options: Unpack[EndpointOptions]) -> None:
        #: the shared steps: request id and address, the scope's context, refusals and the audit record
        self.gate = Gate(None, auth, **options)
        self._optional = compile_rules((), default="optional")

    async def principal(self, scope: Scope, requirement: Requirement) -> Any:
        """The principal meeting ``requirement`` (None: anonymous, when optional), or raise the refusal.

        Decides the request only when neither the middleware nor an earlier requirement of the same request did;
        a request decided here needs a :class:`Pending` under :data:`PENDING` in its scope."""
        pending: Pending | None = scope.get(PENDING)
        context = scope.get("bastion")
        if isinstance(context, AuthContext):
            principal = context.principal
        elif pending is None:
            raise ConfigurationError(
                "bastion decides no request here: put bastion.asgi.AuthMiddleware in front of the app, or install "
                "the integration (BastionBearer.install(app) for FastAPI)"
            )
        else:
            outcome = await self._decide(scope, pending, requirement.optional)
            if outcome.error is not None:
                raise outcome.error
            principal = outcome.principal
        error = check(principal, requirement)
        if error is not None:
            self.settle(scope, error)
            raise error
        return principal

    async def _decide(self, scope: Scope, pending: Pending, optional: bool) -> _core.Outcome:
        gate = self.gate
        client = scope.get("client")
        headers = scope["headers"]
        request_id, address = gate.identify(client[0] if client else None, headers)
        method = "GET" if scope["type"] == "websocket" else scope["method"]
        path = scope["path"]
        rules = self._optional if optional else gate.rules
        outcome = await gate.auth.decide_async(headers=headers, method=method, path=path, rules=rules)
        pending.outcome, pending.method, pending.path = outcome, method, path
        pending.request_id, pending.address = request_id, address
        # what the middleware puts in the scope, so that request.user / request.auth and a later requirement of
        # the same request see this decision (the router's scope: changing it is visible to the endpoint only)
        scope["bastion"] = gate.context(outcome, request_id, address)
        if outcome.error is None:
            principal = outcome.principal
            scope["user"] = ANONYMOUS if principal is None else principal
            scope["auth"] = Credentials() if principal is None else Credentials(principal.scopes)
            pending.token = bind(principal, request_id)
        return outcome

    def settle(self, scope: Scope, error: AuthError) -> Decision | None:
        """Note that the request was refused with ``error`` (for its audit record) and give the rate decision its
        refusal must carry: the one made here; none behind the middleware, which adds its own RateLimit fields to
        every response of a request it admitted."""
        pending: Pending | None = scope.get(PENDING)
        if pending is not None and pending.outcome is not None:
            pending.refuse(error)  # an AuthError the endpoint raised itself is audited under its code too
            return pending.outcome.decision
        context = scope.get("bastion")
        if isinstance(context, AuthContext):  # the middleware's record names the refusal
            context.refusal = error
        return None

    def refusal(self, scope: Scope, error: AuthError) -> _http.Refusal:
        """The response to ``error`` for this request: with its rate decision, as the middleware renders it."""
        decision = self.settle(scope, error)
        gate = self.gate
        return _http.render(
            error,
            realm=gate.auth.realm,
            problem_details=gate.problem_details,
            decision=decision,
            include_ratelimit_headers=gate.ratelimit_headers,
        )
