"""Ordering and time boundaries: revoke_subject against tokens issued just before and just after it, and the
revocation feed between processes when two revocations commit out of order."""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import bastion
import psycopg
import pytest
from bastion import TokenStore
from bastion.tokens import ops
from bastion.tokens import store as store_module
from bastion.tokens.backends import drive

from tests.opaque_support import PEPPER, fresh_pg_url, open_store
from tests.servers import PostgresServer

BACKENDS = ["memory", "sqlite", "postgresql"]


class Clock:
    """A wall clock the test sets: the store reads ``time.time()`` through its module."""

    def __init__(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return time.monotonic()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(time.time())
    monkeypatch.setattr(store_module, "time", types.SimpleNamespace(time=c.time, monotonic=c.monotonic))
    return c


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenStore]:
    pg: PostgresServer | None = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    yield from open_store(request.param, tmp_path, pg, background=False)


def revoked(s: TokenStore, token: str) -> bool:
    try:
        s.verify(token)
    except bastion.TokenRevoked:
        return True
    return False


def test_same_tick_issue_after_revoke_subject_works(store: TokenStore, clock: Clock) -> None:
    # a coarse clock (or two calls within one float step): revoke_subject and the next issue read the same time
    before = store.issue("alice")
    cut = store.revoke_subject("alice")
    after = store.issue("alice")
    assert cut == clock.t
    assert revoked(store, before.token), "issued before revoke_subject: dead"
    assert not revoked(store, after.token), "issued after revoke_subject returned: alive"
    assert after.created_at > cut
    # and from the database, as another process (or a restart) sees it
    store._clear()
    assert revoked(store, before.token)
    assert not revoked(store, after.token)


def test_token_stamped_later_than_the_cut_still_dies(store: TokenStore, clock: Clock) -> None:
    # the token exists when revoke_subject runs, but its created_at is later than the revoking clock's "now"
    # (another host's clock ahead, or this one stepped back by NTP): it was issued before, so it must die
    clock.t += 2.0
    early = store.issue("bob")
    clock.t -= 2.0
    store.revoke_subject("bob")
    assert revoked(store, early.token)
    store._clear()
    assert revoked(store, early.token)
    later = store.issue("bob")
    assert not revoked(store, later.token)


def test_real_clock_boundary_many_times(store: TokenStore) -> None:
    for i in range(30):
        subject = f"carol{i}"
        before = store.issue(subject)
        store.revoke_subject(subject)
        after = store.issue(subject)
        assert revoked(store, before.token), i
        assert not revoked(store, after.token), i


def test_issue_in_another_store_after_the_cut_works(tmp_path: Path, clock: Clock) -> None:
    # a second process that has not yet applied the cut (no background thread) issues in the same tick
    url = f"sqlite:///{tmp_path / 'two.db'}"
    a = TokenStore(url, pepper=PEPPER, background=False)
    b = TokenStore(url, pepper=PEPPER, background=False)
    try:
        old = b.issue("dave")
        a.revoke_subject("dave")
        new = b.issue("dave")
        assert revoked(a, old.token)
        b.refresh()
        assert revoked(b, old.token)
        assert not revoked(a, new.token)
        assert not revoked(b, new.token)
    finally:
        a.close()
        b.close()


def test_revocations_committing_out_of_order_all_reach_other_processes(postgres_server: PostgresServer) -> None:
    # PostgreSQL hands out event numbers at INSERT, not at COMMIT: a slow revoking transaction can take number n
    # and commit after a fast one that took n + 1. A reader that saw n + 1 must still see n.
    url = fresh_pg_url(postgres_server)
    writer = TokenStore(url, pepper=PEPPER, background=False)
    reader = TokenStore(url, pepper=PEPPER, background=False)
    slow = psycopg.connect(url)
    try:
        x, y = writer.issue("x"), writer.issue("y")
        reader.verify(x.token)
        reader.verify(y.token)

        def execute(q: ops.Query) -> list[tuple[object, ...]]:
            cur = slow.execute(ops.POSTGRES.sql(q.sql), q.params)
            return cur.fetchall() if cur.description else []

        opened = threading.Event()

        def slow_revoke() -> None:
            drive(execute, ops.revoke(ops.POSTGRES, x.id, "slow", time.time()))
            opened.set()

        t_slow = threading.Thread(target=slow_revoke)
        t_slow.start()
        assert opened.wait(5), "the slow transaction revoked x (not yet committed)"
        fast = threading.Thread(target=writer.revoke_id, args=(y.id,))
        fast.start()
        time.sleep(0.3)  # the fast revocation commits now, unless it has to wait for the slow one
        reader.refresh()
        slow.commit()
        fast.join(10)
        t_slow.join(10)
        reader.refresh()
        assert revoked(reader, y.token)
        assert revoked(reader, x.token), "a revocation that committed late was skipped by another process"
    finally:
        slow.close()
        writer.close()
        reader.close()


class _Interleaved(TokenStore):
    """A real store that runs ``between`` after rotate() has checked the old token and before it commits."""

    between: Callable[[TokenStore, bastion.Principal], object] | None = None

    def _rotation(self, grace: object, old: bastion.Principal) -> store_module.Flow[store_module.Rotation]:
        out = super()._rotation(grace, old)
        if self.between is not None:
            self.between(self, old)
        return out


@pytest.fixture(params=BACKENDS)
def interleaved(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Interleaved]:
    from tests.opaque_support import store_url

    pg: PostgresServer | None = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    s = _Interleaved(store_url(request.param, tmp_path, pg), pepper=PEPPER, background=False)
    try:
        yield s
    finally:
        s.close()


