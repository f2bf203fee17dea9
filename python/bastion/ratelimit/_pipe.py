"""The connections of ``RedisRateLimiter``: RESP framing and automatic pipelining (sync and asyncio).

One connection per process (threads) and one per event loop (asyncio) carry every check: requests that
arrive while others are in flight are written together and their replies read back in order, so
concurrent callers share round trips. The replies are kept as raw bytes; ``Decision._from_resp`` (Rust)
reads them. Over 400 lines because the synchronous hand-over protocol (a leader, a queue, polling or
blocking) keeps its reasons next to its code.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

__all__ = ["AsyncPipe", "ErrorReply", "PollOrBlock", "ProtocolError", "SyncPipe"]


#: bytes asked of one ``recv``: a lone reply is ~40 bytes; batches loop
_RECV = 16384


def _kernel_timeouts(sock: socket.socket, timeout: float) -> None:
    """Bound each send and receive of a plain socket by ``timeout`` in the kernel (``SO_SNDTIMEO`` /
    ``SO_RCVTIMEO``) and make the socket blocking: CPython then calls ``send``/``recv`` directly instead of
    ``poll`` first (two system calls a check fewer). A timed-out call raises ``OSError`` (``EAGAIN``) as
    before. TLS sockets keep Python's timeout (their reads may need several socket reads).
    """
    if type(sock) is not socket.socket:
        return
    sec = int(timeout)
    usec = max(round((timeout - sec) * 1_000_000), 0 if sec else 1)  # (0, 0) would mean "no timeout"
    tv = struct.pack("ll", sec, min(usec, 999_999))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    sock.settimeout(None)


class ProtocolError(Exception):
    """The reply was not the integer array the script returns."""


class ErrorReply(Exception):
    """An error reply (``-ERR …``) to one pipelined request."""


def _reply_end(buf: bytes | bytearray, pos: int) -> int | None:
    """Where the RESP reply starting at ``buf[pos]`` ends, or None while it is incomplete."""
    try:
        return _reply_end_unchecked(buf, pos)
    except ValueError:  # a length that is not a number
        raise ProtocolError("unexpected reply from Redis") from None


def _reply_end_unchecked(buf: bytes | bytearray, pos: int) -> int | None:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind = buf[pos]
    if kind in b"+-:":
        return end + 2
    if kind == 0x24:  # "$": a bulk string (SCRIPT LOAD's answer)
        n = int(buf[pos + 1 : end])
        if n < 0:
            return end + 2
        stop = end + 2 + n + 2
        return stop if len(buf) >= stop else None
    if kind == 0x2A:  # "*": the script's array of integers
        p: int | None = end + 2
        for _ in range(int(buf[pos + 1 : end])):
            assert p is not None
            if buf[p : p + 1] == b":":  # the script's integers: the common case, no recursion
                e = buf.find(b"\r\n", p)
                if e < 0:
                    return None
                p = e + 2
                continue
            p = _reply_end_unchecked(buf, p)
            if p is None:
                return None
        return p
    raise ProtocolError("unexpected reply from Redis")


def _parse_reply(buf: bytearray, pos: int) -> tuple[bytes | ErrorReply, int] | None:
    """One reply (raw bytes) or an error reply, from ``buf[pos:]``; None if incomplete."""
    end = _reply_end(buf, pos)
    if end is None:
        return None
    if buf[pos] == 0x2D:  # "-"
        return ErrorReply(buf[pos + 1 : end - 2].decode("utf-8", "replace")), end
    return bytes(buf[pos:end]), end


class _Waiter:
    """One thread's request in a :class:`SyncPipe`."""

    __slots__ = ("done", "error", "lead", "reply", "request", "since")

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.reply: bytes | ErrorReply | None = None
        self.error: BaseException | None = None
        #: set when the reply is in, or when this thread is handed the connection; only a thread that
        #: waits for a leader needs one
        self.done: threading.Event | None = None
        #: handed the connection by the previous leader: carry the queue (our own request is in it)
        self.lead = False
        #: when the call queued (``time.monotonic()``): a thread handed the connection counts its time
        #: leading from here, so its own call stays bounded however long it waited
        self.since = 0.0


