"""The rate-limit script (``gcra.lua``) as ``RedisRateLimiter`` sends it: a tier's precomputed request bytes,
and the one exchange that runs the script over any transport (loading it again on ``NOSCRIPT``).

The request of a check is mostly fixed per tier: only the identity's digest, and the cost when it is not 1,
change between calls, so each tier keeps the bytes around them (``Tier``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, TypeVar

from bastion.errors import ConfigurationError
from bastion.ratelimit._pipe import ErrorReply, ProtocolError

__all__ = ["LOAD", "SCRIPT", "SCRIPT_SHA", "Tier", "aevaluate", "argv", "evaluate", "request", "resp", "tier"]

SCRIPT = files(__package__).joinpath("gcra.lua").read_text(encoding="utf-8")
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()


def _bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


#: ``SCRIPT LOAD`` in RESP, and the reply that says the script is loaded
LOAD = b"*3\r\n" + _bulk(b"SCRIPT") + _bulk(b"LOAD") + _bulk(SCRIPT.encode())
LOADED = _bulk(SCRIPT_SHA.encode())


@dataclass(frozen=True)
class Tier:
    #: per rate: limit, window (s), interval, tau (µs) as little-endian u64, for ``Decision._from_resp``
    packed: bytes
    max_cost: int
    mode: str
    #: the request before the keys: *N, EVALSHA, sha, numkeys
    head: bytes
    #: b"{prefix:tier:" — the hash tag's start
    tag: bytes
    #: the arguments after the cost: intervals and taus
    rate_args: bytes
    #: the same arguments as ints, for redis-py
    rate_argv: tuple[int, ...]
    #: precomputed pieces of the request: key header + hash tag start, per-key endings, cost 1 + rates
    key_prefix: bytes
    key_suffixes: tuple[bytes, ...]
    tail1: bytes
    #: a one-rate tier
    single: bool
    #: a one-rate tier's request at cost 1 is ``pre1 + digest + post1``
    pre1: bytes
    post1: bytes


def tier(name: str, rates: list[Any] | None, prefix: str, mode: str) -> Tier | None:
    """The request pieces of one tier (None for an unlimited tier, which never reaches Redis)."""
    if rates is None:
        return None
    args: list[int] = []
    for r in rates:
        if r.period_ns < 1000 * r.count:
            raise ConfigurationError("a Redis rate cannot be faster than one request per microsecond")
        interval_us = -(-r.period_ns // (1000 * r.count))
        args += [interval_us, interval_us * r.burst]
    n = len(rates)
    tag = f"{{{prefix}:{name}:".encode()
    key_len = len(tag) + 32 + 1 + 1 + len(str(n - 1))
    head = b"*%d\r\n" % (3 + n + 1 + 2 * n) + _bulk(b"EVALSHA") + _bulk(SCRIPT_SHA.encode()) + _bulk(b"%d" % n)
    key_prefix = b"$%d\r\n" % key_len + tag
    tail1 = _bulk(b"1") + b"".join(_bulk(b"%d" % a) for a in args)
    return Tier(
        packed=b"".join(
            struct.pack("<4Q", int(r.burst), int(r.window), args[2 * i], args[2 * i + 1]) for i, r in enumerate(rates)
        ),
        max_cost=min(int(r.burst) for r in rates),
        mode=mode,
        head=head,
        tag=tag,
        rate_args=b"".join(_bulk(b"%d" % a) for a in args),
        rate_argv=tuple(args),
        key_prefix=key_prefix,
        key_suffixes=tuple(b"}:%d\r\n" % i for i in range(n)),
        tail1=tail1,
        single=n == 1,
        pre1=head + key_prefix,
        post1=b"}:0\r\n" + tail1,
    )


def request(spec: Tier, digest: bytes, cost: int) -> bytes:
    """The ``EVALSHA`` of one check in RESP."""
    if cost == 1 and spec.single:  # the common request: precomputed but for the digest
        return spec.pre1 + digest + spec.post1
    tail = spec.tail1 if cost == 1 else _bulk(b"%d" % cost) + spec.rate_args
    if spec.single:
        return spec.head + spec.key_prefix + digest + spec.key_suffixes[0] + tail
    keys = b"".join([spec.key_prefix + digest + suffix for suffix in spec.key_suffixes])
    return spec.head + keys + tail


def argv(spec: Tier, digest: bytes, cost: int) -> list[Any]:
    """The arguments of ``evalsha(SCRIPT_SHA, *argv)`` for a caller's redis-py client."""
    tag = spec.tag + digest + b"}:"
    keys = [tag + b"%d" % i for i in range(len(spec.key_suffixes))]
    return [len(keys), *keys, cost, *spec.rate_argv]


def resp(reply: object) -> bytes:
    """The script's answer through a caller's client (an int or a list of ints), back in RESP."""
    if isinstance(reply, int):
        return b":%d\r\n" % reply
    if isinstance(reply, list) and all(isinstance(v, int) for v in reply):
        return b"*%d\r\n" % len(reply) + b"".join(b":%d\r\n" % v for v in reply)
    raise ProtocolError("unexpected reply to the rate-limit script")


M = TypeVar("M")


def _recover(reply: object, call: M, load: M, error: type[Exception]) -> Generator[M, object, bytes]:
    """The rest of a run of the script whose first reply was not a plain answer. On ``NOSCRIPT`` (a restart,
    ``SCRIPT FLUSH``, a fail-over) yields ``load`` once, then ``call`` again, and receives their replies. An error
    reply is raised as ``error`` (redis-py's ``ResponseError``), whose prefix says whether the server or only
    this key is at fault.
    """
    if isinstance(reply, ErrorReply) and str(reply).startswith("NOSCRIPT"):
        loaded = yield load
        if isinstance(loaded, ErrorReply):
            raise error(str(loaded))  # e.g. -NOPERM: Redis is unusable to us, not one key
        if loaded != LOADED:
            raise ProtocolError("SCRIPT LOAD returned an unexpected digest")
        reply = yield call
    if isinstance(reply, ErrorReply):
        raise error(str(reply))
    if not isinstance(reply, bytes):
        raise ProtocolError("unexpected reply to the rate-limit script")
    return reply


def evaluate(call: M, load: M, error: type[Exception], send: Callable[[M], object]) -> bytes:
    """Run the script with a blocking ``send`` (a message → its reply): ``call`` is the transport's ``EVALSHA``,
    ``load`` its ``SCRIPT LOAD``. Returns the raw reply."""
    reply = send(call)
    if reply.__class__ is bytes:  # the common case, without a generator
        return reply
    steps = _recover(reply, call, load, error)
    try:
        message = next(steps)
        while True:
            message = steps.send(send(message))
    except StopIteration as done:
        result: bytes = done.value
        return result


async def aevaluate(call: M, load: M, error: type[Exception], send: Callable[[M], Awaitable[object]]) -> bytes:
    """:func:`evaluate` with an awaiting ``send``."""
    reply = await send(call)
    if reply.__class__ is bytes:
        return reply
    steps = _recover(reply, call, load, error)
    try:
        message = next(steps)
        while True:
            message = steps.send(await send(message))
    except StopIteration as done:
        result: bytes = done.value
        return result
