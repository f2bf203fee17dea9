"""The FastAPI example under a real server: uvicorn (the example's ``main``) in a subprocess on a free loopback
port, driven with httpx.

Valid tokens, the refusals a client can cause (missing, malformed, expired, insufficient_scope, forbidden, a 429),
then SIGTERM: uvicorn's graceful shutdown runs the app's lifespan end, which closes the audit log, so every
request's record is in the audit file when the process exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bastion
import httpx
import pytest
from bastion.testing import mint_token

from tests.integration_support import ROOT, remembered
from tests.opaque_support import PEPPER

SECRET = "uvicorn-smoke-secret-of-at-least-32-bytes"
ISSUER = "https://auth.example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str, audit_file: Path) -> None:
        self.process = process
        self.url = url
        self.audit_file = audit_file


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    audit_file = tmp_path / "audit.jsonl"
    env = {
        **os.environ,
        "BASTION_JWT_SECRET": SECRET,
        "BASTION_PEPPER": PEPPER.decode("latin-1"),
        "BASTION_TOKEN_DB": f"sqlite:///{tmp_path / 'tokens.db'}",
        "BASTION_AUDIT_FILE": str(audit_file),
        "BASTION_HOST": "127.0.0.1",
        "BASTION_PORT": str(port),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "examples.fastapi_app"]
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                _, err = process.communicate(timeout=5)
                raise AssertionError(f"uvicorn did not start: {err.decode(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield Server(process, url, audit_file)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_a_real_server_answers_every_row_and_flushes_its_audit_on_sigterm(server: Server, tmp_path: Path) -> None:
    signer = bastion.JWTSigner(bastion.Key.hmac(SECRET.encode(), kid="k1"), "HS256", issuer=ISSUER)
    now = int(time.time())
    store = bastion.TokenStore(f"sqlite:///{tmp_path / 'tokens.db'}", pepper=PEPPER)
    try:  # an opaque admin token, issued into the server's store
        admin = remembered(mint_token(store, "root", roles=["admin"]))
    finally:
        store.close()
    tokens = {
        "reader": remembered(mint_token(signer, "ana", scopes=["read:reports"])),
        "plain": remembered(mint_token(signer, "bob")),
        "expired": remembered(mint_token(signer, "ana", claims={"exp": now - 100, "iat": now - 200})),
        "trial": remembered(mint_token(signer, "tess", tier="trial")),
    }
    cases = [
        ("GET", "/api/v1/me", tokens["reader"], 200, None),
        ("GET", "/api/v1/reports", tokens["reader"], 200, None),
        ("GET", "/api/v1/me", None, 401, "missing_token"),
        ("GET", "/api/v1/me", "a b", 400, "invalid_request"),
        ("GET", "/api/v1/me", "abc.def", 401, "token_malformed"),
        ("GET", "/api/v1/me", tokens["expired"], 401, "token_expired"),
        ("GET", "/api/v1/reports", tokens["plain"], 403, "insufficient_scope"),
        ("DELETE", "/api/v1/reports/1", tokens["reader"], 403, "forbidden"),
        ("DELETE", "/api/v1/reports/1", admin, 204, None),
        *[("GET", "/api/v1/me", tokens["trial"], 200, None)] * 5,
        ("GET", "/api/v1/me", tokens["trial"], 429, "rate_limited"),
    ]
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for method, path, token, status, code in cases:
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            r = client.request(method, path, headers=headers)
            assert r.status_code == status, (method, path, r.text)
            if code is not None:
                assert r.json()["error"] == code
                assert r.headers["cache-control"] == "no-store"
                assert "detail" not in r.json()
        assert r.headers["retry-after"].isdigit()
        assert "ratelimit" in r.headers
        challenge = client.get("/api/v1/reports", headers={"Authorization": f"Bearer {tokens['plain']}"})
        assert 'scope="read:reports"' in challenge.headers["www-authenticate"]

    server.process.send_signal(signal.SIGTERM)
    _, err = server.process.communicate(timeout=15)
    assert server.process.returncode == 0, err.decode(errors="replace")[-2000:]
    text = server.audit_file.read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    # every guarded request (the /health polls have no bastion dependency), in order, status and code
    assert [(r["http.response.status_code"], r.get("error.type")) for r in records] == [
        *[(status, code) for _, _, _, status, code in cases],
        (403, "insufficient_scope"),
    ]
    assert records[0]["enduser.id"] == "ana"
    assert records[8]["bastion.auth.token_type"] == "opaque"
    for token in (*tokens.values(), admin):
        assert token not in text
