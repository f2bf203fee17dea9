"""bastion for Django: a middleware configured from ``settings.BASTION``, and a ``@requires`` view decorator.

Settings (``BASTION`` is a dict, or only the dotted path of an Authenticator factory)::

    BASTION = {
        "AUTHENTICATOR": "myproject.auth.make_authenticator",  # a dotted path to a factory, or an Authenticator
        "RULES": [bastion.Rule("/health", auth="none")],       # and EXEMPT, DEFAULT, PROBLEM_DETAILS,
        "USER_LOADER": "myproject.auth.load_user",             # RATELIMIT_HEADERS, TRUSTED_PROXIES,
    }                                                          # REQUEST_ID_HEADER (bastion.wsgi's options)
    MIDDLEWARE = ["bastion.integrations.django.BastionMiddleware", ...]

:class:`BastionMiddleware` is sync and async capable: under ASGI it decides with
:meth:`bastion.Authenticator.decide_async` (the token store and a shared limiter are awaited, the loop never
blocks). It sets ``request.principal`` (the :class:`bastion.Principal`, ``None`` when anonymous),
``request.bastion`` (the :class:`bastion.AuthContext`) and, with a ``USER_LOADER`` (``Principal -> user``, a
coroutine function allowed), ``request.user``. A refused request gets bastion's response and never reaches
the view; every request gets one audit record. Behind :class:`bastion.wsgi.AuthMiddleware` or
:class:`bastion.asgi.AuthMiddleware` it takes their decision instead, and they write the audit record.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.functional import SimpleLazyObject
from django.utils.module_loading import import_string

from bastion import _http
from bastion.auth import Authenticator
from bastion.errors import AuthError, ConfigurationError
from bastion.integrations._request import Checked, Guard, Requirement

__all__ = ["BastionMiddleware", "Config", "checked_of", "config", "loaded_user", "refusal_response", "requires"]

#: the setting bastion reads
SETTING: Final = "BASTION"
# the Guard options under their settings names
_OPTIONS: Final = {
    "RULES": "rules",
    "EXEMPT": "exempt",
    "DEFAULT": "default",
    "PROBLEM_DETAILS": "problem_details",
    "RATELIMIT_HEADERS": "ratelimit_headers",
    "TRUSTED_PROXIES": "trusted_proxies",
    "REQUEST_ID_HEADER": "request_id_header",
}
_OTHER_KEYS: Final = frozenset({"AUTHENTICATOR", "USER_LOADER", "THROTTLE_LIMITER"})
# the attributes of the HttpRequest holding its Checked and the user USER_LOADER made
_CHECKED: Final = "_bastion_checked"
_USER: Final = "_bastion_user"

V = TypeVar("V", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Config:
    """``settings.BASTION``, read: the guard, the optional user loader and the DRF throttle's limiter."""

    guard: Guard
    user_loader: Callable[[Any], Any] | None
    throttle_limiter: Any


