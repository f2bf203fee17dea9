"""bastion.integrations.flask with Flask's test client: the extension answers every request as
bastion.wsgi.AuthMiddleware does (same status, body, headers and audit record), ``@requires`` checks a view's
scopes and roles (in blueprints too), and behind the middleware the extension never authenticates again."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bastion
import pytest
from bastion.integrations.flask import Bastion, current_principal, requires
from bastion.testing.flask import authenticated_as, principal
from flask import Blueprint, Flask, g, request

from examples import flask_app as example
from tests.opaque_support import PEPPER
from tests.request_support import RULES, Boom, Stack, issue
from tests.wsgi_support import (
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
    s = make_stack(tmp_path, "tests.integration.flask")
    yield s
    s.store.close()


def who() -> dict[str, Any]:
    p = current_principal
    ctx = request.environ["bastion.auth"]
    assert g.get("bastion", ctx) is ctx
    return {"subject": p.subject, "authenticated": p.is_authenticated, "request_id": ctx.request_id}


def make_app(auth: bastion.Authenticator | None = None, *, middleware: bool = False, **options: Any) -> Flask:
    """The API of tests.request_support's apps, with the extension; ``middleware``: behind the WSGI middleware too."""
    app = Flask("bastion_flask_test")
    app.config["PROPAGATE_EXCEPTIONS"] = True
    for path in ("/health", "/public/info", "/api/me"):
        app.add_url_rule(path, path, who)

    @app.get("/api/reports")
    @requires(scopes=["read:reports"])
    def reports() -> Any:
        return who()

    @app.route("/api/reports/<id>", methods=["GET", "DELETE", "OPTIONS"])
    def report(id: str) -> Any:
        return {**who(), "id": id}

    @app.get("/api/boom")
    def boom() -> Any:
        raise Boom("application bug")

    @app.get("/api/refuse")
    def refuse() -> Any:
        raise bastion.InsufficientScope(required_scopes=["write:reports"])

    admin = Blueprint("admin", __name__, url_prefix="/api/admin")

    @admin.get("/panel")
    @requires(roles=["admin", "owner"], scopes=["read:reports"])
    def panel() -> Any:
        return who()

    app.register_blueprint(admin)
    if auth is not None:
        Bastion(app, auth, rules=RULES, **options)
        if middleware:
            app.wsgi_app = bastion.wsgi.AuthMiddleware(app.wsgi_app, auth, rules=RULES)  # type: ignore[method-assign]
    return app


def middleware_app(auth: bastion.Authenticator) -> Any:
    """The same API behind bastion.wsgi.AuthMiddleware alone: what the extension must answer like."""
    app = make_app()
    return bastion.wsgi.AuthMiddleware(app.wsgi_app, auth, rules=RULES)


def test_every_error_row_renders_as_the_middleware_renders_it(stack: Stack) -> None:
    ours = wsgi_sender(make_app(stack.auth))
    theirs = wsgi_sender(middleware_app(stack.auth))
    for code, method, path, headers in error_rows(stack):
        with audited(stack) as records:
            got = ours(method, path, headers)
            want = theirs(method, path, headers)
        assert_bastion_refusal(got, code)
        assert_same(got, want)
        assert len(records) == 2, (code, records)
        assert records[0] == records[1]
        assert records[0]["error.type"] == code
        assert records[0]["http.response.status_code"] == got.status


def test_rate_limited_and_admitted_responses_match_the_middleware(stack: Stack) -> None:
    ours = wsgi_sender(make_app(stack.auth))
    theirs = wsgi_sender(middleware_app(stack.auth))
    mine, other = tight_token(stack.keys), tight_token(stack.keys)
    first = ours("GET", "/api/me", bearer(mine))
    assert first.status == 200
    assert first.headers["ratelimit-policy"] == theirs("GET", "/api/me", bearer(other)).headers["ratelimit-policy"]
    got, want = ours("GET", "/api/me", bearer(mine)), theirs("GET", "/api/me", bearer(other))
    assert_bastion_refusal(got, "rate_limited")
    assert_same(got, want)
    assert int(got.headers["retry-after"]) >= 1


