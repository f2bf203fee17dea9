"""The Flask and the Django examples under a real gunicorn on loopback, hit with httpx: a valid token, the error
rows an opaque-token API can produce, a 429; then SIGTERM, and the graceful shutdown must exit 0 with every audit
record written to the file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bastion
import httpx
import pytest

from tests.opaque_support import PEPPER
from tests.request_support import issue

ROOT = Path(__file__).resolve().parent.parent

APPS = {
    "flask": ("examples.flask_app:create_app()", {}),
    "django": ("examples.django_app.wsgi", {"DJANGO_SETTINGS_MODULE": "examples.django_app.settings"}),
}


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    audit: Path
    log: Path
    tokens: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"gunicorn exited early:\n{server.log.read_text()[-2000:]}")
        try:
            if httpx.get(server.url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"gunicorn did not answer in time:\n{server.log.read_text()[-2000:]}")


@pytest.fixture(params=sorted(APPS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    target, extra_env = APPS[request.param]
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    store = bastion.TokenStore(url, pepper=PEPPER)
    try:
        revoked = issue(store, "gone", scopes=["read:reports"])
        store.revoke(revoked.token)
        tokens = {
            "reader": issue(store, "reader", scopes=["read:reports"], tier="standard").token,
            "admin": issue(store, "admin", roles=["admin"], tier="admin").token,
            "trial": issue(store, "trial", tier="trial").token,
            "revoked": revoked.token,
            "stranger": issue(bastion.TokenStore(None, pepper=PEPPER), "nobody").token,
        }
    finally:
        store.close()
    port = free_port()
    env = {
        **os.environ,
        **extra_env,
        "BASTION_TOKENS_URL": url,
        "BASTION_PEPPER": PEPPER.decode(),
        "BASTION_AUDIT_FILE": str(tmp_path / "audit.jsonl"),
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / "gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    command += ["--graceful-timeout", "10", "--chdir", str(ROOT), target]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    s = Server(f"http://127.0.0.1:{port}", process, tmp_path / "audit.jsonl", log, tokens)
    try:
        wait_ready(s, time.monotonic() + 30)
        yield s
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_real_server_answers_and_shuts_down_with_its_audit_written(server: Server) -> None:
    t = server.tokens
    expected: list[tuple[str, str, int, str | None]] = []  # (method, path, status, error code)
    with httpx.Client(base_url=server.url, timeout=5.0) as client:

        def call(method: str, path: str, status: int, code: str | None, token: str | None = None, **h: str) -> None:
            headers = dict(h)
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            r = client.request(method, path, headers=headers)
            assert r.status_code == status, (path, r.status_code, r.text)
            if code is not None:
                assert r.json() == {"error": code, "message": r.json()["message"]}
                assert r.headers["cache-control"] == "no-store"
            expected.append((method, path, status, code))

        call("GET", "/api/v1/me", 200, None, t["reader"])
        call("GET", "/api/v1/reports", 200, None, t["reader"])
        call("DELETE", "/api/v1/reports/9", 200, None, t["admin"])
        call("GET", "/api/v1/me", 401, "missing_token")
        call("GET", "/api/v1/me", 400, "invalid_request", Authorization="Bearer a b")
        call("GET", "/api/v1/me", 401, "token_malformed", "abc.def")
        call("GET", "/api/v1/me", 401, "unknown_token", t["stranger"])
        call("GET", "/api/v1/me", 401, "token_revoked", t["revoked"])
        call("GET", "/api/v1/reports", 403, "insufficient_scope", t["admin"])
        call("DELETE", "/api/v1/reports/9", 403, "forbidden", t["reader"])
        for _ in range(3):
            call("GET", "/api/v1/me", 200, None, t["trial"])
        call("GET", "/api/v1/me", 429, "rate_limited", t["trial"])
        refused = client.get("/api/v1/reports", headers={"Authorization": f"Bearer {t['admin']}"})
        assert refused.headers["www-authenticate"].endswith('scope="read:reports"')
        expected.append(("GET", "/api/v1/reports", 403, "insufficient_scope"))
        limited = client.get("/api/v1/me", headers={"Authorization": f"Bearer {t['trial']}"})
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-policy"].startswith('"trial"')
        expected.append(("GET", "/api/v1/me", 429, "rate_limited"))

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(20) == 0, server.log.read_text()[-2000:]
    lines = [json.loads(line) for line in server.audit.read_text().splitlines()]
    got = [
        (d["http.request.method"], d["url.path"], d["http.response.status_code"], d.get("error.type"))
        for d in lines
        if d["url.path"] != "/health"
    ]
    assert got == expected
    assert all(d["bastion.auth.reason"] == "exempt" for d in lines if d["url.path"] == "/health")
    written = server.audit.read_text() + server.log.read_text()
    for token in t.values():
        assert token not in written
