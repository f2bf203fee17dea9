"""bastion.integrations.starlette: ``Guard.requires`` renders every refusal as the middleware does, with and
without it in front; sync, async, class-based and WebSocket endpoints; request.user; one audit record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bastion
import pytest
from bastion.integrations._asgi import Requirement, check
from bastion.integrations.starlette import Guard
from bastion.rules import Rule
from bastion.testing import mint_token
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from tests.integration_support import (
    ROWS,
    World,
    answers,
    assert_same,
    audited,
    close_code,
    comparable,
    example,
    make_world,
    reference,
    remembered,
)
from tests.request_support import Boom


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    try:
        yield w
    finally:
        w.store.close()


def who(request: Request | WebSocket) -> dict[str, Any]:
    user = request.user
    return {"subject": user.subject if user.is_authenticated else None, "scopes": sorted(request.auth.scopes)}


def app_for(guard: Guard) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @guard.requires(optional=True)
    async def info(request: Request) -> Response:
        return JSONResponse(who(request))

    @guard.requires()
    async def me(request: Request) -> Response:
        assert request.scope["bastion"].principal is request.user
        return JSONResponse(who(request))

    @guard.requires(scopes=["read:reports"])
    def reports(request: Request) -> Response:  # a sync endpoint: run in the threadpool
        return JSONResponse(who(request))

    class Report(HTTPEndpoint):
        @guard.requires(roles=["admin"])
        async def delete(self, request: Request) -> Response:
            return JSONResponse(who(request))

        async def get(self, request: Request) -> Response:
            raise HTTPException(404)

    @guard.requires()
    async def boom(request: Request) -> Response:
        raise Boom("application bug")

    @guard.requires()
    async def refuses(request: Request) -> Response:
        raise bastion.Forbidden()

    @guard.requires()
    async def missing(request: Request) -> Response:
        raise HTTPException(404)

    @guard.requires(scopes=["read:reports"])
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(who(websocket))
        await websocket.close()

    routes = [
        Route("/health", health),
        Route("/public/info", info),
        Route("/api/me", me),
        Route("/api/reports", reports),
        Route("/api/reports/{id}", Report),
        Route("/api/boom", boom),
        Route("/api/refuses", refuses),
        Route("/api/missing", missing),
        WebSocketRoute("/api/ws", ws),
    ]
    return Starlette(routes=routes)


def alone(world: World, **kw: Any) -> tuple[Starlette, bastion.Authenticator, str]:
    auth, logger = world.auth()
    return app_for(Guard(auth, **kw)), auth, logger


def behind(world: World, **kw: Any) -> tuple[Any, bastion.Authenticator, str]:
    auth, logger = world.auth()
    rules = [Rule("/health", auth="none"), Rule("/public/*", auth="optional")]
    return bastion.asgi.AuthMiddleware(app_for(Guard(auth, **kw)), auth, rules=rules, **kw), auth, logger


def bearer(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[name]}"}


def test_every_row_renders_as_the_middleware_without_it(world: World) -> None:
    want, want_records = reference(world)
    app, auth, logger = alone(world)
    with audited(auth, logger) as records:
        got = answers(app, world)
    assert_same(ROWS, got, want)
    expected = [comparable(r) for row, r in zip(ROWS, want_records, strict=True) if row.name != "open"]
    assert [comparable(r) for r in records] == expected


def test_every_row_renders_as_the_middleware_behind_it(world: World) -> None:
    want, want_records = reference(world)
    app, auth, logger = behind(world)
    with audited(auth, logger) as records:
        got = answers(app, world)
    assert_same(ROWS, got, want, ordered=False)
    assert [r["http.response.status_code"] for r in records] == [a.status for a in want]
    assert [r.get("enduser.id") for r in records] == [r.get("enduser.id") for r in want_records]


def test_problem_details_follow_the_option(world: World) -> None:
    rows = [r for r in ROWS if r.name in ("missing_token", "insufficient_scope", "first", "rate_limited")]
    want, _ = reference(world, rows, problem_details=True)
    app, _, _ = alone(world, problem_details=True)
    got = answers(app, world, rows)
    assert_same(rows, got, want)
    assert got[0].header("content-type") == "application/problem+json"


def test_request_user_and_auth_are_set_as_the_middleware_sets_them(world: World) -> None:
    for make in (alone, behind):
        app, _, _ = make(world)
        with TestClient(app) as client:
            assert client.get("/api/me", headers=bearer(world, "opaque")).json() == {
                "subject": "user_3",
                "scopes": ["read:reports"],
            }
            assert client.get("/public/info").json() == {"subject": None, "scopes": []}


def test_app_exceptions_propagate_and_http_exceptions_keep_their_status(world: World) -> None:
    app, auth, logger = alone(world)
    with audited(auth, logger) as records, TestClient(app, raise_server_exceptions=True) as client:
        with pytest.raises(Boom):
            client.get("/api/boom", headers=bearer(world, "good"))
        assert client.get("/api/missing", headers=bearer(world, "good")).status_code == 404
        r = client.get("/api/refuses", headers=bearer(world, "good"))
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    assert [(r["http.response.status_code"], r.get("error.type")) for r in records] == [
        (500, None),
        (404, None),
        (403, "forbidden"),
    ]


def test_websocket_admitted_and_refused_before_accept(world: World) -> None:
    for make in (alone, behind):
        app, auth, logger = make(world)
        with audited(auth, logger) as records, TestClient(app) as client:
            with client.websocket_connect("/api/ws", headers=bearer(world, "good")) as ws:
                assert ws.receive_json()["subject"] == "user_1"
            for name in ("no_scope", "token_expired"):
                assert close_code(client, "/api/ws", bearer(world, name)) == bastion.asgi.WS_POLICY_VIOLATION
        # alone, the integration's record; behind the middleware, the middleware's, naming the endpoint's refusal
        assert [r["http.response.status_code"] for r in records] == [101, 403, 403]
        reasons = [(r["bastion.auth.reason"], r.get("error.type")) for r in records]
        assert reasons == [("authenticated", None), ("insufficient_scope",) * 2, ("token_expired",) * 2]


def test_stacked_requirements_decide_once_and_audit_once(world: World) -> None:
    auth, logger = world.auth()
    guard = Guard(auth)

    @guard.requires(roles=["admin"])
    @guard.requires(scopes=["read:reports"])
    async def both(request: Request) -> Response:
        return JSONResponse(who(request))

    app = Starlette(routes=[Route("/api/both", both)])
    with audited(auth, logger) as records, TestClient(app) as client:
        assert client.get("/api/both", headers=bearer(world, "good")).json()["error"] == "forbidden"
        admin = world.keys.token({"roles": ["admin"]})
        r = client.get("/api/both", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200
        assert r.headers["ratelimit"].count("r=") == 1  # the RateLimit fields added once
    assert [(r["http.response.status_code"], r.get("error.type")) for r in records] == [(403, "forbidden"), (200, None)]


def test_configuration_errors(world: World) -> None:
    auth, _ = world.auth()
    guard = Guard(auth)
    with pytest.raises(bastion.ConfigurationError, match="optional"):
        guard.requires(scopes=["a"], optional=True)
    with pytest.raises(bastion.ConfigurationError, match="list of strings"):
        guard.requires(scopes="read:reports")

    def no_request(x: int) -> None:
        return None

    with pytest.raises(bastion.ConfigurationError, match="request"):
        guard.requires()(no_request)

    def sync_ws(websocket: WebSocket) -> None:
        return None

    with pytest.raises(bastion.ConfigurationError, match="async"):
        guard.requires()(sync_ws)
    with pytest.raises(bastion.ConfigurationError):
        Guard("auth")  # type: ignore[arg-type]


def test_the_starlette_example(tmp_path: Path, world: World) -> None:
    secret = "s" * 32
    env = {"BASTION_JWT_SECRET": secret, "BASTION_TOKEN_DB": f"sqlite:///{tmp_path / 'ex.db'}"}
    app = example("starlette_app").create_app(env)
    signer = bastion.JWTSigner(bastion.Key.hmac(secret.encode(), kid="k1"), "HS256", issuer="https://auth.example.com")
    service = app.state.service
    reader = remembered(mint_token(signer, "ana", scopes=["read:reports"]))
    admin = remembered(mint_token(service.auth, "root", roles=["admin"]))
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/api/v1/me").json()["error"] == "missing_token"
        h = {"Authorization": f"Bearer {reader}"}
        assert client.get("/api/v1/me", headers=h).json()["subject"] == "ana"
        assert client.get("/api/v1/reports", headers=h).json()["owner"] == "ana"
        assert client.delete("/api/v1/reports/1", headers=h).json()["error"] == "forbidden"
        assert client.delete("/api/v1/reports/1", headers={"Authorization": f"Bearer {admin}"}).status_code == 204
    assert service.audit.dropped == 0


def test_endpoint_requirements_decide_as_route_rules(world: World) -> None:
    # the integrations check an endpoint's scopes and roles in Python (the token was decided already); the
    # verdict must be the core's for a route rule asking the same, for every combination
    auth, _ = world.auth()
    names = [(), ("a",), ("b",), ("a", "b")]
    for held_scopes in names:
        for held_roles in names:
            claims = {"scope": " ".join(held_scopes) or None, "roles": list(held_roles) or None}
            token = world.keys.token(claims)
            held = auth.authenticate(f"Bearer {token}")
            for scopes in names:
                for roles in names:
                    rule = Rule("/x", scopes=scopes, roles=roles)
                    core = auth.decide(f"Bearer {token}", path="/x", rules=[rule]).error
                    ours = check(held, Requirement.of(scopes, roles))
                    assert (None if core is None else core.to_dict()) == (None if ours is None else ours.to_dict())
                    if core is not None and ours is not None:
                        assert getattr(core, "required_scopes", ()) == getattr(ours, "required_scopes", ())
