"""Hostile Authorization and API-key headers (tests/fixtures/bearer/hostile_headers.json) through both
middlewares, as a server hands them over: an ASGI scope of raw header bytes, a PEP 3333 environ of latin-1 str.

None may give a 5xx. A refused header gives the fixture's error; an accepted one is then verified, and a
fixture value that is not a real token is refused as an invalid token (401), never a crash."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import bastion
import httpx
import pytest
from bastion import _core
from starlette.testclient import TestClient
from werkzeug.test import EnvironBuilder

from tests.opaque_support import PEPPER
from tests.request_support import TIERS, Client, Keys, Response, flask_app, hs_keys, issue, make_auth, starlette_app
from tests.test_bearer import FIXTURES, header

PATH = "/api/me"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return hs_keys()


@pytest.fixture(scope="module")
def store() -> Iterator[bastion.TokenStore]:
    s = bastion.TokenStore(None, pepper=PEPPER)
    yield s
    s.close()


def authenticator(keys: Keys, store: bastion.TokenStore, **kw: Any) -> bastion.Authenticator:
    """An Authenticator reading headers up to the fixture's cap (the parser's default: 8192 token bytes plus
    ``"Bearer "``). The Authenticator's own default is a little larger, so that a token just over the
    verifier's ``max_token_bytes`` is ``token_too_large`` (test_middleware_errors); see the test below."""
    kw.setdefault("max_header_bytes", _core.DEFAULT_MAX_HEADER_BYTES)
    return make_auth(keys, store, bastion.RateLimiter(TIERS, default="default"), **kw)


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_under_the_default_cap_a_token_over_its_own_cap_is_token_too_large(
    kind: str, keys: Keys, store: bastion.TokenStore
) -> None:
    auth = make_auth(keys, store, bastion.RateLimiter(TIERS, default="default"))
    assert bastion.auth.DEFAULT_MAX_HEADER_BYTES > _core.DEFAULT_MAX_HEADER_BYTES
    client = Client(kind, auth)
    r = client.request("GET", PATH, {"Authorization": "Bearer " + "a" * 4096 + "." + "b" * 4096 + ".c"})
    assert (r.status, r.body["error"]) == (401, "token_too_large")
    r = client.request("GET", PATH, {"Authorization": "Bearer " + "a" * (bastion.auth.DEFAULT_MAX_HEADER_BYTES)})
    assert (r.status, r.body["error"]) == (400, "invalid_request")


# -- the two ways a server hands a request over --------------------------------------------------------


def asgi_call(app: Any, headers: list[tuple[bytes, bytes]], method: str = "GET", path: str = PATH) -> Response:
    """Drive an ASGI app with a hand-built HTTP scope, as a server does."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    hdrs = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    return Response(start["status"], hdrs, json.loads(body) if "json" in hdrs.get("content-type", "") else body)


def wsgi_call(app: Any, environ_headers: dict[str, str], method: str = "GET", path: str = PATH) -> Response:
    """Call a WSGI app with an environ built by hand (PEP 3333: header values are latin-1 str)."""
    environ = EnvironBuilder(path=path, method=method).get_environ()
    environ.update(environ_headers)
    got: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        got.append((status, headers))

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = got[-1]
    hdrs = {k.lower(): v for k, v in headers}
    return Response(int(status[:3]), hdrs, json.loads(body) if "json" in hdrs.get("content-type", "") else body)


def asgi_app(auth: bastion.Authenticator) -> Any:
    return bastion.asgi.AuthMiddleware(starlette_app(), auth)


def wsgi_app(auth: bastion.Authenticator) -> Any:
    flask = flask_app()
    return bastion.wsgi.AuthMiddleware(flask.wsgi_app, auth)


def values_of(case: dict[str, Any]) -> list[bytes] | None:
    return None if case["values"] is None else [header(v) for v in case["values"]]


def check(r: Response, case: dict[str, Any], where: str, parse: Any = _core.parse_authorization) -> None:
    """The fixture's outcome: its error, or (an accepted value that is no real token) an invalid token."""
    assert r.status < 500, (where, r.status, r.body)
    assert isinstance(r.body, dict), (where, r.body)
    expected = case["expect"].get("error")
    if where == "wsgi environ" and case["values"] is not None and len(case["values"]) > 1:
        # PEP 3333 has one value per field: the server joins repeated ones, and the joined value is what the
        # parser (tested on its own in test_bearer) sees; whatever it makes of it, no token gets through
        joined = b", ".join(header(v) for v in case["values"])
        with pytest.raises((bastion.InvalidRequest, bastion.MissingToken)) as info:
            parse(joined)
        expected = info.value.code
    if expected is not None:
        assert r.body["error"] == expected, (where, r.body)
        cls = bastion.errors.ERRORS_BY_CODE[expected]
        assert issubclass(cls, bastion.AuthError)
        assert r.status == cls.status
        return
    family = bastion.errors.ERRORS_BY_CODE[r.body["error"]]
    assert issubclass(family, bastion.InvalidToken), (where, r.body)
    assert r.status == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def through_test_client(auth: bastion.Authenticator, name: str, values: list[bytes] | None) -> Response | None:
    """The same request through Starlette's TestClient, or None when httpx cannot send the value."""
    headers = [(name, v) for v in values or []]
    with bastion_client(auth) as tc:
        try:
            request = tc.build_request("GET", PATH, headers=headers)
        except (httpx.InvalidURL, httpx.LocalProtocolError, ValueError, TypeError, UnicodeError):
            return None
        r = tc.send(request)
    body = r.json() if "json" in r.headers.get("content-type", "") else r.content
    return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, body)