@functools.cache
def config() -> Config:
    """``settings.BASTION`` resolved once (again after a test changes the setting); ``ConfigurationError`` when it
    is missing or wrong, saying what to change."""
    raw = getattr(settings, SETTING, None)
    if raw is None:
        raise ConfigurationError("settings.BASTION is not set: a dict with AUTHENTICATOR, or a dotted path")
    if isinstance(raw, (str, Authenticator)):
        raw = {"AUTHENTICATOR": raw}
    if not isinstance(raw, Mapping):
        raise ConfigurationError("settings.BASTION must be a dict or the dotted path of an Authenticator factory")
    unknown = set(raw) - set(_OPTIONS) - _OTHER_KEYS
    if unknown:
        raise ConfigurationError(f"settings.BASTION has unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    auth = _load(raw.get("AUTHENTICATOR"), "AUTHENTICATOR")
    if callable(auth) and not isinstance(auth, Authenticator):
        auth = auth()
    if not isinstance(auth, Authenticator):
        raise ConfigurationError("settings.BASTION['AUTHENTICATOR'] must be (or make) a bastion.Authenticator")
    options = {name: raw[key] for key, name in _OPTIONS.items() if key in raw}
    loader = _load(raw.get("USER_LOADER"), "USER_LOADER") if raw.get("USER_LOADER") is not None else None
    if loader is not None and not callable(loader):
        raise ConfigurationError("settings.BASTION['USER_LOADER'] must be a callable Principal -> user")
    limiter = raw.get("THROTTLE_LIMITER")
    limiter = _load(limiter, "THROTTLE_LIMITER") if limiter is not None else None
    return Config(Guard(auth, **options), loader, limiter)


def _load(value: object, key: str) -> Any:
    if value is None:
        raise ConfigurationError(f"settings.BASTION needs {key}")
    if not isinstance(value, str):
        return value
    try:
        return import_string(value)
    except ImportError as exc:
        raise ConfigurationError(f"settings.BASTION['{key}']: cannot import {value!r} ({exc})") from None


def _reload(*, setting: str, **_: Any) -> None:
    if setting == SETTING:
        config.cache_clear()


setting_changed.connect(_reload)


def checked_of(request: HttpRequest) -> Checked | None:
    """What bastion decided about ``request``: set by :class:`BastionMiddleware`, or adopted from
    :class:`bastion.wsgi.AuthMiddleware` (``request.META``) or :class:`bastion.asgi.AuthMiddleware` (the scope)."""
    checked = getattr(request, _CHECKED, None)
    if isinstance(checked, Checked):
        return checked
    checked = config().guard.adopt(request.META, getattr(request, "scope", None))
    if checked is not None:
        _attach(request, checked)
    return checked


def refusal_response(refusal: _http.Refusal) -> HttpResponse:
    """A Django response carrying ``refusal`` exactly: its status, headers and body."""
    response = HttpResponse(refusal.body, status=refusal.status, content_type=refusal.content_type)
    for name, value in refusal.headers:
        response[name] = value
    return response


def _attach(request: HttpRequest, checked: Checked) -> None:
    setattr(request, _CHECKED, checked)
    request.principal = checked.principal  # type: ignore[attr-defined]
    request.bastion = checked.context  # type: ignore[attr-defined]


def _set_user(request: HttpRequest, user: Any) -> None:
    request.user = user
    setattr(request, _USER, user)


def loaded_user(request: HttpRequest, principal: Any) -> Any:
    """The user ``USER_LOADER`` makes of ``principal``: the one the middleware loaded for ``request``, else loaded
    now (a request decided by a bastion WSGI/ASGI middleware alone); ``principal`` itself without a loader."""
    if hasattr(request, _USER):
        return getattr(request, _USER)
    loader = config().user_loader
    if loader is None:
        return principal
    return async_to_sync(loader)(principal) if iscoroutinefunction(loader) else loader(principal)


def _refuse(checked: Checked | None, error: AuthError) -> HttpResponse:
    if checked is not None and checked.error is not error:
        checked.refuse(error)
    return refusal_response(config().guard.render(error, checked))


class BastionMiddleware:
    """Authenticate every request (``MIDDLEWARE = ["bastion.integrations.django.BastionMiddleware", …]``, before
    the middlewares and views that need ``request.principal``)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        config()  # a wrong setting fails when the server starts, not at the first request

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        conf = config()
        guard = conf.guard
        adopted = checked_of(request)
        checked = adopted or guard.decide(request.method or "GET", request.path, request.META)
        _attach(request, checked)
        if checked.error is not None:
            return self._refused(guard, checked)
        principal = checked.principal
        if conf.user_loader is not None and principal is not None:
            loader = conf.user_loader
            _set_user(request, SimpleLazyObject(lambda: loader(principal)))
        checked.bind()
        try:
            response: HttpResponseBase = self.get_response(request)
        except BaseException:
            guard.finish(checked, 500)
            raise
        return self._done(guard, checked, response)

    async def _acall(self, request: HttpRequest) -> Any:
        conf = config()
        guard = conf.guard
        adopted = checked_of(request)
        checked = adopted or await guard.decide_async(request.method or "GET", request.path, request.META)
        _attach(request, checked)
        if checked.error is not None:
            return self._refused(guard, checked)
        principal = checked.principal
        loader = conf.user_loader
        if loader is not None and principal is not None:
            if iscoroutinefunction(loader):
                _set_user(request, await loader(principal))
            else:
                _set_user(request, await sync_to_async(loader)(principal))
        checked.bind()
        get_response = cast("Callable[[HttpRequest], Awaitable[HttpResponseBase]]", self.get_response)
        try:
            response = await get_response(request)
        except BaseException:
            guard.finish(checked, 500)
            raise
        return self._done(guard, checked, response)

    @staticmethod
    def _refused(guard: Guard, checked: Checked) -> HttpResponse:
        assert checked.error is not None
        response = refusal_response(guard.render(checked.error, checked))
        guard.finish(checked, response.status_code)
        return response

    @staticmethod
    def _done(guard: Guard, checked: Checked, response: HttpResponseBase) -> HttpResponseBase:
        if checked.error is None:
            for name, value in guard.success_headers(checked):
                response[name] = value
        guard.finish(checked, response.status_code)
        return response


def requires(*, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> Callable[[V], V]:
    """A view decorator (sync or async view): the request needs every one of ``scopes`` and one of ``roles``
    (if any), or gets bastion's refusal. Needs :class:`BastionMiddleware` (or a bastion WSGI/ASGI middleware);
    for a class-based view, ``method_decorator(requires(...), name="dispatch")``."""
    need = Requirement(scopes, roles)

    def check(request: HttpRequest) -> HttpResponse | None:
        checked = checked_of(request)
        if checked is None:
            raise ConfigurationError("@requires needs bastion.integrations.django.BastionMiddleware in MIDDLEWARE")
        error = need.check(checked.principal)
        return None if error is None else _refuse(checked, error)

    def decorate(view: V) -> V:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def guarded_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refusal = check(request)
                return refusal if refusal is not None else await view(request, *args, **kwargs)

            return cast("V", guarded_async)

        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refusal = check(request)
            return refusal if refusal is not None else view(request, *args, **kwargs)

        return cast("V", guarded)

    return decorate
