"""Every row of the DESIGN §4 error table through both middlewares: status, body and headers.

Each configuration runs the same requests through the ASGI middleware (Starlette's TestClient) and the WSGI
middleware (Flask's test client), with JWTs of a symmetric and an asymmetric algorithm, opaque tokens from an
SQLite and a PostgreSQL store, and the in-process and the Redis limiter (real servers)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bastion
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests import jwt_tokens
from tests.opaque_support import PEPPER, fresh_pg_url
from tests.request_support import KEYS, TIERS, Client, Keys, Response, issue, make_auth
from tests.servers import PostgresServer, RedisServer

# (middleware, algorithm, store, limiter): every row runs through each
CONFIGS = [
    ("asgi", "HS256", "sqlite", "local"),
    ("wsgi", "HS256", "sqlite", "local"),
    ("asgi", "ES256", "postgresql", "redis"),
    ("wsgi", "ES256", "postgresql", "redis"),
    ("asgi", "HS256", "postgresql", "local"),
    ("wsgi", "ES256", "sqlite", "redis"),
]


class Env:
    def __init__(self, client: Client, keys: Keys, store: bastion.TokenStore) -> None:
        self.client = client
        self.keys = keys
        self.store = store


@pytest.fixture(params=CONFIGS, ids=["-".join(c) for c in CONFIGS])
def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
) -> Iterator[Env]:
    kind, alg, store_kind, limiter_kind = request.param
    url = f"sqlite:///{tmp_path / 'tokens.db'}" if store_kind == "sqlite" else fresh_pg_url(postgres_server)
    store = bastion.TokenStore(url, pepper=PEPPER)
    if limiter_kind == "local":
        limiter: Any = bastion.RateLimiter(TIERS, default="default")
    else:
        limiter = bastion.RedisRateLimiter(redis_server.url, TIERS, default="default", prefix=f"t{time.time_ns()}:")
    keys = KEYS[alg]()
    auth = make_auth(keys, store, limiter)
    try:
        yield Env(Client(kind, auth), keys, store)
    finally:
        store.close()


def assert_refused(r: Response, code: str) -> None:
    """The body, status and headers DESIGN §4 gives ``code``."""
    cls = bastion.errors.ERRORS_BY_CODE[code]
    assert issubclass(cls, bastion.AuthError)
    assert r.status == cls.status, (r.status, r.body)
    assert isinstance(r.body, dict)
    assert r.body["error"] == code
    assert isinstance(r.body["message"], str)
    assert r.body["message"]
    assert set(r.body) == {"error", "message"}
    assert r.headers.get("cache-control") == "no-store"
    challenge = r.headers.get("www-authenticate")
    if cls.status in (400, 401, 403):
        assert challenge is not None
        assert challenge.startswith('Bearer realm="api"'), challenge
        if cls.rfc6750_error is None:
            assert "error=" not in challenge
        else:
            assert f'error="{cls.rfc6750_error}"' in challenge
    else:
        assert challenge is None
    if cls.status in (429, 503):
        assert re.fullmatch(r"[1-9][0-9]*", r.headers["retry-after"])


def bearer(env: Env, token: str, path: str = "/api/me", method: str = "GET") -> Response:
    return env.client.request(method, path, {"Authorization": f"Bearer {token}"})


def crafted(env: Env, header: dict[str, Any], claims: dict[str, Any], key: Any = None, alg: str | None = None) -> str:
    now = int(time.time())
    payload = {"sub": "user_1", "iss": "https://issuer.test", "iat": now - 5, "exp": now + 600, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    h = {"alg": env.keys.alg, "kid": env.keys.kid, "typ": "at+jwt", **header}
    return jwt_tokens.make(h, payload, env.keys.raw_key if key is None else key, alg=alg or h["alg"])


def test_valid_jwt_and_opaque_tokens_are_admitted(env: Env) -> None:
    r = bearer(env, env.keys.token())
    assert r.status == 200, r.body
    assert r.body["subject"] == "user_1"
    assert r.body["type"] == "jwt"
    assert "ratelimit" in r.headers
    assert "ratelimit-policy" in r.headers
    issued = issue(env.store, "user_2", scopes=["read:reports"])
    r = bearer(env, issued.token, "/api/reports")
    assert (r.status, r.body["subject"], r.body["type"]) == (200, "user_2", "opaque")
    # the scheme is case-insensitive
    r = env.client.request("GET", "/api/me", {"Authorization": f"bEARER {env.keys.token()}"})
    assert r.status == 200


def test_missing_token(env: Env) -> None:
    assert_refused(env.client.get("/api/me"), "missing_token")
    assert_refused(env.client.request("GET", "/api/me", {"Authorization": "Basic dXNlcjpwdw=="}), "missing_token")


def test_invalid_request(env: Env) -> None:
    assert_refused(env.client.request("GET", "/api/me", {"Authorization": "Bearer a b"}), "invalid_request")
    assert_refused(env.client.request("GET", "/api/me", {"Authorization": "Bearer"}), "invalid_request")


def test_token_format_rows(env: Env) -> None:
    assert_refused(bearer(env, "abc.def"), "token_malformed")
    big = "a" * 4100 + "." + "b" * 4100 + ".c"
    assert_refused(bearer(env, big), "token_too_large")
    assert_refused(bearer(env, "bstk_" + "A" * 49), "token_malformed")


def test_header_rows(env: Env) -> None:
    hs512 = crafted(env, {"alg": "HS512"}, {}, key=jwt_tokens.SECRET, alg="HS512")
    assert_refused(bearer(env, hs512), "unsupported_algorithm")
    assert_refused(bearer(env, crafted(env, {"crit": ["exp"]}, {})), "unsupported_header")
    assert_refused(bearer(env, crafted(env, {"kid": "nope"}, {})), "unknown_key")


def test_invalid_signature(env: Env) -> None:
    other = b"x" * 32 if env.keys.alg == "HS256" else ec.generate_private_key(ec.SECP256R1())
    assert_refused(bearer(env, crafted(env, {}, {}, key=other)), "invalid_signature")


def test_claim_rows(env: Env) -> None:
    now = int(time.time())
    assert_refused(bearer(env, env.keys.token({"exp": now - 100})), "token_expired")
    assert_refused(bearer(env, env.keys.token({"nbf": now + 600})), "token_not_yet_valid")
    assert_refused(bearer(env, env.keys.token({"iss": "https://other.test"})), "invalid_issuer")
    assert_refused(bearer(env, env.keys.token({"aud": "someone-else"})), "invalid_audience")
    assert_refused(bearer(env, env.keys.token(typ="JWT")), "invalid_type")
    assert_refused(bearer(env, env.keys.token({"exp": None})), "missing_claim")
    assert_refused(bearer(env, env.keys.token({"exp": "soon"})), "invalid_claim")
    assert_refused(bearer(env, env.keys.token({"scope": 7})), "invalid_claim")


def test_opaque_rows(env: Env) -> None:
    stranger = issue(bastion.TokenStore(None, pepper=PEPPER), "nobody")
    assert_refused(bearer(env, stranger.token), "unknown_token")
    issued = issue(env.store, "user_3", scopes=["read:reports"])
    assert bearer(env, issued.token).status == 200
    assert env.store.revoke(issued.token)
    assert_refused(bearer(env, issued.token), "token_revoked")


def test_jwts_are_revoked_by_jti_and_by_subject(env: Env) -> None:
    token = env.keys.token({"jti": "revoke-me", "sub": "user_4"})
    assert bearer(env, token).status == 200
    env.store.revoke_jti("revoke-me", time.time() + 600)
    assert_refused(bearer(env, token), "token_revoked")
    # a subject cut-off rejects every JWT issued at or before it
    old = env.keys.token({"sub": "user_5", "iat": int(time.time()) - 60})
    assert bearer(env, old).status == 200
    env.store.revoke_subject("user_5")
    assert_refused(bearer(env, old), "token_revoked")
    new = env.keys.token({"sub": "user_5", "iat": time.time()})  # a NumericDate may be fractional
    assert bearer(env, new).status == 200


def test_insufficient_scope_names_the_scope(env: Env) -> None:
    r = bearer(env, env.keys.token({"scope": "other"}), "/api/reports")
    assert_refused(r, "insufficient_scope")
    assert 'scope="read:reports"' in r.headers["www-authenticate"]


def test_forbidden(env: Env) -> None:
    r = bearer(env, env.keys.token(), "/api/reports/7", method="DELETE")
    assert_refused(r, "forbidden")
    admin = env.keys.token({"roles": ["admin"]})
    assert bearer(env, admin, "/api/reports/7", method="DELETE").status == 200


def test_rate_limited(env: Env) -> None:
    token = env.keys.token({"sub": f"tight-{time.time_ns()}", "tier": "tight"})
    assert bearer(env, token).status == 200
    r = bearer(env, token)
    assert_refused(r, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-policy"].startswith('"tight"')
    # the unlimited tier has no headers and no refusal
    admin = env.keys.token({"sub": "root", "tier": "admin"})
    for _ in range(3):
        r = bearer(env, admin)
        assert r.status == 200
        assert "ratelimit" not in r.headers


def test_auth_unavailable_when_the_store_is_closed(env: Env) -> None:
    issued = issue(env.store, "user_6")
    env.store.close()
    r = bearer(env, issued.token)
    assert_refused(r, "auth_unavailable")
