"""The request's identity for the application's own log records, carried by ``contextvars``.

The middleware calls :func:`bind` when a request is authenticated and :func:`reset` when it ends; an
:class:`AuditContextFilter` on a handler (or logger) then stamps every record logged in between with the
subject, scopes and request id — like Elixir's ``Logger.metadata(user_id: …)``. ``contextvars`` follow asyncio
tasks and threads, so concurrent requests never see each other's identity.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from bastion._core import Principal

__all__ = ["AuditContext", "AuditContextFilter", "BindToken", "bind", "current", "reset"]


class AuditContext(NamedTuple):
    """The identity bound to the current request: subject (None when anonymous), scopes, request id."""

    enduser_id: str | None
    scopes: frozenset[str]
    request_id: str | None


_NO_SCOPES: frozenset[str] = frozenset()
# what is bound: (principal or None, request id) — the principal itself, so that binding reads none of its
# fields (a request whose app never logs pays for one tuple); AuditContext is built when asked for
_Bound = tuple["Principal | None", "str | None"]
_CURRENT: ContextVar[_Bound | None] = ContextVar("bastion_audit_context", default=None)
_set = _CURRENT.set
#: What :func:`bind` returns and :func:`reset` takes.
BindToken = Token[_Bound | None]


def bind(principal: Principal | None, request_id: str | None) -> BindToken:
    """Bind ``principal`` (None for an anonymous request) and ``request_id`` to the current context; give the
    token to :func:`reset` when the request ends."""
    return _set((principal, request_id))


def reset(token: BindToken) -> None:
    """Restore the context :func:`bind` replaced."""
    _CURRENT.reset(token)


def current() -> AuditContext | None:
    """The identity bound to the current context, or None outside a request."""
    bound = _CURRENT.get()
    if bound is None:
        return None
    principal, request_id = bound
    if principal is None:
        return AuditContext(None, _NO_SCOPES, request_id)
    return AuditContext(principal.subject, principal.scopes, request_id)


class AuditContextFilter(logging.Filter):
    """Adds ``enduser_id``, ``enduser_scopes`` (space-separated, sorted; ``""`` when none) and ``request_id`` to
    every record (None, None, None outside a bound request), so that ``%(enduser_id)s`` works in any format and
    :class:`~bastion.audit.writer.JSONFormatter` writes them as ``enduser.id``, ``bastion.auth.scopes`` and
    ``request.id``. Attributes a record already has (from ``extra=``) are kept. Never filters a record out."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp ``record``; always True."""
        ctx = current()
        attrs = record.__dict__
        if ctx is None:
            attrs.setdefault("enduser_id", None)
            attrs.setdefault("enduser_scopes", None)
            attrs.setdefault("request_id", None)
        else:
            attrs.setdefault("enduser_id", ctx.enduser_id)
            if "enduser_scopes" not in attrs:
                attrs["enduser_scopes"] = " ".join(sorted(ctx.scopes))
            attrs.setdefault("request_id", ctx.request_id)
        return True