def test_a_closed_store_is_auth_unavailable_as_under_the_middleware(stack: Stack) -> None:
    issued = issue(stack.store, "user_1")
    ours = wsgi_sender(make_app(stack.auth))
    theirs = wsgi_sender(middleware_app(stack.auth))
    stack.store.close()
    got, want = ours("GET", "/api/me", bearer(issued.token)), theirs("GET", "/api/me", bearer(issued.token))
    assert_bastion_refusal(got, "auth_unavailable")
    assert_same(got, want)
    assert got.headers["retry-after"] == "1"


def test_scopes_and_roles_of_a_view_and_of_a_blueprint(stack: Stack) -> None:
    send = wsgi_sender(make_app(stack.auth))
    keys = stack.keys
    r = send("GET", "/api/reports", bearer(keys.token({"scope": "read:reports"})))
    assert (r.status, r.body["subject"]) == (200, "user_1")
    # the blueprint's view: one of the roles and every scope; roles are checked first, as the rules do
    r = send("GET", "/api/admin/panel", bearer(keys.token({"scope": "read:reports"})))
    assert_bastion_refusal(r, "forbidden")
    r = send("GET", "/api/admin/panel", bearer(keys.token({"scope": "other", "roles": ["owner"]})))
    assert_bastion_refusal(r, "insufficient_scope")
    assert r.headers["www-authenticate"].endswith('scope="read:reports"')
    assert send("GET", "/api/admin/panel", bearer(keys.token({"roles": ["owner"]}))).status == 200
    # an AuthError raised by a view is bastion's answer too
    r = send("GET", "/api/refuse", bearer(keys.token()))
    assert_bastion_refusal(r, "insufficient_scope")
    assert 'scope="write:reports"' in r.headers["www-authenticate"]


def test_a_views_refusal_is_audited_once_with_its_code(stack: Stack) -> None:
    send = wsgi_sender(make_app(stack.auth))
    with audited(stack) as records:
        send("GET", "/api/admin/panel", bearer(stack.keys.token()))
        send("GET", "/api/refuse", bearer(stack.keys.token()))
    assert [(r["error.type"], r["http.response.status_code"]) for r in records] == [
        ("forbidden", 403),
        ("insufficient_scope", 403),
    ]
    assert records[0]["enduser.id"] == "user_1"


def test_optional_and_open_routes(stack: Stack) -> None:
    send = wsgi_sender(make_app(stack.auth))
    r = send("GET", "/public/info", {})
    assert (r.status, r.body["subject"], r.body["authenticated"]) == (200, None, False)
    r = send("GET", "/public/info", bearer(stack.keys.token()))
    assert (r.body["subject"], r.body["authenticated"]) == ("user_1", True)
    assert_bastion_refusal(send("GET", "/public/info", bearer("abc.def")), "token_malformed")
    # an exempt route reads no header at all: a broken one cannot break it
    assert send("GET", "/health", {"Authorization": "Bearer a b"}).status == 200
    with audited(stack) as records:
        send("GET", "/health", {})
        send("GET", "/public/info", {})
    assert [r["bastion.auth.reason"] for r in records] == ["exempt", "anonymous"]


def test_app_exceptions_propagate_and_are_audited_as_500(stack: Stack) -> None:
    send = wsgi_sender(make_app(stack.auth))
    with audited(stack) as records, pytest.raises(Boom):
        send("GET", "/api/boom", bearer(stack.keys.token()))
    assert [(r["http.response.status_code"], r["bastion.auth.reason"]) for r in records] == [(500, "authenticated")]


