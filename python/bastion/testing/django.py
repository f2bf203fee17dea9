"""Test helpers for Django and DRF projects using :class:`bastion.integrations.django.BastionMiddleware`.

Usage::

    with authenticated_as(bastion.testing.django.principal("user_1", scopes=["read:reports"])):
        assert django.test.Client().get("/api/v1/reports").status_code == 200

Inside the block every request the middleware decides is decided as that principal, without a token; the route
rules, ``@requires`` and DRF's ``HasScopes`` / ``HasRole`` still apply to it, and the audit record is written as for
a real request. Enter it inside any ``override_settings(BASTION=...)``: a new ``BASTION`` setting is a new
configuration. A request already decided by a bastion WSGI/ASGI middleware in front of Django is the middleware's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bastion._core import Principal
from bastion.errors import ConfigurationError
from bastion.integrations.django import config
from bastion.testing import principal

__all__ = ["authenticated_as", "principal"]


@contextmanager
def authenticated_as(who: Principal) -> Iterator[Principal]:
    """Decide every request as ``who`` while the block runs (blocks nest; the previous one comes back)."""
    if not isinstance(who, Principal):
        raise ConfigurationError("authenticated_as needs a bastion.Principal (bastion.testing.django.principal(...))")
    guard = config().guard
    before, guard.override = guard.override, who
    try:
        yield who
    finally:
        guard.override = before
