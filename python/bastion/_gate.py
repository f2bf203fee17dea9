"""What the ASGI and the WSGI middleware share: configuration, the request's context, refusals and audit.

The two middlewares differ only in how they read a request and write a response; every decision — the
rules, what a refusal looks like, which headers a success carries, what the audit record says — is made
here once (and the authentication itself in :class:`bastion.Authenticator`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypedDict

from bastion import _core, _http
from bastion._client import ClientResolver, new_request_id
from bastion.audit import AuditRecord
from bastion.audit.context import _CURRENT
from bastion.audit.writer import AuditLog
from bastion.auth import Authenticator
from bastion.errors import ConfigurationError
from bastion.rules import AuthMode, Rule
from bastion.rules import _names as names_of
from bastion.rules import compile as compile_rules

if TYPE_CHECKING:
    from bastion._core import Outcome

from time import perf_counter
from time import time as _now

__all__ = ["ANONYMOUS", "AuthContext", "Credentials", "EndpointOptions", "Gate", "GateOptions"]


class Anonymous:
    """The user of a request that carried no token where none was needed (``auth="optional"`` or ``"none"``).

    The Starlette ``BaseUser`` duck type, like :class:`bastion.Principal`: ``is_authenticated`` is false."""

    __slots__ = ()
    is_authenticated: Final = False
    display_name: Final = ""
    identity: Final = ""
    subject: Final = None
    scopes: Final = frozenset[str]()
    roles: Final = frozenset[str]()

    def has_scopes(self, *scopes: str) -> bool:
        return not scopes

    def has_role(self, role: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "Anonymous()"


ANONYMOUS: Final = Anonymous()


#: ``scope["auth"]``: the granted scopes, in the shape of Starlette's ``AuthCredentials`` (``.scopes``, a sorted
#: list); built by the core from the principal, sorted only when ``scopes`` is first read.
Credentials = _core.Credentials
#: ``scope["bastion"]`` / ``environ["bastion.auth"]``: what bastion decided about this request (``principal``,
#: ``decision``, ``request_id``, ``client_address``, ``rule``, and ``refusal``: the refusal of a check made
#: after the middleware admitted the request, which its audit record then names). Built by the core.
AuthContext = _core.AuthContext


class EndpointOptions(TypedDict, total=False):
    """The middleware's options that concern one endpoint: what a framework integration forwards to its
    :class:`Gate` (the defaults are :class:`Gate`'s, written once there)."""

    problem_details: bool
    ratelimit_headers: bool
    trusted_proxies: Iterable[str]
    request_id_header: str


class GateOptions(EndpointOptions, total=False):
    """Every option of :class:`Gate` besides the app and the Authenticator: the route rules too."""

    rules: Sequence[Rule]
    exempt: Iterable[str]
    default: AuthMode


class Gate:
    """The configuration of one middleware and the steps both middlewares take around the app: the base of
    :class:`bastion.asgi.AuthMiddleware` and :class:`bastion.wsgi.AuthMiddleware`, which share its options."""

    __slots__ = (
        "_glue",
        "_rule_list",
        "_trusting",
        "api_key_environ",
        "app",
        "auth",
        "problem_details",
        "ratelimit_headers",
        "request_id_header",
        "resolver",
        "rules",
    )

    def __init__(
        self,
        app: Any,
        auth: Authenticator,
        *,
        rules: Sequence[Rule] = (),
        exempt: Iterable[str] = (),
        default: AuthMode = "required",
        problem_details: bool = False,
        ratelimit_headers: bool = True,
        trusted_proxies: Iterable[str] = (),
        request_id_header: str = "X-Request-ID",
    ) -> None:
        if not isinstance(auth, Authenticator):
            raise ConfigurationError("auth must be a bastion.Authenticator")
        if not isinstance(problem_details, bool) or not isinstance(ratelimit_headers, bool):
            raise ConfigurationError("problem_details and ratelimit_headers are True or False")
        if isinstance(exempt, str):
            raise ConfigurationError("exempt is a list of paths, not one str")
        exempt = names_of(exempt, "exempt")
        rules = names_of(rules, "rules", "bastion.Rule objects")
        self.app = app
        self.auth = auth
        #: the WSGI environ key of the API-key header (``X-API-Key`` → ``HTTP_X_API_KEY``), if one is configured
        self.api_key_environ = "HTTP_" + auth.api_key_header.upper().replace("-", "_") if auth.api_key_header else None
        self.rules = compile_rules(rules, exempt=exempt, default=default)
        # what each index of the compiled set refers to, for the audit's http.route and AuthContext.rule
        self._rule_list: tuple[Rule, ...] = tuple(Rule(p, auth="none") for p in exempt) + tuple(rules)
        self.problem_details = problem_details
        self.ratelimit_headers = ratelimit_headers
        self.resolver = ClientResolver(trusted_proxies)
        self._trusting = bool(self.resolver.trusted_proxies)
        self.request_id_header = request_id_header
        #: the per-request glue of the middlewares (``rust/py/gate/``): admission and the audit record
        self._glue = _core.GateCore(
            auth,
            self.rules,
            self._rule_list,
            ratelimit_headers,
            self._trusting,
            self.api_key_environ,
            _CURRENT,
            ANONYMOUS,
            AuditLog,
            _emit,
        )

    def rule(self, index: int) -> Rule | None:
        return self._rule_list[index] if index >= 0 else None

    def refusal(self, outcome: Outcome) -> _http.Refusal:
        """The response to a refused request."""
        assert outcome.error is not None
        return _http.render(
            outcome.error,
            realm=self.auth.realm,
            problem_details=self.problem_details,
            decision=outcome.decision,
            include_ratelimit_headers=self.ratelimit_headers,
        )

    def success_headers(self, outcome: Outcome) -> list[tuple[str, str]]:
        """Headers added to an admitted request's response: the RateLimit fields, when configured."""
        decision = outcome.decision
        if decision is None or not self.ratelimit_headers:
            return []
        return _http.ratelimit_headers(decision)

    def asgi_success_headers(self, outcome: Outcome) -> Sequence[tuple[bytes, bytes]]:
        """:meth:`success_headers` as ASGI byte pairs."""
        decision = outcome.decision
        if decision is None or not self.ratelimit_headers:
            return ()
        return _http.asgi_ratelimit_headers(decision)

    def context(self, outcome: Outcome | None, request_id: str, client_address: str | None) -> AuthContext:
        """The request's :class:`AuthContext` (``outcome`` None: a preflight bastion did not decide)."""
        if outcome is None:
            return AuthContext(None, None, request_id, client_address, None)
        return AuthContext(outcome.principal, outcome.decision, request_id, client_address, self.rule(outcome.rule))

    def identify(self, peer: str | None, headers: Any) -> tuple[str, str | None]:
        """The request id and the client address (trusted proxies only; by default the peer itself)."""
        if not self._trusting:  # the default: the peer is the client, and the id is ours
            return new_request_id(), peer
        address, request_id = self.resolver.resolve(peer, headers, self.request_id_header)
        return request_id, address

    def audit(
        self,
        outcome: Outcome | None,
        method: str,
        path: str,
        status: int,
        request_id: str,
        client_address: str | None,
        started: float,
        reason: str | None = None,
    ) -> None:
        """One audit record for the request, admitted or refused; nothing when the Authenticator has no audit.

        ``outcome`` is ``None`` for a request bastion let through without deciding (a CORS preflight);
        ``reason``: the code of a refusal made after admission (:attr:`AuthContext.refusal`). The record itself
        is derived on the writer's thread (:meth:`bastion.audit.AuditRecord.of_request`)."""
        log = self.auth.audit
        if log is None:
            return
        rule = self._rule_list[outcome.rule] if outcome is not None and outcome.rule >= 0 else None
        duration_ms = (perf_counter() - started) * 1000.0
        _emit(log, (outcome, rule, method, path, status, request_id, client_address, duration_ms, _now(), reason))


def _emit(log: Any, item: tuple[Any, ...]) -> None:
    """Give one request's record (the tuple of :meth:`AuditLog.request`) to ``log``: bastion's own log queues
    the tuple; an audit object of the application's own, with ``emit(record)`` only, gets the record."""
    if isinstance(log, AuditLog):
        log.request(*item)
    else:
        log.emit(AuditRecord.of_request(*item))


def is_preflight(method: str, headers: Any) -> bool:
    """A CORS preflight: ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method`` (browsers never send
    ``Authorization`` on one, so it passes unauthenticated). ``headers``: ASGI pairs (lowercase bytes)."""
    if method != "OPTIONS":
        return False
    seen = 0
    for name, _ in headers:
        if name == b"origin":
            seen |= 1
        elif name == b"access-control-request-method":
            seen |= 2
    return seen == 3
