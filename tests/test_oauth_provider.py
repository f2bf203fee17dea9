"""The provider's own rules over HTTP: errors (RFC 6749 §5.2), throttling, disabled clients, secret and key
rotation, the metadata documents, the WSGI mount and the audit events."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import bastion
import httpx
import pytest
from bastion import Rate, RateLimiter
from bastion.oauth import FAILURES_TIER, REQUESTS_TIER, KeyRing, Provider, Request

from tests.oauth_support import Served, keep, served


@pytest.fixture(params=["sqlite", "postgresql"])
def srv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    pg = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    with served(request.param, "jwt", tmp_path, pg) as s:
        yield s


def _cc(srv: Served, **extra: str) -> httpx.Response:
    return srv.post("/oauth/token", {"grant_type": "client_credentials", **extra})


def test_wrong_secret_is_invalid_client_401_with_a_basic_challenge(srv: Served) -> None:
    for auth in ((srv.client_id, srv.secret[:-1] + ("A" if srv.secret[-1] != "A" else "B")), ("nobody", srv.secret)):
        r = srv.post("/oauth/token", {"grant_type": "client_credentials"}, auth=auth)
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"
        assert r.headers["www-authenticate"].startswith("Basic")
        assert r.headers["cache-control"] == "no-store"
    posted = httpx.post(
        srv.token_url, data={"grant_type": "client_credentials", "client_id": "svc", "client_secret": "x"}
    )
    assert posted.status_code == 401
    assert httpx.post(srv.token_url, data={"grant_type": "client_credentials"}).status_code == 401


def test_error_bodies_follow_rfc_6749_section_5_2(srv: Served) -> None:
    escalated = _cc(srv, scope="read admin")
    assert escalated.status_code == 400
    assert escalated.json()["error"] == "invalid_scope"
    assert _cc(srv, scope='bad"scope').json()["error"] == "invalid_scope"
    assert srv.post("/oauth/token", {"grant_type": "password"}).json()["error"] == "unsupported_grant_type"
    assert srv.post("/oauth/token", {}).json()["error"] == "invalid_request"
    bad_refresh = srv.post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": "nope"})
    assert bad_refresh.json()["error"] == "invalid_grant"
    twice = httpx.post(
        srv.token_url,
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(srv.client_id, srv.secret),
    )
    assert twice.json()["error"] == "invalid_request"
    assert httpx.post(srv.token_url, json={"grant_type": "client_credentials"}).status_code == 400
    assert httpx.get(srv.token_url).status_code == 405
    assert httpx.post(srv.token_url, content=b"x" * 70_000).status_code == 413
    for r in (escalated, bad_refresh, twice):
        assert set(r.json()) == {"error", "error_description"}
        assert r.headers["cache-control"] == "no-store"


def test_a_client_limited_to_client_credentials_gets_no_refresh_grant(srv: Served) -> None:
    made = srv.provider.clients.create("cc-only", scopes=["read"])
    assert made.secret is not None
    keep(made.secret)
    issued = keep(srv.provider.issue_tokens(subject="carol", client_id="cc-only"))
    assert "refresh_token" not in issued
    r = srv.post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": "x"}, auth=("cc-only", made.secret))
    assert r.json()["error"] == "unauthorized_client"
    with pytest.raises(bastion.ConfigurationError):
        srv.provider.issue_tokens(subject="carol", client_id="cc-only", scopes=["write"])


def test_repeated_failures_end_in_429_with_retry_after_never_a_5xx(tmp_path: Path) -> None:
    limiter = RateLimiter({REQUESTS_TIER: Rate(1000, 60), FAILURES_TIER: Rate(3, 60)}, default=REQUESTS_TIER)
    with served("sqlite", "jwt", tmp_path, None, limiter=limiter) as srv:
        statuses = [_status(srv, ("svc", "wrong")) for _ in range(6)]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429, 429]
        r = srv.post("/oauth/token", {"grant_type": "client_credentials"}, auth=("svc", "wrong"))
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        # the client id is throttled from any address, even with the right secret now
        assert _cc(srv).status_code == 429


def _status(srv: Served, auth: tuple[str, str]) -> int:
    return srv.post("/oauth/token", {"grant_type": "client_credentials"}, auth=auth).status_code


def test_a_disabled_client_is_refused_at_once_and_its_live_tokens_die(srv: Served) -> None:
    own = keep(_cc(srv).json())
    user = keep(srv.provider.issue_tokens(subject="dave", client_id="svc"))
    auth = bastion.Authenticator(jwt=srv.provider.verifier(), tokens=srv.store)
    assert auth.authenticate("Bearer " + own["access_token"]) is not None
    assert srv.provider.clients.disable("svc") is True
    assert _cc(srv).status_code == 401
    for token in (own["access_token"], user["access_token"]):
        with pytest.raises(bastion.TokenRevoked):
            auth.authenticate("Bearer " + token)
    with pytest.raises(bastion.TokenRevoked):
        srv.store.verify(user["refresh_token"])
    client = srv.provider.clients.get("svc")
    assert client is not None
    assert client.disabled


def test_secret_rotation_keeps_the_previous_secret_for_its_grace_period(srv: Served) -> None:
    rotated = srv.provider.clients.rotate_secret("svc", grace=60)
    assert rotated.secret is not None
    keep(rotated.secret)
    assert "secret" not in repr(rotated).replace("has_secret", "").replace("previous_secret", "")
    assert _status(srv, ("svc", rotated.secret)) == 200
    assert _status(srv, ("svc", srv.secret)) == 200  # still within the grace period
    again = srv.provider.clients.rotate_secret("svc", grace=0)
    assert again.secret is not None
    keep(again.secret)
    assert _status(srv, ("svc", again.secret)) == 200
    assert _status(srv, ("svc", rotated.secret)) == 401  # grace 0: the previous one died at once
    assert _status(srv, ("svc", srv.secret)) == 401  # two rotations ago: gone


def test_signing_key_rotation_generate_publish_switch_retire(srv: Served) -> None:
    ring = srv.provider.keys
    before = keep(_cc(srv).json())["access_token"]
    old_kid = ring.current.kid
    nxt = ring.generate_next()
    jwks = httpx.get(srv.url + "/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks["keys"]] == [old_kid, nxt.kid]
    assert all("d" not in k for k in jwks["keys"])  # public members only
    ring.switch()
    after = keep(_cc(srv).json())["access_token"]
    assert bastion._core._decode_unverified(after)["header"]["kid"] == nxt.kid
    verifier = bastion.JWTVerifier(
        bastion.KeySet.from_jwks(httpx.get(srv.url + "/.well-known/jwks.json").json()),
        algorithms=["ES256"],
        issuer=srv.provider.issuer,
        audience=srv.provider.audience,
        typ="at+jwt",
    )
    assert verifier.verify(before)["client_id"] == "svc"  # the previous key is still published
    assert verifier.verify(after)["client_id"] == "svc"
    assert ring.retire() is not None
    assert [k["kid"] for k in httpx.get(srv.url + "/.well-known/jwks.json").json()["keys"]] == [nxt.kid]
    assert srv.post("/oauth/introspect", {"token": before}).json() == {"active": False}
    with pytest.raises(bastion.ConfigurationError):
        ring.switch()


def test_metadata_documents(srv: Served) -> None:
    meta = httpx.get(srv.url + "/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == srv.provider.issuer
    assert meta["token_endpoint"] == srv.token_url
    assert meta["grant_types_supported"] == ["client_credentials", "refresh_token"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert meta["introspection_endpoint"].endswith("/oauth/introspect")
    assert meta["revocation_endpoint"].endswith("/oauth/revoke")
    resource = httpx.get(srv.url + "/.well-known/oauth-protected-resource").json()
    assert resource["authorization_servers"] == [srv.provider.issuer]
    assert resource["resource"] == srv.provider.audience
    assert httpx.get(srv.url + "/nowhere").status_code == 404


def test_introspection_hides_other_clients_tokens_unless_allowed(srv: Served) -> None:
    token = keep(_cc(srv).json())["access_token"]
    other = srv.provider.clients.create("other", scopes=["read"])
    rs = srv.provider.clients.create("resource-server", introspect_any=True)
    assert other.secret is not None
    assert rs.secret is not None
    keep(other.secret)
    keep(rs.secret)
    assert srv.post("/oauth/introspect", {"token": token}, auth=("other", other.secret)).json() == {"active": False}
    seen = srv.post("/oauth/introspect", {"token": token}, auth=("resource-server", rs.secret)).json()
    assert seen["active"] is True
    assert seen["client_id"] == "svc"
    # another client cannot revoke it either (200, and the token lives)
    assert srv.post("/oauth/revoke", {"token": token}, auth=("other", other.secret)).status_code == 200
    assert srv.post("/oauth/introspect", {"token": token}).json()["active"] is True
    # an API key of the same store is not an OAuth token
    api_key = keep(srv.store.issue("someone").token)
    assert srv.post("/oauth/introspect", {"token": api_key}, auth=("resource-server", rs.secret)).json() == {
        "active": False
    }
    assert srv.post("/oauth/introspect", {}).json()["error"] == "invalid_request"
    assert srv.post("/oauth/introspect", {"token": token}, auth=("svc", "wrong")).status_code == 401


def test_the_wsgi_mount_serves_the_same_endpoints(tmp_path: Path) -> None:
    with served("sqlite", "opaque", tmp_path, None, wsgi=True) as srv:
        token = keep(_cc(srv, scope="read").json())
        assert token["scope"] == "read"
        assert srv.post("/oauth/introspect", {"token": token["access_token"]}).json()["active"] is True
        assert srv.post("/oauth/token", {"grant_type": "client_credentials"}, auth=("svc", "x")).status_code == 401
        assert httpx.get(srv.url + "/.well-known/oauth-authorization-server").json()["issuer"] == srv.provider.issuer
        first = keep(srv.provider.issue_tokens(subject="erin", client_id="svc"))
        second = keep(
            srv.post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}).json()
        )
        assert second["refresh_token"] != first["refresh_token"]


def test_audit_events_name_no_token_or_secret(srv: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bastion.audit")
    issued = keep(_cc(srv).json())
    first = keep(srv.provider.issue_tokens(subject="frank", client_id="svc"))
    second = keep(
        srv.post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}).json()
    )
    srv.post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    srv.post("/oauth/revoke", {"token": issued["access_token"]})
    rotated = srv.provider.clients.rotate_secret("svc")
    assert rotated.secret is not None
    keep(rotated.secret)
    records = [r for r in caplog.records if r.name == "bastion.audit"]
    events = [r.oauth_event["event"] for r in records]  # type: ignore[attr-defined]
    for event in (
        "token_issued",
        "token_refreshed",
        "refresh_reuse_detected",
        "token_revoked",
        "client_secret_rotated",
    ):
        assert event in events
    reuse = next(r for r in records if r.oauth_event["event"] == "refresh_reuse_detected")  # type: ignore[attr-defined]
    assert reuse.levelno == logging.ERROR
    text = " ".join(r.getMessage() + repr(r.__dict__) for r in records)
    for secret in (srv.secret, rotated.secret, issued["access_token"], first["refresh_token"], second["refresh_token"]):
        assert secret not in text
        assert secret[:16] not in text


def test_provider_arguments_are_checked(tmp_path: Path) -> None:
    store = bastion.TokenStore(None, pepper=b"p" * 32)
    try:
        for kwargs in (
            {"issuer": "ftp://x"},
            {"issuer": "https://x", "access_tokens": "paseto"},
            {"issuer": "https://x", "keys": "key"},
            {"issuer": "https://x", "limiter": RateLimiter({"other": Rate(1, 1)})},
            {"issuer": "https://x", "access_ttl": -1},
        ):
            with pytest.raises(bastion.ConfigurationError):
                Provider(store, **kwargs)
        with pytest.raises(bastion.ConfigurationError):
            KeyRing(bastion.Key.hmac(b"k" * 32, kid="h"))
        provider = Provider(store, issuer="https://auth.example")
        with pytest.raises(bastion.ConfigurationError):
            provider.clients.create("bad id with spaces")
        with pytest.raises(bastion.ConfigurationError):
            provider.clients.create(grant_types=["password"])
        with pytest.raises(bastion.ConfigurationError):
            provider.clients.create(secret=False)  # no way to authenticate
        with pytest.raises(bastion.ConfigurationError):
            provider.clients.create(jwks={"keys": "nope"})
        with pytest.raises(bastion.ConfigurationError):
            provider.issue_tokens(subject="x", client_id="missing")
        # a request the provider cannot parse is a 4xx, never an exception
        bad = provider.handle(Request("POST", "/oauth/token", {"authorization": "Basic %%%"}, b"", None))
        assert bad.status == 400
        basic = "Basic " + base64.b64encode(b"no-colon").decode()
        form = {"authorization": basic, "content-type": "application/x-www-form-urlencoded"}
        assert provider.handle(Request("POST", "/oauth/token", form, b"grant_type=client_credentials")).status == 401
    finally:
        store.close()


def test_two_concurrent_uses_of_one_refresh_token_are_a_reuse(srv: Served) -> None:
    import threading

    first = keep(srv.provider.issue_tokens(subject="heidi", client_id="svc"))
    barrier = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def use() -> None:
        barrier.wait()
        answers.append(
            srv.post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
        )

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(answers) == 4
    ok = [keep(a.json()) for a in answers if a.status_code == 200]
    assert len(ok) <= 1
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
    # the other uses were reuses: the family is dead, the winner's tokens too
    for winner in ok:
        again = srv.post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]})
        assert again.status_code == 400
        assert srv.post("/oauth/introspect", {"token": winner["access_token"]}).json() == {"active": False}


def test_an_issuer_with_a_path_prefixes_every_endpoint() -> None:
    store = bastion.TokenStore(None, pepper=b"m" * 32)
    try:
        provider = Provider(store, issuer="https://api.example/auth")
        made = provider.clients.create("svc")
        assert made.secret is not None
        keep(made.secret)
        meta = provider.handle(Request("GET", "/auth/.well-known/oauth-authorization-server"))
        assert json.loads(meta.body)["token_endpoint"] == "https://api.example/auth/oauth/token"
        basic = "Basic " + base64.b64encode(f"svc:{made.secret}".encode()).decode()
        headers = {"authorization": basic, "content-type": "application/x-www-form-urlencoded"}
        answer = provider.handle(Request("POST", "/auth/oauth/token", headers, b"grant_type=client_credentials"))
        assert answer.status == 200
        keep(json.loads(answer.body))
        assert provider.handle(Request("POST", "/other/oauth/token", headers, b"")).status == 404
    finally:
        store.close()


def test_the_database_holds_only_digests_of_client_secrets(tmp_path: Path) -> None:
    import sqlite3

    with served("sqlite", "opaque", tmp_path, None) as srv:
        rotated = srv.provider.clients.rotate_secret("svc")
        assert rotated.secret is not None
        keep(rotated.secret)
        token = keep(_cc(srv).json())["access_token"]
        conn = sqlite3.connect(tmp_path / "oauth.db")
        try:
            rows = conn.execute("SELECT * FROM bastion_oauth_clients").fetchall()
            dump = "\n".join(conn.iterdump())
            digests = conn.execute("SELECT secret_digest, previous_digest FROM bastion_oauth_clients").fetchone()
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute("UPDATE bastion_oauth_clients SET secret_digest = ?", (rotated.secret.encode(),))
        finally:
            conn.close()
        assert len(rows) == 1
        assert [len(d) for d in digests] == [32, 32]
        for secret in (srv.secret, rotated.secret, token):
            assert secret not in dump
            assert secret.encode().hex() not in dump
