"""`bastion.wsgi.AuthMiddleware`: authenticate every request of a WSGI (PEP 3333) app.

Usage::

    app.wsgi_app = bastion.wsgi.AuthMiddleware(app.wsgi_app, auth, rules=[bastion.Rule("/health", auth="none")])

``environ["bastion.principal"]`` is the :class:`bastion.Principal` (``None`` for an anonymous request),
``environ["bastion.auth"]`` the request's :class:`bastion.AuthContext`, ``environ["AUTH_TYPE"]`` is
``"Bearer"`` and ``environ["REMOTE_USER"]`` the subject — unless the server already set one, which is never
overwritten. A refused request gets its error response here and never reaches the app. The options are
those of :class:`bastion.asgi.AuthMiddleware`; every decision is shared with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from types import TracebackType
from typing import Any

from bastion._gate import AuthContext, Gate
from bastion.audit.context import bind, reset

__all__ = ["AuthMiddleware"]

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Any, Any], Iterable[bytes]]


class AuthMiddleware(Gate):
    """WSGI middleware: ``AuthMiddleware(app, auth, *, rules=(), exempt=(), default="required",
    problem_details=False, ratelimit_headers=True, trusted_proxies=(), request_id_header="X-Request-ID")``
    (see :class:`bastion.asgi.AuthMiddleware` for the options)."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = perf_counter()
        gate = self
        method: str = environ.get("REQUEST_METHOD", "GET")
        path: str = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        request_id, address = gate.identify(environ.get("REMOTE_ADDR"), environ)

        if method == "OPTIONS" and "HTTP_ORIGIN" in environ and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            outcome = None
            environ["bastion.principal"] = None
            environ["bastion.auth"] = gate.context(None, request_id, address)
            extra: list[tuple[str, str]] = []
        else:
            api_key = environ.get(self.api_key_environ) if self.api_key_environ else None
            authorization = environ.get("HTTP_AUTHORIZATION")
            outcome = self.auth._decide(gate.rules, method, path, None, authorization, api_key, None)
            if outcome.error is not None:
                refusal = gate.refusal(outcome)
                start_response(refusal.status_line, refusal.headers)
                gate.audit(outcome, method, path, refusal.status, request_id, address, started)
                return [refusal.body]
            principal = outcome.principal
            environ["bastion.principal"] = principal
            environ["bastion.auth"] = gate.context(outcome, request_id, address)
            if principal is not None:
                environ["AUTH_TYPE"] = "Bearer"
                environ.setdefault("REMOTE_USER", principal.subject)
            extra = gate.success_headers(outcome)

        audited = self.auth.audit is not None
        status = [500]
        if not audited and not extra:
            starting = start_response  # nothing to learn from the response, nothing to add to it
        else:

            def starting(line: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None) -> Any:
                try:
                    status[0] = int(line[:3])
                except ValueError:
                    status[0] = 500
                if extra:
                    headers = [*headers, *extra]
                return start_response(line, headers, exc_info) if exc_info else start_response(line, headers)

        token = bind(outcome.principal if outcome is not None else None, request_id)
        try:
            body: Iterable[bytes] = self.app(environ, starting)
        except BaseException:
            reset(token)
            gate.audit(outcome, method, path, 500, request_id, address, started)
            raise
        reset(token)
        if not audited:
            return body
        context: AuthContext = environ["bastion.auth"]

        def audit() -> None:
            refused = context.refusal
            reason = refused.code if refused is not None else None
            gate.audit(outcome, method, path, status[0], request_id, address, started, reason)

        if isinstance(body, list):  # the common case: the response is complete, start_response was called
            audit()
            return body
        return _Closing(body, audit)


class _Closing:
    """A streamed response: the audit record is written when the server closes it (PEP 3333 ``close()``)."""

    __slots__ = ("_body", "_done", "_on_close")

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close = on_close
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if not self._done:
                self._done = True
                self._on_close()
