"""A ``SyncPipe`` whose "Redis" is the test itself, on the other end of a socketpair: exact event order
for the pipelining tests (which thread leads, who is handed the connection, when a reply lands)."""

from __future__ import annotations

import socket
import threading
import time

from bastion.ratelimit._pipe import SyncPipe


class Conn:
    """The part of a redis-py connection a SyncPipe uses, over one end of a socketpair."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def disconnect(self) -> None:
        self._sock.close()


def expect(peer: socket.socket, request: bytes) -> None:
    """Read one newline-terminated request on the peer's side and check it is ``request``."""
    got = b""
    while not got.endswith(b"\n"):
        got += peer.recv(100)
    assert got == request


def queued(pipe: SyncPipe, n: int) -> None:
    """Wait (up to 5 s) until ``n`` requests wait in the pipe's queue."""
    for _ in range(5000):
        with pipe.lock:
            if len(pipe.queue) == n:
                return
        time.sleep(0.001)
    raise AssertionError("the thread did not queue")


def start_call(pipe: SyncPipe, name: str, results: dict[str, object]) -> threading.Thread:
    """A started thread that sends ``REQ-<name>`` through the pipe; its reply (or exception) lands in
    ``results[name]``."""

    def run() -> None:
        try:
            results[name] = pipe.call(f"REQ-{name}\n".encode())
        except Exception as exc:
            results[name] = exc

    t = threading.Thread(target=run)
    t.start()
    return t


def hand_over_to_c(pipe: SyncPipe, peer: socket.socket, results: dict[str, object]) -> list[threading.Thread]:
    """The hand-over scenario on a pipe with a 1 s timeout: A finds the connection idle and leads; B queues
    and A carries it (A's reply comes 0.6 s on); C queues, and when B's reply comes 1.2 s after A began, A
    has led longer than the timeout, so C is handed the connection and sends its own request. Returns the
    threads of A, B and C; C's reply is still to be sent."""
    a = start_call(pipe, "A", results)
    expect(peer, b"REQ-A\n")
    b = start_call(pipe, "B", results)
    queued(pipe, 1)
    time.sleep(0.6)
    peer.sendall(b":1\r\n")  # A's reply: A now carries B
    expect(peer, b"REQ-B\n")
    c = start_call(pipe, "C", results)
    queued(pipe, 1)
    time.sleep(0.6)
    peer.sendall(b":2\r\n")  # B's reply: A has led for 1.2 s > timeout, so C gets the connection
    expect(peer, b"REQ-C\n")
    return [a, b, c]
