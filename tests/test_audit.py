"""Audit: records reach the logger through the writer thread, as JSON, without blocking the request path."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Iterator

import pytest
from bastion import ConfigurationError, TokenStore
from bastion._core import Decision
from bastion.audit import FIELDS, AuditContextFilter, AuditLog, AuditRecord, JSONFormatter, bind, current, reset


class Collect(logging.Handler):
    """Keeps every record it is given; ``gate`` (when set) must open before a record is accepted."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.gate = gate
        self.entered = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        self.records.append(record)


@pytest.fixture
def logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    log = logging.getLogger(f"bastion.audit.test.{request.node.name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


def full_record() -> AuditRecord:
    record = AuditRecord("req-1", "DELETE", "/api/v1/reports/7", "203.0.113.9", timestamp=1_800_000_000.25)
    record.route = "/api/v1/reports/{id}"
    record.status = 403
    record.enduser_id = "user_1"
    record.roles = frozenset({"user", "auditor"})
    record.scopes = frozenset({"write:reports", "read:reports"})
    record.token_type = "jwt"
    record.token_id = "jti-1"
    record.reason = "forbidden"
    record.error_type = "forbidden"
    record.tier = "third_party"
    record.remaining = 19
    record.duration_ms = 0.42
    return record


def test_a_record_reaches_the_logger_from_the_writer_thread(logger: logging.Logger) -> None:
    handler = Collect()
    logger.addHandler(handler)
    log = AuditLog(logger)
    try:
        record = full_record()
        log.emit(record)
        assert log.flush(5)
        [entry] = handler.records
        assert entry.threadName == "bastion-audit"
        assert entry.__dict__["bastion_audit"] is record
        assert entry.getMessage() == "DELETE /api/v1/reports/7 403 forbidden"
        assert entry.levelno == logging.INFO
        assert entry.created == 1_800_000_000.25
        assert entry.msecs == 250.0
    finally:
        log.close()


def test_the_logger_name_and_level_are_options(logger: logging.Logger) -> None:
    handler = Collect()
    logger.addHandler(handler)
    log = AuditLog(logger.name, level=logging.WARNING)
    try:
        log.emit(AuditRecord("r", "GET", "/"))
        assert log.flush(5)
        assert [e.levelno for e in handler.records] == [logging.WARNING]
        logger.setLevel(logging.ERROR)  # below the logger's level: not written, not an error
        log.emit(AuditRecord("r", "GET", "/"))
        assert log.flush(5)
        assert len(handler.records) == 1
        assert log.failed == 0
    finally:
        log.close()


def test_json_formatter_writes_the_otel_names(logger: logging.Logger) -> None:
    handler = Collect()
    logger.addHandler(handler)
    log = AuditLog(logger)
    try:
        log.emit(full_record())
        assert log.flush(5)
    finally:
        log.close()
    doc = json.loads(JSONFormatter().format(handler.records[0]))
    assert doc == {
        "timestamp": "2027-01-15T08:00:00.250Z",
        "level": "INFO",
        "logger": logger.name,
        "message": "DELETE /api/v1/reports/7 403 forbidden",
        "request.id": "req-1",
        "http.request.method": "DELETE",
        "url.path": "/api/v1/reports/7",
        "http.route": "/api/v1/reports/{id}",
        "http.response.status_code": 403,
        "client.address": "203.0.113.9",
        "enduser.id": "user_1",
        "user.roles": ["auditor", "user"],
        "bastion.auth.scopes": ["read:reports", "write:reports"],
        "bastion.auth.token_type": "jwt",
        "bastion.auth.token_id": "jti-1",
        "bastion.auth.reason": "forbidden",
        "error.type": "forbidden",
        "bastion.ratelimit.tier": "third_party",
        "bastion.ratelimit.remaining": 19,
        "duration_ms": 0.42,
    }


def test_every_field_is_a_slot_with_an_output_name() -> None:
    record = AuditRecord("r", "GET", "/")
    assert {attr for attr, _ in FIELDS} | {"timestamp"} == set(AuditRecord.__slots__)
    assert record.as_dict() == {"request.id": "r", "http.request.method": "GET", "url.path": "/"}
    with pytest.raises(AttributeError):
        record.authorization = "Bearer x"  # type: ignore[attr-defined]
    assert record.summary() == "GET / -"


def test_a_record_from_a_principal_holds_no_token() -> None:
    with TokenStore(None, pepper=b"p" * 32) as store:
        issued = store.issue(subject="user_1", scopes=["read:reports"], roles=["user"], tier="free", ttl=60)
        principal = store.verify(issued.token)
    record = AuditRecord("r", "GET", "/api")
    record.set_principal(principal)
    record.set_decision(Decision(True, "free", [(100, 60, 57, 1.3, 0.0)]))
    entry = logging.LogRecord("bastion.audit", logging.INFO, "", 0, record.summary(), (), None)
    entry.__dict__["bastion_audit"] = record
    line = JSONFormatter().format(entry)
    doc = json.loads(line)
    assert doc["enduser.id"] == "user_1"
    assert doc["bastion.auth.token_id"] == issued.id
    assert doc["bastion.auth.token_type"] == "opaque"
    assert doc["bastion.auth.scopes"] == ["read:reports"]
    assert doc["bastion.ratelimit.tier"] == "free"
    assert doc["bastion.ratelimit.remaining"] == 57
    assert issued.token not in line
    assert issued.token[-12:] not in line
    assert issued.token not in repr(record)


def test_a_full_queue_drops_and_counts_without_blocking(logger: logging.Logger) -> None:
    gate = threading.Event()
    handler = Collect(gate)
    logger.addHandler(handler)
    log = AuditLog(logger, queue_size=3)
    try:
        log.emit(AuditRecord("first", "GET", "/"))
        assert handler.entered.wait(5)  # the writer now blocks inside the handler, the first record still queued

        def emit_ten() -> None:
            for i in range(10):
                log.emit(AuditRecord(str(i), "GET", "/"))

        emitter = threading.Thread(target=emit_ten)
        emitter.start()
        emitter.join(5)
        assert not emitter.is_alive()  # ten emits returned while the handler was blocked
        assert log.dropped == 8  # "first" plus two fit
        assert not log.flush(0.05)  # cannot drain while the handler blocks
        gate.set()
        assert log.flush(5)
        assert [e.__dict__["bastion_audit"].request_id for e in handler.records] == ["first", "0", "1"]
    finally:
        gate.set()
        log.close()


def test_close_writes_what_is_queued_and_is_idempotent(logger: logging.Logger) -> None:
    gate = threading.Event()
    handler = Collect(gate)
    logger.addHandler(handler)
    log = AuditLog(logger)
    for i in range(5):
        log.emit(AuditRecord(str(i), "GET", "/"))
    gate.set()
    log.close()
    assert len(handler.records) == 5
    log.close()
    log.emit(AuditRecord("late", "GET", "/"))
    assert log.dropped == 1
    assert log.flush(1)
    assert len(handler.records) == 5


def test_a_raising_handler_is_counted_and_the_writer_carries_on(logger: logging.Logger) -> None:
    class Boom(logging.Handler):
        def handle(self, record: logging.LogRecord) -> bool:
            raise RuntimeError("handler failed")

    collect = Collect()
    logger.addHandler(Boom())
    log = AuditLog(logger)
    try:
        log.emit(AuditRecord("a", "GET", "/"))
        assert log.flush(5)
        assert log.failed == 1
        logger.handlers.clear()
        logger.addHandler(collect)
        log.emit(AuditRecord("b", "GET", "/"))
        assert log.flush(5)
        assert [e.__dict__["bastion_audit"].request_id for e in collect.records] == ["b"]
    finally:
        log.close()


def test_several_threads_emitting(logger: logging.Logger) -> None:
    handler = Collect()
    logger.addHandler(handler)
    log = AuditLog(logger, queue_size=100_000)
    threads, per_thread = 8, 500
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            log.emit(AuditRecord(f"{t}-{i}", "GET", "/"))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert log.flush(30)
        ids = [e.__dict__["bastion_audit"].request_id for e in handler.records]
        assert len(ids) == threads * per_thread
        assert set(ids) == {f"{t}-{i}" for t in range(threads) for i in range(per_thread)}
        for t in range(threads):  # each thread's records keep their order
            mine = [i for i in ids if i.startswith(f"{t}-")]
            assert mine == [f"{t}-{i}" for i in range(per_thread)]
        assert log.dropped == 0
    finally:
        log.close()


@pytest.mark.parametrize("bad", [{"queue_size": 0}, {"queue_size": True}, {"level": "INFO"}, {"logger": 3}])
def test_bad_options_are_configuration_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        AuditLog(**bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# context for the application's own records


class FakePrincipal:
    subject = "user_9"
    scopes = frozenset({"write:x", "read:x"})


def app_record(logger: logging.Logger, handler: Collect, message: str) -> logging.LogRecord:
    logger.info(message)
    return handler.records[-1]


def test_context_filter_inside_and_outside_a_bound_request(logger: logging.Logger) -> None:
    handler = Collect()
    handler.addFilter(AuditContextFilter())
    logger.addHandler(handler)
    outside = app_record(logger, handler, "before")
    assert (outside.enduser_id, outside.enduser_scopes, outside.request_id) == (None, None, None)  # type: ignore[attr-defined]
    token = bind(FakePrincipal(), "req-9")  # type: ignore[arg-type]
    try:
        inside = app_record(logger, handler, "during")
        assert current() is not None
    finally:
        reset(token)
    assert inside.enduser_id == "user_9"  # type: ignore[attr-defined]
    assert inside.enduser_scopes == "read:x write:x"  # type: ignore[attr-defined]
    assert inside.request_id == "req-9"  # type: ignore[attr-defined]
    after = app_record(logger, handler, "after")
    assert after.enduser_id is None  # type: ignore[attr-defined]
    assert current() is None
    doc = json.loads(JSONFormatter().format(inside))
    assert doc == {
        "timestamp": doc["timestamp"],
        "level": "INFO",
        "logger": logger.name,
        "message": "during",
        "request.id": "req-9",
        "enduser.id": "user_9",
        "bastion.auth.scopes": ["read:x", "write:x"],
    }
    assert "enduser.id" not in json.loads(JSONFormatter().format(outside))


def test_an_anonymous_request_binds_its_id_only(logger: logging.Logger) -> None:
    handler = Collect()
    handler.addFilter(AuditContextFilter())
    logger.addHandler(handler)
    token = bind(None, "req-anon")
    try:
        entry = app_record(logger, handler, "anon")
    finally:
        reset(token)
    assert (entry.enduser_id, entry.enduser_scopes, entry.request_id) == (None, "", "req-anon")  # type: ignore[attr-defined]


def test_extra_fields_win_over_the_context(logger: logging.Logger) -> None:
    handler = Collect()
    handler.addFilter(AuditContextFilter())
    logger.addHandler(handler)
    token = bind(FakePrincipal(), "req-9")  # type: ignore[arg-type]
    try:
        logger.info("x", extra={"request_id": "mine"})
    finally:
        reset(token)
    assert handler.records[-1].request_id == "mine"  # type: ignore[attr-defined]


def test_concurrent_tasks_see_their_own_identity(logger: logging.Logger) -> None:
    handler = Collect()
    handler.addFilter(AuditContextFilter())
    logger.addHandler(handler)

    class P:
        def __init__(self, subject: str) -> None:
            self.subject = subject
            self.scopes: frozenset[str] = frozenset()

    async def request(n: int) -> None:
        token = bind(P(f"user_{n}"), f"req-{n}")  # type: ignore[arg-type]
        try:
            await asyncio.sleep(0.01 * (3 - n))
            logger.info("in %s", n)
        finally:
            reset(token)

    async def main() -> None:
        await asyncio.gather(*(request(n) for n in range(3)))

    asyncio.run(main())
    seen = {r.getMessage(): (r.enduser_id, r.request_id) for r in handler.records}  # type: ignore[attr-defined]
    assert seen == {f"in {n}": (f"user_{n}", f"req-{n}") for n in range(3)}


def test_json_formatter_writes_exceptions_of_app_records(logger: logging.Logger) -> None:
    handler = Collect()
    logger.addHandler(handler)
    try:
        raise ValueError("app failure")
    except ValueError:
        logger.exception("it failed")
    doc = json.loads(JSONFormatter().format(handler.records[-1]))
    assert doc["level"] == "ERROR"
    assert doc["message"] == "it failed"
    assert "ValueError: app failure" in doc["exception"]


def test_a_forked_child_writes_its_own_records(logger: logging.Logger) -> None:
    read, write = os.pipe()

    class ToPipe(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            os.write(write, (record.getMessage() + "\n").encode())

    logger.addHandler(ToPipe())
    log = AuditLog(logger)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            log.emit(AuditRecord("child", "GET", "/child"))
            os._exit(0 if log.flush(5) else 1)
        _, status = os.waitpid(pid, 0)
        log.emit(AuditRecord("parent", "GET", "/parent"))
        assert log.flush(5)
        os.close(write)
        with os.fdopen(read) as pipe:
            lines = sorted(pipe.read().splitlines())
    finally:
        log.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert lines == ["GET /child -", "GET /parent -"]
