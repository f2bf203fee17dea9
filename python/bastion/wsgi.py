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
from typing import TYPE_CHECKING, Any, Final

from bastion import _core
from bastion._gate import Gate

if TYPE_CHECKING:
    from bastion._core import Outcome

__all__ = ["AuthMiddleware"]

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Any, Any], Iterable[bytes]]

_REFUSED: Final = _core.Outcome.REFUSED
_Admitted: Final = _core.Admitted


class AuthMiddleware(Gate):
    """WSGI middleware: ``AuthMiddleware(app, auth, *, rules=(), exempt=(), default="required",
    problem_details=False, ratelimit_headers=True, trusted_proxies=(), request_id_header="X-Request-ID")``
    (see :class:`bastion.asgi.AuthMiddleware` for the options)."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # one call into the core each way, as under ASGI: ``GateCore.wsgi`` steps the request and, when it is
        # admitted, gives the environ its keys and wraps start_response; ``finish`` queues the audit record
        admitted = self._glue.wsgi(environ, start_response)
        if not isinstance(admitted, _Admitted):
            admitted = self._decide(environ, start_response, admitted)
            if type(admitted) is list:  # the refusal's body
                return admitted
        try:
            body: Iterable[bytes] = self.app(environ, admitted.send)
        except BaseException:
            admitted.finish(500)
            raise
        admitted.unbind()
        if isinstance(body, list) or not admitted.audited:  # complete: start_response was called
            admitted.finish()
            return body
        return _Closing(body, admitted.finish)

    def _decide(self, environ: Environ, start_response: StartResponse, outcome: Outcome | None) -> Any:
        """A request the core did not admit at once (see :meth:`bastion.asgi.AuthMiddleware._decide`): the
        admission, or the refusal's body once its response is started."""
        started = perf_counter()
        gate = self
        method: str = environ.get("REQUEST_METHOD", "GET")
        path: str = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        request_id, address = gate.identify(environ.get("REMOTE_ADDR"), environ)
        if outcome is None:
            if method == "OPTIONS" and "HTTP_ORIGIN" in environ and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
                return gate._glue.admit_wsgi(
                    environ, None, start_response, request_id, address, perf_counter() - started
                )
            api_key = environ.get(self.api_key_environ) if self.api_key_environ else None
            outcome = self.auth._decide(
                gate.rules, method, path, None, environ.get("HTTP_AUTHORIZATION"), api_key, None
            )
        elif outcome.kind > _REFUSED:
            api_key = environ.get(self.api_key_environ) if self.api_key_environ else None
            authorization = environ.get("HTTP_AUTHORIZATION")
            gen = self.auth._resolve(gate.rules, outcome, method, path, None, authorization, api_key, None)
            outcome = self.auth._drive(gen)
        if outcome.error is not None:
            refusal = gate.refusal(outcome)
            start_response(refusal.status_line, refusal.headers)
            gate.audit(outcome, method, path, refusal.status, request_id, address, started)
            return [refusal.body]
        return gate._glue.admit_wsgi(environ, outcome, start_response, request_id, address, perf_counter() - started)


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
