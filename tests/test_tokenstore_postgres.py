"""PostgreSQL: several processes on one database; a revocation in one is honoured by the other within 1 s."""

from __future__ import annotations

import subprocess
import sys
import time

import bastion
import pytest
from bastion import TokenStore

from tests.opaque_support import PEPPER, fresh_pg_url
from tests.servers import PostgresServer

WATCHER = r"""
import sys, time
import bastion
from bastion import TokenStore
url, pepper, token = sys.argv[1], sys.argv[2].encode(), sys.stdin.readline().strip()
store = TokenStore(url, pepper=pepper, poll_interval=5.0)   # slow polling: LISTEN/NOTIFY must do the work
store.verify(token)                                           # now cached in this process's index
print("ready", flush=True)
deadline = time.time() + 10
while time.time() < deadline:
    try:
        store.verify(token)
    except bastion.TokenRevoked:
        print(f"revoked {time.time():.6f}", flush=True)
        break
    time.sleep(0.002)
else:
    print("never", flush=True)
store.close()
"""


def test_revocation_reaches_another_process_within_one_second(postgres_server: PostgresServer) -> None:
    url = fresh_pg_url(postgres_server)
    store = TokenStore(url, pepper=PEPPER)
    try:
        issued = store.issue("shared_user")
        child = subprocess.Popen(
            [sys.executable, "-c", WATCHER, url, PEPPER.decode()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(issued.token + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # the watcher is serving from its index
        store.revoke_id(issued.id)
        revoked = time.time()
        line = child.stdout.readline().split()
        child.wait(timeout=15)
        assert line[0] == "revoked", line
        lag = float(line[1]) - revoked
        assert lag < 1.0, f"took {lag:.3f}s"
    finally:
        store.close()


def test_revoke_subject_and_rotation_reach_another_store(postgres_server: PostgresServer) -> None:
    url = fresh_pg_url(postgres_server)
    a = TokenStore(url, pepper=PEPPER, poll_interval=5.0)
    b = TokenStore(url, pepper=PEPPER, poll_interval=5.0)
    try:
        t1 = a.issue("bob")
        t2 = a.issue("carol")
        for t in (t1, t2):
            b.verify(t.token)
        a.revoke_subject("bob")
        new = a.rotate(t2.token, grace=0)

        def wait_revoked(token: str) -> None:
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    b.verify(token)
                except bastion.TokenRevoked:
                    return
                time.sleep(0.005)
            raise AssertionError("not revoked within 1 s")

        wait_revoked(t1.token)
        wait_revoked(t2.token)
        assert b.verify(new.token).subject == "carol"
    finally:
        a.close()
        b.close()


def test_unreachable_server_is_auth_unavailable() -> None:
    from tests.servers import free_port

    with pytest.raises(bastion.AuthUnavailable) as info:
        TokenStore(f"postgresql://postgres@127.0.0.1:{free_port()}/x", pepper=PEPPER)
    assert info.value.code == "auth_unavailable"
    assert info.value.retry_after == 1.0


def test_server_restart_fails_closed_then_recovers() -> None:
    from tests.opaque_support import pg_start, pg_stop
    from tests.servers import start_postgres

    server = start_postgres()
    store: TokenStore | None = None
    try:
        store = TokenStore(server.url, pepper=PEPPER, timeout=1.0, poll_interval=0.1)
        issued = store.issue("u")
        assert store.verify(issued.token).subject == "u"
        pg_stop(server)
        # the listening connection breaks: this process can no longer learn of revocations, so it drops its
        # cache and every verify goes to the (unreachable) database: 503, never a stale "valid"
        deadline = time.monotonic() + 5
        failure: bastion.AuthUnavailable | None = None
        while failure is None and time.monotonic() < deadline:
            try:
                store.verify(issued.token)
            except bastion.AuthUnavailable as exc:
                failure = exc
            time.sleep(0.05)
        assert failure is not None, "a token kept verifying after the store lost its database"
        assert failure.status == 503
        assert failure.retry_after == 1.0
        assert issued.token not in failure.message
        with pytest.raises(bastion.AuthUnavailable):
            store.issue("v")
        pg_start(server)
        # the same store recovers by itself: pooled connections are replaced, LISTEN is re-established
        deadline = time.monotonic() + 15
        while True:
            try:
                assert store.verify(issued.token).subject == "u"
                break
            except bastion.AuthUnavailable:
                assert time.monotonic() < deadline, "the store never recovered after the server came back"
                time.sleep(0.1)
        fresh = store.issue("w")
        assert store.verify(fresh.token).subject == "w"
        # ...and follows other processes' revocations again, through the re-established LISTEN
        other = TokenStore(server.url, pepper=PEPPER, background=False)
        other.revoke_id(fresh.id)
        other.close()
        deadline = time.monotonic() + 3
        while True:
            try:
                store.verify(fresh.token)
            except bastion.TokenRevoked:
                break
            assert time.monotonic() < deadline, "a revocation made after the restart never reached the store"
            time.sleep(0.02)
    finally:
        if store is not None:
            store.close()
        server.stop()


def test_listener_killed_by_the_server_is_re_established(postgres_server: PostgresServer) -> None:
    import psycopg

    url = fresh_pg_url(postgres_server)
    store = TokenStore(url, pepper=PEPPER, poll_interval=5.0)
    other = TokenStore(url, pepper=PEPPER, background=False)
    try:
        issued = other.issue("u")
        store.verify(issued.token)
        dbname = url.rsplit("/", 1)[1]
        with psycopg.connect(postgres_server.url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND query LIKE 'LISTEN%%'",
                (dbname,),
            ).fetchone()
        assert killed is not None
        assert killed[0] == 1
        time.sleep(1.5)  # the store notices, reconnects its listener
        other.revoke_id(issued.id)
        deadline = time.monotonic() + 1.0  # LISTEN/NOTIFY speed again, not the 5 s poll
        while True:
            try:
                store.verify(issued.token)
            except bastion.TokenRevoked:
                break
            assert time.monotonic() < deadline, "after losing its listener the store no longer hears revocations"
            time.sleep(0.01)
    finally:
        store.close()
        other.close()


def test_pool_exhaustion_is_auth_unavailable_then_recovers(postgres_server: PostgresServer) -> None:
    url = fresh_pg_url(postgres_server)
    store = TokenStore(url, pepper=PEPPER, pool_size=1, timeout=0.5, background=False)
    try:
        issued = store.issue("u")
        store._clear()
        pool = store._backend._pool  # type: ignore[attr-defined]
        with pool.connection() as busy:  # every connection of the pool busy
            # and a server gone silent is noticed by TCP, not waited for forever
            assert "keepalives_idle=5" in busy.info.dsn
            assert "tcp_user_timeout=15000" in busy.info.dsn
            started = time.monotonic()
            with pytest.raises(bastion.AuthUnavailable) as info:
                store.verify(issued.token)
            assert time.monotonic() - started < 3, "waits about `timeout`, not forever"
            assert info.value.retry_after == 1.0
        assert store.verify(issued.token).subject == "u"
    finally:
        store.close()
