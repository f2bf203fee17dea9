"""The audit line written by the core: the file sink (``AuditLog(file=)``), the request tuple the middlewares
queue, and the agreement of every path that writes a line (logger + JSONFormatter, file, hand-built record)."""

from __future__ import annotations

import io
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import bastion
import pytest
from bastion import ConfigurationError, _core
from bastion._core import Decision
from bastion.audit import FIELDS, AuditLog, AuditRecord, JSONFormatter
from bastion.audit.writer import json_line
from hypothesis import given
from hypothesis import strategies as st

from tests import secrets_registry

SECRET = b"audit-lines-secret-0123456789abcdef!"
RULE = bastion.Rule("/api/v1/reports/{id}", scopes=["read:reports"])


def outcome(token_claims: dict[str, object] | None = None, *, scopes: str = "read:reports") -> bastion.Outcome:
    key = bastion.Key.hmac(SECRET)
    signer = bastion.JWTSigner(key, "HS256", ttl=600)
    token = signer.sign({"sub": "user_1", "scope": scopes, "roles": ["user", "auditor"], **(token_claims or {})})
    secrets_registry.remember(token)
    limiter = bastion.RateLimiter({"free": bastion.Rate(100, per=60)}, default="free")
    auth = bastion.Authenticator(bastion.JWTVerifier(key, algorithms=["HS256"]), limiter=limiter)
    return auth.decide(f"Bearer {token}", method="DELETE", path="/api/v1/reports/7", rules=[RULE])


def request_tuple(o: bastion.Outcome | None, reason: str | None = None) -> tuple[object, ...]:
    rule = RULE if o is not None else None
    return (o, rule, "DELETE", "/api/v1/reports/7", 403, "req-1", "203.0.113.9", 0.42, 1_800_000_000.25, reason)


def json_logger(name: str) -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    """A logger of its own writing JSONFormatter lines to a string (the caller removes the handler)."""
    logger = logging.getLogger(name)
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, stream, handler


def test_a_request_line_names_every_field_and_no_token() -> None:
    o = outcome(scopes="write:reports")  # refused: insufficient_scope
    assert o.error is not None
    assert o.error.code == "insufficient_scope"
    line = _core.audit_lines([request_tuple(o)], "INFO", "bastion.audit")
    assert line.endswith("\n")
    assert line.count("\n") == 1
    doc = json.loads(line)
    assert doc == {
        "timestamp": "2027-01-15T08:00:00.250Z",
        "level": "INFO",
        "logger": "bastion.audit",
        "message": "DELETE /api/v1/reports/7 403 insufficient_scope",
        "request.id": "req-1",
        "http.request.method": "DELETE",
        "url.path": "/api/v1/reports/7",
        "http.route": "/api/v1/reports/{id}",
        "http.response.status_code": 403,
        "client.address": "203.0.113.9",
        "enduser.id": "user_1",
        "user.roles": ["auditor", "user"],
        "bastion.auth.scopes": ["write:reports"],
        "bastion.auth.token_type": "jwt",
        "bastion.auth.token_id": o.principal.token_id if o.principal else None,
        "bastion.auth.reason": "insufficient_scope",
        "error.type": "insufficient_scope",
        "bastion.ratelimit.tier": "free",
        "bastion.ratelimit.remaining": 99,
        "duration_ms": 0.42,
    }


def test_the_core_and_of_request_agree_and_the_names_are_the_cores() -> None:
    o = outcome()
    # admitted by the core, then refused by an endpoint's own check: that refusal is the request's outcome
    record = AuditRecord.of_request(*request_tuple(o, "forbidden"))  # type: ignore[arg-type]
    assert record.error_type == "forbidden"
    assert record.reason == "forbidden"
    assert record.roles == ("auditor", "user")
    assert record.route == RULE.path
    direct = json.loads(_core.audit_lines([request_tuple(o, "forbidden")], "INFO", "x"))
    assert json.loads(json_line(record, "INFO", "x")) == direct
    assert tuple(name for _, name in FIELDS) == _core.AUDIT_FIELD_NAMES