def test_rotate_racing_revoke_subject_gives_no_live_token(interleaved: _Interleaved) -> None:
    t = interleaved.issue("erin", kind="r")
    interleaved.between = lambda s, old: s.revoke_subject(old.subject)
    with pytest.raises(bastion.TokenRevoked):
        interleaved.rotate(t.token, grace=60)
    interleaved.between = None
    live = [i for i in interleaved.list("erin") if i.id != t.id]
    assert live == [], "a rotation that committed after revoke_subject minted a token of the revoked subject"


def test_rotate_racing_revoke_gives_no_live_token(interleaved: _Interleaved) -> None:
    t = interleaved.issue("fay")
    interleaved.between = lambda s, old: s.revoke_id(old.token_id or "")
    with pytest.raises(bastion.TokenRevoked):
        interleaved.rotate(t.token)
    assert len(interleaved.list("fay")) == 1


def test_rotate_of_a_token_that_expires_meanwhile_is_expired(interleaved: _Interleaved, clock: Clock) -> None:
    t = interleaved.issue("gus", ttl=10)

    def expire(s: TokenStore, old: bastion.Principal) -> None:
        clock.t += 11

    interleaved.between = expire
    with pytest.raises(bastion.TokenExpired):
        interleaved.rotate(t.token)
    assert len(interleaved.list("gus")) == 1


def test_revocation_does_not_depend_on_the_verifier_clock(store: TokenStore) -> None:
    # another host whose clock is behind the revoking one's (by NTP drift, a VM pause) reloads the record after the
    # revocation: an explicit revocation is final at once, whatever time the verifier thinks it is
    t = store.issue("hal")
    rotated = store.issue("hal")
    store.rotate(rotated.token, grace=30)
    store.revoke_id(t.id)
    store._clear()  # reload both from the database, as another process would
    behind = time.time() - 5
    with pytest.raises(bastion.TokenRevoked):
        store.verify(t.token, now=behind)
    with pytest.raises(bastion.TokenRevoked):
        store.verify(t.token)
    # a rotation's grace period stays a time, compared with the verifier's clock
    assert store.verify(rotated.token, now=behind).subject == "hal"
    with pytest.raises(bastion.TokenRevoked):
        store.verify(rotated.token, now=time.time() + 31)
    info = store.get(t.id)
    assert info is not None
    assert info.revoked_at is not None
    assert info.revoked_at == pytest.approx(time.time(), abs=5), "the record keeps the real revocation time"
    with pytest.raises(bastion.ConfigurationError):
        store.revoke_id(rotated.id, reason="rotated")  # reserved for rotations' grace periods


def test_a_cut_in_the_future_never_extends_a_new_token_lifetime(store: TokenStore, clock: Clock) -> None:
    clock.t += 100.0  # a token stamped by a clock 100 s ahead pushes the cut 100 s ahead
    store.issue("ivy")
    clock.t -= 100.0
    cut = store.revoke_subject("ivy")
    assert cut == pytest.approx(clock.t + 100.0, abs=1e-3)
    t = store.issue("ivy", ttl=10)
    assert t.created_at > cut, "issued after the cut: alive"
    assert t.expires_at == pytest.approx(clock.t + 10, abs=1e-3), "still 10 s from now, not from the pushed stamp"
    assert store.verify(t.token, now=clock.t + 5).subject == "ivy"
    with pytest.raises(bastion.TokenExpired):
        store.verify(t.token, now=clock.t + 10)


def test_import_refuses_creation_times_in_the_future(store: TokenStore) -> None:
    row = {"digest": bytes(range(32)), "subject": "jon", "expires_at": time.time() + 600}
    with pytest.raises(bastion.ConfigurationError):
        store.import_hashed([{**row, "created_at": time.time() + 3600}], scheme="sha256")
    assert store.import_hashed([{**row, "created_at": time.time() - 60}], scheme="sha256") == 1


def test_revoke_subject_during_a_rotation_transaction_waits_and_cuts_the_new_token(
    postgres_server: PostgresServer,
) -> None:
    # PostgreSQL, READ COMMITTED: every revocation takes the events lock before it touches a row, so a
    # revoke_subject issued while a rotation's transaction is open waits for it to commit, then cuts the token
    # the rotation minted too (its cut-off covers the newest created_at). The new token never outlives the cut.
    url = fresh_pg_url(postgres_server)
    store = TokenStore(url, pepper=PEPPER, background=False)
    conn = psycopg.connect(url)
    try:
        old = store.issue("kim", kind="r")
        p = store.verify(old.token)
        old_id, values, new_token, _digest, until = store._run(store._rotation(60, p))
        revoker: list[threading.Thread] = []

        def execute(q: ops.Query) -> list[tuple[object, ...]]:
            cur = conn.execute(ops.POSTGRES.sql(q.sql), q.params)
            rows = cur.fetchall() if cur.description else []
            if not revoker:  # another connection, once the rotation holds the lock
                revoker.append(threading.Thread(target=store.revoke_subject, args=("kim",)))
                revoker[0].start()
            return rows

        assert drive(execute, ops.rotate(ops.POSTGRES, old_id, values, until, time.time()))
        revoker[0].join(0.5)
        assert revoker[0].is_alive(), "revoke_subject did not wait for the open rotation"
        conn.commit()
        revoker[0].join(10)
        assert not revoker[0].is_alive()
        store._clear()
        assert revoked(store, new_token), "the rotation's token outlived the cut"
        assert revoked(store, old.token)
    finally:
        conn.close()
        store.close()
