"""bastion for Flask: an extension, a ``@requires`` decorator and ``current_principal``.

Usage::

    from bastion.integrations.flask import Bastion, current_principal, requires

    app = Flask(__name__)
    Bastion(app, auth, rules=[bastion.Rule("/health", auth="none")])   # or bastion_ext.init_app(app, auth)

    @app.get("/reports")
    @requires(scopes=["read:reports"])
    def reports():
        return {"subject": current_principal.subject}

Every request of the app (its blueprints included) is decided before its view by the same
:class:`bastion.Authenticator` call as :class:`bastion.wsgi.AuthMiddleware`, refused with the same response, and
audited with the same record, once. When the app is already wrapped in ``bastion.wsgi.AuthMiddleware``, the
extension takes the middleware's decision (``environ["bastion.auth"]``) and never authenticates again; the
middleware writes the audit record. The extension sets the environ keys the middleware sets
(``bastion.principal``, ``bastion.auth``, ``AUTH_TYPE``, ``REMOTE_USER``); ``g.principal`` is the
:class:`bastion.Principal` (``None`` when anonymous), ``g.bastion`` the request's :class:`bastion.AuthContext`;
:data:`current_principal` is the principal or :data:`bastion.ANONYMOUS`. A :class:`bastion.AuthError` raised by a
view is answered as bastion answers it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar, Unpack, cast

from flask import Flask, Response, current_app, g, request
from werkzeug.local import LocalProxy

from bastion._gate import ANONYMOUS, GateOptions
from bastion.auth import Authenticator
from bastion.errors import AuthError, ConfigurationError
from bastion.integrations._request import Checked, Guard, Requirement

__all__ = ["Bastion", "current_principal", "requires"]

#: the key of the extension in ``app.extensions``
EXTENSION: Final = "bastion"
# where the request's Checked lives: the WSGI environ outlives g's teardown order and is per request
_CHECKED: Final = "bastion.integrations.flask"

F = TypeVar("F", bound=Callable[..., Any])


class Bastion:
    """The Flask extension: ``Bastion(app, auth, *, rules=(), exempt=(), default="required", problem_details=False,
    ratelimit_headers=True, trusted_proxies=(), request_id_header="X-Request-ID")``, or ``Bastion()`` and later
    :meth:`init_app` (the options are those of :class:`bastion.wsgi.AuthMiddleware`)."""

    def __init__(
        self, app: Flask | None = None, auth: Authenticator | None = None, **options: Unpack[GateOptions]
    ) -> None:
        self._options: dict[str, Any] = dict(options)
        self._auth = auth
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, auth: Authenticator | None = None, **options: Unpack[GateOptions]) -> None:
        """Install bastion on ``app``; ``auth`` and ``options`` override those given to the constructor. Installing
        it again on the same app replaces its configuration."""
        auth = auth if auth is not None else self._auth
        if auth is None:
            raise ConfigurationError("Bastion needs an Authenticator: Bastion(app, auth) or init_app(app, auth)")
        unknown = set(options) - GateOptions.__optional_keys__
        if unknown:
            raise ConfigurationError(f"unknown Bastion option(s): {', '.join(sorted(unknown))}")
        guard = Guard(auth, **{**self._options, **options})
        installed = EXTENSION in app.extensions
        app.extensions[EXTENSION] = guard
        if installed:  # configured again: the new guard takes over the hooks already registered
            return
        app.before_request(_before)
        app.after_request(_after)
        app.teardown_request(_teardown)
        app.register_error_handler(AuthError, _refused)


def _guard() -> Guard:
    guard = current_app.extensions.get(EXTENSION)
    if not isinstance(guard, Guard):
        raise ConfigurationError("bastion is not installed on this Flask app: Bastion(app, auth)")
    return guard


def _before() -> Response | None:
    guard = _guard()
    environ = request.environ
    # the path the WSGI middleware matches rules on, so that both always choose the same rule
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    checked = guard.adopt(environ) or guard.decide(request.method, path, environ)
    environ[_CHECKED] = checked
    g.principal = checked.principal
    g.bastion = checked.context
    if checked.owned:  # what the middleware would have set, so that code written for it works unchanged
        environ["bastion.principal"] = checked.principal
        environ["bastion.auth"] = checked.context
        if checked.principal is not None:
            environ["AUTH_TYPE"] = "Bearer"
            environ.setdefault("REMOTE_USER", checked.principal.subject)
    error = checked.error
    if error is not None:
        return _response(guard, error, checked)
    checked.bind()
    return None


def _after(response: Response) -> Response:
    checked = request.environ.get(_CHECKED)
    if isinstance(checked, Checked):
        if checked.error is None:
            for name, value in _guard().success_headers(checked):
                response.headers[name] = value
        request.environ[_CHECKED + ".status"] = response.status_code
    return response


def _teardown(exc: BaseException | None) -> None:
    environ = request.environ
    checked = environ.get(_CHECKED)
    if isinstance(checked, Checked):
        status = 500 if exc is not None else environ.get(_CHECKED + ".status", 500)
        _guard().finish(checked, status)


def _refused(error: AuthError) -> Response:
    checked = request.environ.get(_CHECKED)
    return _response(_guard(), error, checked if isinstance(checked, Checked) else None)


def _response(guard: Guard, error: AuthError, checked: Checked | None) -> Response:
    if checked is not None and checked.error is not error:
        checked.refuse(error)
    refusal = guard.render(error, checked)
    return Response(refusal.body, status=refusal.status, headers=refusal.headers)


def requires(*, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> Callable[[F], F]:
    """A view decorator: the request needs a token with every one of ``scopes`` and one of ``roles`` (if any).

    Refusals are bastion's (``missing_token`` 401, ``forbidden`` / ``insufficient_scope`` 403 naming the scopes).
    Works in blueprints and with :class:`bastion.wsgi.AuthMiddleware` in front of the app; needs the extension
    (:class:`Bastion`) on the app, which renders the refusal."""
    need = Requirement(scopes, roles)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            checked = request.environ.get(_CHECKED)
            principal = checked.principal if isinstance(checked, Checked) else None
            error = need.check(principal)
            if error is not None:
                return _response(_guard(), error, checked if isinstance(checked, Checked) else None)
            return view(*args, **kwargs)

        return cast("F", guarded)

    return decorate


def _current() -> Any:
    checked = request.environ.get(_CHECKED)
    principal = checked.principal if isinstance(checked, Checked) else request.environ.get("bastion.principal")
    return ANONYMOUS if principal is None else principal


#: The request's :class:`bastion.Principal`, or :data:`bastion.ANONYMOUS` (``is_authenticated`` false); also
#: under :class:`bastion.wsgi.AuthMiddleware` alone.
current_principal: Any = LocalProxy(_current)