def test_a_preflight_and_an_exempt_request() -> None:
    doc = json.loads(_core.audit_lines([request_tuple(None)], "INFO", "x"))
    assert doc["bastion.auth.reason"] == "preflight"
    assert "enduser.id" not in doc
    assert "http.route" not in doc
    exempt = bastion.Rule("/health", auth="none")
    auth = bastion.Authenticator(bastion.JWTVerifier(bastion.Key.hmac(SECRET), algorithms=["HS256"]))
    o = auth.decide(None, path="/health", rules=[exempt])
    item = (o, exempt, "GET", "/health", 200, "r", None, 0.1, 0.0, None)
    doc = json.loads(_core.audit_lines([item], "INFO", "x"))
    assert doc["bastion.auth.reason"] == "exempt"
    assert "client.address" not in doc


def test_hand_built_records_with_odd_values_are_written_not_raised() -> None:
    record = AuditRecord("r", "GET", "/", timestamp=0.0)
    record.status = True
    record.remaining = 2**70
    record.roles = frozenset({"b", "a"})
    record.duration_ms = float("nan")
    doc = json.loads(json_line(record, "INFO", "x"))
    assert doc["http.response.status_code"] == "true"
    assert doc["bastion.ratelimit.remaining"] == str(2**70)
    assert doc["user.roles"] == ["a", "b"]
    assert doc["duration_ms"] is None  # JSON has no NaN
    with pytest.raises(ConfigurationError):
        _core.audit_lines([("too", "short")], "INFO", "x")
    with pytest.raises(ConfigurationError):
        _core.audit_lines([("not an outcome", *request_tuple(None)[1:])], "INFO", "x")


@given(st.floats(min_value=0, max_value=253_402_300_799, allow_nan=False))
def test_timestamps_match_pythons_calendar(epoch: float) -> None:
    want = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    assert _core.audit_timestamp(epoch) == want


def test_the_file_sink_writes_the_formatters_lines(tmp_path: Path) -> None:
    o = outcome()
    logger, stream, handler = json_logger("tests.audit_lines.logger")
    via_logger = AuditLog(logger)
    via_file = AuditLog("tests.audit_lines.logger", file=tmp_path / "audit.jsonl")
    try:
        for log in (via_logger, via_file):
            for i in range(1200):  # more than one batch
                log.request(o, RULE, "GET", f"/api/v1/reports/{i}", 200, f"r{i}", None, 1.5, 1_800_000_000.0 + i)
            log.emit(AuditRecord("hand", "GET", "/x", timestamp=1_800_000_000.0))
            assert log.flush(10)
    finally:
        via_logger.close()
        via_file.close()
        logger.removeHandler(handler)
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == stream.getvalue().splitlines()
    assert len(lines) == 1201
    assert json.loads(lines[-1])["request.id"] == "hand"
    assert json.loads(lines[7])["url.path"] == "/api/v1/reports/7"
    assert via_file.dropped == 0
    assert via_file.failed == 0


def test_the_file_sink_takes_a_text_stream_and_refuses_the_rest(tmp_path: Path) -> None:
    stream = io.StringIO()
    log = AuditLog(file=stream)
    log.emit(AuditRecord("r", "GET", "/"))
    log.close()
    assert json.loads(stream.getvalue())["request.id"] == "r"
    assert not stream.closed  # the caller's stream stays the caller's
    with pytest.raises(ConfigurationError, match="text stream"):
        AuditLog(file=io.BytesIO())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="path or a text stream"):
        AuditLog(file=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="cannot be opened"):
        AuditLog(file=tmp_path / "missing-dir" / "audit.jsonl")
    with pytest.raises(ConfigurationError, match="cannot be opened for appending: Is a directory"):
        AuditLog(file=tmp_path)
    # a file name that is not UTF-8 (a surrogate-escaped byte, as os.listdir gives it) is opened as its bytes
    odd = tmp_path / "audit-\udcff.jsonl"
    log = AuditLog(file=odd)
    log.emit(AuditRecord("odd", "GET", "/"))
    log.close()
    assert os.fsencode(odd.name) in os.listdir(os.fsencode(tmp_path))
    assert json.loads(odd.read_text("utf-8"))["request.id"] == "odd"


def test_admitted_asgi_headers_are_the_decisions_headers_as_bytes() -> None:
    for allowed in (True, False):
        decision = Decision(allowed, "free", [(100, 60, 57, 1.3, 0.0), (1000, 3600, 999, 3.6, 0.0)])
        want = [(n.lower().encode(), v.encode()) for n, v in decision.headers() if n != "Retry-After"]
        assert decision._asgi_success_headers() == want
    assert Decision(True, "unlimited")._asgi_success_headers() == []


