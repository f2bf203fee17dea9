"""Test helpers for Flask apps using :class:`bastion.integrations.flask.Bastion`.

Usage::

    with authenticated_as(app, bastion.testing.flask.principal("user_1", scopes=["read:reports"])):
        assert app.test_client().get("/reports").status_code == 200

Inside the block every request the extension decides is decided as that principal, without a token; the route
rules and ``@requires`` still apply to it (an ``auth="none"`` route sees no principal), and the audit record is
written as for a real request. A request already decided by :class:`bastion.wsgi.AuthMiddleware` in front of the
app is the middleware's: override the extension, or send a real token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from bastion._core import Principal
from bastion.errors import ConfigurationError
from bastion.integrations._request import Guard
from bastion.integrations.flask import EXTENSION
from bastion.testing import principal

__all__ = ["authenticated_as", "principal"]


@contextmanager
def authenticated_as(app: Flask, who: Principal) -> Iterator[Principal]:
    """Decide every request of ``app`` as ``who`` while the block runs (blocks nest; the previous one comes back)."""
    if not isinstance(who, Principal):
        raise ConfigurationError("authenticated_as needs a bastion.Principal (bastion.testing.flask.principal(...))")
    guard = app.extensions.get(EXTENSION)
    if not isinstance(guard, Guard):
        raise ConfigurationError("bastion is not installed on this Flask app: Bastion(app, auth)")
    before, guard.override = guard.override, who
    try:
        yield who
    finally:
        guard.override = before
