"""FastAPI: the current :class:`bastion.Principal` as a security dependency, scopes per route in OpenAPI.

Usage::

    bearer = BastionBearer(auth)
    app = FastAPI()
    bearer.install(app)  # renders bastion's refusals; audits the requests the dependency decides

    @app.get("/api/v1/reports")
    async def reports(user: Annotated[bastion.Principal, Security(bearer, scopes=["read:reports"])]) -> ...

``Security(bearer, scopes=[...])``: a principal carrying every scope; ``Security(bearer.role("admin"))``: one
of the roles (scopes may be added); ``Security(bearer.optional)``: the principal, or ``None`` for a request
without a token (a bad token is still refused). Each is a FastAPI ``SecurityBase``, so the OpenAPI document
declares the HTTP bearer scheme (the Authorize button of ``/docs``) and each operation's scopes.

Behind :class:`bastion.asgi.AuthMiddleware` the dependency reuses the middleware's decision (the token is read
once); without it, the dependency decides the request itself with ``await auth.decide_async(...)`` and
:meth:`BastionBearer.install`'s small ASGI wrapper writes the request's one audit record when it has ended.
Refusals are bastion's (``{"error", "message"}``, the RFC 6750 challenge, ``Retry-After``), never
``{"detail": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

from fastapi import FastAPI
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket

from bastion._core import Principal
from bastion._gate import AuthContext, EndpointOptions
from bastion.asgi import WS_POLICY_VIOLATION, ASGIApp, Receive, Scope, Send
from bastion.auth import Authenticator
from bastion.errors import AuthError, ConfigurationError
from bastion.integrations._asgi import PENDING, Integration, Pending, Requirement, refusal_response

__all__ = ["BastionBearer"]


class BastionBearer(SecurityBase):
    """A FastAPI security dependency giving the request's :class:`bastion.Principal`.

    ``BastionBearer(auth, *, scheme_name="bearer", description=None, bearer_format=None, problem_details=False,
    ratelimit_headers=True, trusted_proxies=(), request_id_header="X-Request-ID")``: ``scheme_name`` and
    ``description`` name the OpenAPI security scheme, ``bearer_format`` its ``bearerFormat`` (e.g. ``"JWT"``);
    the other options mean what they mean on :class:`bastion.asgi.AuthMiddleware` (behind the middleware, give
    them its values). Call :meth:`install` once on the app.
    """

    def __init__(
        self,
        auth: Authenticator,
        *,
        scheme_name: str = "bearer",
        description: str | None = None,
        bearer_format: str | None = None,
        **options: Unpack[EndpointOptions],
    ) -> None:
        if not isinstance(scheme_name, str) or not scheme_name:
            raise ConfigurationError("scheme_name must be a non-empty string")
        self.model = HTTPBearerModel(bearerFormat=bearer_format, description=description)
        self.scheme_name = scheme_name
        self._integration = Integration(auth, **options)
        self._requirement = Requirement()
        # every dependency derived from this one, by (optional, roles): FastAPI keys its cache and its
        # dependency_overrides on the object, so one requirement is one object (bastion.testing overrides them all)
        self._family: dict[tuple[bool, tuple[str, ...]], BastionBearer] = {(False, ()): self}

    @property
    def optional(self) -> BastionBearer:
        """The dependency giving the principal, or ``None`` for a request that sent no token."""
        return self._derive(Requirement.of(optional=True))

    def role(self, *roles: str) -> BastionBearer:
        """The dependency giving a principal that holds one of ``roles`` (``forbidden`` otherwise)."""
        if not roles:
            raise ConfigurationError("role() needs at least one role")
        return self._derive(Requirement.of(roles=roles))

    def _derive(self, requirement: Requirement) -> BastionBearer:
        key = (requirement.optional, requirement.roles)
        member = self._family.get(key)
        if member is None:
            member = object.__new__(BastionBearer)
            member.__dict__.update(self.__dict__)
            member._requirement = requirement
            self._family[key] = member
        return member

    def requirement(self, scopes: Iterable[str] = ()) -> Requirement:
        """What this dependency asks for, with the route's ``scopes`` (``Security(..., scopes=[...])``)."""
        base = self._requirement
        return Requirement.of(scopes, base.roles, optional=base.optional) if scopes else base

    async def __call__(self, connection: HTTPConnection, security_scopes: SecurityScopes) -> Principal | None:
        requirement = self.requirement(security_scopes.scopes)
        principal: Principal | None = await self._integration.principal(connection.scope, requirement)
        return principal

    def install(self, app: FastAPI) -> None:
        """Render every :class:`bastion.AuthError` the app's dependencies and endpoints raise as bastion does, and
        wrap the app (innermost middleware) so that the requests this dependency decides are audited once."""
        if not isinstance(app, FastAPI):
            raise ConfigurationError("install() takes the FastAPI application")
        handler: Any = self._handle  # one handler for both scope types, which Starlette's types tell apart
        app.add_exception_handler(AuthError, handler)
        app.add_middleware(_Audited, integration=self._integration)

    async def _handle(self, connection: HTTPConnection, exc: Exception) -> Response | None:
        assert isinstance(exc, AuthError)  # registered for AuthError only
        integration = self._integration
        if isinstance(connection, WebSocket):  # close before accept, as the middleware refuses a handshake
            integration.settle(connection.scope, exc)
            await connection.close(code=WS_POLICY_VIOLATION, reason=exc.code)
            return None
        return refusal_response(integration.refusal(connection.scope, exc))


class _Audited:
    """Around a FastAPI app: the audit record of each request :class:`BastionBearer` decides (none for a request
    the middleware already decided, which writes its own)."""

    def __init__(self, app: ASGIApp, integration: Integration) -> None:
        self.app = app
        self.integration = integration

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or isinstance(scope.get("bastion"), AuthContext):
            await self.app(scope, receive, send)
            return
        pending = Pending(websocket=kind == "websocket")
        gate = self.integration.gate
        try:
            await self.app({**scope, PENDING: pending}, receive, pending.sender(gate, send))
        finally:
            pending.finish(gate)