def test_an_unlimited_tier_writes_no_remaining() -> None:
    limiter = bastion.RateLimiter({"admin": None}, default="admin")
    auth = bastion.Authenticator(bastion.JWTVerifier(bastion.Key.hmac(SECRET), algorithms=["HS256"]), limiter=limiter)
    token = bastion.JWTSigner(bastion.Key.hmac(SECRET), "HS256", ttl=60).sign({"sub": "root"})
    secrets_registry.remember(token)
    o = auth.decide(f"Bearer {token}")
    assert o.decision is not None
    assert o.decision.limit == 0
    doc = json.loads(_core.audit_lines([(o, None, "GET", "/", 200, "r", None, 0.1, 0.0, None)], "INFO", "x"))
    assert doc["bastion.ratelimit.tier"] == "admin"
    assert "bastion.ratelimit.remaining" not in doc


def _asgi_request(app: object, token: str, path: str) -> int:
    """One GET through an ASGI app; the response's status."""
    import asyncio

    statuses: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))  # type: ignore[call-overload]

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "client": ("203.0.113.9", 5000),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[operator]
    return statuses[0]


def test_the_glues_records_and_the_shells_records_agree(tmp_path: Path) -> None:
    """An admitted request's record is built as Rust data by the middleware's glue and written without the
    interpreter; a refused one is queued by the Python shell. Through the file sink and through the logger sink
    (JSONFormatter) every field agrees, and both name the route, the principal and the tier."""

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    key = bastion.Key.hmac(SECRET)
    token = bastion.JWTSigner(key, "HS256", ttl=600).sign({"sub": "user_1", "scope": "read:reports", "roles": ["r"]})
    secrets_registry.remember(token)
    logger, stream, handler = json_logger("tests.audit_lines.glue")
    docs: dict[str, list[dict[str, object]]] = {}
    try:
        for name, log in (("file", AuditLog(logger, file=tmp_path / "a.jsonl")), ("logger", AuditLog(logger))):
            limiter = bastion.RateLimiter({"free": bastion.Rate(100, per=60)}, default="free")
            auth = bastion.Authenticator(bastion.JWTVerifier(key, algorithms=["HS256"]), limiter=limiter, audit=log)
            guarded = bastion.asgi.AuthMiddleware(app, auth, rules=[RULE])
            assert _asgi_request(guarded, token, "/api/v1/reports/7") == 200  # the glue's record
            assert _asgi_request(guarded, "not-a-jwt", "/api/v1/reports/8") == 401  # the shell's record
            log.close()
            text = (tmp_path / "a.jsonl").read_text("utf-8") if name == "file" else stream.getvalue()
            docs[name] = [json.loads(line) for line in text.splitlines()]
    finally:
        logger.removeHandler(handler)
    varying = ("timestamp", "request.id", "duration_ms")
    for a, b in zip(docs["file"], docs["logger"], strict=True):
        assert {k: v for k, v in a.items() if k not in varying} == {k: v for k, v in b.items() if k not in varying}
    admitted, refused = docs["file"]
    assert admitted["http.route"] == "/api/v1/reports/{id}"
    assert admitted["enduser.id"] == "user_1"
    assert admitted["bastion.auth.reason"] == "authenticated"
    assert admitted["bastion.ratelimit.tier"] == "free"
    assert admitted["http.response.status_code"] == 200
    assert admitted["client.address"] == "203.0.113.9"
    assert refused["error.type"] == "token_malformed"
    assert refused["http.response.status_code"] == 401
    assert len(str(admitted["request.id"])) == 32


def test_a_request_the_core_cannot_read_is_counted_not_raised() -> None:
    log = AuditLog("tests.audit_lines.unreadable")
    try:
        log.request("not an outcome", None, "GET", "/", 200, "r", None, 0.1, 0.0)  # type: ignore[arg-type]
        assert log.failed == 1
        assert log.flush(5)
    finally:
        log.close()


def test_a_keyboard_interrupt_while_a_request_is_read_propagates() -> None:
    """Only an Exception from a request's values is counted: an interrupt raised while the core reads them
    (here by a timestamp's ``__float__``) reaches the caller."""

    class Interrupting:
        def __float__(self) -> float:
            raise KeyboardInterrupt

    log = AuditLog("tests.audit_lines.interrupt")
    try:
        with pytest.raises(KeyboardInterrupt):
            log.request(None, None, "GET", "/", 200, "r", None, 0.1, Interrupting())  # type: ignore[arg-type]
        assert log.failed == 0
    finally:
        log.close()


