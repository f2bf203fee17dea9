"""The demo's API: a Starlette app behind ``bastion.asgi.AuthMiddleware``, and the uvicorn server it runs on.

``GET /health`` is open, ``GET /api/v1/me`` needs any valid token, ``GET /api/v1/reports`` needs the
``read:reports`` scope and ``DELETE /api/v1/reports/{id}`` the ``admin`` role. JWTs (HS256) and opaque tokens
(an SQLite store; opaque API keys also in ``X-API-Key``) are both accepted, each identity is rate-limited by
its tier, and every request gets one JSON audit line in ``audit.jsonl``.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import bastion

ISSUER = "https://auth.demo.example"
AUDIENCE = "api://reports"
#: third-party keys get a burst of 3 (then one request per 6 s), first-party services plenty, admins no limit
TIERS: dict[str, bastion.Rate | None] = {
    "third_party": bastion.Rate(10, per=60, burst=3),
    "internal": bastion.Rate(10_000, per=60),
    "admin": None,
}
RULES = [
    bastion.Rule("/health", auth="none"),
    bastion.Rule("/api/v1/reports/{id}", methods=["DELETE"], roles=["admin"]),
    bastion.Rule("/api/v1/reports", methods=["GET"], scopes=["read:reports"]),
    bastion.Rule("/api/v1/me", methods=["GET"]),
]
REPORTS = [{"id": "7", "title": "Q3 revenue"}, {"id": "8", "title": "Q3 churn"}]


@dataclass
class Service:
    """What the app is built from: the signing key, the token store, the audit log (closed by :meth:`close`)."""

    key: bastion.Key
    store: bastion.TokenStore
    audit: bastion.audit.AuditLog
    audit_path: str
    db_path: str
    handler: logging.Handler

    def close(self) -> None:
        self.audit.close()
        self.audit.logger.removeHandler(self.handler)
        self.handler.close()
        self.store.close()


def service(folder: str) -> Service:
    """A fresh key, an SQLite store and an audit log writing JSON lines, all in ``folder``."""
    db_path = os.path.join(folder, "tokens.db")
    audit_path = os.path.join(folder, "audit.jsonl")
    key = bastion.Key.hmac(secrets.token_bytes(32), kid="demo-hs256")
    store = bastion.TokenStore("sqlite:///" + db_path, pepper=secrets.token_bytes(32))
    handler = logging.FileHandler(audit_path, encoding="utf-8")
    handler.setFormatter(bastion.audit.JSONFormatter())
    logger = logging.getLogger("bastion.audit.demo")
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the records go to the file only, not to whatever the root logger prints
    logger.addHandler(handler)
    return Service(key, store, bastion.audit.AuditLog(logger), audit_path, db_path, handler)


def build_app(svc: Service) -> Any:
    """The Starlette app, wrapped in bastion's ASGI middleware."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def me(request: Request) -> JSONResponse:
        user = request.user  # a bastion.Principal: the middleware refused every request without one
        return JSONResponse(
            {
                "subject": user.subject,
                "scopes": request.scope["auth"].scopes,
                "roles": sorted(user.roles),
                "token_type": user.token_type,
                "tier": user.tier,
            }
        )

    async def reports(request: Request) -> JSONResponse:
        return JSONResponse({"reports": REPORTS})

    async def delete_report(request: Request) -> JSONResponse:
        return JSONResponse({"deleted": request.path_params["id"], "by": request.user.subject})

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/api/v1/me", me),
            Route("/api/v1/reports", reports),
            Route("/api/v1/reports/{id}", delete_report, methods=["DELETE"]),
        ]
    )
    auth = bastion.Authenticator(
        jwt=bastion.JWTVerifier(svc.key, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE),
        tokens=svc.store,
        limiter=bastion.RateLimiter(TIERS, default="third_party"),
        audit=svc.audit,
        api_key_header="X-API-Key",
    )
    return bastion.asgi.AuthMiddleware(app, auth, rules=RULES)


class Server:
    """uvicorn serving ``app`` on 127.0.0.1 from a thread, on a socket bound here (``port=0``: a free one)."""

    def __init__(self, app: Any, port: int = 0) -> None:
        import uvicorn

        # proto named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it every
        # response written in two parts (head, body) waits out the client's delayed ACK (about 40 ms)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(("127.0.0.1", port))
        except OSError as exc:
            self.sock.close()
            raise bastion.ConfigurationError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
