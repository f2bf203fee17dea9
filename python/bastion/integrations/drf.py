"""bastion for Django REST framework: authentication, permissions, a throttle and an exception handler.

Settings (with :class:`bastion.integrations.django.BastionMiddleware` in ``MIDDLEWARE``, or the app served
behind :class:`bastion.wsgi.AuthMiddleware` — whichever decided the request also writes its audit record)::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["bastion.integrations.drf.BastionAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["bastion.integrations.drf.HasScopes"],
        "EXCEPTION_HANDLER": "bastion.integrations.drf.exception_handler",
    }

- :class:`BastionAuthentication` returns ``(user, principal)`` — ``user`` is what ``USER_LOADER`` made, else the
  :class:`bastion.Principal` itself (``is_authenticated`` true) — so ``request.auth`` is the principal; an
  anonymous request is unauthenticated, and DRF answers it 401 with bastion's challenge (``authenticate_header``).
- :class:`HasScopes` checks ``view.required_scopes`` (every one), :class:`HasRole` ``view.required_roles`` (any
  one), as bastion's rules do: ``insufficient_scope`` (naming the scopes) and ``forbidden``.
- :class:`BastionThrottle` limits by the principal's :attr:`~bastion.Principal.rate_limit_key` and tier on a
  bastion limiter (``settings.BASTION["THROTTLE_LIMITER"]``, or the class's ``limiter``).
- :func:`exception_handler` answers bastion's errors, and DRF's ``NotAuthenticated`` (``missing_token``),
  ``AuthenticationFailed`` (``invalid_token``), ``PermissionDenied`` (``forbidden``) and ``Throttled``
  (``rate_limited``, with ``Retry-After`` and the RateLimit fields), with bastion's exact response.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from django.http import HttpResponseBase
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from bastion._core import Decision, Principal
from bastion.errors import (
    AuthError,
    ConfigurationError,
    Forbidden,
    InvalidToken,
    MissingToken,
    RateLimited,
)
from bastion.integrations._request import Checked, Requirement
from bastion.integrations.django import checked_of, config, loaded_user, refusal_response

__all__ = [
    "BastionAPIException",
    "BastionAuthentication",
    "BastionThrottle",
    "HasRole",
    "HasScopes",
    "exception_handler",
]

# the attribute of the HttpRequest holding the throttle's decision, for the 429's RateLimit fields
_THROTTLED: Final = "_bastion_throttle_decision"


class BastionAPIException(exceptions.APIException):
    """A bastion :class:`~bastion.AuthError` as a DRF exception: its status, code and message, and its RFC 6750
    challenge as ``auth_header`` (so that even DRF's own handler sends it); :func:`exception_handler` answers it
    with bastion's exact response."""

    def __init__(self, error: AuthError) -> None:
        super().__init__(detail=error.message, code=error.code)
        self.error = error
        self.status_code = error.status
        self.auth_header = dict(config().guard.render(error).headers).get("WWW-Authenticate")
        self.wait = getattr(error, "retry_after", None)


def _checked(request: Request) -> Checked:
    checked = checked_of(request._request)
    if checked is None:
        raise ConfigurationError(
            "bastion's DRF classes need bastion.integrations.django.BastionMiddleware in MIDDLEWARE "
            "(or the app behind bastion.wsgi.AuthMiddleware)"
        )
    return checked


class BastionAuthentication(BaseAuthentication):
    """The principal bastion's middleware authenticated, as DRF's ``(request.user, request.auth)``."""

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        checked = _checked(request)
        principal = checked.principal
        if principal is None:
            return None
        return loaded_user(request._request, principal), principal

    def authenticate_header(self, request: Request) -> str:
        return _challenge()


def _challenge() -> str:
    # the challenge of a request without a token: Bearer realm="…", as the middleware sends it
    return dict(config().guard.render(MissingToken()).headers)["WWW-Authenticate"]


@functools.lru_cache(maxsize=256)
def _requirement(scopes: tuple[str, ...], roles: tuple[str, ...]) -> Requirement:
    return Requirement(scopes, roles)


def _declared(view: Any, name: str) -> tuple[str, ...]:
    value = getattr(view, name, ())
    if isinstance(value, str):
        raise ConfigurationError(f"{type(view).__name__}.{name} must be a list of strings, not one string")
    try:
        return tuple(value)
    except TypeError:
        raise ConfigurationError(f"{type(view).__name__}.{name} must be a list of strings") from None


class _Requires(BasePermission):
    attribute: str = ""

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth if isinstance(request.auth, Principal) else None
        if principal is None:
            return False  # DRF answers NotAuthenticated (401, bastion's challenge) or PermissionDenied
        declared = _declared(view, self.attribute)
        need = _requirement(declared, ()) if self.attribute == "required_scopes" else _requirement((), declared)
        error = need.check(principal)
        if error is not None:
            raise BastionAPIException(error)
        return True


class HasScopes(_Requires):
    """The token carries every scope of the view's ``required_scopes`` (``insufficient_scope`` otherwise)."""

    attribute = "required_scopes"


class HasRole(_Requires):
    """The principal has one of the view's ``required_roles`` (``forbidden`` otherwise)."""

    attribute = "required_roles"


class BastionThrottle(BaseThrottle):
    """A throttle on a bastion limiter (``limiter``, default ``settings.BASTION["THROTTLE_LIMITER"]``): keyed by the
    principal's ``rate_limit_key`` in the tier :meth:`tier` chooses (default the principal's own); an anonymous
    request by its client address, in ``anonymous_tier`` (default ``None``: the limiter's default tier)."""

    limiter: Any = None
    anonymous_tier: str | None = None

    def __init__(self) -> None:
        self.decision: Decision | None = None

    def tier(self, principal: Principal) -> str | None:
        """The tier ``principal`` is limited in."""
        return principal.tier

    def allow_request(self, request: Request, view: Any) -> bool:
        limiter = self.limiter if self.limiter is not None else config().throttle_limiter
        if limiter is None:
            raise ConfigurationError("BastionThrottle needs settings.BASTION['THROTTLE_LIMITER'] (a bastion limiter)")
        principal = request.auth if isinstance(request.auth, Principal) else None
        if principal is not None:
            key, tier = principal.rate_limit_key, self.tier(principal)
        else:
            address = _checked(request).context.client_address or ""
            key, tier = "anonymous:" + address, self.anonymous_tier
        decision: Decision = limiter.check(key, tier=tier)
        self.decision = decision
        if not decision.allowed:
            setattr(request._request, _THROTTLED, decision)
        return decision.allowed

    def wait(self) -> float | None:
        return self.decision.retry_after if self.decision is not None else None


def _as_bastion(exc: BaseException) -> AuthError | None:
    if isinstance(exc, BastionAPIException):
        return exc.error
    if isinstance(exc, AuthError):
        return exc
    if isinstance(exc, exceptions.NotAuthenticated):
        return MissingToken()
    if isinstance(exc, exceptions.AuthenticationFailed):
        return InvalidToken()
    if isinstance(exc, exceptions.PermissionDenied):
        return Forbidden()
    if isinstance(exc, exceptions.Throttled):
        return RateLimited(retry_after=getattr(exc, "wait", None))
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponseBase | None:
    """DRF's ``EXCEPTION_HANDLER``: bastion's response for bastion's errors and DRF's authentication, permission and
    throttling errors; DRF's own handler for everything else."""
    error = _as_bastion(exc)
    if error is None:
        # imported here: rest_framework.views imports the classes its settings name — this module among them
        from rest_framework.views import exception_handler as drf_exception_handler

        return drf_exception_handler(exc, context)
    request = context.get("request")
    django_request = request._request if isinstance(request, Request) else None
    checked = checked_of(django_request) if django_request is not None else None
    if checked is not None and checked.error is not error:
        checked.refuse(error)
    decision = getattr(django_request, _THROTTLED, None) if isinstance(exc, exceptions.Throttled) else None
    return refusal_response(config().guard.render(error, checked, decision))