def bastion_client(auth: bastion.Authenticator) -> TestClient:
    return TestClient(asgi_app(auth), raise_server_exceptions=True)


# -- the fixture, case by case ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", FIXTURES["authorization"], ids=lambda c: c["id"])
def test_authorization_fixture_through_both_middlewares(
    case: dict[str, Any], keys: Keys, store: bastion.TokenStore
) -> None:
    auth = authenticator(keys, store)
    values = values_of(case)
    check(asgi_call(asgi_app(auth), [(b"authorization", v) for v in values or []]), case, "asgi scope")
    sent = through_test_client(auth, "Authorization", values)
    if sent is not None:
        check(sent, case, "asgi TestClient")
    # a WSGI server joins repeated fields with ", " into one environ value (RFC 9110 §5.3)
    environ = {} if not values else {"HTTP_AUTHORIZATION": ", ".join(v.decode("latin-1") for v in values)}
    check(wsgi_call(wsgi_app(auth), environ), case, "wsgi environ")


@pytest.mark.parametrize("case", FIXTURES["api_key"], ids=lambda c: c["id"])
def test_api_key_fixture_through_both_middlewares(case: dict[str, Any], keys: Keys, store: bastion.TokenStore) -> None:
    auth = authenticator(keys, store, api_key_header="X-API-Key")
    values = values_of(case)
    check(asgi_call(asgi_app(auth), [(b"x-api-key", v) for v in values or []]), case, "asgi scope")
    sent = through_test_client(auth, "X-API-Key", values)
    if sent is not None:
        check(sent, case, "asgi TestClient")
    environ = {} if not values else {"HTTP_X_API_KEY": ", ".join(v.decode("latin-1") for v in values)}
    check(wsgi_call(wsgi_app(auth), environ), case, "wsgi environ", _core.parse_api_key)


def test_the_test_client_sends_most_fixture_values(keys: Keys, store: bastion.TokenStore) -> None:
    # the TestClient runs are a real second path, not one that silently never happens
    auth = authenticator(keys, store)
    sent = [through_test_client(auth, "Authorization", values_of(c)) for c in FIXTURES["authorization"]]
    assert sum(r is not None for r in sent) >= len(sent) // 2


# -- real tokens -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_a_valid_token_is_accepted_whatever_the_scheme_case(
    kind: str, scheme: str, keys: Keys, store: bastion.TokenStore
) -> None:
    auth = authenticator(keys, store)
    client = Client(kind, auth)
    for token in (keys.token(), issue(store, "opaque_user").token):
        r = client.request("GET", PATH, {"Authorization": f"{scheme} {token}"})
        assert r.status == 200, r.body
    raw = f"{scheme} {keys.token()}".encode()
    assert asgi_call(asgi_app(auth), [(b"authorization", raw)]).status == 200
    assert wsgi_call(wsgi_app(auth), {"HTTP_AUTHORIZATION": raw.decode("latin-1")}).status == 200


def test_several_authorization_headers_in_one_scope_are_invalid_request(keys: Keys, store: bastion.TokenStore) -> None:
    auth = authenticator(keys, store)
    app = asgi_app(auth)
    good = f"Bearer {keys.token()}".encode()
    for headers in (
        [(b"authorization", good), (b"authorization", good)],
        [(b"authorization", good), (b"authorization", f"Bearer {keys.token()}".encode())],
        [(b"authorization", good), (b"x-other", b"1"), (b"authorization", b"")],
    ):
        r = asgi_call(app, headers)
        assert r.status == 400
        assert r.body["error"] == "invalid_request"
    assert asgi_call(app, [(b"authorization", good)]).status == 200
