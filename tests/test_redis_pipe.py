"""The pipelined Redis connection under RedisRateLimiter (SyncPipe): one reply per caller across hand-overs,
interrupted waiters, the time a handed-over thread has waited, and when a lone caller polls or blocks.
A scripted peer on a socketpair (the `scripted` fixture) plays Redis where the order of events must be exact.
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
from tests.servers import RedisServer, free_port


class _Interrupted(BaseException):
    """Stands for KeyboardInterrupt / SystemExit raised by a signal handler in the main thread."""


def test_an_interrupted_waiter_never_becomes_the_heir_of_the_connection(
    scripted: tuple[SyncPipe, socket.socket],
) -> None:
    # A thread waiting for its reply that is interrupted (KeyboardInterrupt, or SystemExit from a signal
    # handler) must take its request out of the queue. Were the connection handed on to that dead waiter
    # (by a leader that has led for `timeout`), nobody would lead again: `busy` would stay set and every
    # later call queue and time out, for good (the pipe has no error, so it would never be replaced).
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
        # the next caller gets the connection (it does not queue behind a dead heir and time out)
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
    # The heir counts its time from when its call began, not from when it was handed the connection:
    # otherwise a call that had already waited ~timeout in the queue could carry others' requests for
    # another full timeout (and more), beyond the documented bound. Having waited that long, it hands the
    # connection on after the batch holding its own request.
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
    # C returned without D's reply: D was handed the connection and sent its own request (C does not carry
    # D and sit in recv for D's reply until its timeout, which would fail the connection)
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


def test_a_pipe_leader_hands_the_connection_on_instead_of_serving_others_forever(
    scripted: tuple[SyncPipe, socket.socket],
) -> None:
    # The first thread to find the connection idle must not carry every request queued after it for as
    # long as requests keep coming (under steady load from other threads its own call would never return):
    # it hands the connection to a queued thread once it has led for `timeout`. A scripted peer on a
    # socketpair plays Redis, so the order of events is exact.
    pipe, peer = scripted
    results: dict[str, object] = {}

    a, b, c = hand_over_to_c(pipe, peer, results)
    a.join(5)
    b.join(5)
    assert (results.get("A"), results.get("B")) == (b":1\r\n", b":2\r\n")
    assert "C" not in results
    peer.sendall(b":3\r\n")  # only now: A did not wait for this
    c.join(5)
    assert results["C"] == b":3\r\n"
    with pipe.lock:
        assert not pipe.busy
        assert pipe.error is None


# ------------------------------------------------------------------------ polling or blocking for a reply


#: a script that keeps Redis busy for ARGV[1] µs before it answers
_SLOW = (
    "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] "
    "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s >= tonumber(ARGV[1]) return 1"
)


def _slow_request(us: int) -> bytes:
    parts = [b"EVAL", _SLOW.encode(), b"0", str(us).encode()]
    return b"*4\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def test_poll_or_block_learns_the_faster_mode_and_keeps_checking_the_other() -> None:
    from bastion.ratelimit._pipe import PollOrBlock

    c = PollOrBlock()
    assert c.choose(0.0) is True, "the first call polls"
    c.record(True, 40e-6)
    assert c.choose(0.001) is False, "then one blocks, so both modes are measured"
    c.record(False, 100e-6)
    assert c.prefers_polling()
    # the first call after both are known explores the mode not preferred, then not again for EXPLORE_S
    assert c.choose(1.0) is False
    c.record(False, 100e-6)
    assert [c.choose(1.0 + i * 0.001) for i in range(10)] == [True] * 10
    assert c.choose(1.0 + PollOrBlock.EXPLORE_S) is False
    # polling gets slower (a busy machine): blocking takes over once polling is no longer clearly faster
    for _ in range(40):
        c.record(True, 150e-6)
    assert c.poll_s is not None
    assert c.poll_s > 0.9 * 100e-6
    assert not c.prefers_polling()
    assert c.choose(1.0 + PollOrBlock.EXPLORE_S + 0.001) is False
    assert c.choose(1.0 + 2 * PollOrBlock.EXPLORE_S + 0.001) is True, "polling is still tried now and then"
    # about as fast is not enough: polling costs CPU, so it must beat blocking by the margin
    c = PollOrBlock()
    c.record(True, 95e-6)
    c.record(False, 100e-6)
    assert not c.prefers_polling()
    # one stall moves the mean by at most ALPHA x 3 x the mean
    c.record(False, 1.0)
    assert c.block_s == pytest.approx(100e-6 * (1 + 3 * PollOrBlock.ALPHA))


def test_a_lone_caller_measures_both_modes_and_blocks_when_polling_brings_nothing(
    redis_server: RedisServer,
) -> None:
    lim = bastion.RedisRateLimiter(redis_server.url, {"t": bastion.Rate(10**6, per=1)}, spin=0.005, timeout=5)
    assert lim.check("k").source == "redis"
    pipe = lim._sync_pipe()
    assert pipe.spin == 0.005
    for _ in range(50):
        assert lim.check("k").allowed
    c = pipe.chooser
    assert c.poll_s is not None
    assert c.block_s is not None
    assert 0 < c.poll_s < 5
    assert 0 < c.block_s < 5
    # Redis now answers after 50 ms at the earliest, far beyond the 5 ms of polling: polling only adds
    # CPU, and the caller settles on blocking (replies stay correct either way)
    pipe.chooser = type(c)()
    slow = _slow_request(50_000)
    for _ in range(12):
        assert pipe.call(slow) == b":1\r\n"
    assert pipe.chooser.poll_s is not None
    assert pipe.chooser.poll_s >= 0.05
    assert not pipe.chooser.prefers_polling()


def test_the_default_spin_is_capped_by_the_timeout(redis_server: RedisServer) -> None:
    from bastion.ratelimit.redis import DEFAULT_SPIN

    for timeout, spin in [(0.1, DEFAULT_SPIN), (50e-6, 50e-6)]:
        lim = bastion.RedisRateLimiter(redis_server.url, {"t": bastion.Rate(10**6, per=1)}, timeout=timeout)
        assert lim._spin == spin


def test_spin_zero_never_polls(redis_server: RedisServer) -> None:
    lim = bastion.RedisRateLimiter(redis_server.url, {"t": bastion.Rate(10**6, per=1)}, spin=0)
    assert lim.check("k").source == "redis"
    pipe = lim._sync_pipe()
    assert pipe.spin == 0
    for _ in range(3):
        assert pipe.call(_slow_request(2_000)) == b":1\r\n"
        assert lim.check("k").allowed
    assert (pipe.chooser.poll_s, pipe.chooser.block_s) == (None, None), "no lone call went through the chooser"
