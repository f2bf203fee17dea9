"""Final review of the session's changes (Redis pipelining, error replies, rate-limit core, JWKS, docs).

Each test here was written against a defect found in that review (it failed before the fix), or pins down
a property the review checked and that nothing else covers.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bastion
import pytest
import redis
from bastion.ratelimit._pipe import SyncPipe

from tests.pipe_support import expect, hand_over_to_c, queued, start_call
from tests.servers import RedisServer, free_port, start_redis


class _Interrupted(BaseException):
    """Stands for KeyboardInterrupt / SystemExit raised by a signal handler in the main thread."""


def test_an_interrupted_waiter_never_becomes_the_heir_of_the_connection(
    scripted: tuple[SyncPipe, socket.socket],
) -> None:
    # A thread waiting for its reply that is interrupted (KeyboardInterrupt, or SystemExit from a signal
    # handler) left its request in the queue. When a leader that had led for `timeout` then handed the
    # connection on, it handed it to that dead waiter: nobody led again, `busy` stayed set and every later
    # call queued and timed out, for good (the pipe had no error, so it was never replaced).
    pipe, peer = scripted
    results: dict[str, object] = {}

    def interrupt(_signum: int, _frame: object) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        a = start_call(pipe, "A", results)
        expect(peer, b"REQ-A\n")
        b = start_call(pipe, "B", results)
        queued(pipe, 1)
        time.sleep(0.6)
        peer.sendall(b":1\r\n")  # A's reply, 0.6 s on: A now carries B
        expect(peer, b"REQ-B\n")

        main = threading.get_ident()

        def interrupt_main_once_queued() -> None:
            queued(pipe, 1)
            signal.pthread_kill(main, signal.SIGUSR1)

        k = threading.Thread(target=interrupt_main_once_queued)
        k.start()
        with pytest.raises(_Interrupted):
            pipe.call(b"REQ-M\n")  # queued behind B, then interrupted while it waits
        k.join(5)
        time.sleep(0.6)
        peer.sendall(b":2\r\n")  # B's reply: A has led for 1.2 s > timeout and hands the connection on
        a.join(5)
        b.join(5)
        assert (results.get("A"), results.get("B")) == (b":1\r\n", b":2\r\n")
        # the next caller gets the connection (before the fix: it queued behind the dead heir, timed out)
        d = start_call(pipe, "D", results)
        expect(peer, b"REQ-D\n")
        peer.sendall(b":3\r\n")
        d.join(5)
        assert results["D"] == b":3\r\n"
        with pipe.lock:
            assert not pipe.busy
            assert not pipe.queue
            assert pipe.error is None
    finally:
        signal.signal(signal.SIGUSR1, previous)


# ------------------------------------------------------------------------- error replies from Redis


def _evalsha_calls(r: redis.Redis[bytes]) -> int:
    stats = r.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_a_refused_script_load_marks_redis_down_instead_of_failing_every_check_alone() -> None:
    # After a Redis restart the script cache is empty: EVALSHA answers NOSCRIPT and the limiter sends
    # SCRIPT LOAD. When that is refused (an ACL user without SCRIPT LOAD: -NOPERM), the sync path turned
    # the error reply into a plain "unexpected digest" ResponseError, which reads as an error about one
    # key: Redis was never marked down, and every check paid EVALSHA + SCRIPT LOAD before degrading.
    server = start_redis()
    try:
        admin = redis.Redis.from_url(server.url)
        admin.execute_command("ACL", "SETUSER", "rl", "on", ">pw", "~*", "+@all", "-script|load")
        url = f"redis://rl:pw@127.0.0.1:{server.port}/0"
        lim = bastion.RedisRateLimiter(url, {"t": bastion.Rate(10, per=60)}, retry_interval=30.0)
        d = lim.check("k")
        assert d.source == "fallback"
        calls = _evalsha_calls(admin)
        for _ in range(5):
            assert lim.check("k").source == "fallback"
        assert _evalsha_calls(admin) == calls, "Redis is known down until retry_interval has passed"
        lim.close()
        admin.close()
    finally:
        server.stop()


def test_server_state_error_replies_mark_redis_down() -> None:
    # Pins down the classification on this Redis (7.x): OOM and READONLY replies mean the server cannot
    # serve anyone now, so no request pays a round trip until retry_interval has passed.
    server = start_redis()
    try:
        admin = redis.Redis.from_url(server.url)
        lim = bastion.RedisRateLimiter(server.url, {"t": bastion.Rate(10, per=60)}, retry_interval=30.0)
        assert lim.check("k").source == "redis"
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        assert lim.check("k").source == "fallback"
        calls = _evalsha_calls(admin)
        assert lim.check("k2").source == "fallback"
        assert _evalsha_calls(admin) == calls
        admin.config_set("maxmemory", 0)
        lim2 = bastion.RedisRateLimiter(server.url, {"t": bastion.Rate(10, per=60)}, retry_interval=30.0)
        assert lim2.check("k").source == "redis"
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")  # a read-only replica of nothing
        assert lim2.check("k").source == "fallback"
        calls = _evalsha_calls(admin)
        assert lim2.check("k2").source == "fallback"
        assert _evalsha_calls(admin) == calls
        lim.close()
        lim2.close()
        admin.close()
    finally:
        server.stop()


# ---------------------------------------------------------------- SyncPipe against a real Redis server


def _echo(payload: bytes) -> bytes:
    return b"*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n" % (len(payload), payload)


def test_every_thread_gets_its_own_reply_across_hand_overs(redis_server: RedisServer) -> None:
    # Eight threads on one pipelined connection, with a leader handing the connection on every 20 ms of
    # leading and lone callers polling or blocking as the chooser decides: every reply is the caller's own
    # (ECHO of a payload naming the thread and the call), none lost, none answered twice.
    conn = redis.Connection(host="127.0.0.1", port=redis_server.port, socket_timeout=5)
    conn.connect()
    pipe = SyncPipe(conn, timeout=5.0, spin=100e-6)
    pipe.call(_echo(b"warm-up"))
    pipe.timeout = 0.02  # hand the connection on often (the socket keeps its 5 s kernel timeouts)
    wrong: list[tuple[bytes, object]] = []
    done = [0] * 8

    def hammer(i: int) -> None:
        for j in range(1500):
            payload = b"t%d-c%d" % (i, j)
            reply = pipe.call(_echo(payload))
            if reply != b"$%d\r\n%s\r\n" % (len(payload), payload):
                wrong.append((payload, reply))
            done[i] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert wrong == []
    assert done == [1500] * 8
    with pipe.lock:
        assert not pipe.busy
        assert not pipe.queue
        assert pipe.error is None
    assert pipe.call(_echo(b"after")) == b"$5\r\nafter\r\n"
    conn.disconnect()


def test_a_thread_handed_the_connection_counts_the_time_it_waited(
    scripted: tuple[SyncPipe, socket.socket],
) -> None:
    # The heir counted its time leading from when it was handed the connection, not from when its call
    # began: a call that had already waited ~timeout in the queue could then carry others' requests for
    # another full timeout (and more), beyond the documented bound. Now, having waited that long, it hands
    # the connection on after the batch holding its own request.
    pipe, peer = scripted
    results: dict[str, object] = {}

    a, b, c = hand_over_to_c(pipe, peer, results)  # C queued about 0.6 s after the start
    a.join(5)
    b.join(5)
    d = start_call(pipe, "D", results)
    queued(pipe, 1)
    time.sleep(0.5)  # C's call is now over 1 s old, though it has led for only 0.5 s
    peer.sendall(b":3\r\n")
    expect(peer, b"REQ-D\n")
    c.join(5)
    # C returned without D's reply: D was handed the connection and sent its own request (before the fix C
    # carried D and sat in recv for D's reply until its timeout, which failed the connection)
    assert results.get("C") == b":3\r\n"
    with pipe.lock:
        assert pipe.error is None, "C carried D's request past its own bound"
    peer.sendall(b":4\r\n")
    d.join(5)
    assert results == {"A": b":1\r\n", "B": b":2\r\n", "C": b":3\r\n", "D": b":4\r\n"}
    with pipe.lock:
        assert not pipe.busy
        assert pipe.error is None


@pytest.fixture
def tls_and_unix_redis(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A redis-server listening on TLS (self-signed P-256 certificate) and on a Unix socket only."""
    cert, key, sock = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "r.sock"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert)),
            *("--tls-auth-clients", "no", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        yield f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none", f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_spin_polls_on_unix_sockets_and_never_on_tls(tls_and_unix_redis: tuple[str, str]) -> None:
    # The documented scope of `spin`: plain TCP and Unix sockets poll (MSG_DONTWAIT works on both); a TLS
    # socket takes no recv flags (and a record may need several reads), so it never polls. Both answer
    # correctly, and the shared bucket is the same whichever way the reply was read.
    tls_url, unix_url = tls_and_unix_redis
    policies = {"t": bastion.Rate(5, per=3600)}
    with bastion.RedisRateLimiter(unix_url, policies, timeout=2, spin=0.001) as lim:
        assert [lim.check("k").remaining for _ in range(3)] == [4, 3, 2]
        pipe = lim._sync_pipe()
        assert pipe.spin == 0.001
        assert pipe.chooser.poll_s is not None, "the first lone call polled"
        assert pipe.chooser.block_s is not None, "the second blocked"
    with bastion.RedisRateLimiter(tls_url, policies, timeout=2, spin=0.001) as lim:
        d = lim.check("k")
        assert (d.source, d.remaining) == ("redis", 1)
        pipe = lim._sync_pipe()
        assert pipe.spin == 0
        assert (pipe.chooser.poll_s, pipe.chooser.block_s) == (None, None)
        assert [lim.check("k").remaining for _ in range(2)] == [0, 0]
        assert not lim.allow("k")
