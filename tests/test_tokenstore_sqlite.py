"""A real SQLite file: nothing at rest gives a token away; threads, processes, pepper rotation, import."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import bastion
import pytest
from bastion import TokenStore

from tests.opaque_support import PEPPER, body_bytes, body_of


def test_file_and_wal_hold_no_token(tmp_path: Path) -> None:
    db = tmp_path / "rest.db"
    store = TokenStore(f"sqlite:///{db}", pepper=PEPPER, background=False)
    issued = [store.issue(f"user_{i}", scopes=["read"], name=f"n{i}") for i in range(40)]
    for t in issued[:10]:
        store.verify(t.token)
    store.revoke(issued[0].token)
    store.rotate(issued[1].token)
    store.flush()
    wal = Path(str(db) + "-wal")
    assert wal.exists()
    assert wal.stat().st_size > 0, "the WAL is checked while it holds the writes"

    def check() -> None:
        blobs = [p.read_bytes() for p in (db, wal) if p.exists()]
        assert any(b"user_39" in b for b in blobs), "the check reads the real data"
        for t in issued:
            needles = [t.token.encode(), body_of(t.token).encode(), body_bytes(t.token), t.token.encode("utf-16-le")]
            for blob in blobs:
                for needle in needles:
                    assert needle not in blob

    check()
    store.close()  # checkpoints the WAL into the main file
    check()


def test_schema_refuses_plaintext_in_digest_column(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "schema.db"
    TokenStore(f"sqlite:///{db}", pepper=PEPPER, background=False).close()
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO bastion_tokens (id, digest, scheme, kind, subject, created_at, expires_at) "
            "VALUES ('x', 'bstk_0000000000000000000000000000000000000000000000000', 'blake3', 'k', 's', 0, 1)"
        )
    assert conn.execute("SELECT version FROM bastion_schema ORDER BY version").fetchall() == [(1,), (2,), (3,), (4,)]
    plan = " ".join(
        str(r)
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT max(created_at) FROM bastion_tokens WHERE subject = 's'"
        ).fetchall()
    )
    assert "bastion_tokens_subject_created" in plan, "revoke_subject's read is one index probe"
    conn.close()
    # migrations are idempotent: opening again applies nothing twice
    TokenStore(f"sqlite:///{db}", pepper=PEPPER, background=False).close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM bastion_schema").fetchone() == (4,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    # a database at version 1 (made by an older bastion) is brought up to date when opened
    conn.execute("DROP INDEX bastion_tokens_subject_created")
    conn.execute("DROP TABLE bastion_revoked_jtis")
    conn.execute("DELETE FROM bastion_schema WHERE version >= 2")
    conn.commit()
    conn.close()
    TokenStore(f"sqlite:///{db}", pepper=PEPPER, background=False).close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM bastion_schema").fetchone() == (4,)
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'bastion_revoked_jtis'").fetchone()
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'bastion_tokens_subject_created'").fetchone()
    conn.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgresql"])
def test_no_verify_succeeds_after_revoke_returns(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    from tests.opaque_support import store_url

    pg = request.getfixturevalue("postgres_server") if kind == "postgresql" else None
    url = store_url(kind, tmp_path, pg)
    store = TokenStore(url, pepper=PEPPER)
    tokens = [store.issue(f"u{i}") for i in range(24)]
    revoked_at: dict[str, int] = {}
    violations: list[str] = []
    successes = [0]
    stop = threading.Event()

    def verifier() -> None:
        while not stop.is_set():
            for t in tokens:
                started = time.monotonic_ns()
                try:
                    store.verify(t.token)
                except bastion.TokenRevoked:
                    continue
                successes[0] += 1
                done = revoked_at.get(t.id)
                if done is not None and started > done:
                    violations.append(t.id)

    def revoker() -> None:
        for i, t in enumerate(tokens):
            if i % 6 == 0:
                store._clear()  # force misses, so loads race with revocations too
            time.sleep(0.01)
            assert store.revoke_id(t.id)
            revoked_at[t.id] = time.monotonic_ns()

    threads = [threading.Thread(target=verifier) for _ in range(8)]
    for th in threads:
        th.start()
    rev = threading.Thread(target=revoker)
    rev.start()
    rev.join()
    time.sleep(0.05)
    stop.set()
    for th in threads:
        th.join()
    store.close()
    assert successes[0] > 100, "the verifiers really ran"
    assert violations == []
    for t in tokens:
        check = TokenStore(url, pepper=PEPPER) if url else store
        if url:
            with pytest.raises(bastion.TokenRevoked):
                check.verify(t.token)
            check.close()


CHILD = r"""
import sys, time
from bastion import TokenStore
url, pepper, role = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
store = TokenStore(url, pepper=pepper, poll_interval=0.05)
ids = [store.issue(f"{role}_{i}").token for i in range(60)]
for t in ids:
    store.verify(t)
