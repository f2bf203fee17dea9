"""bastion.integrations.django with django.test.Client (sync) and AsyncClient (ASGI, decide_async): the middleware
answers every request as bastion.wsgi.AuthMiddleware does in front of the same Django app (status, body, headers,
audit record), ``@requires`` checks sync and async views, and behind the WSGI middleware nothing is decided twice.

Settings are configured once for the process (tests.django_support); each test overrides what it needs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bastion
import pytest
from bastion.integrations.django import config
from bastion.testing.django import authenticated_as, principal
from django.core.handlers.wsgi import WSGIHandler
from django.test import AsyncClient, Client, override_settings

from tests import django_support
from tests.opaque_support import PEPPER
from tests.request_support import RULES, Boom, Response, Stack, issue
from tests.wsgi_support import (
    Send,
    assert_bastion_refusal,
    assert_same,
    audited,
    bearer,
    error_rows,
    make_stack,
    tight_token,
    wsgi_sender,
)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = make_stack(tmp_path, "tests.integration.django")
    yield s
    s.store.close()


def to_response(r: Any) -> Response:
    headers = {k.lower(): v for k, v in r.headers.items()}
    body = r.json() if r.content and "json" in headers.get("content-type", "") else r.content
    return Response(r.status_code, headers, body)


def django_sender(client: Client) -> Send:
    def send(method: str, path: str, headers: dict[str, str]) -> Response:
        return to_response(client.generic(method, path, headers=headers))

    return send


def async_sender(client: AsyncClient) -> Send:
    async def call(method: str, path: str, headers: dict[str, str]) -> Any:
        return await client.generic(method, path, headers=headers)

    def send(method: str, path: str, headers: dict[str, str]) -> Response:
        return to_response(asyncio.run(call(method, path, headers)))

    return send


@pytest.fixture
def configured(stack: Stack) -> Iterator[Stack]:
    """BastionMiddleware on the test views, with the rules of tests.request_support."""
    with override_settings(BASTION={"AUTHENTICATOR": stack.auth, "RULES": RULES}, MIDDLEWARE=django_support.MIDDLEWARE):
        yield stack


def behind_wsgi_middleware(auth: bastion.Authenticator) -> Send:
    """The same Django app served behind bastion.wsgi.AuthMiddleware (as the current MIDDLEWARE has it)."""
    return wsgi_sender(bastion.wsgi.AuthMiddleware(WSGIHandler(), auth, rules=RULES))


def test_every_error_row_renders_as_the_wsgi_middleware_renders_it(stack: Stack) -> None:
    with override_settings(BASTION={"AUTHENTICATOR": stack.auth, "RULES": RULES}, MIDDLEWARE=[]):
        theirs = behind_wsgi_middleware(stack.auth)
    rows = error_rows(stack)
    with override_settings(BASTION={"AUTHENTICATOR": stack.auth, "RULES": RULES}, MIDDLEWARE=django_support.MIDDLEWARE):
        for sender in (django_sender(Client()), async_sender(AsyncClient())):
            for code, method, path, headers in rows:
                with audited(stack) as records:
                    got = sender(method, path, headers)
                    want = theirs(method, path, headers)
                assert_bastion_refusal(got, code)
                assert_same(got, want)
                assert len(records) == 2, (code, records)
                assert records[0] == records[1]
                assert records[0]["error.type"] == code


def test_rate_limited_and_admitted_responses_match_the_wsgi_middleware(configured: Stack) -> None:
    stack = configured
    with override_settings(MIDDLEWARE=[]):
        theirs = behind_wsgi_middleware(stack.auth)
    ours = django_sender(Client())
    mine, other = tight_token(stack.keys), tight_token(stack.keys)
    with audited(stack) as records:
        first, reference = ours("GET", "/api/me", bearer(mine)), theirs("GET", "/api/me", bearer(other))
    assert first.status == reference.status == 200
    assert first.body["subject"].startswith("tight-")
    assert first.headers["ratelimit-policy"] == reference.headers["ratelimit-policy"]
    assert len(records) == 2
    differ = {"enduser.id", "bastion.auth.token_id"}  # two subjects, two tokens
    assert {k: v for k, v in records[0].items() if k not in differ} == {
        k: v for k, v in records[1].items() if k not in differ
    }
    got, want = ours("GET", "/api/me", bearer(mine)), theirs("GET", "/api/me", bearer(other))
    assert_bastion_refusal(got, "rate_limited")
    assert_same(got, want)


def test_a_closed_store_is_auth_unavailable(configured: Stack) -> None:
    issued = issue(configured.store, "user_1")
    configured.store.close()
    for send in (django_sender(Client()), async_sender(AsyncClient())):
        r = send("GET", "/api/me", bearer(issued.token))
        assert_bastion_refusal(r, "auth_unavailable")
        assert r.headers["retry-after"] == "1"


def test_request_principal_and_optional_routes(configured: Stack) -> None:
    send = django_sender(Client())
    r = send("GET", "/api/me", bearer(configured.keys.token()))
    assert r.body["subject"] == "user_1"
    assert len(r.body["request_id"]) == 32
    assert send("GET", "/public/info", {}).body["subject"] is None
    assert_bastion_refusal(send("GET", "/public/info", bearer("abc.def")), "token_malformed")
    assert send("GET", "/health", {"Authorization": "Bearer a b"}).status == 200
    with audited(configured) as records:
        send("GET", "/health", {})
        send("GET", "/public/info", {})
    assert [r["bastion.auth.reason"] for r in records] == ["exempt", "anonymous"]


def test_the_decorator_checks_sync_and_async_views(configured: Stack) -> None:
    keys = configured.keys
    for send in (django_sender(Client()), async_sender(AsyncClient())):
        assert send("GET", "/api/decorated", bearer(keys.token())).status == 200
        r = send("GET", "/api/decorated", bearer(keys.token({"scope": "other"})))
        assert_bastion_refusal(r, "insufficient_scope")
        assert r.headers["www-authenticate"].endswith('scope="read:reports"')
        assert_bastion_refusal(send("GET", "/api/async/decorated", bearer(keys.token())), "forbidden")
        admin = send("GET", "/api/async/decorated", bearer(keys.token({"roles": ["admin"]})))
        assert (admin.status, admin.body["subject"]) == (200, "user_1")
    with audited(configured) as records:
        django_sender(Client())("GET", "/api/decorated", bearer(keys.token({"scope": "other"})))
    assert [(r["error.type"], r["http.response.status_code"]) for r in records] == [("insufficient_scope", 403)]


def test_an_auth_error_raised_by_a_view_propagates_as_django_handles_exceptions(configured: Stack) -> None:
    # Django's own handler answers an exception: bastion's middleware sees a 500 and audits it once
    with audited(configured) as records, pytest.raises(Boom):
        Client().get("/api/boom", headers=bearer(configured.keys.token()))
    assert [(r["http.response.status_code"], r["bastion.auth.reason"]) for r in records] == [(500, "authenticated")]


def test_the_async_path_awaits_the_authenticator(
    configured: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def blocking(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the blocking decide() was called on the event loop")

    # issued by another process's store: this one must read the record from SQLite, awaited
    elsewhere = bastion.TokenStore(f"sqlite:///{tmp_path / 'tokens.db'}", pepper=PEPPER)
    try:
        issued = issue(elsewhere, "user_async", scopes=["read:reports"])
    finally:
        elsewhere.close()
    monkeypatch.setattr(bastion.Authenticator, "decide", blocking)
    send = async_sender(AsyncClient())
    r = send("GET", "/api/async/me", bearer(issued.token))
    assert (r.status, r.body["subject"]) == (200, "user_async")
    assert send("GET", "/api/async/me", bearer(configured.keys.token())).body["subject"] == "user_1"
    with pytest.raises(AssertionError, match="blocking"):
        Client().get("/api/me", headers=bearer(configured.keys.token()))


def test_the_user_loader_sets_request_user(stack: Stack) -> None:
    seen: list[str] = []

    def load(p: bastion.Principal) -> str:
        seen.append(p.subject)
        return f"user:{p.subject}"

    async def aload(p: bastion.Principal) -> str:
        return f"auser:{p.subject}"

    token = stack.keys.token()
    settings = {"AUTHENTICATOR": stack.auth, "RULES": RULES, "USER_LOADER": load}
    with override_settings(BASTION=settings, MIDDLEWARE=django_support.MIDDLEWARE):
        assert django_sender(Client())("GET", "/api/me", bearer(token)).body["user"] == "user:user_1"
        assert async_sender(AsyncClient())("GET", "/api/async/me", bearer(token)).body["user"] == "user:user_1"
    assert seen == ["user_1", "user_1"]
    settings = {"AUTHENTICATOR": stack.auth, "RULES": RULES, "USER_LOADER": aload}
    with override_settings(BASTION=settings, MIDDLEWARE=django_support.MIDDLEWARE):
        assert async_sender(AsyncClient())("GET", "/api/async/me", bearer(token)).body["user"] == "auser:user_1"


def test_behind_the_wsgi_middleware_nothing_is_decided_twice(configured: Stack) -> None:
    send = behind_wsgi_middleware(configured.auth)  # and BastionMiddleware inside, from MIDDLEWARE
    token = tight_token(configured.keys)
    with audited(configured) as records:
        r = send("GET", "/api/me", bearer(token))
    assert r.status == 200, r.body
    assert r.body["subject"].startswith("tight-")
    assert len(records) == 1
    assert r.headers["ratelimit"].count("r=") == 1
    assert_bastion_refusal(
        send("GET", "/api/decorated", bearer(configured.keys.token({"scope": "x"}))), "insufficient_scope"
    )


def test_behind_the_asgi_middleware_the_scope_is_read(configured: Stack) -> None:
    from django.core.handlers.asgi import ASGIHandler
    from starlette.testclient import TestClient

    app = bastion.asgi.AuthMiddleware(ASGIHandler(), configured.auth, rules=RULES)
    token = tight_token(configured.keys)  # one request an hour: a second decision would be refused
    client = TestClient(app)  # not entered: Django's ASGI handler serves no lifespan
    with audited(configured) as records:
        r = client.get("/api/async/me", headers=bearer(token))
        refused = client.get("/api/async/decorated", headers=bearer(configured.keys.token()))
    assert r.status_code == 200, r.text
    assert r.json()["subject"].startswith("tight-")
    assert refused.json()["error"] == "forbidden"
    assert len(records) == 2  # the ASGI middleware's, one a request


def test_settings_as_a_dotted_path_and_configuration_errors(stack: Stack) -> None:
    with override_settings(BASTION="tests.test_integration_django.factory", MIDDLEWARE=django_support.MIDDLEWARE):
        FACTORY_AUTH.append(stack.auth)
        try:
            assert config().guard.auth is stack.auth
            assert_bastion_refusal(django_sender(Client())("GET", "/anything", {}), "missing_token")
        finally:
            FACTORY_AUTH.clear()
    for value, message in [
        (None, "settings.BASTION is not set"),
        (7, "must be a dict"),
        ({"AUTHENTICATOR": stack.auth, "RULE": []}, "unknown key"),
        ({"RULES": RULES}, "needs AUTHENTICATOR"),
        ({"AUTHENTICATOR": "tests.nowhere.make"}, "cannot import"),
        ({"AUTHENTICATOR": object()}, "must be"),
        ({"AUTHENTICATOR": stack.auth, "USER_LOADER": 3}, "USER_LOADER"),
        ({"AUTHENTICATOR": stack.auth, "RULES": "nope"}, "rules must be a list"),
    ]:
        with override_settings(BASTION=value), pytest.raises(bastion.ConfigurationError, match=message):
            config()


FACTORY_AUTH: list[bastion.Authenticator] = []


def factory() -> bastion.Authenticator:
    return FACTORY_AUTH[0]


def test_authenticated_as_fixes_the_principal(configured: Stack) -> None:
    send = django_sender(Client())
    with authenticated_as(principal("fixed", scopes=["read:reports"])), audited(configured) as records:
        assert send("GET", "/api/reports", {}).body["subject"] == "fixed"
        assert send("GET", "/api/decorated", {}).status == 200
        assert_bastion_refusal(send("DELETE", "/api/reports/1", {}), "forbidden")
        assert async_sender(AsyncClient())("GET", "/api/async/me", {}).body["subject"] == "fixed"
        assert send("GET", "/health", {}).body["subject"] is None
    assert_bastion_refusal(send("GET", "/api/me", {}), "missing_token")
    assert [r.get("enduser.id") for r in records] == ["fixed", "fixed", "fixed", "fixed", None]
    with pytest.raises(bastion.ConfigurationError, match="Principal"):
        authenticated_as("fixed").__enter__()  # type: ignore[arg-type]
