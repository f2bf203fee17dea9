"""The audit writer: ``emit`` appends to a bounded queue; one daemon thread formats and logs.

The request path pays for one push onto the core's ``AuditQueue`` and nothing else: no formatting, no I/O —
the middleware does not even build the :class:`AuditRecord`: the core's middleware glue queues what it knows
as Rust data (:meth:`AuditLog.request` reads its arguments into the same), and the thread derives the record
from it. A ``file=`` path is served by a thread that lives in the core (``AuditQueue.serve``): it sleeps,
gathers, formats and appends with the interpreter released, and takes the GIL only to read a record built
by hand; a stream's lines are formatted the same way and written here. When the queue is full (the
handlers cannot keep up, or one blocks) records are dropped and counted, never waited for.

Records go to a logger (the default: ``bastion.audit``, for the application's own handlers) or, with
``file=``, straight to a file or stream as JSON lines — the same lines :class:`JSONFormatter` writes, a
whole batch per ``write``, without a ``LogRecord`` per request: the sink for high request rates.
``flush`` and ``close`` drain what is queued; an ``atexit`` hook closes every open log, and a forked child
starts its own thread with an empty queue (the parent writes what it had queued).
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import os
import sys
import threading
import weakref
from typing import IO, TYPE_CHECKING

from bastion import _core
from bastion.audit import AuditRecord
from bastion.errors import ConfigurationError

if TYPE_CHECKING:
    from bastion._core import Outcome
    from bastion.rules import Rule

__all__ = ["AuditLog", "JSONFormatter", "json_line"]

# the writer sleeps this long at most when idle; emit wakes it sooner (the bound only covers a lost wake-up)
_IDLE_WAIT = 1.0
# Once woken, the writer lets records gather this long before it writes them (flush and close cut it short):
# under load one wake-up then serves a batch (hundreds of records at a few µs each), instead of a thread
# hand-over for every request, which costs more than formatting the record. Short, so that the writer keeps
# pace beside the request threads instead of leaving a backlog for the next flush.
_LINGER = 0.002
# the application's context fields (AuditContextFilter) and their names in the JSON output
_CONTEXT_FIELDS = (
    ("request_id", "request.id"),
    ("enduser_id", "enduser.id"),
    ("enduser_scopes", "bastion.auth.scopes"),
)
_LIVE: weakref.WeakSet[AuditLog] = weakref.WeakSet()
# json.dumps with any option builds a new encoder per call: a third of the cost of formatting a record
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
# records a file sink writes per write() call at most
_BATCH = 512


def json_line(record: AuditRecord, level: str, logger: str) -> str:
    """The JSON line of an audit record: ``timestamp`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``,
    ``message`` (its summary), then its fields under their output names (roles and scopes as sorted lists).
    What :class:`JSONFormatter` and a ``file=`` sink both write (the line itself is the core's)."""
    return _core.audit_lines([record._line_item()], level, logger)[:-1]


class AuditLog:
    """Writes :class:`~bastion.audit.AuditRecord` s to ``logger`` from a background thread.

    ``logger`` (default ``"bastion.audit"``): a logger or its name; ``queue_size`` (default 10 000): records
    held at most before :meth:`emit` drops (and counts, in :attr:`dropped`); ``level`` (default
    ``logging.INFO``): the level of every audit record. Each record reaches the logger's handlers as a
    ``LogRecord`` whose message is :meth:`AuditRecord.summary` and whose ``bastion_audit`` attribute is the
    record (:class:`JSONFormatter` writes its fields); its time is the record's, not the write's.

    ``file`` (default ``None``): a path, or a text stream with ``write``/``flush``, to write JSON lines to
    *instead of* the logger — the lines :class:`JSONFormatter` would write (``logger`` still names them), a
    batch per write, with no ``LogRecord`` per request; a path is opened for appending (UTF-8) and closed by
    :meth:`close`. The fast sink for high request rates, or when the audit trail has its own file anyway.
    """

    def __init__(
        self,
        logger: str | logging.Logger = "bastion.audit",
        queue_size: int = 10_000,
        level: int = logging.INFO,
        *,
        file: str | os.PathLike[str] | IO[str] | None = None,
    ) -> None:
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigurationError("queue_size must be a positive integer")
        if isinstance(level, bool) or not isinstance(level, int):
            raise ConfigurationError("level must be a logging level (an int such as logging.INFO)")
        if isinstance(logger, str):
            logger = logging.getLogger(str.__str__(logger))  # a str subclass's own methods are never called
        elif not isinstance(logger, logging.Logger):
            raise ConfigurationError("logger must be a logging.Logger or a logger name")
        #: The logger records are written to.
        self.logger: logging.Logger = logger
        #: The level of every audit record.
        self.level: int = level
        # a path is opened, written and closed by the core's queue (no interpreter while it writes); a stream
        # is written here
        self._path: str | None = None
        self._file: IO[str] | None = None
        if file is None:
            pass
        elif isinstance(file, (str, os.PathLike)):
            self._path = os.fspath(file)
        elif callable(getattr(file, "write", None)) and callable(getattr(file, "flush", None)):
            if isinstance(file, (io.RawIOBase, io.BufferedIOBase)):
                raise ConfigurationError("file must be a text stream (opened with 'a' or 'w', not 'ab')")
            self._file = file
        else:
            raise ConfigurationError("file must be a path or a text stream with write() and flush()")
        self._level_name = logging.getLevelName(level)
        self._max = queue_size
        self._failed = 0
        self._dropped = 0  # by queues a fork replaced (the live queue counts its own)
        self._closing = False
        self._start()
        _LIVE.add(self)

    @property
    def dropped(self) -> int:
        """Records refused because the queue was full or the log closed."""
        return self._dropped + self._queue.dropped

    @property
    def failed(self) -> int:
        """Records that could not be written: a handler raised, the file refused them, or a request's values could
        not be read (the writer carries on)."""
        return self._failed + self._queue.failed

    def emit(self, record: AuditRecord) -> None:
        """Queue ``record`` for writing. Never blocks, never raises: when ``queue_size`` records are waiting (or
        the log is closed) the record is dropped and counted. Concurrent callers may overshoot the bound by one
        record each."""
        self._queue.put(record)

    def request(
        self,
        outcome: Outcome | None,
        rule: Rule | None,
        method: str,
        path: str,
        status: int,
        request_id: str,
        client_address: str | None,
        duration_ms: float,
        timestamp: float,
        reason: str | None = None,
    ) -> None:
        """Queue the record of one request (the arguments of :meth:`AuditRecord.of_request`, which the writer
        thread calls): what the middlewares call once per request. Never blocks, never raises, like
        :meth:`emit`."""
        # read by the core into Rust data at once (the middlewares' glue, rust/py/gate/, builds the same);
        # values it cannot read (a hand-made call) are counted in `failed` by the core, never raised
        self._queue.put_request(
            (outcome, rule, method, path, status, request_id, client_address, duration_ms, timestamp, reason)
        )

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every queued record is written, at most ``timeout`` seconds (default 5; None: no bound).
        True when the queue is empty."""
        if not self._thread.is_alive():
            self._drain()
            return not self._queue
        if self._path is not None:
            return self._queue.flush(timeout)
        self._hurry.set()
        self._wake.set()
        with self._drained:
            return self._drained.wait_for(lambda: not self._queue, timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds, default 5, for the thread) and stop; later
        records are dropped. Idempotent; called for every open log at interpreter exit."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._queue.close()
        self._hurry.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._drain()  # what raced in between the thread's last look and _closing
            if self._path is not None:
                self._queue.close_file()
        # else the thread is still writing (a slow file): a path's serving thread closes its file when done
        _LIVE.discard(self)

    # ----------------------------------------------------------------------------------------------

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._drained = threading.Condition()
        # a bound beyond what memory could hold is no bound: the core's queue counts in machine words
        self._queue = _core.AuditQueue(min(self._max, sys.maxsize), self._wake)
        if self._path is not None:
            self._queue.open(self._path)  # ConfigurationError when it cannot be opened for appending
        self._thread = threading.Thread(target=self._run, name="bastion-audit", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        queue = self._queue
        if self._path is not None:  # the core's own loop, off the GIL (rust/py/audit_queue/file.rs)
            queue.serve(self._level_name, self.logger.name, _LINGER)
            return
        hurried = False
        while True:
            self._drain(chase=hurried)
            with self._drained:
                self._drained.notify_all()
            if self._closing:
                return
            queue.idle = True
            self._wake.clear()
            if not queue:
                self._wake.wait(_IDLE_WAIT)
            queue.idle = False
            hurried = self._hurry.wait(_LINGER)
            if hurried:
                self._hurry.clear()

    def _drain(self, chase: bool = True) -> None:
        """Write what is queued. Unhurried (``chase`` false), the drain ends once the writer has caught up, when
        a batch comes back short: what arrives next waits for the next drain, after the linger. A writer that
        chased every record as it came would take the queue's lock and the records' memory from the request
        threads once per request. Hurried (flush, close), it goes on until the queue is empty."""
        queue = self._queue
        if self._path is not None:  # every queued record, on this thread (the serving one is gone); the
            queue.write(self._level_name, self.logger.name)  # core counts what it could not write
            return
        # each pass stops when a call took nothing: records another caller holds (a concurrent drain) are its
        if self._file is not None:
            while queue:
                taken = self._write_batch()
                if not taken or (not chase and taken < _BATCH):
                    return
            return
        left = len(queue)
        while queue and (chase or left > 0):
            items = queue.peek(1)  # popped only once written, so that an empty queue means all written (flush)
            if not items:
                return
            item = items[0]
            self._write(AuditRecord._of_line_item(item) if type(item) is tuple else item)
            queue.pop(1)
            left -= 1

    def _write_batch(self) -> int:
        """Write up to ``_BATCH`` queued records as JSON lines in one ``write`` (the core formats requests'
        records with the interpreter released); they stay counted as queued until written. How many were taken."""
        queue = self._queue
        text, taken, failed = queue.lines(_BATCH, self._level_name, self.logger.name)
        try:
            self._failed += failed
            assert self._file is not None
            if text:
                self._file.write(text)
                self._file.flush()
        except Exception:
            self._failed += taken - failed
        finally:
            queue.done(taken)
        return taken

    def _write(self, record: AuditRecord) -> None:
        logger = self.logger
        try:
            if not logger.isEnabledFor(self.level):
                return
            entry = logger.makeRecord(logger.name, self.level, "bastion.audit", 0, record.summary(), (), None)
            entry.relativeCreated += (record.timestamp - entry.created) * 1000.0
            entry.created = record.timestamp
            entry.msecs = (record.timestamp - int(record.timestamp)) * 1000.0
            entry.__dict__["bastion_audit"] = record
            logger.handle(entry)
        except Exception:
            self._failed += 1

    def _after_fork(self) -> None:
        # the parent's queue is left alone, never locked: its writer may have held a lock when the process
        # forked (it takes records with the interpreter released), and that lock stays held in this child
        self._dropped += self._queue.dropped
        self._failed += self._queue.failed
        if not self._closing:
            self._start()
        else:
            self._queue = _core.AuditQueue(1, self._wake)
            self._queue.close()


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``timestamp`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``;
    then for an audit record its fields (:meth:`AuditRecord.as_dict`), and for any other record the context
    fields :class:`~bastion.audit.AuditContextFilter` added (``request.id``, ``enduser.id``,
    ``bastion.auth.scopes``), ``exception`` and ``stack`` when present. Values JSON cannot hold are written as
    their ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line for ``record`` (no trailing newline: the handler adds it)."""
        audit = record.__dict__.get("bastion_audit")
        if isinstance(audit, AuditRecord):
            return json_line(audit, record.levelname, record.name)
        doc: dict[str, object] = {
            "timestamp": _core.audit_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for attr, name in _CONTEXT_FIELDS:
            value = record.__dict__.get(attr)
            if value is not None:
                doc[name] = value.split() if attr == "enduser_scopes" and isinstance(value, str) else value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(doc)


def _close_all() -> None:
    for log in list(_LIVE):
        log.close(timeout=2.0)


def _after_fork_in_child() -> None:
    for log in list(_LIVE):
        log._after_fork()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