class PollOrBlock:
    """Whether a lone caller should poll its socket for the reply or block in ``recv``, learnt from the
    latencies of both on this machine, as it is now.

    Polling wins on an idle virtual machine (no halted vCPU to wake: ~47 µs a check here against ~130 µs)
    and loses when every core is busy (the poller takes CPU from Redis and everything else: ~70–150 µs
    against ~40 µs here), and load changes. So each mode's recent latency is kept (an exponentially weighted
    mean, a sample capped at four times the mean so one stall does not swing it), the faster one is used,
    polling only when it is clearly faster (below ``MARGIN`` of blocking's, since it costs CPU), and one call
    every ``EXPLORE_S`` seconds uses the other mode to keep its figure current (by time, not by count: under
    load a poll cost ~110 µs more than a block here, which one call in 32 would have spread as ~3.5 µs on
    every call). With a remote Redis, whose replies take longer than the polling budget, polling brings
    nothing and blocking is kept.
    """

    EXPLORE_S = 0.05
    MARGIN = 0.9
    ALPHA = 0.125

    __slots__ = ("block_s", "explored_at", "poll_s")

    def __init__(self) -> None:
        #: mean seconds from send to first reply bytes of lone calls that polled / that blocked
        self.poll_s: float | None = None
        self.block_s: float | None = None
        #: when a call last used the mode not preferred
        self.explored_at = 0.0

    def prefers_polling(self) -> bool:
        """The mode in use between explorations (polling first, to measure both modes early)."""
        if self.poll_s is None:
            return True
        if self.block_s is None:
            return False
        return self.poll_s < self.MARGIN * self.block_s

    def choose(self, now: float) -> bool:
        """True: poll for the reply of a call made at ``now`` (``time.perf_counter()``); False: block."""
        best = self.prefers_polling()
        if now - self.explored_at >= self.EXPLORE_S and self.poll_s is not None and self.block_s is not None:
            self.explored_at = now
            return not best
        return best

    def record(self, polled: bool, seconds: float) -> None:
        """One lone call's latency, in the mode it used."""
        old = self.poll_s if polled else self.block_s
        new = seconds if old is None else old + self.ALPHA * (min(seconds, 4 * old) - old)
        if polled:
            self.poll_s = new
        else:
            self.block_s = new


