"""The servers ``python -m bastion bench http`` loads: one small endpoint, guarded by bastion or a peer.

Each factory reads ``BASTION_BENCH_HTTP_DIR`` (the run's folder: the token database, its pepper, the audit
log) and ``BASTION_BENCH_HTTP_CASE`` (which guard) from the environment, as uvicorn and gunicorn import it
in a server process of its own. Every guard checks the same HS256 token (``bastion.bench.middleware``'s
secret) and its ``read`` scope; bastion runs with its limiter (a tier too loose to refuse) and audit on.
"""

from __future__ import annotations

import os
from typing import Any

import bastion
from bastion.bench.middleware import SECRET, audit_log
from bastion.bench.webapps import PATH

DIR_ENV = "BASTION_BENCH_HTTP_DIR"
CASE_ENV = "BASTION_BENCH_HTTP_CASE"
PEPPER_FILE = "pepper"
STORE_FILE = "tokens.db"
RULES = [bastion.Rule("/api/*", scopes=["read"])]


def _setting() -> tuple[str, str]:
    return os.environ[DIR_ENV], os.environ[CASE_ENV]


def store(folder: str) -> bastion.TokenStore:
    """The run's SQLite token store (the parent issues the opaque token in it, the server verifies it)."""
    with open(os.path.join(folder, PEPPER_FILE), "rb") as f:
        pepper = f.read()
    return bastion.TokenStore("sqlite:///" + os.path.join(folder, STORE_FILE), pepper=pepper)


def authenticator(folder: str) -> bastion.Authenticator:
    """bastion as the benchmark runs it: HS256 JWTs and opaque tokens, the limiter and the audit log on."""
    return bastion.Authenticator(
        jwt=bastion.JWTVerifier(bastion.Key.hmac(SECRET), algorithms=["HS256"]),
        tokens=store(folder),
        limiter=bastion.RateLimiter({"default": bastion.Rate(1_000_000, per=1)}, default="default"),
        audit=audit_log(folder),
    )


def fastapi_app() -> Any:
    """``uvicorn --factory``: FastAPI, bare (``bare``), behind bastion (``bastion``) or a PyJWT dependency
    (``pyjwt``), the one a user writes: ``HTTPBearer``, ``jwt.decode``, the scope checked."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    folder, case = _setting()
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    if case == "pyjwt":
        import jwt

        scheme = HTTPBearer()

        async def claims(credentials: HTTPAuthorizationCredentials = Depends(scheme)) -> dict[str, Any]:  # noqa: B008
            try:
                decoded: dict[str, Any] = jwt.decode(credentials.credentials, SECRET, algorithms=["HS256"])
            except jwt.InvalidTokenError:
                raise HTTPException(
                    401, "invalid token", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                ) from None
            if "read" not in str(decoded.get("scope", "")).split():
                raise HTTPException(403, "insufficient scope")
            return decoded

        @app.get(PATH)
        async def guarded(_: dict[str, Any] = Depends(claims)) -> dict[str, list[object]]:  # noqa: B008
            return {"items": []}

        return app

    @app.get(PATH)
    async def items() -> dict[str, list[object]]:
        return {"items": []}

    if case == "bastion":
        return bastion.asgi.AuthMiddleware(app, authenticator(folder), rules=RULES)
    return app


def flask_app() -> Any:
    """gunicorn ``'bastion.bench.httpapps:flask_app()'``: Flask, bare (``bare``), behind bastion
    (``bastion``) or flask-jwt-extended's ``@jwt_required()`` (``flask-jwt-extended``)."""
    from bastion.bench.webapps import flask_apps

    folder, case = _setting()
    bare, guarded = flask_apps(SECRET)
    if case == "flask-jwt-extended":
        return guarded
    if case == "bastion":
        bare.wsgi_app = bastion.wsgi.AuthMiddleware(bare.wsgi_app, authenticator(folder), rules=RULES)
    return bare
