"""The audit writer: ``emit`` appends to a bounded queue; one daemon thread formats and logs.

The request path pays for a ``deque.append`` and nothing else: no lock, no formatting, no I/O. When the queue
is full (the handlers cannot keep up, or one blocks) records are dropped and counted, never waited for.
``flush`` and ``close`` drain what is queued; an ``atexit`` hook closes every open log, and a forked child
starts its own thread with an empty queue (the parent writes what it had queued).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import weakref
from collections import deque
from datetime import UTC, datetime

from bastion.audit import AuditRecord
from bastion.errors import ConfigurationError

__all__ = ["AuditLog", "JSONFormatter"]

# the writer sleeps this long at most when idle; emit wakes it sooner (the bound only covers a lost wake-up)
_IDLE_WAIT = 1.0
# the application's context fields (AuditContextFilter) and their names in the JSON output
_CONTEXT_FIELDS = (
    ("request_id", "request.id"),
    ("enduser_id", "enduser.id"),
    ("enduser_scopes", "bastion.auth.scopes"),
)
_LIVE: weakref.WeakSet[AuditLog] = weakref.WeakSet()
# json.dumps with any option builds a new encoder per call: a third of the cost of formatting a record
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


class AuditLog:
    """Writes :class:`~bastion.audit.AuditRecord` s to ``logger`` from a background thread.

    ``logger`` (default ``"bastion.audit"``): a logger or its name; ``queue_size`` (default 10 000): records
    held at most before :meth:`emit` drops (and counts, in :attr:`dropped`); ``level`` (default
    ``logging.INFO``): the level of every audit record. Each record reaches the logger's handlers as a
    ``LogRecord`` whose message is :meth:`AuditRecord.summary` and whose ``bastion_audit`` attribute is the
    record (:class:`JSONFormatter` writes its fields); its time is the record's, not the write's.
    """

    def __init__(
        self, logger: str | logging.Logger = "bastion.audit", queue_size: int = 10_000, level: int = logging.INFO
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
        self._max = queue_size
        self._queue: deque[AuditRecord] = deque()
        self._dropped = 0
        self._failed = 0
        self._closing = False
        self._start()
        _LIVE.add(self)

    @property
    def dropped(self) -> int:
        """Records refused because the queue was full or the log closed."""
        return self._dropped

    @property
    def failed(self) -> int:
        """Records a handler raised on (the writer carries on)."""
        return self._failed

    def emit(self, record: AuditRecord) -> None:
        """Queue ``record`` for writing. Never blocks, never raises: when ``queue_size`` records are waiting (or
        the log is closed) the record is dropped and counted. Concurrent callers may overshoot the bound by one
        record each."""
        if self._closing or len(self._queue) >= self._max:
            with self._lock:
                self._dropped += 1
            return
        self._queue.append(record)
        if self._idle:
            self._wake.set()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every queued record is written, at most ``timeout`` seconds (default 5; None: no bound).
        True when the queue is empty."""
        if not self._thread.is_alive():
            self._drain()
            return not self._queue
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
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._drain()  # what raced in between the thread's last look and _closing
        _LIVE.discard(self)

    # ----------------------------------------------------------------------------------------------

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._idle = False
        self._thread = threading.Thread(target=self._run, name="bastion-audit", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        queue = self._queue
        while True:
            self._drain()
            with self._drained:
                self._drained.notify_all()
            if self._closing:
                return
            self._idle = True
            self._wake.clear()
            if not queue:
                self._wake.wait(_IDLE_WAIT)
            self._idle = False

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            record = queue[0]  # popped only once written, so that an empty queue means all written (flush)
            self._write(record)
            queue.popleft()

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
        self._queue.clear()
        if not self._closing:
            self._start()


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``timestamp`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``;
    then for an audit record its fields (:meth:`AuditRecord.as_dict`), and for any other record the context
    fields :class:`~bastion.audit.AuditContextFilter` added (``request.id``, ``enduser.id``,
    ``bastion.auth.scopes``), ``exception`` and ``stack`` when present. Values JSON cannot hold are written as
    their ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line for ``record`` (no trailing newline: the handler adds it)."""
        doc: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        audit = record.__dict__.get("bastion_audit")
        if isinstance(audit, AuditRecord):
            doc.update(audit.as_dict())
        else:
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
