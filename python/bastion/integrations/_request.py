"""What the Flask, Django and DRF integrations share: one request's decision, its refusal and its audit record.

A framework integration never decides anything of its own. :class:`Guard` holds a :class:`bastion._gate.Gate`
(the middlewares' own configuration: rules, exempt paths, refusal options, trusted proxies), so a request
handled by an integration is decided by the same :class:`bastion.Authenticator` call, refused with the same
:func:`bastion._http.render` output and audited with the same record as under :class:`bastion.wsgi.AuthMiddleware`.

When a bastion middleware already decided the request (``environ["bastion.auth"]`` from the WSGI one,
``scope["bastion"]`` from the ASGI one), :meth:`Guard.adopt` takes that decision as it is: the request is never
authenticated twice, and the middleware, which sees the response, writes the audit record.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Unpack

from bastion import _core, _http
from bastion._gate import AuthContext, Gate, GateOptions
from bastion.audit.context import BindToken, bind, reset
from bastion.auth import Authenticator
from bastion.errors import AuthError, ConfigurationError, Forbidden, InsufficientScope, MissingToken
from bastion.rules import Rule
from bastion.rules import _names as names_of

if TYPE_CHECKING:
    from bastion._core import Decision, Principal

__all__ = ["Checked", "Guard", "Requirement", "context_of"]

_DONE: Final = _core.Outcome.DONE
_REFUSED: Final = _core.Outcome.REFUSED
#: where the WSGI middleware leaves its decision (PEP 3333 environ) and where the ASGI one does (scope)
ENVIRON_KEY: Final = "bastion.auth"
SCOPE_KEY: Final = "bastion"


class Requirement:
    """The scopes (every one) and roles (any one) one view asks for, checked as the route rules are: roles
    first (a principal without the role is ``forbidden`` whatever its scopes), then scopes
    (``insufficient_scope``, naming every scope required); an anonymous request is ``missing_token``."""

    __slots__ = ("roles", "scopes")

    def __init__(self, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> None:
        # a Rule validates scope and role names the way the core does; its tuples are kept
        rule = Rule("/", scopes=names_of(scopes, "scopes"), roles=names_of(roles, "roles"))
        self.scopes: tuple[str, ...] = rule.scopes
        self.roles: tuple[str, ...] = rule.roles

    def check(self, principal: Any) -> AuthError | None:
        """The refusal for ``principal`` (a :class:`bastion.Principal`, ``None`` or an anonymous user), or None."""
        if principal is None or not getattr(principal, "is_authenticated", False):
            return MissingToken()
        if self.roles and not any(principal.has_role(role) for role in self.roles):
            return Forbidden()
        if self.scopes and not principal.has_scopes(*self.scopes):
            return InsufficientScope(required_scopes=self.scopes)
        return None

    def __repr__(self) -> str:
        return f"Requirement(scopes={list(self.scopes)!r}, roles={list(self.roles)!r})"


class Checked:
    """One request as bastion saw it: its :class:`bastion.AuthContext`, and — when this integration decided it —
    what the audit record needs (the outcome, method, path and arrival time).

    ``owned`` is False when a bastion middleware decided the request: the middleware writes the audit record."""

    __slots__ = ("_audited", "_token", "context", "method", "outcome", "owned", "path", "started")

    def __init__(
        self,
        context: AuthContext,
        outcome: _core.Outcome | None,
        method: str,
        path: str,
        started: float,
        owned: bool,
    ) -> None:
        self.context = context
        self.outcome = outcome
        self.method = method
        self.path = path
        self.started = started
        self.owned = owned
        self._audited = False
        self._token: BindToken | None = None

    @property
    def principal(self) -> Any:
        """The :class:`bastion.Principal`, or ``None`` for an anonymous request."""
        return self.context.principal

    @property
    def error(self) -> AuthError | None:
        """The refusal, when the request was refused (by the rules or by a view's requirement)."""
        return self.outcome.error if self.outcome is not None else None

    def refuse(self, error: AuthError) -> None:
        """Record that a view refused the request with ``error`` (its audit record then names the code)."""
        outcome = self.outcome
        if outcome is not None:
            self.outcome = _core.Outcome(_REFUSED, outcome.principal, outcome.decision, error, outcome.rule, None)
        if not self.owned:  # a middleware decided the request and writes its record: it reads the refusal here
            self.context.refusal = error

    def bind(self) -> None:
        """Bind the request's identity for :class:`bastion.audit.AuditContextFilter` (a middleware already did)."""
        if self.owned and self._token is None:
            self._token = bind(self.context.principal, self.context.request_id)

    def unbind(self) -> None:
        if self._token is not None:
            token, self._token = self._token, None
            reset(token)

    def __repr__(self) -> str:
        return f"Checked({self.context!r}, owned={self.owned})"


class Guard:
    """The configuration of one integration: an :class:`bastion.Authenticator` and the options of
    :class:`bastion.wsgi.AuthMiddleware` (``rules``, ``exempt``, ``default``, ``problem_details``,
    ``ratelimit_headers``, ``trusted_proxies``, ``request_id_header``), which mean the same here.

    ``override``: a :class:`bastion.Principal` every request is decided as, without a token (the test helpers
    of :mod:`bastion.testing.flask` and :mod:`bastion.testing.django` set it); the rules still apply to it."""

    __slots__ = ("auth", "gate", "override")

    def __init__(self, auth: Authenticator, **options: Unpack[GateOptions]) -> None:
        self.gate = Gate(None, auth, **options)
        self.auth = auth
        self.override: Principal | None = None

    # -- deciding ---------------------------------------------------------------------------------------

    def adopt(self, environ: Mapping[str, Any], scope: Mapping[str, Any] | None = None) -> Checked | None:
        """The decision a bastion middleware already made for this request, or None when none ran."""
        context = context_of(environ, scope)
        if context is None:
            return None
        return Checked(context, None, "", "", 0.0, owned=False)

    def decide(self, method: str, path: str, environ: Mapping[str, Any]) -> Checked:
        """Decide the request from its method, the path the framework routes on and its WSGI-style ``environ``
        (``request.META`` in Django). Blocking."""
        early, authorization, api_key, started, request_id, address = self._start(method, path, environ)
        if early is not None:
            return early
        outcome = self.auth.decide(authorization, method=method, path=path, api_key=api_key, rules=self.gate.rules)
        return self._checked(outcome, method, path, started, request_id, address)

    async def decide_async(self, method: str, path: str, environ: Mapping[str, Any]) -> Checked:
        """:meth:`decide` for asyncio: the token store and a shared limiter are awaited, never blocked on."""
        early, authorization, api_key, started, request_id, address = self._start(method, path, environ)
        if early is not None:
            return early
        outcome = await self.auth.decide_async(
            authorization, method=method, path=path, api_key=api_key, rules=self.gate.rules
        )
        return self._checked(outcome, method, path, started, request_id, address)

    def _start(
        self, method: str, path: str, environ: Mapping[str, Any]
    ) -> tuple[Checked | None, Any, Any, float, str, str | None]:
        """Everything before the Authenticator's call, for both worlds: the arrival time, the request id and client
        address, the credentials — and the answer itself when there is no call to make (a CORS preflight passes
        undecided, as under the middleware; an override decides alone)."""
        started = time.perf_counter()
        request_id, address = self.gate.identify(environ.get("REMOTE_ADDR"), environ)
        early: Checked | None = None
        if _preflight(method, environ):
            early = self._checked(None, method, path, started, request_id, address)
        elif self.override is not None:
            early = self._checked(self._fixed(self.override, method, path), method, path, started, request_id, address)
        key_name = self.gate.api_key_environ
        api_key = environ.get(key_name) if key_name else None
        return early, environ.get("HTTP_AUTHORIZATION"), api_key, started, request_id, address

    def _fixed(self, principal: Principal, method: str, path: str) -> _core.Outcome:
        """The outcome for ``principal`` (the override) under the rules: an ``auth="none"`` route sees no
        principal, a rule's scopes and roles are checked as :class:`Requirement` checks them; no rate limit."""
        rules = self.gate.rules
        try:
            found = rules.match(method, path)
        except AuthError as exc:  # a path not in normal form: refused on every route
            return _core.Outcome(_REFUSED, None, None, exc, -1, None)
        index = -1 if found is None else found
        rule = self.gate.rule(index)
        if (rule.auth if rule is not None else rules.default) == "none":
            return _core.Outcome(_DONE, None, None, None, index, None)
        error = Requirement(rule.scopes, rule.roles).check(principal) if rule is not None else None
        return _core.Outcome(_DONE if error is None else _REFUSED, principal, None, error, index, None)

    def _checked(
        self,
        outcome: _core.Outcome | None,
        method: str,
        path: str,
        started: float,
        request_id: str,
        address: str | None,
    ) -> Checked:
        context = self.gate.context(outcome, request_id, address)
        return Checked(context, outcome, method, path, started, owned=True)

    # -- answering --------------------------------------------------------------------------------------

    def render(
        self, error: AuthError, checked: Checked | None = None, decision: Decision | None = None
    ) -> _http.Refusal:
        """The refusal for ``error``: what the middleware would answer, with the RateLimit fields of ``decision``
        (default: the request's own rate decision, if one was made)."""
        if decision is None and checked is not None:
            decision = checked.context.decision
        gate = self.gate
        return _http.render(
            error,
            realm=self.auth.realm,
            problem_details=gate.problem_details,
            decision=decision,
            include_ratelimit_headers=gate.ratelimit_headers,
        )

    def success_headers(self, checked: Checked) -> list[tuple[str, str]]:
        """The headers an admitted response gets (the RateLimit fields), unless a middleware added them."""
        if not checked.owned or checked.outcome is None or checked.outcome.error is not None:
            return []
        return self.gate.success_headers(checked.outcome)

    def finish(self, checked: Checked, status: int) -> None:
        """Write the request's one audit record (only when this integration decided it, and only once)."""
        checked.unbind()
        if not checked.owned or checked._audited:
            return
        checked._audited = True
        ctx = checked.context
        self.gate.audit(
            checked.outcome, checked.method, checked.path, status, ctx.request_id, ctx.client_address, checked.started
        )


def context_of(environ: Mapping[str, Any], scope: Mapping[str, Any] | None = None) -> AuthContext | None:
    """The :class:`bastion.AuthContext` a bastion middleware left in ``environ`` (WSGI) or ``scope`` (ASGI)."""
    context = environ.get(ENVIRON_KEY)
    if context is None and scope is not None:
        context = scope.get(SCOPE_KEY)
    if context is not None and not isinstance(context, AuthContext):
        raise ConfigurationError(f"{ENVIRON_KEY!r} holds {type(context).__name__}, not a bastion.AuthContext")
    return context


def _preflight(method: str, environ: Mapping[str, Any]) -> bool:
    # the middlewares' rule (bastion._gate.is_preflight), read from an environ: OPTIONS + Origin + the method asked
    return method == "OPTIONS" and "HTTP_ORIGIN" in environ and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
