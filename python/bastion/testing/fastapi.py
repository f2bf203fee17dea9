"""Run a FastAPI app's tests as a fixed principal: every :class:`~bastion.integrations.fastapi.BastionBearer`
dependency of the app is overridden (``app.dependency_overrides``) while the block runs.

Usage::

    with as_principal(app, bearer, bastion.testing.principal("user_1", scopes=["read:reports"])):
        assert TestClient(app).get("/api/v1/reports").status_code == 200

The routes' requirements still apply to the fixed principal — its scopes against ``Security(..., scopes=[...])``,
its roles against ``bearer.role(...)`` — so a test can prove a 403 too; ``principal=None`` is an anonymous
request (``missing_token`` wherever a principal is required). No token is read and no audit record written.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.security import SecurityScopes

from bastion._core import Principal
from bastion.errors import ConfigurationError
from bastion.integrations._asgi import check
from bastion.integrations.fastapi import BastionBearer

__all__ = ["as_principal"]


@contextmanager
def as_principal(app: FastAPI, bearer: BastionBearer, principal: Principal | None) -> Iterator[None]:
    """While the block runs, ``bearer`` and every dependency derived from it (``.optional``, ``.role(...)``) give
    ``principal`` on ``app``, checked against each route's requirement; the previous overrides come back after."""
    if not isinstance(bearer, BastionBearer):
        raise ConfigurationError("as_principal takes the app's BastionBearer")
    if principal is not None and not isinstance(principal, Principal):
        raise ConfigurationError("principal must be a bastion.Principal (bastion.testing.principal builds one) or None")
    overrides = app.dependency_overrides
    members: list[Callable[..., Any]] = list(bearer._family.values())
    saved = {m: overrides[m] for m in members if m in overrides}
    for derived in bearer._family.values():
        overrides[derived] = _fixed(derived, principal)
    try:
        yield
    finally:
        for member in members:
            overrides.pop(member, None)
        overrides.update(saved)


def _fixed(member: BastionBearer, principal: Principal | None) -> Callable[..., Coroutine[Any, Any, Principal | None]]:
    async def dependency(security_scopes: SecurityScopes) -> Principal | None:
        error = check(principal, member.requirement(security_scopes.scopes))
        if error is not None:
            raise error
        return principal

    return dependency
