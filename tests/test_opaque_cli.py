"""``python -m bastion tokens …`` against a real SQLite file, in a subprocess as a user would run it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

PEPPER = "c" * 32


def cli(*args: str, stdin: str | None = None, env_pepper: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BASTION_PEPPER"}
    if env_pepper:
        env["BASTION_PEPPER"] = PEPPER
    return subprocess.run(
        [sys.executable, "-m", "bastion", "tokens", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_issue_list_rotate_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    out = cli("issue", "--store", url, "alice", "--scope", "read", "--scope", "write", "--name", "laptop")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("bstk_")
    assert out.stdout.count(token) == 1
    assert token not in out.stderr
    listed = cli("list", "--store", url, "alice")
    assert listed.returncode == 0
    assert "active" in listed.stdout
    assert "laptop" in listed.stdout
    assert token not in listed.stdout
    rotated = cli("rotate", "--store", url, "-", "--grace", "0", stdin=token + "\n")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith("bstk_")
    assert new != token
    listed = cli("list", "--store", url, "alice", "--json")
    assert '"revoked_reason": "rotated"' in listed.stdout
    assert new not in listed.stdout
    revoked = cli("revoke", "--store", url, "-", stdin=new + "\n")
    assert revoked.returncode == 0
    assert "revoked" in revoked.stderr
    again = cli("revoke", "--store", url, "-", stdin=new + "\n")
    assert again.returncode == 1
    bad = cli("rotate", "--store", url, "-", stdin=token + "\n")
    assert bad.returncode == 2
    assert "token_revoked" in bad.stderr
    assert token not in bad.stderr


def test_pepper_is_required_and_import(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli2.db'}"
    missing = cli("list", "--store", url, "x", env_pepper=False)
    assert missing.returncode != 0
    assert "BASTION_PEPPER" in missing.stderr
    raw = os.urandom(32)
    csv_file = tmp_path / "phx.csv"
    csv_file.write_text(
        "digest_hex,subject,expires_at,scopes\n"
        f"\\x{hashlib.sha256(raw).hexdigest()},user_9,{time.time() + 600},api read\n"
    )
    imported = cli("import", "--store", url, str(csv_file))
    assert imported.returncode == 0
    assert "imported 1" in imported.stderr
    listed = cli("list", "--store", url, "user_9", "--json")
    assert '"api"' in listed.stdout
