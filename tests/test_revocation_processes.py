"""A revocation made by one process reaches another's request path: at once on PostgreSQL (LISTEN/NOTIFY,
asserted within 1 s of ``revoke*`` returning), within ``poll_interval`` on SQLite.

The other process is ``tests/revocation_child.py``: its own ``TokenStore`` on the same database and an
``Authenticator`` with the same key. It admits the credential first (an opaque token is then in its index),
then polls until it is refused; the delay is measured on the machine's one monotonic clock."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bastion
import pytest

from tests.opaque_support import PEPPER, fresh_pg_url
from tests.request_support import hs_keys, issue
from tests.servers import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
#: the SQLite stores' poll interval, and the bound on their delay: one poll, plus the time to notice
SQLITE_POLL = 0.25
BOUND = {"postgresql": 1.0, "sqlite": SQLITE_POLL + 0.75}


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tokens.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return fresh_pg_url(server)


@pytest.fixture
def store(url: str) -> Iterator[bastion.TokenStore]:
    s = bastion.TokenStore(url, pepper=PEPPER, poll_interval=SQLITE_POLL)
    yield s
    s.close()


def revoked_in_the_other_process(url: str, authorization: str, revoke: Callable[[], Any]) -> float:
    """Seconds from ``revoke()`` returning here to the child's first refusal (``token_revoked``)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.revocation_child", url, str(SQLITE_POLL)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(json.dumps({"authorization": authorization}) + "\n")
        child.stdin.flush()
        assert json.loads(child.stdout.readline()) == {"admitted": True}
        revoke()
        revoked_at = time.monotonic()
        got = json.loads(child.stdout.readline())
        assert got.get("refused") == "token_revoked", got
        assert child.wait(15) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
    return max(0.0, float(got["at"]) - revoked_at)


def report(what: str, url: str, delay: float) -> None:
    backend = url.split(":", 1)[0]
    print(f"\n{what} on {backend}: refused in the other process {delay * 1000:.1f} ms after the call returned")
    assert delay < BOUND[backend], (what, backend, delay)


def test_revoke_subject_reaches_a_jwt_in_another_process(store: bastion.TokenStore, url: str) -> None:
    token = hs_keys().token({"sub": "user_x", "iat": int(time.time()) - 5})
    delay = revoked_in_the_other_process(url, f"Bearer {token}", lambda: store.revoke_subject("user_x"))
    report("revoke_subject", url, delay)


def test_revoke_jti_reaches_a_jwt_in_another_process(store: bastion.TokenStore, url: str) -> None:
    token = hs_keys().token({"jti": "jti-cross"})
    delay = revoked_in_the_other_process(
        url, f"Bearer {token}", lambda: store.revoke_jti("jti-cross", time.time() + 600)
    )
    report("revoke_jti", url, delay)


def test_revoke_reaches_an_opaque_token_in_another_process(store: bastion.TokenStore, url: str) -> None:
    issued = issue(store, "user_y")
    delay = revoked_in_the_other_process(url, f"Bearer {issued.token}", lambda: store.revoke(issued.token))
    report("revoke (opaque)", url, delay)
