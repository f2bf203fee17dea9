"""bastion.integrations.fastapi: refusals identical to the middleware's, with and without it in front; the OpenAPI
document; roles, optional principals, app exceptions, WebSockets and one audit record per request."""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations, which name local objects

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import bastion
import pytest
from bastion.integrations.fastapi import BastionBearer
from bastion.rules import Rule
from fastapi import FastAPI, Request, Security, WebSocket
from fastapi.testclient import TestClient

from tests.integration_support import (
    ROWS,
    Row,
    World,
    answers,
    assert_same,
    audited,
    close_code,
    comparable,
    make_world,
    reference,
)
from tests.opaque_support import PEPPER
from tests.request_support import TIERS, Boom, issue, make_auth
from tests.servers import RedisServer

Principal = bastion.Principal


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    try:
        yield w
    finally:
        w.store.close()


def app_for(bearer: BastionBearer) -> FastAPI:
    app = FastAPI()
    bearer.install(app)

    def who(user: Any) -> dict[str, Any]:
        return {"subject": None if user is None else user.subject}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/public/info")
    async def info(user: Annotated[Principal | None, Security(bearer.optional)]) -> dict[str, Any]:
        return who(user)

    @app.get("/api/me")
    async def me(request: Request, user: Annotated[Principal, Security(bearer)]) -> dict[str, Any]:
        assert request.user is user  # request.user / request.scope["bastion"], as behind the middleware
        assert request.scope["bastion"].principal is user
        return who(user)

    @app.get("/api/reports")
    def reports(user: Annotated[Principal, Security(bearer, scopes=["read:reports"])]) -> dict[str, Any]:
        return who(user)  # a sync endpoint: run in the threadpool, its dependency still awaited on the loop

    @app.delete("/api/reports/{report_id}")
    async def delete(report_id: int, user: Annotated[Principal, Security(bearer.role("admin"))]) -> dict[str, Any]:
        return who(user)

    @app.get("/api/boom")
    async def boom(user: Annotated[Principal, Security(bearer)]) -> None:
        raise Boom("application bug")

    @app.get("/api/refuses")
    async def refuses(user: Annotated[Principal, Security(bearer)]) -> None:
        raise bastion.Forbidden()  # an endpoint's own refusal renders as bastion's too

    @app.websocket("/api/ws")
    async def ws(websocket: WebSocket, user: Annotated[Principal, Security(bearer, scopes=["read:reports"])]) -> None:
        await websocket.accept()
        await websocket.send_json(who(user))
        await websocket.close()

    return app


def alone(world: World, **kw: Any) -> tuple[FastAPI, bastion.Authenticator, str]:
    auth, logger = world.auth()
    return app_for(BastionBearer(auth, **kw)), auth, logger


def behind(world: World, **kw: Any) -> tuple[Any, bastion.Authenticator, str]:
    auth, logger = world.auth()
    rules = [Rule("/health", auth="none"), Rule("/public/*", auth="optional")]
    app = bastion.asgi.AuthMiddleware(app_for(BastionBearer(auth, **kw)), auth, rules=rules, **kw)
    return app, auth, logger


def test_every_row_renders_as_the_middleware_without_it(world: World) -> None:
    want, want_records = reference(world)
    app, auth, logger = alone(world)
    with audited(auth, logger) as records:
        got = answers(app, world)
    assert_same(ROWS, got, want)
    # one record per guarded request (/health has no bastion dependency), the middleware's fields and values
    expected = [comparable(r) for row, r in zip(ROWS, want_records, strict=True) if row.name != "open"]
    assert [comparable(r) for r in records] == expected


def test_every_row_renders_as_the_middleware_behind_it(world: World) -> None:
    want, want_records = reference(world)
    app, auth, logger = behind(world)
    with audited(auth, logger) as records:
        got = answers(app, world)
    assert_same(ROWS, got, want, ordered=False)
    # the middleware's one record per request, with the status the endpoint's refusal answered
    assert len(records) == len(ROWS)
    assert [r["http.response.status_code"] for r in records] == [a.status for a in want]
    assert [r.get("enduser.id") for r in records] == [r.get("enduser.id") for r in want_records]
    # and the refusal an endpoint's requirement made, under its code, as the middleware names its own
    assert [r.get("error.type") for r in records] == [r.get("error.type") for r in want_records]


def test_problem_details_and_no_ratelimit_headers_follow_the_options(world: World) -> None:
    names = ("missing_token", "admitted", "insufficient_scope", "first", "rate_limited")
    rows = [r for r in ROWS if r.name in names]
    want, _ = reference(world, rows, problem_details=True, ratelimit_headers=False)
    app, _, _ = alone(world, problem_details=True, ratelimit_headers=False)
    got = answers(app, world, rows)
    assert_same(rows, got, want)
    assert all(a.header("content-type") == "application/problem+json" for a in got if a.status >= 400)
    assert [a.ratelimit() for a in got if a.status == 200] == [[], []]  # admitted: no RateLimit fields


