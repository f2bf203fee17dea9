"""A hung Redis (SIGSTOP) bounds every call's wall time, however many threads call at once, whether the
connection is open, being made or being remade."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import bastion
import pytest

from tests.servers import RedisServer, start_redis

TIMEOUT = 0.1
#: the documented bound: three times ``timeout`` (queued behind a connection being made, then a round trip)
BOUND = 3 * TIMEOUT
#: scheduling slack on a shared, loaded machine
SLACK = 0.15


@pytest.fixture
def hung() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.proc.send_signal(signal.SIGCONT)
        server.stop()


def _limiter(url: str, retry_interval: float) -> bastion.RedisRateLimiter:
    return bastion.RedisRateLimiter(
        url, {"t": bastion.Rate(1000, per=1)}, timeout=TIMEOUT, failure_mode="open", retry_interval=retry_interval
    )


def _worst_call(lim: bastion.RedisRateLimiter, threads: int = 16, rounds: int = 3) -> float:
    """The longest wall time of one ``check`` among ``threads`` threads calling ``rounds`` times each."""
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run() -> None:
        start.wait()
        for _ in range(rounds):
            t0 = time.monotonic()
            d = lim.check("k")
            took = time.monotonic() - t0
            assert d.allowed
            with lock:
                times.append(took)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert len(times) == threads * rounds
    return max(times)


@pytest.mark.parametrize("retry_interval", [0.0, 1.0])
def test_threads_on_an_open_connection_to_a_hung_server(hung: RedisServer, retry_interval: float) -> None:
    lim = _limiter(hung.url, retry_interval)
    assert lim.check("k").source == "redis"
    hung.proc.send_signal(signal.SIGSTOP)
    # retry_interval=0: every call tries again, so the threads keep reconnecting to the hung server
    assert _worst_call(lim) < BOUND + SLACK


@pytest.mark.parametrize("retry_interval", [0.0, 1.0])
def test_threads_connecting_to_a_hung_server(hung: RedisServer, retry_interval: float) -> None:
    hung.proc.send_signal(signal.SIGSTOP)
    lim = _limiter(hung.url, retry_interval)  # never connected: the threads all need the connection at once
    assert _worst_call(lim) < BOUND + SLACK


def test_threads_connecting_while_the_server_comes_back(hung: RedisServer) -> None:
    hung.proc.send_signal(signal.SIGSTOP)
    lim = _limiter(hung.url, 0.0)
    timer = threading.Timer(0.15, hung.proc.send_signal, (signal.SIGCONT,))
    timer.start()
    assert _worst_call(lim, rounds=5) < BOUND + SLACK
    timer.join()
    assert lim.check("k").source == "redis"
