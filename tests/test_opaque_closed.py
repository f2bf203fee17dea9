"""A closed TokenStore serves nothing: every entry point, sync and async, on every backend and thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bastion
import pytest
from bastion import TokenStore
from bastion.tokens import ops
from bastion.tokens.backends import SQLiteBackend

from tests.opaque_support import PEPPER, store_url
from tests.servers import PostgresServer

BACKENDS = ["memory", "sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def kind_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    pg: PostgresServer | None = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    return request.param, store_url(request.param, tmp_path, pg)


def _in_thread(fn: Callable[[], Any]) -> BaseException | None:
    """Run ``fn`` in a new thread (one without a backend connection); what it raised, or None."""
    out: list[BaseException | None] = [None]

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            out[0] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    return out[0]


def test_closed_store_refuses_every_entry_point(kind_url: tuple[str, str | None]) -> None:
    kind, url = kind_url
    store = TokenStore(url, pepper=PEPPER, usage_interval=3600)
    other = TokenStore(url, pepper=PEPPER, usage_interval=3600) if kind != "memory" else None
    issued = store.issue("u", ttl=3600)
    store.verify(issued.token)
    store.close()
    if other is not None:
        # revoked elsewhere after the close: the closed store must not have served it either way
        assert other.revoke(issued.token)
        other.close()
    calls: dict[str, Callable[[], Any]] = {
        "verify": lambda: store.verify(issued.token),
        "get": lambda: store.get(issued.id),
        "list": lambda: store.list("u"),
        "revoke": lambda: store.revoke(issued.token),
        "revoke_id": lambda: store.revoke_id(issued.id),
        "revoke_subject": lambda: store.revoke_subject("u"),
        "revoke_jti": lambda: store.revoke_jti("j", 2e9),
        "rotate": lambda: store.rotate(issued.token),
        "issue": lambda: store.issue("u"),
        "flush": store.flush,
        "refresh": store.refresh,
        "import_hashed": lambda: store.import_hashed([{"digest": b"d" * 32, "subject": "s", "expires_at": 2e9}]),
        "_sql": lambda: store._sql(ops.info(issued.id)),
    }
    for name, call in calls.items():
        # in this thread (which had a connection) and in a fresh one (which has none and must not open one)
        with pytest.raises(bastion.AuthUnavailable):
            call()
        assert isinstance(_in_thread(call), bastion.AuthUnavailable), name

    async def amain() -> None:
        acalls = {
            "averify": store.averify(issued.token),
            "aget": store.aget(issued.id),
            "alist": store.alist("u"),
            "arevoke": store.arevoke(issued.token),
            "arevoke_id": store.arevoke_id(issued.id),
            "arevoke_subject": store.arevoke_subject("u"),
            "arotate": store.arotate(issued.token),
            "aissue": store.aissue("u"),
        }
        for coro in acalls.values():
            with pytest.raises(bastion.AuthUnavailable):
                await coro

    asyncio.run(amain())
    if kind == "sqlite":
        # no connection was reopened by any of those calls
        backend = store._backend
        assert isinstance(backend, SQLiteBackend)
        assert backend._all == []


def test_closed_sqlite_store_does_not_reopen_from_a_new_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    store = TokenStore(url, pepper=PEPPER, usage_interval=3600)
    other = TokenStore(url, pepper=PEPPER, usage_interval=3600)
    issued = store.issue("u")
    store.close()
    assert other.revoke(issued.token)
    # a thread with no connection of its own: it must neither reopen the file nor accept the token
    assert isinstance(_in_thread(lambda: store.verify(issued.token)), bastion.AuthUnavailable)
    assert isinstance(_in_thread(lambda: store._backend.run(ops.info(issued.id))), Exception)
    other.close()