def test_records_taken_by_the_writer_count_as_queued_until_done() -> None:
    import threading

    queue = _core.AuditQueue(10, threading.Event())
    for i in range(3):
        queue.put_request((None, None, "GET", f"/{i}", 200, f"r{i}", None, 0.1, 0.0, None))
    queue.put(AuditRecord("hand", "GET", "/h", timestamp=0.0))
    text, taken, failed = queue.lines(3, "INFO", "x")
    assert (taken, failed) == (3, 0)
    assert [json.loads(line)["url.path"] for line in text.splitlines()] == ["/0", "/1", "/2"]
    assert len(queue) == 4  # not written yet: flush keeps waiting
    queue.done(taken)
    assert len(queue) == 1
    (item,) = queue.peek(5)
    assert isinstance(item, AuditRecord)
    queue.put_request((None, None, "GET", "/p", 200, "r9", None, 0.1, 0.0, None))
    record = AuditRecord._of_line_item(queue.peek(5)[1])
    assert (record.path, record.reason, record.status) == ("/p", "preflight", 200)


def test_a_finaliser_that_logs_while_the_writer_peeks_does_not_hang(tmp_path: Path) -> None:
    """The logger writer reads a record with ``peek``, which builds Python objects; with the collector run on
    every allocation, a finaliser that queues a record runs inside it. ``peek`` holds no lock by then, so the
    process finishes (run apart, with a timeout: a deadlock would hold the GIL)."""
    import subprocess
    import sys

    code = """
import gc, logging
from bastion.audit import AuditLog, AuditRecord
log = AuditLog("tests.audit_lines.finaliser")
class Loud:
    def __init__(self): self.me = self  # a cycle: freed by the collector, inside whatever allocates
    def __del__(self): log.emit(AuditRecord("from-del", "GET", "/"))
log.request(None, None, "GET", "/", 200, "r0", None, 0.1, 0.0)
gc.set_threshold(1)
for _ in range(200):
    Loud()
    log._queue.peek(5)
gc.set_threshold(700)
assert log.flush(10)
print("ok", log.failed)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["ok", "0"]


def test_records_taken_and_never_given_back_do_not_spin_the_writer() -> None:
    """A batch taken by ``lines`` and not yet ``done`` keeps ``flush`` waiting (it is not written), but the
    writer does not spin on it: its drain stops when a call takes nothing, and it finishes once ``done``."""
    stream = io.StringIO()
    log = AuditLog(file=stream)
    try:
        log.request(None, None, "GET", "/a", 200, "r1", None, 0.1, 0.0)
        _, taken, _ = log._queue.lines(1, "INFO", "x")  # as a writer that was interrupted would hold it
        assert taken == 1
        assert not log.flush(0.3)
        log._queue.done(taken)
        log.request(None, None, "GET", "/b", 200, "r2", None, 0.1, 0.0)
        assert log.flush(5)
        assert [json.loads(line)["url.path"] for line in stream.getvalue().splitlines()] == ["/b"]
    finally:
        log.close()


def test_the_file_writer_writes_without_being_flushed(tmp_path: Path) -> None:
    """The path sink's thread lives in the core and sleeps on an empty queue: a record wakes it, and it appends
    the record after the linger with nobody calling flush. Waited for within 0.9 s, short of the 1 s a sleeping
    writer looks again on its own: the record woke it."""
    import time

    path = tmp_path / "audit.jsonl"
    log = AuditLog(file=path)
    try:
        time.sleep(0.2)  # the thread has started and found the queue empty
        log.request(None, None, "GET", "/unflushed", 200, "r1", None, 0.1, 0.0)
        deadline = time.monotonic() + 0.9
        while (not path.read_text(encoding="utf-8") or len(log._queue)) and time.monotonic() < deadline:
            time.sleep(0.002)
        assert [json.loads(line)["url.path"] for line in path.read_text(encoding="utf-8").splitlines()] == [
            "/unflushed"
        ]
        assert len(log._queue) == 0
    finally:
        log.close()


def test_the_file_writer_keeps_the_order_of_requests_and_hand_built_records(tmp_path: Path) -> None:
    """Requests' entries are written off the GIL, hand-built records with it, in the order they were queued;
    flush waits for all of them, and close writes what is left and ends the thread."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(file=path)
    expected = []
    for i in range(2000):
        if i % 300 == 0:
            log.emit(AuditRecord(f"hand{i}", "GET", f"/hand/{i}", timestamp=1_800_000_000.0))
        else:
            log.request(None, None, "GET", f"/req/{i}", 200, f"r{i}", None, 0.1, 1_800_000_000.0)
        expected.append(f"/hand/{i}" if i % 300 == 0 else f"/req/{i}")
        if i == 999:
            assert log.flush(10)
            assert len((path.read_text(encoding="utf-8")).splitlines()) == 1000
    log.close()
    assert not log._thread.is_alive()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["url.path"] for line in lines] == expected
    assert (log.dropped, log.failed) == (0, 0)
    log.request(None, None, "GET", "/late", 200, "r-late", None, 0.1, 0.0)  # closed: dropped, counted
    assert log.dropped == 1