def test_admitted_requests_are_audited_once_like_the_middleware(stack: Stack) -> None:
    ours = wsgi_sender(make_app(stack.auth))
    theirs = wsgi_sender(middleware_app(stack.auth))
    token = stack.keys.token({"jti": "same-jti"})
    with audited(stack) as records:
        got, want = ours("GET", "/api/reports/7", bearer(token)), theirs("GET", "/api/reports/7", bearer(token))
    assert got.status == want.status == 200
    assert got.headers["ratelimit"] == want.headers["ratelimit"]
    assert len(records) == 2
    assert records[0] == records[1]
    assert records[0]["http.route"] == "/api/reports*"
    assert records[0]["bastion.auth.token_id"] == "same-jti"


def test_behind_the_middleware_the_extension_never_authenticates_again(stack: Stack) -> None:
    send = wsgi_sender(make_app(stack.auth, middleware=True))
    token = tight_token(stack.keys)  # one request an hour: a second decision would be refused
    with audited(stack) as records:
        r = send("GET", "/api/reports", bearer(token))
    assert r.status == 200, r.body
    assert r.body["subject"].startswith("tight-")
    assert len(records) == 1  # the middleware's
    assert r.headers["ratelimit"].count("r=") == 1  # the RateLimit fields are added once
    # the view's requirement still applies, rendered as bastion renders it
    r = send("GET", "/api/admin/panel", bearer(stack.keys.token()))
    assert_bastion_refusal(r, "forbidden")


def test_init_app_and_configuration_errors(stack: Stack) -> None:
    ext = Bastion()
    app = make_app()
    with pytest.raises(bastion.ConfigurationError, match="needs an Authenticator"):
        ext.init_app(app)
    with pytest.raises(bastion.ConfigurationError, match="unknown Bastion option"):
        ext.init_app(app, stack.auth, rule=[])  # type: ignore[call-arg]
    with pytest.raises(bastion.ConfigurationError, match=r"bastion\.Authenticator"):
        ext.init_app(app, object())  # type: ignore[arg-type]
    ext.init_app(app, stack.auth, rules=RULES)
    assert wsgi_sender(app)("GET", "/api/me", {}).status == 401
    # installed again: one decision and one audit record a request, under the new configuration
    ext.init_app(app, stack.auth, rules=RULES, exempt=["/api/me"])
    with audited(stack) as records:
        assert wsgi_sender(app)("GET", "/api/me", {}).status == 200
    assert [r["bastion.auth.reason"] for r in records] == ["exempt"]


def test_authenticated_as_decides_every_request_as_a_fixed_principal(stack: Stack) -> None:
    app = make_app(stack.auth)
    send = wsgi_sender(app)
    reader = principal("fixed", scopes=["read:reports"])
    with authenticated_as(app, reader), audited(stack) as records:
        r = send("GET", "/api/reports", {})
        assert (r.status, r.body["subject"]) == (200, "fixed")
        assert_bastion_refusal(send("DELETE", "/api/reports/1", {}), "forbidden")  # the rules still apply
        assert send("GET", "/health", {}).status == 200
        with authenticated_as(app, principal("boss", roles=["admin"])):
            assert send("DELETE", "/api/reports/1", {}).body["subject"] == "boss"
        assert send("GET", "/api/me", {}).body["subject"] == "fixed"
    assert send("GET", "/api/me", {}).status == 401
    assert [r.get("enduser.id") for r in records] == ["fixed", "fixed", None, "boss", "fixed"]
    with pytest.raises(bastion.ConfigurationError, match="Principal"):
        authenticated_as(app, "fixed").__enter__()  # type: ignore[arg-type]


def test_principal_helper_builds_what_a_token_would() -> None:
    p = principal("svc", scopes=["a", "b"], roles=["admin"], tier="internal", client_id="svc", claims={"org": "x"})
    assert (p.subject, p.scopes, p.roles, p.tier, p.token_type) == (
        "svc",
        frozenset({"a", "b"}),
        frozenset({"admin"}),
        "internal",
        "jwt",
    )
    assert p.rate_limit_key == "svc"
    assert p.claims["org"] == "x"
    with pytest.raises(bastion.ConfigurationError, match="claims= cannot set scope"):
        principal("x", claims={"scope": "admin"})
    with pytest.raises(bastion.ConfigurationError):
        principal("x", scopes="read")


