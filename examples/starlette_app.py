"""A small Starlette API behind bastion: endpoint requirements with ``Guard(auth).requires(...)``.

Run it (the settings are in ``_settings.py``)::

    BASTION_JWT_SECRET=... uvicorn examples.starlette_app:create_app --factory

- ``GET /health``: open;
- ``GET /api/v1/me``: any valid token;
- ``GET /api/v1/reports``: the ``read:reports`` scope;
- ``DELETE /api/v1/reports/{id}``: the ``admin`` role.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from bastion.integrations.starlette import Guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples._settings import configure


def create_app(env: Mapping[str, str] = os.environ) -> Starlette:
    """The app, configured from ``env``; its shutdown writes the queued audit records and closes the store."""
    service = configure(env)
    guard = Guard(service.auth)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @guard.requires()
    async def me(request: Request) -> Response:
        user = request.user
        return JSONResponse({"subject": user.subject, "scopes": sorted(user.scopes), "roles": sorted(user.roles)})

    @guard.requires(scopes=["read:reports"])
    async def reports(request: Request) -> Response:
        return JSONResponse({"owner": request.user.subject, "reports": [{"id": 1, "title": "Q3"}]})

    @guard.requires(roles=["admin"])
    async def delete_report(request: Request) -> Response:
        return Response(status_code=204)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.close()

    routes = [
        Route("/health", health),
        Route("/api/v1/me", me),
        Route("/api/v1/reports", reports),
        Route("/api/v1/reports/{report_id:int}", delete_report, methods=["DELETE"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = service
    return app