class SyncPipe:
    """One Redis connection shared by every thread of a process, with automatic pipelining.

    A thread that finds the connection idle becomes the leader: it writes every queued request in one
    ``sendall``, reads their replies in order, hands each to its thread, and repeats while requests keep
    arriving, but for at most ``timeout`` seconds: then it hands the connection to the first queued thread,
    which does the same. So no caller is kept carrying others' requests for long however busy the
    connection stays (a leader's call takes at most about ``timeout`` plus one round trip; a thread handed
    the connection counts from when it queued, so its call is bounded the same way).
    Threads that arrive meanwhile just queue and wait. A lone caller pays one lock round; many
    concurrent callers share round trips instead of each paying one, on one connection.
    """

    def __init__(self, conn: Any, timeout: float, spin: float = 0.0) -> None:
        self.conn = conn
        self.timeout = timeout
        #: seconds a lone caller polls for its reply before it blocks in ``recv`` (0: never)
        self.spin = spin
        #: learns whether polling or blocking answers lone calls sooner on this machine, now
        self.chooser = PollOrBlock()
        self.lock = threading.Lock()
        self.queue: list[_Waiter] = []
        self.busy = False
        self.error: BaseException | None = None
        self.buf = bytearray()
        #: the socket whose timeouts we moved into the kernel
        self._tuned: socket.socket | None = None

    def call(self, request: bytes) -> bytes | ErrorReply:
        with self.lock:
            if self.error is not None:
                raise self.error
            if self.busy:
                me = _Waiter(request)
                me.done = threading.Event()
                me.since = time.monotonic()
                self.queue.append(me)
            else:
                self.busy = True
                me = None
        if me is None:
            # the connection was idle: our request goes alone, no waiter and no batch to build
            since = time.monotonic()
            try:
                reply = self._exchange_one(request)
            except BaseException as exc:
                # the connection is unusable either way; a KeyboardInterrupt or SystemExit still propagates
                self.fail(exc if isinstance(exc, Exception) else ConnectionError("interrupted"))
                raise
            with self.lock:
                if not self.queue:
                    self.busy = False
                    return reply
            self._lead(since)  # requests queued meanwhile: carry them (this also releases the connection)
            return reply
        # queued behind a batch in flight: at most that batch's timeout, then ours
        assert me.done is not None
        try:
            answered = me.done.wait(2 * self.timeout)
        except BaseException:
            # interrupted while waiting (KeyboardInterrupt, SystemExit from a signal handler): leave the
            # queue, and pass the connection on if it was just handed to us, or nobody would lead again
            self._abandon(me)
            raise
        if not answered:
            with self.lock:
                handed = me.lead
                if not handed and me in self.queue:
                    self.queue.remove(me)  # not sent yet: never send it (nor hand the connection to us)
            if not handed:
                raise TimeoutError("Redis did not answer in time")
            # handed the connection just as we gave up: carry the queue anyway, or nobody would
        if me.lead and me.reply is None and me.error is None:
            me.lead = False
            self._lead(me.since)  # our own request is in the queue; the time we waited counts
        if me.error is not None:
            raise me.error
        if me.reply is None:
            raise TimeoutError("Redis did not answer in time")
        return me.reply

    def _abandon(self, me: _Waiter) -> None:
        """A waiter interrupted before its reply: its request is not sent (if still queued) and, if it had
        been handed the connection, the connection goes to the next queued thread (or becomes idle).
        """
        heir = None
        with self.lock:
            if me in self.queue:
                self.queue.remove(me)
            if me.lead:
                me.lead = False
                if self.queue:
                    heir = self.queue[0]
                    heir.lead = True
                else:
                    self.busy = False
        if heir is not None:
            assert heir.done is not None
            heir.done.set()

    def _lead(self, since: float) -> None:
        """Carry the queued requests, a batch a round trip, while they keep coming; once this thread has
        led for ``timeout`` seconds (since ``since``), hand the connection to the next queued thread, so
        that no caller is kept carrying others' requests for long.
        """
        while True:
            with self.lock:
                batch, self.queue = self.queue, []
                if not batch:
                    self.busy = False
                    return
            try:
                self._exchange(batch)
            except Exception as exc:
                self.fail(exc, batch)
                return
            except BaseException:
                # interrupted (KeyboardInterrupt, SystemExit): the waiters fail, the interruption propagates
                self.fail(ConnectionError("interrupted"), batch)
                raise
            heir = None
            if time.monotonic() - since >= self.timeout:
                with self.lock:
                    if self.queue:
                        heir = self.queue[0]
                        heir.lead = True  # busy stays set: the connection passes straight to the heir
            for w in batch:
                if w.done is not None:
                    w.done.set()
            if heir is not None:
                assert heir.done is not None
                heir.done.set()
                return

    def _socket(self) -> socket.socket:
        sock: socket.socket | None = self.conn._sock  # redis-py keeps the connected socket here
        if sock is None:
            raise ConnectionError("the Redis connection is closed")
        if sock is not self._tuned:
            _kernel_timeouts(sock, self.timeout)
            self._tuned = sock
            if type(sock) is not socket.socket:
                self.spin = 0.0  # TLS sockets take no recv flags (and a record may need several reads)
        return sock

    def _exchange_one(self, request: bytes) -> bytes | ErrorReply:
        """A lone request: one send, usually one receive holding the whole reply."""
        sock = self._socket()
        deadline = time.monotonic() + self.timeout
        if self.spin:
            t0 = time.perf_counter()
            poll = self.chooser.choose(t0)
            sock.sendall(request)
            data = self._recv_polling(sock) if poll else sock.recv(_RECV)
            self.chooser.record(poll, time.perf_counter() - t0)
        else:
            sock.sendall(request)
            data = sock.recv(_RECV)
        if not data:
            raise ConnectionError("Redis closed the connection")
        first = data.find(b"\r\n")
        if (first == len(data) - 2 and data[0] in b":-+") or _reply_end(data, 0) == len(data):
            # the usual case: exactly one whole reply (one line for a one-rate tier or an error)
            return ErrorReply(data[1:-2].decode("utf-8", "replace")) if data[0] == 0x2D else data
        self.buf += data
        reply = self._read_reply(sock, deadline)
        if self.buf:
            raise ProtocolError("unexpected data from Redis")
        return reply

    def _read_reply(self, sock: socket.socket, deadline: float) -> bytes | ErrorReply:
        """The next whole reply: from ``self.buf``, receiving more until it is complete (or ``deadline``)."""
        buf = self.buf
        while (parsed := _parse_reply(buf, 0)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError("Redis did not answer in time")
            chunk = sock.recv(_RECV)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            buf += chunk
        reply, end = parsed
        del buf[:end]
        return reply

    def _recv_polling(self, sock: socket.socket) -> bytes:
        """The first bytes of a lone reply: poll without blocking for up to ``spin`` seconds, then block.

        Why: on a virtual machine, waking a thread blocked in ``recv`` costs tens of microseconds (the idle
        vCPU halts and needs an interrupt), as much as the loopback round trip itself; a caller that keeps
        polling sees the reply as it lands. Each poll is a non-blocking ``recv`` that releases the GIL.
        """
        until = time.perf_counter() + self.spin
        while True:
            try:
                return sock.recv(_RECV, socket.MSG_DONTWAIT)
            except BlockingIOError:
                if time.perf_counter() >= until:
                    return sock.recv(_RECV)

    def _exchange(self, batch: list[_Waiter]) -> None:
        sock = self._socket()
        deadline = time.monotonic() + self.timeout
        sock.sendall(b"".join(w.request for w in batch) if len(batch) > 1 else batch[0].request)
        for w in batch:
            w.reply = self._read_reply(sock, deadline)

    def fail(self, exc: BaseException, batch: Sequence[_Waiter] = ()) -> None:
        """Close the connection; every request in flight or queued fails (and takes the failure mode)."""
        with self.lock:
            if self.error is None:
                self.error = exc
            waiting, self.queue = [*batch, *self.queue], []
            self.busy = False
        self.conn.disconnect()
        for w in waiting:
            if w.reply is None and w.error is None:
                w.error = exc
            if w.done is not None:
                w.done.set()


class AsyncPipe:
    """One Redis connection shared by every task of an event loop, with automatic pipelining.

    Requests made in the same turn of the loop are written together (one ``write``); replies come back in
    order and a single reader task hands each to its waiting future. Many concurrent checks thus cost one
    round trip between them instead of one each, on one connection.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.reader: asyncio.StreamReader = conn._reader  # redis-py keeps the connected streams here
        self.writer: asyncio.StreamWriter = conn._writer
        self.loop = asyncio.get_running_loop()
        self.waiting: deque[asyncio.Future[bytes | ErrorReply]] = deque()
        self.out: list[bytes] = []
        self.flushing = False
        self.error: BaseException | None = None
        self.task = self.loop.create_task(self._read())

    def submit(self, request: bytes) -> asyncio.Future[bytes | ErrorReply]:
        if self.error is not None:
            raise self.error
        fut: asyncio.Future[bytes | ErrorReply] = self.loop.create_future()
        self.waiting.append(fut)
        self.out.append(request)
        if not self.flushing:
            self.flushing = True
            self.loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self.flushing = False
        if self.error is None and self.out:
            data = b"".join(self.out)
            self.out.clear()
            self.writer.write(data)

    async def _read(self) -> None:
        buf = bytearray()
        try:
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError("Redis closed the connection")
                buf += chunk
                pos = 0
                while self.waiting:
                    parsed = _parse_reply(buf, pos)
                    if parsed is None:
                        break
                    value, pos = parsed
                    fut = self.waiting.popleft()
                    if not fut.done():
                        fut.set_result(value)
                del buf[:pos]
        except BaseException as exc:  # every waiter learns why the connection ended
            self.fail(exc if isinstance(exc, Exception) else ConnectionError("connection closed"))

    def fail(self, exc: BaseException) -> None:
        """Close the connection and fail every request still waiting (they apply the failure mode)."""
        if self.error is None:
            self.error = exc
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(ConnectionError("the Redis connection failed"))
        if not self.task.done() and asyncio.current_task() is not self.task:
            self.task.cancel()
        self.writer.close()
