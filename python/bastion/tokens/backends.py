"""Token-store backends: SQLite (stdlib ``sqlite3``; also the in-memory store) and PostgreSQL (psycopg 3).

A backend runs the generator operations of :mod:`bastion.tokens.ops` in a transaction, synchronously or
asynchronously, applies the migrations when it opens, and waits for changes made by other processes:

- SQLite has no change notification, so the store polls the ``bastion_events`` table (an indexed
  ``seq > ?`` read, every ``poll_interval`` seconds, 0.5 s by default).
- PostgreSQL wakes the store with ``LISTEN``/``NOTIFY`` (sent in the revoking transaction, delivered at
  commit), and the store then reads ``bastion_events`` from its last sequence number. The notification gives
  the latency (milliseconds); the sequence gives completeness: a notification lost while the listening
  connection was down is caught up from the table once it reconnects, so no revocation is ever missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bastion.tokens import migrations, ops
from bastion.tokens.ops import Dialect, Op, Query

Rows = list[tuple[Any, ...]]


def backend_errors() -> tuple[type[BaseException], ...]:
    """What the drivers raise when a backend cannot serve (the store turns them into ``AuthUnavailable``):
    sqlite3's errors, and psycopg's once it is imported (by a PostgreSQL store; until then none of its errors
    can be raised). Called in ``except`` clauses, so only when something was raised: ``import bastion`` does
    not import psycopg."""
    errors: list[type[BaseException]] = [sqlite3.Error]
    # getattr: a module another thread is still importing is in sys.modules before its names are
    for module, name in (("psycopg", "Error"), ("psycopg_pool", "PoolTimeout")):
        error = getattr(sys.modules.get(module), name, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            errors.append(error)
    return tuple(errors)


def drive(execute: Callable[[Query], Rows], op: Op) -> Any:
    """Run a generator operation with a synchronous ``execute``."""
    try:
        query = next(op)
        while True:
            query = op.send(execute(query))
    except StopIteration as stop:
        return stop.value


class Backend:
    """What a store needs from a database."""

    dialect: Dialect
    kind: str

    def run(self, op: Op, *, write: bool = False) -> Any:
        raise NotImplementedError

    async def arun(self, op: Op, *, write: bool = False) -> Any:
        return await asyncio.to_thread(self.run, op, write=write)

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Block until a change may have happened elsewhere, ``timeout`` passes or ``stop`` is set. Returns
        False when the change feed was interrupted (the caller then drops its caches)."""
        stop.wait(timeout)
        return True

    def listen(self) -> None:
        """Start receiving change notifications, if the backend has them."""

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        self.close()


class SQLiteBackend(Backend):
    """SQLite in WAL mode, one connection per thread; ``path=None`` is a private in-memory database (one
    connection behind a lock)."""

    dialect = ops.SQLITE

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.kind = "sqlite" if path else "memory"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._memory_lock: threading.Lock | None = None
        self._shared: sqlite3.Connection | None = None
        #: set by close(): no thread opens a connection again (a closed store must not read the file)
        self._closed = False
        if path is None:
            self._memory_lock = threading.Lock()
            self._shared = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            conn = self._conn()
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError("could not switch the database to WAL mode")
        self._migrate()

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError("the SQLite backend is closed")
        if self._shared is not None:
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self.path is not None
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            with self._all_lock:
                if self._closed:  # closed while this thread was connecting
                    conn.close()
                    raise sqlite3.ProgrammingError("the SQLite backend is closed")
                self._all.append(conn)
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _migrate(self) -> None:
        def op() -> Op:
            yield Query(migrations.SCHEMA_TABLE)
            done = {r[0] for r in (yield Query("SELECT version FROM bastion_schema"))}
            for version, statements, _pg in migrations.MIGRATIONS:
                if version in done:
                    continue
                for sql in statements:
                    yield Query(sql)
                yield Query("INSERT INTO bastion_schema (version, applied_at) VALUES (?, ?)", (version, time.time()))

        self.run(op(), write=True)

    def run(self, op: Op, *, write: bool = False) -> Any:
        conn = self._conn()

        def execute(q: Query) -> Rows:
            if q.many:
                conn.executemany(q.sql, q.params)
                return []
            return conn.execute(q.sql, q.params).fetchall()

        lock = self._memory_lock if self._memory_lock is not None else contextlib.nullcontext()
        with lock:
            if not write:
                return drive(execute, op)
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = drive(execute, op)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def close(self) -> None:
        with self._all_lock:
            self._closed = True
            conns, self._all = self._all, []
        if self._shared is not None:
            conns.append(self._shared)
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def _conn_kwargs(timeout: float) -> dict[str, Any]:
    """libpq settings for every connection: a connect timeout, and TCP keepalives plus a user timeout so that a
    connection to a server that went silent (a network partition: no RST, no FIN) fails within ~15 s instead of
    blocking forever; the store then fails closed and reconnects."""
    return {
        "connect_timeout": max(1, int(timeout)),
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 15_000,
    }


