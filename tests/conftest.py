from __future__ import annotations

from collections.abc import Iterator

import pytest

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
