"""``python -m bastion clients …`` against a real SQLite file, in a subprocess as a user would run it; the
secrets it prints work at the provider's token endpoint."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import bastion
from bastion.oauth import Provider, Request

from tests.oauth_support import keep

PEPPER = "d" * 32
keep(PEPPER)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BASTION_PEPPER": PEPPER}
    return subprocess.run(
        [sys.executable, "-m", "bastion", "clients", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _token_status(url: str, client_id: str, secret: str) -> int:
    store = bastion.TokenStore(url, pepper=PEPPER.encode(), background=False)
    try:
        provider = Provider(store, issuer="https://auth.test")
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers = {"authorization": "Basic " + basic, "content-type": "application/x-www-form-urlencoded"}
        response = provider.handle(Request("POST", "/oauth/token", headers, b"grant_type=client_credentials"))
        if response.status == 200:
            keep(json.loads(response.body)["access_token"])
        return response.status
    finally:
        store.close()


def test_create_list_rotate_disable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clients.db'}"
    made = cli("create", "reporting", "--store", url, "--scope", "read", "--tier", "gold", "--name", "nightly")
    assert made.returncode == 0, made.stderr
    secret = keep(made.stdout.strip())
    assert secret.startswith("bstc_")
    assert made.stdout.count(secret) == 1
    assert secret not in made.stderr
    assert _token_status(url, "reporting", secret) == 200
    listed = cli("list", "--store", url, "--json")
    assert listed.returncode == 0
    [entry] = json.loads(listed.stdout)
    assert entry["client_id"] == "reporting"
    assert entry["scopes"] == ["read"]
    assert secret not in listed.stdout
    rotated = cli("rotate-secret", "reporting", "--store", url, "--grace", "0")
    assert rotated.returncode == 0, rotated.stderr
    new = keep(rotated.stdout.strip())
    assert new != secret
    assert _token_status(url, "reporting", new) == 200
    assert _token_status(url, "reporting", secret) == 401
    assert cli("disable", "reporting", "--store", url).returncode == 0
    assert _token_status(url, "reporting", new) == 401
    assert cli("disable", "nobody", "--store", url).returncode == 1
    assert cli("create", "reporting", "--store", url).returncode == 2  # exists already
    assert "disabled" in cli("list", "--store", url).stdout


def test_no_command_takes_a_secret_and_the_pepper_is_required(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clients.db'}"
    assert cli("create", "x", "--store", url, "--secret", "s3cret").returncode == 2  # no such option
    env = {k: v for k, v in os.environ.items() if k != "BASTION_PEPPER"}
    out = subprocess.run(
        [sys.executable, "-m", "bastion", "clients", "list", "--store", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "BASTION_PEPPER" in out.stderr