@pytest.fixture
def audit_logger() -> Iterator[logging.Logger]:
    """The ``bastion.audit`` logger, given back as it was after an example configured it."""
    log = logging.getLogger("bastion.audit")
    saved = (list(log.handlers), log.level, log.propagate)
    yield log
    for handler in log.handlers:
        if handler not in saved[0]:
            handler.close()
    log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]


def test_the_example_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, audit_logger: logging.Logger) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    monkeypatch.setenv("BASTION_TOKENS_URL", url)
    monkeypatch.setenv("BASTION_PEPPER", PEPPER.decode())
    monkeypatch.setenv("BASTION_AUDIT_FILE", str(tmp_path / "audit.jsonl"))
    audit_logger.handlers.clear()
    app = example.create_app()
    store = bastion.TokenStore(url, pepper=PEPPER)
    try:
        reader = issue(store, "reader", scopes=["read:reports"], tier="standard")
        admin = issue(store, "admin", roles=["admin"], tier="admin")
        send = wsgi_sender(app)
        assert send("GET", "/health", {}).body == {"status": "ok"}
        assert send("GET", "/api/v1/me", bearer(reader.token)).body["subject"] == "reader"
        assert send("GET", "/api/v1/reports", bearer(reader.token)).status == 200
        assert_bastion_refusal(send("GET", "/api/v1/reports", bearer(admin.token)), "insufficient_scope")
        assert_bastion_refusal(send("DELETE", "/api/v1/reports/3", bearer(reader.token)), "forbidden")
        assert send("DELETE", "/api/v1/reports/3", bearer(admin.token)).body == {"deleted": "3"}
        assert_bastion_refusal(send("GET", "/api/v1/me", {}), "missing_token")
    finally:
        store.close()
    guard = app.extensions["bastion"]
    assert guard.auth.audit is not None
    assert guard.auth.audit.flush()
    text = (tmp_path / "audit.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["http.response.status_code"] for line in lines] == [200, 200, 200, 403, 403, 200, 401]
    assert reader.token not in text
    assert admin.token not in text
    monkeypatch.delenv("BASTION_PEPPER")
    with pytest.raises(bastion.ConfigurationError, match="BASTION_PEPPER"):
        example.create_app()


def test_a_cors_preflight_passes_unauthenticated_as_under_the_middleware(stack: Stack) -> None:
    ours = wsgi_sender(make_app(stack.auth))
    theirs = wsgi_sender(middleware_app(stack.auth))
    preflight = {"Origin": "https://app.test", "Access-Control-Request-Method": "DELETE"}
    with audited(stack) as records:
        got, want = ours("OPTIONS", "/api/reports/7", preflight), theirs("OPTIONS", "/api/reports/7", preflight)
    assert got.status == want.status == 200
    assert [r["bastion.auth.reason"] for r in records] == ["preflight", "preflight"]
    assert records[0] == records[1]


def test_the_api_key_header_is_read_as_the_middleware_reads_it(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, "tests.integration.flask", api_key_header="X-API-Key")
    try:
        issued = issue(stack.store, "robot", scopes=["read:reports"])
        ours, theirs = wsgi_sender(make_app(stack.auth)), wsgi_sender(middleware_app(stack.auth))
        assert ours("GET", "/api/reports", {"X-API-Key": issued.token}).body["subject"] == "robot"
        both = {"X-API-Key": issued.token, **bearer(stack.keys.token())}
        got, want = ours("GET", "/api/me", both), theirs("GET", "/api/me", both)
        assert_bastion_refusal(got, "invalid_request")
        assert_same(got, want)
    finally:
        stack.store.close()
