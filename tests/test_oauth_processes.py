"""A token minted by the provider is accepted by ``bastion.Authenticator`` behind the ASGI middleware in
another process — sharing the database (opaque) or reading the published JWKS (JWT) — and refused there once
it is revoked, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session

from tests.oauth_support import Served, keep, served
from tests.servers import _wait_port, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=[(k, m) for k in ("sqlite", "postgresql") for m in ("jwt", "opaque")], ids=lambda p: "-".join(p))
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Served, str]]:
    kind, mode = request.param
    pg = request.getfixturevalue("postgres_server") if kind == "postgresql" else None
    with served(kind, mode, tmp_path, pg) as srv:
        port = free_port()
        args = [srv.store_url, str(port)]
        if mode == "jwt":
            args += [srv.url + "/.well-known/jwks.json", srv.provider.issuer]
        child = subprocess.Popen([sys.executable, "-m", "tests.oauth_resource_child", *args], cwd=ROOT)
        try:
            _wait_port(port)
            yield srv, f"http://127.0.0.1:{port}"
        finally:
            child.terminate()
            child.wait(timeout=10)


def _whoami(api: str, token: str) -> httpx.Response:
    return httpx.get(api + "/whoami", headers={"authorization": "Bearer " + token})


def _refused_within(api: str, token: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _whoami(api, token).status_code == 401:
            return True
        time.sleep(0.02)
    return False


def test_a_token_minted_here_is_accepted_there_until_revoked(pair: tuple[Served, str]) -> None:
    srv, api = pair
    session = OAuth2Session(srv.client_id, srv.secret, scope="read")
    token = keep(session.fetch_token(srv.token_url, grant_type="client_credentials"))["access_token"]
    seen = _whoami(api, token)
    assert seen.status_code == 200
    assert seen.json() == {"sub": "svc", "client_id": "svc", "scopes": ["read"]}
    assert session.revoke_token(srv.url + "/oauth/revoke", token=token).status_code == 200
    assert _refused_within(api, token, 3.0)


def test_refresh_reuse_kills_the_family_in_the_other_process_too(pair: tuple[Served, str]) -> None:
    srv, api = pair
    first = keep(srv.provider.issue_tokens(subject="grace", client_id="svc", scopes=["write"]))
    session = OAuth2Session(srv.client_id, srv.secret)
    second = keep(session.refresh_token(srv.token_url, refresh_token=first["refresh_token"]))
    assert _whoami(api, second["access_token"]).json()["sub"] == "grace"
    reused = httpx.post(
        srv.token_url,
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(srv.client_id, srv.secret),
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert _refused_within(api, second["access_token"], 3.0)


def test_disabling_the_client_kills_its_tokens_in_the_other_process(pair: tuple[Served, str]) -> None:
    srv, api = pair
    token = keep(srv.post("/oauth/token", {"grant_type": "client_credentials"}).json())["access_token"]
    assert _whoami(api, token).status_code == 200
    srv.provider.clients.disable("svc")
    assert _refused_within(api, token, 3.0)