def counted(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every Authenticator.decide_async call from now on (the integrations' one way to decide a request)."""
    calls: list[Any] = []
    original = bastion.Authenticator.decide_async

    async def counting(self: bastion.Authenticator, *args: Any, **kw: Any) -> Any:
        calls.append(kw)
        return await original(self, *args, **kw)

    monkeypatch.setattr(bastion.Authenticator, "decide_async", counting)
    return calls


def test_the_token_is_read_once_behind_the_middleware(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _, _ = behind(world)
    calls = counted(monkeypatch)
    with TestClient(app) as client:
        r = client.get("/api/reports", headers={"Authorization": f"Bearer {world.tokens['good']}"})
    assert r.status_code == 200
    assert calls == []  # the middleware's core call decided; the dependency only read scope["bastion"]


def test_openapi_declares_the_bearer_scheme_and_each_routes_scopes(world: World) -> None:
    auth, _ = world.auth()
    app = app_for(BastionBearer(auth, scheme_name="bastion", bearer_format="JWT", description="an access token"))
    with TestClient(app) as client:
        doc = client.get("/openapi.json").json()  # what /docs reads: its Authorize button offers this scheme
    scheme = doc["components"]["securitySchemes"]["bastion"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "an access token"}
    paths = doc["paths"]
    assert paths["/api/reports"]["get"]["security"] == [{"bastion": ["read:reports"]}]
    assert paths["/api/me"]["get"]["security"] == [{"bastion": []}]
    assert paths["/api/reports/{report_id}"]["delete"]["security"] == [{"bastion": []}]
    assert paths["/public/info"]["get"]["security"] == [{"bastion": []}]
    assert "security" not in paths["/health"]["get"]
    # the principal is no request parameter: nothing about "user" in the query
    assert all(p["name"] != "user" for p in paths["/api/me"]["get"].get("parameters", []))


def test_roles_and_optional_principals(world: World) -> None:
    app, _, _ = alone(world)
    with TestClient(app) as client:
        admin = {"Authorization": f"Bearer {world.tokens['admin']}"}
        assert client.delete("/api/reports/3", headers=admin).json() == {"subject": "user_1"}
        r = client.delete("/api/reports/3", headers={"Authorization": f"Bearer {world.tokens['opaque']}"})
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")
        assert client.get("/public/info").json() == {"subject": None}
        good = {"Authorization": f"Bearer {world.tokens['good']}"}
        assert client.get("/public/info", headers=good).json() == {"subject": "user_1"}
        # FastAPI's own validation still answers as FastAPI does (a path parameter is no auth matter)
        assert client.delete("/api/reports/x", headers=admin).status_code == 422


def test_an_app_exception_propagates_and_is_audited_as_500(world: World) -> None:
    app, auth, logger = alone(world)
    with audited(auth, logger) as records, TestClient(app) as client, pytest.raises(Boom):
        client.get("/api/boom", headers={"Authorization": f"Bearer {world.tokens['good']}"})
    assert [(r["http.response.status_code"], r["bastion.auth.reason"]) for r in records] == [(500, "authenticated")]


def test_an_endpoints_own_auth_error_is_bastions_refusal_and_audited_under_its_code(world: World) -> None:
    app, auth, logger = alone(world)
    with audited(auth, logger) as records, TestClient(app) as client:
        r = client.get("/api/refuses", headers={"Authorization": f"Bearer {world.tokens['good']}"})
    assert (r.status_code, r.json()) == (403, {"error": "forbidden", "message": bastion.Forbidden().message})
    assert "detail" not in r.json()
    assert [(r["http.response.status_code"], r["error.type"]) for r in records] == [(403, "forbidden")]


def test_websocket_admitted_and_refused_before_accept(world: World) -> None:
    app, auth, logger = alone(world)
    with audited(auth, logger) as records, TestClient(app) as client:
        with client.websocket_connect("/api/ws", headers={"Authorization": f"Bearer {world.tokens['good']}"}) as ws:
            assert ws.receive_json() == {"subject": "user_1"}
        for token in ("no_scope", "token_expired"):
            headers = {"Authorization": f"Bearer {world.tokens[token]}"}
            assert close_code(client, "/api/ws", headers) == bastion.asgi.WS_POLICY_VIOLATION
    assert [(r["http.response.status_code"], r["bastion.auth.reason"]) for r in records] == [
        (101, "authenticated"),
        (403, "insufficient_scope"),
        (403, "token_expired"),
    ]


def test_without_install_the_dependency_says_what_is_missing(world: World) -> None:
    auth, _ = world.auth()
    bearer = BastionBearer(auth)
    app = FastAPI()

    @app.get("/api/me")
    async def me(user: Annotated[Principal, Security(bearer)]) -> None:
        return None

    with TestClient(app) as client, pytest.raises(bastion.ConfigurationError, match="install"):
        client.get("/api/me")


def test_one_record_per_request_with_two_requirements(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    auth, logger = world.auth()
    bearer = BastionBearer(auth)
    app = FastAPI()
    bearer.install(app)

    @app.get("/api/both")
    async def both(
        a: Annotated[Principal, Security(bearer)],
        b: Annotated[Principal, Security(bearer.role("admin"), scopes=["read:reports"])],
    ) -> dict[str, bool]:
        return {"same": a is b}

    calls = counted(monkeypatch)
    with audited(auth, logger) as records, TestClient(app) as client:
        r = client.get("/api/both", headers={"Authorization": f"Bearer {world.tokens['good']}"})
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    assert len(calls) == 1  # decided once, both requirements checked against that decision
    assert [(r["http.response.status_code"], r["error.type"]) for r in records] == [(403, "forbidden")]


def test_configuration_errors() -> None:
    with pytest.raises(bastion.ConfigurationError):
        BastionBearer("not an authenticator")  # type: ignore[arg-type]
    signer_key = bastion.Key.hmac(b"k" * 32)
    auth = bastion.Authenticator(jwt=bastion.JWTVerifier(signer_key, algorithms=["HS256"]))
    bearer = BastionBearer(auth)
    with pytest.raises(bastion.ConfigurationError):
        bearer.role()
    with pytest.raises(bastion.ConfigurationError):
        bearer.install("app")  # type: ignore[arg-type]
    assert bearer.role("admin") is bearer.role("admin")  # one object per requirement: FastAPI caches by it
    assert bearer.optional is bearer.optional


def test_audit_records_reach_the_app_log_context(world: World) -> None:
    auth, _ = world.auth()
    bearer = BastionBearer(auth)
    app = FastAPI()
    bearer.install(app)
    seen: list[Any] = []

    @app.get("/api/me")
    async def me(user: Annotated[Principal, Security(bearer)]) -> None:
        seen.append(bastion.audit.current())
        logging.getLogger("tests.app").info("handled")

    with TestClient(app) as client:
        client.get("/api/me", headers={"Authorization": f"Bearer {world.tokens['good']}"})
    assert seen[0] is not None
    assert seen[0].enduser_id == "user_1"


def test_an_unavailable_store_renders_as_the_middleware(world: World) -> None:
    world.store.close()  # a closed store serves nothing: every request is auth_unavailable (503, Retry-After)
    rows = [Row("unavailable", "GET", "/api/me", "good", "auth_unavailable")]
    want, _ = reference(world, rows)
    app, _, _ = alone(world)
    got = answers(app, world, rows)
    assert_same(rows, got, want)
    assert got[0].header("retry-after") == "1"


def test_a_record_missing_from_the_index_is_fetched_awaited(world: World, tmp_path: Path) -> None:
    # issued by another store on the same database: this store's index has never seen it, so the core asks for
    # the record and decide_async awaits the backend
    elsewhere = bastion.TokenStore(f"sqlite:///{tmp_path / 'tokens.db'}", pepper=PEPPER)
    try:
        token = issue(elsewhere, "user_9", scopes=["read:reports"]).token
    finally:
        elsewhere.close()
    app, auth, logger = alone(world)
    with audited(auth, logger) as records, TestClient(app) as client:
        r = client.get("/api/reports", headers={"Authorization": f"Bearer {token}"})
    assert (r.status_code, r.json()) == (200, {"subject": "user_9"})
    assert [(r["enduser.id"], r["bastion.auth.token_type"]) for r in records] == [("user_9", "opaque")]


def test_a_shared_limiter_is_awaited_never_blocked_on(
    world: World, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def blocking(*args: Any, **kw: Any) -> None:
        raise AssertionError("a blocking limiter call on the event loop")

    monkeypatch.setattr(bastion.RedisRateLimiter, "check", blocking)
    limiter = bastion.RedisRateLimiter(redis_server.url, TIERS, default="default", prefix=f"t{time.time_ns()}:")
    auth = make_auth(world.keys, world.store, limiter)
    app = app_for(BastionBearer(auth))
    headers = {"Authorization": f"Bearer {world.tokens['tight']}"}
    with TestClient(app) as client:
        first, second = client.get("/api/me", headers=headers), client.get("/api/me", headers=headers)
    assert first.status_code == 200
    assert "ratelimit" in first.headers
    assert (second.status_code, second.json()["error"]) == (429, "rate_limited")
    assert second.headers["retry-after"].isdigit()