def test_alternating_requests_and_hand_built_records_do_not_stall_the_file_writer(tmp_path: Path) -> None:
    """Each run of hand-built records is read with the GIL, and the requests behind it are written at once:
    the writer lingers only when it woke on an empty queue or caught up. Written in well under a tenth of a
    second here; a linger after every hand-built record took seconds (1,000 records a second), past the 2 s
    this flush waits."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(file=path, queue_size=100_000)
    try:
        for i in range(10_000):
            log.request(None, None, "GET", f"/req/{i}", 200, f"r{i}", None, 0.1, 1_800_000_000.0)
            log.emit(AuditRecord(f"hand{i}", "GET", f"/hand/{i}", timestamp=1_800_000_000.0))
        assert log.flush(2)
        paths = [json.loads(line)["url.path"] for line in path.read_text(encoding="utf-8").splitlines()]
        assert paths == [p for i in range(10_000) for p in (f"/req/{i}", f"/hand/{i}")]
        assert (log.dropped, log.failed) == (0, 0)
    finally:
        log.close()


def test_records_the_file_refuses_are_counted_failed() -> None:
    """/dev/full takes the open and refuses every write (ENOSPC): each record is counted in ``failed``, flush
    still returns (nothing is left to write), and the writer carries on with the next records."""
    if not os.path.exists("/dev/full"):  # Linux has it; the CI machine is Linux
        pytest.fail("/dev/full is missing")
    log = AuditLog(file="/dev/full")
    try:
        for i in range(5):
            log.request(None, None, "GET", f"/{i}", 200, f"r{i}", None, 0.1, 0.0)
        log.emit(AuditRecord("hand", "GET", "/h", timestamp=0.0))
        assert log.flush(10)
        assert log.failed == 6
        log.request(None, None, "GET", "/after", 200, "r9", None, 0.1, 0.0)
        assert log.flush(10)
        assert log.failed == 7
        assert log._thread.is_alive()
        assert log.dropped == 0
    finally:
        log.close()


def test_close_returns_while_the_file_blocks_and_the_writer_finishes_later(tmp_path: Path) -> None:
    """A FIFO whose reader reads nothing yet: the writer blocks in a write, and close(timeout) returns on
    time instead of waiting for the file with the GIL held. Once the reader reads, the thread writes the rest,
    closes the file and ends. Run apart, with a timeout: a hang would hold the test run."""
    import subprocess
    import sys

    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    code = f"""
import os, threading, time
from bastion.audit import AuditLog
reader = os.open({str(fifo)!r}, os.O_RDONLY | os.O_NONBLOCK)
log = AuditLog(file={str(fifo)!r})
for i in range(2000):  # far more than a pipe holds (64 KiB)
    log.request(None, None, "GET", "/" + "x" * 100, 200, f"r{{i}}", None, 0.1, 0.0)
assert not log.flush(0.3)  # the writer is stuck in a write
log.close(timeout=0.3)
print("closed", log._thread.is_alive())
got = b""
deadline = time.monotonic() + 30
while log._thread.is_alive() and time.monotonic() < deadline:
    try:
        got += os.read(reader, 1 << 16)
    except BlockingIOError:
        time.sleep(0.001)
log._thread.join(5)
while True:  # what the pipe still holds
    try:
        chunk = os.read(reader, 1 << 16)
    except BlockingIOError:
        break
    if not chunk:
        break
    got += chunk
print("ended", not log._thread.is_alive(), got.count(b"\\n"), log.failed)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["closed", "True", "ended", "True", "2000", "0"]
