from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis
from bastion.ratelimit._pipe import SyncPipe

from tests.pipe_support import Conn
from tests.servers import PostgresServer, RedisServer, start_postgres, start_redis, unavailable


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server (no persistence) on a free loopback port, for the whole session."""
    try:
        server = start_redis()
    except (OSError, RuntimeError) as exc:
        unavailable(f"cannot start redis-server: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster in a temp dir on a free loopback port, for the whole session."""
    try:
        server = start_postgres()
    except (OSError, RuntimeError) as exc:
        unavailable(f"cannot start PostgreSQL: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis[bytes]]:
    """A redis-py client on the session's server, its database emptied first."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def scripted() -> Iterator[tuple[SyncPipe, socket.socket]]:
    """A SyncPipe (timeout 1 s, no polling) and the socket on which the test plays Redis."""
    ours, peer = socket.socketpair()
    peer.settimeout(5)
    pipe = SyncPipe(Conn(ours), timeout=1.0, spin=0.0)
    yield pipe, peer
    peer.close()
    ours.close()
