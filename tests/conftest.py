from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
import redis
from bastion.ratelimit._pipe import SyncPipe

from tests import secrets_registry
from tests.pipe_support import Conn
from tests.servers import PostgresServer, RedisServer, start_postgres, start_redis, unavailable


class _EveryText(logging.Handler):
    """Keeps the full text of every record: the formatted message, the traceback and any audit fields."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        #: text -> where it was logged (logger name and source line), to name a leak without showing it
        self.texts: dict[str, str] = {}
        self.records = 0
        self._guard = threading.Lock()
        self._formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        parts = [self._text(record)]
        audit = getattr(record, "bastion_audit", None)
        if audit is not None:
            parts.append(json.dumps(audit.as_dict(), default=str))
        parts.extend(str(v) for k, v in vars(record).items() if k not in _PLAIN_ATTRS and k != "bastion_audit")
        with self._guard:
            self.records += 1
            for part in parts:
                self.texts.setdefault(part, f"{record.name} ({record.pathname}:{record.lineno})")

    def _text(self, record: logging.LogRecord) -> str:
        try:
            return self._formatter.format(record)  # the message with its args, exc_text and stack
        except Exception as exc:  # a record whose args do not fit its message: keep what is there
            return f"{record.msg!r} {record.args!r} ({type(exc).__name__})"


_PLAIN_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[_EveryText]:
    """Every log record of the run, at DEBUG, is searched for every token and secret the tests minted.

    A hit fails the run: the finalizer raises, which pytest reports as an error (and a non-zero exit)."""
    root = logging.getLogger()
    handler = _EveryText()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        from bastion.audit import writer

        for log in list(writer._LIVE):  # what the audit threads still hold is searched too
            log.flush(5.0)
        root.removeHandler(handler)
        root.setLevel(old_level)
    found = secrets_registry.leaks(handler.texts.items())
    if found:
        raise AssertionError(f"{len(found)} remembered secret(s) appeared in log records: " + "; ".join(found[:20]))


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
