"""A small FastAPI API behind bastion: a principal per route, scopes in the OpenAPI document, roles, an open route.

Run it (the settings are in ``_settings.py``; ``BASTION_HOST`` and ``BASTION_PORT`` default to 127.0.0.1:8000)::

    BASTION_JWT_SECRET=... python -m examples.fastapi_app
    BASTION_JWT_SECRET=... uvicorn examples.fastapi_app:create_app --factory

- ``GET /health``: open;
- ``GET /api/v1/me``: any valid token;
- ``GET /api/v1/reports``: the ``read:reports`` scope;
- ``DELETE /api/v1/reports/{id}``: the ``admin`` role.
"""

import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

import bastion
import uvicorn
from bastion.integrations.fastapi import BastionBearer
from fastapi import FastAPI, Security

from examples._settings import configure


def create_app(env: Mapping[str, str] = os.environ) -> FastAPI:
    """The app, configured from ``env``; its shutdown writes the queued audit records and closes the store."""
    service = configure(env)
    bearer = BastionBearer(service.auth, bearer_format="JWT")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(title="reports", lifespan=lifespan)
    bearer.install(app)
    app.state.service = service
    app.state.bearer = bearer

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/me")
    async def me(user: Annotated[bastion.Principal, Security(bearer)]) -> dict[str, Any]:
        return {"subject": user.subject, "scopes": sorted(user.scopes), "roles": sorted(user.roles)}

    @app.get("/api/v1/reports")
    async def reports(
        user: Annotated[bastion.Principal, Security(bearer, scopes=["read:reports"])],
    ) -> dict[str, Any]:
        return {"owner": user.subject, "reports": [{"id": 1, "title": "Q3"}]}

    @app.delete("/api/v1/reports/{report_id}", status_code=204)
    async def delete_report(report_id: int, user: Annotated[bastion.Principal, Security(bearer.role("admin"))]) -> None:
        return None

    return app


def main() -> None:
    """Serve the app with uvicorn until SIGINT/SIGTERM; a graceful stop exits with status 0.

    uvicorn finishes its graceful shutdown (the lifespan's end: the audit records written) and then raises the
    signal again, so that a plain ``uvicorn`` process ends as killed by it; the handler below makes that second
    SIGTERM an ordinary exit, as a stop that was asked for is no failure."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    host = os.environ.get("BASTION_HOST", "127.0.0.1")
    uvicorn.run(create_app(), host=host, port=int(os.environ.get("BASTION_PORT", "8000")), log_level="warning")


if __name__ == "__main__":
    main()
