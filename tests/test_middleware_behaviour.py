"""What the middlewares do around the app: rules, anonymous access, preflights, WebSockets, lifespan, the scope
and environ keys, app exceptions, and the audit record of every request."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import bastion
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.opaque_support import PEPPER
from tests.request_support import TIERS, Boom, Client, Keys, collecting, hs_keys, issue, make_auth


@pytest.fixture
def keys() -> Keys:
    return hs_keys()


@pytest.fixture
def store() -> Iterator[bastion.TokenStore]:
    s = bastion.TokenStore(None, pepper=PEPPER)
    yield s
    s.close()


@pytest.fixture
def audit() -> Iterator[bastion.audit.AuditLog]:
    log = bastion.audit.AuditLog()
    yield log
    log.close()


@pytest.fixture
def auth(keys: Keys, store: bastion.TokenStore, audit: bastion.audit.AuditLog) -> bastion.Authenticator:
    return make_auth(keys, store, bastion.RateLimiter(TIERS, default="default"), audit=audit)


@pytest.fixture(params=["asgi", "wsgi"])
def client(request: pytest.FixtureRequest, auth: bastion.Authenticator) -> Client:
    return Client(request.param, auth)


def test_rules_route_by_path_and_method(client: Client, keys: Keys) -> None:
    assert client.get("/health").status == 200  # auth="none"
    assert client.get("/health", token="garbage").status == 200  # not even read
    assert client.get("/public/info").body["subject"] is None  # optional, anonymous
    assert client.get("/public/info", token=keys.token()).body["subject"] == "user_1"
    assert client.get("/public/info", token="bad.token.here").status == 401  # optional still refuses a bad token
    assert client.get("/api/reports/3", token=keys.token()).status == 200  # GET: the reports* rule
    r = client.request("DELETE", "/api/reports/3", {"Authorization": f"Bearer {keys.token()}"})
    assert r.status == 403
    assert r.body["error"] == "forbidden"
    assert client.get("/not-routed").status == 401  # no rule: a token is required (secure by default)


def test_default_and_exempt(auth: bastion.Authenticator) -> None:
    for kind in ("asgi", "wsgi"):
        c = Client(kind, auth, default="optional", exempt=["/api/me"])
        assert c.get("/api/me").status == 200
        assert c.get("/api/me", token="x.y.z").status == 200  # exempt: never read
    with pytest.raises(bastion.ConfigurationError):
        bastion.asgi.AuthMiddleware(lambda *a: None, auth, default="sometimes")  # type: ignore[arg-type]
    with pytest.raises(bastion.ConfigurationError):
        bastion.wsgi.AuthMiddleware(lambda *a: [], auth, exempt="/health")
    with pytest.raises(bastion.ConfigurationError):
        bastion.asgi.AuthMiddleware(lambda *a: None, object())  # type: ignore[arg-type]


def test_cors_preflight_passes_unauthenticated(client: Client) -> None:
    preflight = {"Origin": "https://app.test", "Access-Control-Request-Method": "DELETE"}
    r = client.request("OPTIONS", "/api/reports/1", preflight)
    assert r.status != 401
    # an OPTIONS request that is not a preflight is authenticated like any other
    assert client.request("OPTIONS", "/api/reports/1", {"Origin": "https://app.test"}).status == 401


def test_app_exceptions_propagate(client: Client, keys: Keys) -> None:
    with pytest.raises(Boom):
        client.get("/api/boom", token=keys.token())


def test_request_id_and_audit_record(client: Client, keys: Keys, audit: bastion.audit.AuditLog) -> None:
    with collecting() as records:
        r = client.get("/api/me", token=keys.token({"jti": "the-jti"}))
        refused = client.get("/api/reports", token=keys.token({"scope": "other"}))
        assert audit.flush(5.0)
    assert r.status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", r.body["request_id"])
    assert refused.status == 403
    got = [rec.bastion_audit.as_dict() for rec in records]
    assert len(got) == 2
    ok, no = got
    assert ok["http.request.method"] == "GET"
    assert ok["url.path"] == "/api/me"
    assert ok["http.response.status_code"] == 200
    assert ok["enduser.id"] == "user_1"
    assert ok["bastion.auth.token_id"] == "the-jti"
    assert ok["bastion.auth.token_type"] == "jwt"
    assert ok["request.id"] == r.body["request_id"]
    assert ok["http.route"] == "/api/*"
    assert ok["bastion.ratelimit.tier"] == "default"
    assert no["http.response.status_code"] == 403
    assert no["error.type"] == "insufficient_scope"
    assert no["http.route"] == "/api/reports*"


def test_a_refused_request_is_audited_without_its_token(client: Client, audit: bastion.audit.AuditLog) -> None:
    with collecting() as records:
        client.get("/api/me", token="bst" + "k_" + "Z" * 49)
        client.get("/api/me")
        assert audit.flush(5.0)
    assert [rec.bastion_audit.status for rec in records] == [401, 401]
    text = json.dumps([rec.bastion_audit.as_dict() for rec in records])
    assert "Z" * 16 not in text


def test_remote_user_is_never_overwritten(auth: bastion.Authenticator, keys: Keys) -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    mw = bastion.wsgi.AuthMiddleware(app, auth)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/x",
        "SCRIPT_NAME": "",
        "HTTP_AUTHORIZATION": f"Bearer {keys.token()}",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": None,
    }
    statuses: list[str] = []
    assert mw(dict(environ), lambda s, h, e=None: statuses.append(s)) == [b"ok"]
    assert seen["REMOTE_USER"] == "user_1"
    assert seen["AUTH_TYPE"] == "Bearer"
    assert seen["bastion.principal"].subject == "user_1"
    mw(dict(environ, REMOTE_USER="from-the-server"), lambda s, h, e=None: statuses.append(s))
    assert seen["REMOTE_USER"] == "from-the-server"
    assert statuses == ["200 OK", "200 OK"]


def test_asgi_scope_keys_and_copy(auth: bastion.Authenticator, keys: Keys) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = bastion.asgi.AuthMiddleware(app, auth)
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "headers": [(b"authorization", f"Bearer {keys.token()}".encode())],
        "client": ("127.0.0.1", 5000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(mw(scope, receive, send))
    assert "user" not in scope
    assert "bastion" not in scope
    inner = seen[0]
    assert inner["user"].subject == "user_1"
    assert inner["user"].is_authenticated
    assert inner["auth"].scopes == ["read:reports"]
    assert inner["bastion"].principal is inner["user"]
    assert inner["bastion"].client_address == "127.0.0.1"
    assert sent[0]["status"] == 204
    assert any(name == b"ratelimit" for name, _ in sent[0]["headers"])


@pytest.mark.parametrize("container", [list, tuple])
def test_the_apps_start_message_and_headers_are_copied_with_the_ratelimit_pairs_after_them(
    auth: bastion.Authenticator, keys: Keys, container: type
) -> None:
    """The RateLimit fields go on a copy of the app's start message and of its headers (a list or a tuple, as
    ASGI and WSGI allow): an app that sends one constant message per request never sees it grow."""
    asgi_headers = container([(b"content-type", b"application/json"), (b"x-app", b"1")])
    start = {"type": "http.response.start", "status": 200, "headers": asgi_headers}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": b"{}"})

    mw = bastion.asgi.AuthMiddleware(app, auth)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for _ in range(2):
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/x",
            "headers": [(b"authorization", f"Bearer {keys.token()}".encode())],
        }
        asyncio.run(mw(scope, receive, send))
    assert start["headers"] is asgi_headers
    assert len(asgi_headers) == 2
    for message in (sent[0], sent[2]):
        assert message is not start
        names = [name for name, _ in message["headers"]]
        assert names == [b"content-type", b"x-app", b"ratelimit-policy", b"ratelimit"]

    wsgi_headers = container([("Content-Type", "application/json")])
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", wsgi_headers)
        return [b"{}"]

    wmw = bastion.wsgi.AuthMiddleware(wsgi_app, auth)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "HTTP_AUTHORIZATION": f"Bearer {keys.token()}"}
    body = wmw(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    assert list(body) == [b"{}"]
    assert len(wsgi_headers) == 1
    assert [name for name, _ in started[0][1]] == ["Content-Type", "RateLimit-Policy", "RateLimit"]


def test_a_list_subclass_of_headers_is_read_item_by_item(auth: bastion.Authenticator, keys: Keys) -> None:
    """The app's own list subclass is copied item by item: its ``__add__`` (or any method of its own) is never
    what the server receives."""

    class Headers(list[tuple[bytes, bytes]]):
        def __add__(self, other: object) -> Any:
            return "not headers"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": Headers([(b"x-app", b"1")])})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "headers": [(b"authorization", f"Bearer {keys.token()}".encode())],
    }
    asyncio.run(bastion.asgi.AuthMiddleware(app, auth)(scope, receive, send))
    assert type(sent[0]["headers"]) is list
    assert [name for name, _ in sent[0]["headers"]] == [b"x-app", b"ratelimit-policy", b"ratelimit"]


def test_an_audit_object_of_the_apps_own_gets_each_admitted_requests_record(
    keys: Keys, store: bastion.TokenStore
) -> None:
    """An audit object with ``emit(record)`` only (not an AuditLog) gets an AuditRecord for a request the glue
    admitted on its own, and for one the Python shell decided (a preflight), with the fields an AuditLog's
    line has."""

    class Sink:
        def __init__(self) -> None:
            self.records: list[bastion.audit.AuditRecord] = []

        def emit(self, record: bastion.audit.AuditRecord) -> None:
            self.records.append(record)

    sink = Sink()
    auth = make_auth(keys, store, bastion.RateLimiter(TIERS, default="default"), audit=sink)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        pass

    mw = bastion.asgi.AuthMiddleware(app, auth)
    token = keys.token()
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [(b"authorization", f"Bearer {token}".encode())]}
    asyncio.run(mw(scope, receive, send))
    preflight = {
        "type": "http",
        "method": "OPTIONS",
        "path": "/x",
        "headers": [(b"origin", b"https://app.example"), (b"access-control-request-method", b"GET")],
    }
    asyncio.run(mw(preflight, receive, send))
    admitted, passed = sink.records
    assert (admitted.method, admitted.path, admitted.status) == ("GET", "/x", 201)
    assert (admitted.enduser_id, admitted.reason, admitted.token_type) == ("user_1", "authenticated", "jwt")
    assert admitted.tier == "default"
    assert (passed.method, passed.reason, passed.enduser_id) == ("OPTIONS", "preflight", None)
    assert token not in repr(sink.records)


def test_lifespan_and_other_scopes_pass_through(auth: bastion.Authenticator) -> None:
    got: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        got.append(scope["type"])

    mw = bastion.asgi.AuthMiddleware(app, auth)

    async def nothing() -> dict[str, Any]:
        return {}

    async def drop(message: dict[str, Any]) -> None:
        return None

    lifespan = {"type": "lifespan"}
    asyncio.run(mw(lifespan, nothing, drop))
    asyncio.run(mw({"type": "custom.thing"}, nothing, drop))
    assert got == ["lifespan", "custom.thing"]
    assert lifespan == {"type": "lifespan"}


def test_websocket_refused_with_1008_before_accept(auth: bastion.Authenticator, keys: Keys) -> None:
    client = Client("asgi", auth)
    tc = TestClient(client.app)
    with pytest.raises(WebSocketDisconnect) as info, tc.websocket_connect("/api/ws"):
        pass
    assert info.value.code == 1008
    with tc.websocket_connect("/api/ws", headers={"Authorization": f"Bearer {keys.token()}"}) as ws:
        assert ws.receive_json()["subject"] == "user_1"


def test_api_key_header(keys: Keys, store: bastion.TokenStore) -> None:
    auth = make_auth(keys, store, None, api_key_header="X-API-Key")
    issued = issue(store, "partner", scopes=["read:reports"])
    for kind in ("asgi", "wsgi"):
        c = Client(kind, auth)
        r = c.request("GET", "/api/reports", {"X-API-Key": issued.token})
        assert r.status == 200
        assert r.body["subject"] == "partner"
        # a JWT is never accepted as an API key
        assert c.request("GET", "/api/reports", {"X-API-Key": keys.token()}).status == 401
        both = {"X-API-Key": issued.token, "Authorization": f"Bearer {keys.token()}"}
        r = c.request("GET", "/api/reports", both)
        assert r.status == 400
        assert r.body["error"] == "invalid_request"


def test_problem_details(auth: bastion.Authenticator) -> None:
    for kind in ("asgi", "wsgi"):
        r = Client(kind, auth, problem_details=True).get("/api/me")
        assert r.status == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.body["error"] == "missing_token"
        assert r.body["status"] == 401


def test_app_log_records_carry_the_principal(auth: bastion.Authenticator, keys: Keys) -> None:
    logger = logging.getLogger("tests.app")
    flt = bastion.audit.AuditContextFilter()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        logger.info("inside the app")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with collecting("tests.app") as records:
        logging.getLogger("tests.app").addFilter(flt)
        try:
            tc = TestClient(bastion.asgi.AuthMiddleware(app, auth))
            tc.get("/x", headers={"Authorization": f"Bearer {keys.token()}"})
        finally:
            logging.getLogger("tests.app").removeFilter(flt)
    assert [getattr(r, "enduser_id", None) for r in records] == ["user_1"]