print("\n".join(ids), flush=True)
store.close()
"""


def test_several_processes_share_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'multi.db'}"
    TokenStore(url, pepper=PEPPER, background=False).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, PEPPER.decode(), f"p{i}"], stdout=subprocess.PIPE, text=True
        )
        for i in range(3)
    ]
    outs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    store = TokenStore(url, pepper=PEPPER, poll_interval=0.05)
    try:
        tokens = [t for out in outs for t in out]
        assert len(tokens) == 180
        for t in tokens:
            store.verify(t)
        # a revocation in one process reaches another's cached index through the events table
        other = TokenStore(url, pepper=PEPPER, background=False)
        other.revoke(tokens[0])
        other.close()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                store.verify(tokens[0])
            except bastion.TokenRevoked:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the revocation never reached the other store")
    finally:
        store.close()


def test_subject_cutoffs_load_at_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cut.db'}"
    first = TokenStore(url, pepper=PEPPER, background=False)
    cut = first.revoke_subject("jwt_only_user")
    first.close()
    later = TokenStore(url, pepper=PEPPER, background=False)
    assert later.subject_valid_after("jwt_only_user") == cut, "known without any opaque token of that subject"
    later.close()


def test_pepper_rotation_rekeys_lazily(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pepper.db'}"
    p1, p2 = b"1" * 32, b"2" * 40
    old = TokenStore(url, peppers={"p1": p1}, background=False)
    t = old.issue("alice")
    old.close()
    both = TokenStore(url, peppers={"p1": p1, "p2": p2}, pepper_id="p2", background=False)
    info = both.get(t.id)
    assert info is not None
    assert info.pepper_id == "p1"
    assert both.verify(t.token).subject == "alice"
    info = both.get(t.id)
    assert info is not None
    assert (info.scheme, info.pepper_id) == ("blake3", "p2"), "re-keyed on first use"
    both.close()
    new_only = TokenStore(url, peppers={"p2": p2}, background=False)
    assert new_only.verify(t.token).subject == "alice"
    new_only.close()
    with pytest.raises(bastion.ConfigurationError) as info_err:
        TokenStore(url, peppers={"p3": b"3" * 32}, background=False)
    assert info_err.value.code == "invalid_configuration"
    assert "'p2'" in info_err.value.message
    assert str(p2) not in info_err.value.message


def test_import_phoenix_sha256_tokens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'import.db'}"
    # phx.gen.auth: 32 random bytes, sent as unpadded base64url, stored as sha256(raw)
    raws = [os.urandom(32) for _ in range(3)]
    sent = [base64.urlsafe_b64encode(r).rstrip(b"=").decode() for r in raws]
    rows = [
        {
            "digest": hashlib.sha256(r).digest(),
            "subject": f"user_{i}",
            "expires_at": time.time() + 600,
            "scopes": ["api"],
        }
        for i, r in enumerate(raws)
    ]
    store = TokenStore(url, pepper=PEPPER, foreign_tokens=True, background=False)
    assert store.import_hashed(rows) == 3
    p = store.verify(sent[0])
    assert p.subject == "user_0"
    assert p.has_scopes("api")
    info = store.get(p.token_id or "")
    assert info is not None
    assert info.scheme == "blake3", "re-keyed to the current scheme on first use"
    store._clear()
    assert store.verify(sent[0]).subject == "user_0"
    assert store.revoke(sent[1]) is True
    with pytest.raises(bastion.TokenRevoked):
        store.verify(sent[1])
    with pytest.raises(bastion.UnknownToken):
        store.verify(base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode())
    # bastion's own tokens still have their format checked before any lookup
    own = store.issue("x").token
    with pytest.raises(bastion.TokenMalformed):
        store.verify(own[:-1] + ("1" if own[-1] == "0" else "0"))  # a changed checksum (never the same one)
    store.close()
    strict = TokenStore(url, pepper=PEPPER, background=False)
    with pytest.raises(bastion.TokenMalformed):
        strict.verify(sent[2])
    strict.close()
    # HMAC-SHA256 digests keyed by one of the store's peppers import too
    token = "legacy-token-" + os.urandom(16).hex()
    keyed = TokenStore(url, pepper=PEPPER, foreign_tokens=True, background=False)
    digest = hmac.new(PEPPER, token.encode(), hashlib.sha256).digest()
    keyed.import_hashed(
        [{"digest": digest, "subject": "h", "expires_at": time.time() + 60, "pepper_id": "default"}],
        scheme="hmac-sha256",
    )
    assert keyed.verify(token).subject == "h"
    with pytest.raises(bastion.ConfigurationError):
        keyed.import_hashed([{"digest": b"short", "subject": "x", "expires_at": 1}])
    keyed.close()


def test_backend_failure_fails_closed(tmp_path: Path) -> None:
    db = tmp_path / "gone.db"
    store = TokenStore(f"sqlite:///{db}", pepper=PEPPER, background=False)
    issued = store.issue("u")
    store._clear()
    store._backend.close()  # the database goes away under a running store
    with pytest.raises(bastion.AuthUnavailable) as info:
        store.verify(issued.token)
    assert info.value.status == 503
    assert issued.token not in info.value.message
    with pytest.raises(bastion.AuthUnavailable):
        store.issue("u")


def test_background_thread_flushes_usage(tmp_path: Path) -> None:
    store = TokenStore(f"sqlite:///{tmp_path / 'usage.db'}", pepper=PEPPER, usage_interval=0.05)
    try:
        t = store.issue("u")
        for _ in range(3):
            store.verify(t.token)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            info = store.get(t.id)
            assert info is not None
            if info.use_count == 3:
                break
            time.sleep(0.02)
        assert info is not None
        assert info.use_count == 3
        assert info.last_used_at is not None
    finally:
        store.close()


class _BrokenFeed(TokenStore):
    """A real store whose change feed fails: first as the database would, then with an unexpected error."""

    failures: ClassVar[list[BaseException]] = []

    def _apply_events(self) -> None:
        if self.failures:
            raise self.failures.pop(0)
        super()._apply_events()


def test_unreadable_change_feed_fails_closed_and_the_thread_survives(tmp_path: Path) -> None:
    import sqlite3

    store = _BrokenFeed(f"sqlite:///{tmp_path / 'feed.db'}", pepper=PEPPER, poll_interval=0.02)
    try:
        t = store.issue("u")
        store.verify(t.token)
        for exc in (sqlite3.OperationalError("disk I/O error"), RuntimeError("unexpected")):
            assert len(store) == 1
            _BrokenFeed.failures.append(exc)
            deadline = time.monotonic() + 3
            while len(store) and time.monotonic() < deadline:
                time.sleep(0.01)
            # revocations made elsewhere cannot be read: nothing is served from memory
            assert len(store) == 0, f"the index outlived a broken change feed ({type(exc).__name__})"
            assert store.verify(t.token).subject == "u"  # reloaded from the database
        assert store._worker is not None
        assert store._worker.is_alive()
    finally:
        store.close()


class _StuckFeed(TokenStore):
    """A real store whose change-feed read hangs once ``hang`` is set (a database gone silent behind a partition)."""

    hang = threading.Event()
    release = threading.Event()

    def _apply_events(self) -> None:
        if self.hang.is_set():
            self.release.wait(10)
        super()._apply_events()


def test_a_hung_change_feed_fails_closed(tmp_path: Path) -> None:
    store = _StuckFeed(f"sqlite:///{tmp_path / 'stuck.db'}", pepper=PEPPER, poll_interval=0.01)
    try:
        t = store.issue("u")
        store.verify(t.token)
        time.sleep(1.3)  # longer than the watchdog's limit, with a healthy feed: nothing is dropped
        assert len(store) == 1
        _StuckFeed.hang.set()
        deadline = time.monotonic() + 4
        while len(store) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(store) == 0, "a store whose change feed hangs kept serving from memory"
        _StuckFeed.hang.clear()
        _StuckFeed.release.set()
        assert store.verify(t.token).subject == "u"
    finally:
        _StuckFeed.release.set()
        store.close()
