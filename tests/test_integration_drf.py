"""bastion.integrations.drf with DRF's APIClient: DRF's refusals (NotAuthenticated, the permission classes, the
throttle, PermissionDenied, AuthenticationFailed) are bastion's exact responses, identical to what
bastion.wsgi.AuthMiddleware answers for the same condition; the example project is exercised end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bastion
import pytest

from tests import django_support  # configures Django: DRF's test module reads the settings when imported

# isort: split
from django.core.handlers.wsgi import WSGIHandler
from django.test import override_settings
from rest_framework.test import APIClient

from tests.opaque_support import PEPPER
from tests.request_support import RULES, Boom, Response, Stack, collecting, issue
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

#: the DRF views decide authentication and scopes themselves: the middleware only verifies a token if one is sent
DRF_RULES = [bastion.Rule("/drf/*", auth="optional"), *RULES]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = make_stack(tmp_path, "tests.integration.drf")
    yield s
    s.store.close()


def settings_for(stack: Stack, **extra: Any) -> dict[str, Any]:
    bastion_settings = {
        "AUTHENTICATOR": stack.auth,
        "RULES": DRF_RULES,
        "THROTTLE_LIMITER": "tests.django_urls.THROTTLE",
    }
    bastion_settings.update(extra)
    return {
        "BASTION": bastion_settings,
        "MIDDLEWARE": django_support.MIDDLEWARE,
        "REST_FRAMEWORK": django_support.REST_FRAMEWORK,
    }


@pytest.fixture
def configured(stack: Stack) -> Iterator[Stack]:
    with override_settings(**settings_for(stack)):
        yield stack


def api_sender(client: APIClient) -> Send:
    def send(method: str, path: str, headers: dict[str, str]) -> Response:
        r: Any = client.generic(method, path, headers=headers)
        hdrs = {k.lower(): v for k, v in r.headers.items()}
        body = json.loads(r.content) if r.content and "json" in hdrs.get("content-type", "") else r.content
        return Response(r.status_code, hdrs, body)

    return send


def reference(auth: bastion.Authenticator) -> Send:
    """The plain Django views behind bastion.wsgi.AuthMiddleware, with the rules deciding scopes and roles."""
    with override_settings(MIDDLEWARE=[]):
        return wsgi_sender(bastion.wsgi.AuthMiddleware(WSGIHandler(), auth, rules=RULES))


def test_drf_refusals_are_the_middlewares_refusals(configured: Stack) -> None:
    send, theirs, keys = api_sender(APIClient()), reference(configured.auth), configured.keys
    other = keys.token({"scope": "other"})
    cases = [
        # (code, DRF request, the middleware's request for the same condition)
        ("missing_token", ("GET", "/drf/me", {}), ("GET", "/api/me", {})),
        ("insufficient_scope", ("GET", "/drf/reports", bearer(other)), ("GET", "/api/reports", bearer(other))),
        ("forbidden", ("DELETE", "/drf/reports/7", bearer(other)), ("DELETE", "/api/reports/7", bearer(other))),
    ]
    for code, (method, path, headers), (their_method, their_path, their_headers) in cases:
        with audited(configured) as records:
            got = send(method, path, headers)
            want = theirs(their_method, their_path, their_headers)
        assert_bastion_refusal(got, code)
        assert_same(got, want)
        assert [r["error.type"] for r in records] == [code, code]
    assert send("GET", "/drf/reports", bearer(keys.token())).body["subject"] == "user_1"
    admin = send("DELETE", "/drf/reports/7", bearer(keys.token({"roles": ["admin"]})))
    assert (admin.status, admin.body["deleted"]) == (200, "7")


def test_the_error_rows_of_the_middleware_reach_drf_views_unchanged(configured: Stack) -> None:
    send, theirs = api_sender(APIClient()), reference(configured.auth)
    for code, method, path, headers in error_rows(configured):
        if path.startswith("/api/me"):
            got = send(method, "/drf/me", headers)
            assert_bastion_refusal(got, code)
            assert_same(got, theirs(method, path, headers))


def test_the_throttle_limits_by_tier_and_answers_like_the_middleware(configured: Stack) -> None:
    send, theirs = api_sender(APIClient()), reference(configured.auth)
    mine, other = tight_token(configured.keys), tight_token(configured.keys)
    assert send("GET", "/drf/throttled", bearer(mine)).status == 200
    assert theirs("GET", "/api/me", bearer(other)).status == 200
    with audited(configured) as records:
        got = send("GET", "/drf/throttled", bearer(mine))
    want = theirs("GET", "/api/me", bearer(other))
    assert_bastion_refusal(got, "rate_limited")
    assert_same(got, want)
    assert got.headers["ratelimit-policy"].startswith('"tight"')
    assert [(r["error.type"], r["http.response.status_code"]) for r in records] == [("rate_limited", 429)]
    unlimited = configured.keys.token({"sub": "boss", "tier": "admin"})
    assert all(send("GET", "/drf/throttled", bearer(unlimited)).status == 200 for _ in range(3))


def test_drf_exceptions_map_to_bastion_codes(configured: Stack) -> None:
    send, token = api_sender(APIClient()), configured.keys.token()
    assert_bastion_refusal(send("GET", "/drf/never", bearer(token)), "forbidden")  # PermissionDenied
    assert_bastion_refusal(send("GET", "/drf/failing", {}), "invalid_token")  # AuthenticationFailed
    r = send("GET", "/drf/refuse", {})  # a bastion AuthError raised by a view
    assert_bastion_refusal(r, "insufficient_scope")
    assert r.headers["www-authenticate"].endswith('scope="write:reports"')
    r = send("GET", "/drf/open", {})
    assert (r.status, r.body["subject"]) == (200, None)
    with audited(configured) as records, pytest.raises(Boom):
        send("GET", "/drf/boom", bearer(token))
    assert [r["http.response.status_code"] for r in records] == [500]


def test_a_401_not_a_403_even_with_drfs_own_exception_handler(stack: Stack) -> None:
    drf = {k: v for k, v in django_support.REST_FRAMEWORK.items() if k != "EXCEPTION_HANDLER"}
    with override_settings(**{**settings_for(stack), "REST_FRAMEWORK": drf}):
        send = api_sender(APIClient())
        r = send("GET", "/drf/me", {})
        assert r.status == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="api"'
        r = send("GET", "/drf/reports", bearer(stack.keys.token({"scope": "other"})))
        assert r.status == 403
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


class User:
    is_authenticated = True

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name


def test_request_user_and_auth(stack: Stack) -> None:
    with override_settings(**settings_for(stack, USER_LOADER=lambda p: User(f"user:{p.subject}"))):
        body = api_sender(APIClient())("GET", "/drf/me", bearer(stack.keys.token())).body
    assert body == {"subject": "user_1", "user": "user:user_1"}
    with override_settings(**settings_for(stack)):
        body = api_sender(APIClient())("GET", "/drf/me", bearer(stack.keys.token())).body
    assert body["user"].startswith("Principal(subject=")  # without a loader, request.user is the principal

    async def aload(p: bastion.Principal) -> User:
        return User(f"auser:{p.subject}")

    # behind the WSGI middleware alone, the loader (a coroutine function here) is called by the DRF class
    with override_settings(**{**settings_for(stack, USER_LOADER=aload), "MIDDLEWARE": []}):
        send = wsgi_sender(bastion.wsgi.AuthMiddleware(WSGIHandler(), stack.auth, rules=DRF_RULES))
        assert send("GET", "/drf/me", bearer(stack.keys.token())).body["user"] == "auser:user_1"


def test_behind_the_wsgi_middleware_alone(stack: Stack) -> None:
    with override_settings(**{**settings_for(stack), "MIDDLEWARE": []}):
        send = wsgi_sender(bastion.wsgi.AuthMiddleware(WSGIHandler(), stack.auth, rules=DRF_RULES))
        token = tight_token(stack.keys)
        with audited(stack) as records:
            r = send("GET", "/drf/me", bearer(token))
        assert r.status == 200
        assert r.body["subject"].startswith("tight-")
        assert len(records) == 1
        assert_bastion_refusal(
            send("GET", "/drf/reports", bearer(stack.keys.token({"scope": "x"}))), "insufficient_scope"
        )
        # without any bastion middleware the DRF classes have no decision to read: a configuration error
        with pytest.raises(bastion.ConfigurationError, match="BastionMiddleware"):
            APIClient().get("/drf/me")


def test_the_throttle_needs_a_limiter(stack: Stack) -> None:
    settings = settings_for(stack)
    del settings["BASTION"]["THROTTLE_LIMITER"]
    with override_settings(**settings), pytest.raises(bastion.ConfigurationError, match="THROTTLE_LIMITER"):
        APIClient().get("/drf/throttled", headers=bearer(stack.keys.token()))


def test_the_views_own_scopes_must_be_a_list(configured: Stack) -> None:
    from tests.django_urls import ReportsView

    original = ReportsView.required_scopes
    ReportsView.required_scopes = "read:reports"  # type: ignore[assignment]
    try:
        with pytest.raises(bastion.ConfigurationError, match="not one string"):
            APIClient().get("/drf/reports", headers=bearer(configured.keys.token()))
    finally:
        ReportsView.required_scopes = original


def flush_every_audit_log() -> None:
    from bastion.audit import writer

    for log in list(writer._LIVE):
        assert log.flush()


@pytest.fixture
def example_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """examples/django_app's settings in this process (its LOGGING aside: Django applies that only at setup)."""
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    monkeypatch.setenv("BASTION_TOKENS_URL", url)
    monkeypatch.setenv("BASTION_PEPPER", PEPPER.decode())
    from examples.django_app import settings as example

    assert example.INSTALLED_APPS == django_support.INSTALLED_APPS
    assert example.REST_FRAMEWORK == django_support.REST_FRAMEWORK  # see tests.django_support
    assert example.DATABASES == {}
    values = {
        k: getattr(example, k)
        for k in dir(example)
        if k.isupper() and k not in ("LOGGING", "INSTALLED_APPS", "DATABASES")
    }
    with override_settings(**values):
        yield url


