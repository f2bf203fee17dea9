"""The test set-up really starts PostgreSQL and Redis (CI must never skip the tests that need them)."""

from __future__ import annotations

import psycopg
import redis

from tests.servers import PostgresServer, RedisServer


def test_postgres_answers(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.url) as conn:
        row = conn.execute("select 40 + 2").fetchone()
    assert row == (42,)


def test_redis_answers(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping() is True
    client.set("bastion-test", b"1")
    assert client.get("bastion-test") == b"1"
