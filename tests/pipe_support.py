"""A ``SyncPipe`` whose "Redis" is the test itself, on the other end of a socketpair: exact event order
for the pipelining tests (which thread leads, who is handed the connection, when a reply lands)."""

from __future__ import annotations

import socket
import threading
import time

from bastion._redis_pipe import SyncPipe


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