class PostgresBackend(Backend):
    """PostgreSQL through psycopg 3 with ``psycopg_pool`` pools (a sync one, and an async one opened on first
    async use), plus one dedicated autocommit connection that ``LISTEN``s for changes."""

    dialect = ops.POSTGRES
    kind = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout: float = 5.0) -> None:
        import psycopg_pool

        self.url = url
        self._timeout = connect_timeout
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=connect_timeout,
            kwargs=_conn_kwargs(connect_timeout),
        )
        self._pool.open(wait=True, timeout=connect_timeout)
        self._pool_size = pool_size
        self._apool: Any = None
        self._listener: Any = None
        self._migrate()

    def _migrate(self) -> None:
        def op() -> Op:
            yield Query("SELECT pg_advisory_xact_lock(?)", (migrations.PG_LOCK_KEY,))
            yield Query(migrations.SCHEMA_TABLE.replace("REAL", "DOUBLE PRECISION"))
            done = {r[0] for r in (yield Query("SELECT version FROM bastion_schema"))}
            for version, _sqlite, statements in migrations.MIGRATIONS:
                if version in done:
                    continue
                for sql in statements:
                    yield Query(sql)
                yield Query("INSERT INTO bastion_schema (version, applied_at) VALUES (?, ?)", (version, time.time()))

        self.run(op(), write=True)

    def _sql(self, q: Query) -> str:
        return self.dialect.sql(q.sql)

    def run(self, op: Op, *, write: bool = False) -> Any:
        with self._pool.connection() as conn, conn.cursor() as cur:

            def execute(q: Query) -> Rows:
                if q.many:
                    cur.executemany(self._sql(q), q.params)
                    return []
                cur.execute(self._sql(q), q.params)
                return cur.fetchall() if cur.description else []

            return drive(execute, op)

    async def _async_pool(self) -> Any:
        if self._apool is None:
            import psycopg_pool

            pool = psycopg_pool.AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self._pool_size,
                open=False,
                timeout=self._timeout,
                kwargs=_conn_kwargs(self._timeout),
            )
            await pool.open(wait=True, timeout=self._timeout)
            self._apool = pool
        return self._apool

    async def arun(self, op: Op, *, write: bool = False) -> Any:
        pool = await self._async_pool()
        async with pool.connection() as conn, conn.cursor() as cur:
            try:
                query = next(op)
                while True:
                    if query.many:
                        await cur.executemany(self._sql(query), query.params)
                        rows: Rows = []
                    else:
                        await cur.execute(self._sql(query), query.params)
                        rows = await cur.fetchall() if cur.description else []
                    query = op.send(rows)
            except StopIteration as stop:
                return stop.value

    def listen(self) -> None:
        """Open the listening connection (the store does this before reading the last event number, so no
        change can fall between the two)."""
        import psycopg

        if self._listener is None:
            conn = psycopg.connect(self.url, autocommit=True, **_conn_kwargs(self._timeout))
            conn.execute(f"LISTEN {ops.CHANNEL}")
            self._listener = conn

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        import psycopg

        deadline = time.monotonic() + timeout
        try:
            self.listen()
            # short slices, so that close() (which sets ``stop``) never waits long for this thread
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                for _ in self._listener.notifies(timeout=min(left, 0.2), stop_after=1):
                    return True
            return True
        except psycopg.Error:
            self._drop_listener()
            stop.wait(min(timeout, 1.0))
            return False

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()

    def close(self) -> None:
        self._drop_listener()
        self._pool.close()

    async def aclose(self) -> None:
        if self._apool is not None:
            await self._apool.close()
            self._apool = None
        self.close()
