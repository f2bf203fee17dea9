"""A resource server in another process, for the provider's cross-process tests.

``python -m tests.oauth_resource_child STORE_URL PORT [JWKS_URL ISSUER]``: an ASGI app behind
``bastion.asgi.AuthMiddleware`` under uvicorn on ``127.0.0.1:PORT``, with its own ``TokenStore`` on the same
database as the provider (opaque tokens, and the jti deny-list of revoked JWTs) and, given a JWKS URL, a
``JWTVerifier`` over the keys the provider publishes there. ``GET /whoami`` answers the principal as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import bastion
import httpx
import uvicorn
from bastion.asgi import AuthMiddleware

from tests.opaque_support import PEPPER


async def whoami(scope: Any, receive: Any, send: Any) -> None:
    user = scope["user"]
    body = json.dumps({"sub": user.subject, "client_id": user.client_id, "scopes": sorted(user.scopes)}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str]) -> int:
    store_url, port = argv[0], int(argv[1])
    store = bastion.TokenStore(store_url, pepper=PEPPER, poll_interval=0.05)
    jwt = None
    if len(argv) > 2:
        jwks_url, issuer = argv[2], argv[3]
        keys = bastion.KeySet.from_jwks(httpx.get(jwks_url).json())
        jwt = bastion.JWTVerifier(keys, algorithms=["ES256"], issuer=issuer, audience=issuer, typ="at+jwt")
    auth = bastion.Authenticator(jwt=jwt, tokens=store)
    uvicorn.run(AuthMiddleware(whoami, auth), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