def test_the_example_project(example_settings: str) -> None:
    store = bastion.TokenStore(example_settings, pepper=PEPPER)
    try:
        reader = issue(store, "reader", scopes=["read:reports"], tier="standard")
        admin = issue(store, "admin", roles=["admin"], tier="admin")
        trial = issue(store, "trial", tier="trial")
        flush_every_audit_log()
        with collecting("bastion.audit") as got:
            send = api_sender(APIClient())
            assert send("GET", "/health", {}).body == {"status": "ok"}
            assert send("GET", "/api/v1/me", bearer(reader.token)).body["subject"] == "reader"
            assert send("GET", "/api/v1/reports", bearer(reader.token)).status == 200
            assert_bastion_refusal(send("GET", "/api/v1/reports", bearer(admin.token)), "insufficient_scope")
            assert_bastion_refusal(send("DELETE", "/api/v1/reports/3", bearer(reader.token)), "forbidden")
            assert send("DELETE", "/api/v1/reports/3", bearer(admin.token)).body == {"deleted": "3"}
            assert_bastion_refusal(send("GET", "/api/v1/me", {}), "missing_token")
            assert [send("GET", "/api/v1/me", bearer(trial.token)).status for _ in range(4)] == [200, 200, 200, 429]
            flush_every_audit_log()
    finally:
        store.close()
    assert [r.bastion_audit.status for r in got] == [200, 200, 200, 403, 403, 200, 401, 200, 200, 200, 429]
