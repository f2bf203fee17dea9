"""Shared helpers for the opaque-token tests: stores on every backend, fresh PostgreSQL databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from bastion import TokenStore
from bastion._core import OpaqueIndex

from tests.servers import PostgresServer

PEPPER = b"p" * 32
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def fresh_pg_url(server: PostgresServer) -> str:
    """A new empty database on the session's server."""
    name = "bastion_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + "/" + name


def store_url(kind: str, tmp_path: Path, pg: PostgresServer | None) -> str | None:
    if kind == "memory":
        return None
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'tokens.db'}"
    assert pg is not None
    return fresh_pg_url(pg)


def open_store(kind: str, tmp_path: Path, pg: PostgresServer | None, **kw: object) -> Iterator[TokenStore]:
    url = store_url(kind, tmp_path, pg)
    store = TokenStore(url, pepper=PEPPER, **kw)  # type: ignore[arg-type]
    try:
        yield store
    finally:
        store.close()


def body_of(token: str) -> str:
    """The 43-character base62 body of a bastion token."""
    return token.split("_", 1)[1][:43]


def body_bytes(token: str) -> bytes:
    """The 32 random bytes behind a token's body."""
    n = 0
    for c in body_of(token):
        n = n * 62 + BASE62.index(c)
    return n.to_bytes(32, "big")


class CountingStore(TokenStore):
    """A real store that counts its backend lookups (the Rust index calls ``_fetch`` on a miss)."""

    fetches = 0

    def _fetch(self, candidates, digest):  # type: ignore[no-untyped-def]
        type(self).fetches += 1
        return super()._fetch(candidates, digest)


assert issubclass(TokenStore, OpaqueIndex)
