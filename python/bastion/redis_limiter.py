"""``RedisRateLimiter``: one rate-limit budget shared by every host, kept in Redis.

Same interface and semantics as :class:`bastion.RateLimiter` (``check`` / ``allow`` / ``acquire``, and
``acheck`` / ``aallow`` / ``aacquire`` for asyncio), with the GCRA run inside Redis:

* **One atomic Lua script per check.** It reads the server clock (``TIME``, integer microseconds, so
  hosts with skewed clocks still share one timeline), computes every rate of the tier, and writes the
  new theoretical arrival times only if *all* rates admit the request (nothing is written on denial).
  Each key is written with ``PX`` = the time until its bucket is full again, so idle keys vanish.
  The keys of one identity share a hash tag (``{prefix:tier:digest}:i``), so Redis Cluster keeps them in
  one slot. Identities are stored as a BLAKE3-128 digest, never raw.
* **Loaded once, called by SHA.** ``EVALSHA``; on ``NOSCRIPT`` (a restart, ``SCRIPT FLUSH``, a fail-over)
  the script is loaded again and the call repeated.
* **A per-call timeout and a per-tier failure mode.** Every call is bounded by ``timeout`` seconds (socket
  connect, send and receive; a call queued behind another's round trip waits at most twice that); when
  Redis cannot answer, the tier's ``failure_mode`` decides: ``"local"`` (the default: fall back to an
  in-process limiter with the same policies, ``Decision.source == "fallback"``), ``"open"`` (admit,
  ``source == "open"``) or ``"closed"`` (refuse, ``source == "closed"``; ``acquire`` raises
  ``AuthUnavailable``, a 503, rather than ``RateLimited``). After a failure Redis is not asked again for
  ``retry_interval`` seconds, so an outage costs each request nothing.

Where the time goes (loopback, one connection, this machine): the round trip is ~17 µs and the script
~5 µs, while redis-py's generic ``execute_command`` adds ~30 µs of Python (connection-pool checkout,
argument encoding, response callbacks). So bastion keeps one connection of its own per process (made by
redis-py's connection class, so URLs, AUTH, TLS and RESP3 work as usual), sends requests whose bytes are
mostly precomputed, and turns the flat integer array the script returns into a ``Decision`` in Rust (as
it hashes the identity): under 1 µs of Python a call. The connection pipelines automatically: threads
that check while a request is in flight queue, and the next round trip carries all of them (one lock
round for a lone caller); in asyncio, the checks an event loop makes in the same turn are written
together and their replies read in order by one reader task (one connection per loop).
Clients other than a plain ``redis.Redis`` (e.g. ``RedisCluster``) are used through their own
``evalsha``.

On a virtual machine the largest cost of a lone call is none of these but the wake-up: a thread blocked in
``recv`` sleeps on a halted vCPU and is woken by an interrupt, which here took ~55 µs of an ~85 µs
``PING`` (29 µs when the caller polls instead). So a lone synchronous caller may poll its socket with
non-blocking reads for up to ``spin`` seconds before it blocks; whether it does is learnt from the measured
latency of both ways, because polling loses when the cores are busy (see ``_redis_pipe.PollOrBlock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import struct
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion._core import Decision, RateLimiter, _redis_key_digest
from bastion._redis_pipe import AsyncPipe, ErrorReply, ProtocolError, SyncPipe
from bastion.errors import AuthUnavailable, ConfigurationError, RateLimited
from bastion.ratelimit import FailureMode, Policies

__all__ = ["SCRIPT", "RedisRateLimiter"]

#: seconds a lone synchronous caller polls for its reply before blocking, unless ``spin=`` says otherwise
DEFAULT_SPIN = 100e-6

#: The GCRA, all-or-nothing over a tier's rates. KEYS[i]: rate i's theoretical arrival time (TAT, µs on
#: the Redis clock). ARGV[1]: cost; ARGV[2i], ARGV[2i+1]: rate i's interval and tau (= burst × interval)
#: in µs. Returns, per rate, d = max(TAT - now, 0) before this request (µs until its bucket is full), or
#: -1 - d when that rate refuses (d + cost × interval > tau): one integer for a one-rate tier, else an
#: array. The new TATs are written only if every rate admits (nothing is written on denial), with PX =
#: the time until the bucket is full again. The client derives remaining / reset_after / retry_after from
#: d exactly (Rust, ``Decision._from_resp``), so the script does the least work a check needs: TIME, one
#: GET and one SET per rate, no tables for a one-rate tier. Lua numbers are doubles: exact for integers
#: below 2^53 µs (285 years); the TAT is written with %d (a C long), never in exponent form.
SCRIPT = """
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local cost = tonumber(ARGV[1])
local n = #KEYS
if n == 1 then
  local step = cost * tonumber(ARGV[2])
  local d = (tonumber(redis.call('GET', KEYS[1])) or now) - now
  if d < 0 then d = 0 end
  local r = d + step
  if r > tonumber(ARGV[3]) then return -1 - d end
  if step > 0 then
    redis.call('SET', KEYS[1], string.format('%d', now + r), 'PX', string.format('%d', math.ceil(r / 1000)))
  end
  return d
end
local out = {}
local ok = true
for i = 1, n do
  local d = (tonumber(redis.call('GET', KEYS[i])) or now) - now
  if d < 0 then d = 0 end
  if d + cost * tonumber(ARGV[2 * i]) > tonumber(ARGV[2 * i + 1]) then
    ok = false
    out[i] = -1 - d
  else
    out[i] = d
  end
end
if ok and cost > 0 then
  for i = 1, n do
    local r = out[i] + cost * tonumber(ARGV[2 * i])
    redis.call('SET', KEYS[i], string.format('%d', now + r), 'PX', string.format('%d', math.ceil(r / 1000)))
  end
end
return out
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()
_MODES = ("open", "closed", "local")
#: error replies that mean the server cannot serve anyone now (the others concern one request's key)
_SERVER_STATE_ERRORS = (
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "READONLY",
    "OOM",
    "NOAUTH",
    "NOPERM",
    "WRONGPASS",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MISCONF",
    "NOREPLICAS",
    "NOSCRIPT",
    "MOVED",
    "ASK",
)


def _bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def _resp(reply: object) -> bytes:
    """The script's answer through a caller's client (an int or a list of ints), back in RESP."""
    if isinstance(reply, int):
        return b":%d\r\n" % reply
    if isinstance(reply, list) and all(isinstance(v, int) for v in reply):
        return b"*%d\r\n" % len(reply) + b"".join(b":%d\r\n" % v for v in reply)
    raise ProtocolError("unexpected reply to the rate-limit script")


@dataclass(frozen=True)
class _Tier:
    name: str
    #: (quota, window) per rate, for the Decision
    shape: tuple[tuple[int, int], ...]
    #: per rate: limit, window (s), interval, tau (µs) as little-endian u64, for ``Decision._from_resp``
    packed: bytes
    max_cost: int
    mode: str
    #: the request before the keys: *N, EVALSHA, sha, numkeys
    head: bytes
    #: b"{prefix:tier:" — the hash tag's start
    tag: bytes
    #: per key: its RESP length header
    key_header: bytes
    #: the arguments after the cost: intervals and taus
    rate_args: bytes
    #: the same arguments as ints, for redis-py
    rate_argv: tuple[int, ...]
    #: precomputed pieces of the request: key header + hash tag start, per-key endings, cost 1 + rates
    key_prefix: bytes
    key_suffixes: tuple[bytes, ...]
    tail1: bytes
    #: what a reply starts with: b":" for one rate, b"*N\r\n" for N
    reply_head: bytes
    #: a one-rate tier
    single: bool
    #: a one-rate tier's request at cost 1 is ``pre1 + digest + post1``
    pre1: bytes
    post1: bytes


def _tier(name: str, rates: list[Any] | None, prefix: str, mode: str) -> _Tier | None:
    if rates is None:
        return None
    argv: list[int] = []
    for r in rates:
        if r.period_ns < 1000 * r.count:
            raise ConfigurationError("a Redis rate cannot be faster than one request per microsecond")
        interval_us = -(-r.period_ns // (1000 * r.count))
        argv += [interval_us, interval_us * r.burst]
    n = len(rates)
    tag = f"{{{prefix}:{name}:".encode()
    key_len = len(tag) + 32 + 1 + 1 + len(str(n - 1))
    head = b"*%d\r\n" % (3 + n + 1 + 2 * n) + _bulk(b"EVALSHA") + _bulk(SCRIPT_SHA.encode()) + _bulk(b"%d" % n)
    key_prefix = b"$%d\r\n" % key_len + tag
    tail1 = _bulk(b"1") + b"".join(_bulk(b"%d" % a) for a in argv)
    return _Tier(
        name=name,
        shape=tuple((int(r.burst), int(r.window)) for r in rates),
        packed=b"".join(
            struct.pack("<4Q", int(r.burst), int(r.window), argv[2 * i], argv[2 * i + 1]) for i, r in enumerate(rates)
        ),
        max_cost=min(int(r.burst) for r in rates),
        mode=mode,
        head=head,
        tag=tag,
        key_header=b"$%d\r\n" % key_len,
        rate_args=b"".join(_bulk(b"%d" % a) for a in argv),
        rate_argv=tuple(argv),
        key_prefix=key_prefix,
        key_suffixes=tuple(b"}:%d\r\n" % i for i in range(n)),
        tail1=tail1,
        reply_head=b":" if n == 1 else b"*%d\r\n" % n,
        single=n == 1,
        pre1=head + key_prefix,
        post1=b"}:0\r\n" + tail1,
    )


#: BLAKE3-128 of the key as 32 hex digits (Rust): the same on every host, never the raw identity.
_digest = _redis_key_digest


_LIMITERS: weakref.WeakSet[RedisRateLimiter] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for limiter in list(_LIMITERS):
        limiter._after_fork()


os.register_at_fork(after_in_child=_forget_connections_after_fork)


class RedisRateLimiter:
    """A rate limiter whose buckets live in Redis, shared by every process and host that uses it.

    ``redis``: a URL (``redis://``, ``rediss://``, ``unix://``), a ``redis.Redis`` client (its connection
    settings are reused, with bastion's ``timeout``), a ``redis.asyncio.Redis`` client (async methods
    only) or another redis-py client with ``evalsha`` (e.g. ``RedisCluster``; its own timeouts apply).
    ``policies``, ``default``: as for :class:`bastion.RateLimiter`. ``failure_mode``: one mode for every
    tier, or a dict of tier → mode (tiers not named use ``"local"``). ``max_keys`` and ``clock`` configure
    the in-process fallback limiter. ``spin``: seconds a lone synchronous caller may poll its socket for
    the reply before it blocks (default 100 µs, or ``timeout`` if shorter; 0 never polls). On an idle
    virtual machine waking a blocked thread costs about as much as a loopback round trip, so polling more
    than halves a lone check's latency, at the price of that much CPU; when the cores are busy it is slower
    instead. So the caller measures both ways as it goes and polls only while polling is clearly faster
    (which it is not against a remote Redis whose replies take longer than ``spin``). Plain TCP and Unix
    sockets only (not TLS), and not the asyncio methods. A lone reply is awaited for at most
    ``spin + timeout``.
    """

    def __init__(
        self,
        redis: Any,
        policies: Policies,
        *,
        default: str | None = None,
        prefix: str = "bastion:rl",
        timeout: float = 0.1,
        spin: float | None = None,
        failure_mode: FailureMode | Mapping[str, FailureMode] = "local",
        retry_interval: float = 1.0,
        max_keys: int | None = None,
        clock: Any = None,
    ) -> None:
        try:
            import redis as redis_py
            import redis.asyncio as redis_asyncio
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - redis is in the test extra
            raise ConfigurationError("RedisRateLimiter needs redis-py: pip install 'bastion[redis]'") from exc
        self._redis_py = redis_py
        self._local = RateLimiter(policies, default=default, max_keys=max_keys, clock=clock)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 60:
            raise ConfigurationError("timeout must be a number of seconds in (0, 60]")
        if spin is None:
            spin = min(DEFAULT_SPIN, timeout)
        if not isinstance(spin, (int, float)) or isinstance(spin, bool) or not 0 <= spin <= min(0.01, timeout):
            raise ConfigurationError("spin must be a number of seconds in [0, 0.01], and at most timeout")
        self._spin = float(spin)
        if not isinstance(retry_interval, (int, float)) or isinstance(retry_interval, bool) or retry_interval < 0:
            raise ConfigurationError("retry_interval must be a non-negative number of seconds")
        # isprintable: no line breaks, no lone surrogates (which have no UTF-8 form)
        if not isinstance(prefix, str) or not prefix or not prefix.isprintable() or "{" in prefix or "}" in prefix:
            raise ConfigurationError("prefix must be a non-empty printable str without braces")
        for name in self._local.policies:
            if "{" in name or "}" in name:
                # a brace would end the hash tag early and put every identity of the tier in one slot
                raise ConfigurationError("a tier name used with Redis must not contain braces")
        modes = self._modes(failure_mode)
        self._timeout = float(timeout)
        self._retry_interval = float(retry_interval)
        self._down_until = 0.0
        self._tiers: dict[str, _Tier | None] = {
            name: _tier(name, rates, prefix, modes.get(name, "local")) for name, rates in self._local.policies.items()
        }
        self._default_name: str = self._local.default
        self._noretry = Retry(NoBackoff(), 0)
        # sync: our own connections, made by redis-py's connection class with our timeouts
        self._conn_factory: Any = None
        self._generic: Any = None  # a client used through evalsha (cluster, …)
        self._pipe_sync: SyncPipe | None = None
        # a forked child (e.g. a pre-forking server) must never touch the parent's socket: forget it there
        _LIMITERS.add(self)
        self._lock = threading.Lock()
        # async: one redis.asyncio client per event loop (their connections belong to one loop)
        self._url: str | None = None
        self._aclient: Any = None
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._pipes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncPipe] = weakref.WeakKeyDictionary()
        self._pipe_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        if isinstance(redis, str):
            self._url = redis
            pool = redis_py.ConnectionPool.from_url(redis, **self._conn_options())
            self._conn_factory = (pool.connection_class, dict(pool.connection_kwargs))
        elif isinstance(redis, redis_asyncio.Redis):
            self._aclient = redis
        elif isinstance(redis, redis_py.Redis):
            pool = redis.connection_pool
            options = self._conn_options()
            if pool.connection_kwargs.get("client_name"):
                del options["client_name"]
            self._conn_factory = (pool.connection_class, {**pool.connection_kwargs, **options})
        elif hasattr(redis, "evalsha"):
            self._generic = redis
        else:
            raise ConfigurationError("redis must be a URL, a redis.Redis or a redis.asyncio.Redis client")

    # ------------------------------------------------------------------------------------ configuration

    def _modes(self, failure_mode: object) -> dict[str, str]:
        names = set(self._local.policies)
        if isinstance(failure_mode, str):
            if failure_mode not in _MODES:
                raise ConfigurationError("failure_mode must be 'open', 'closed' or 'local'")
            return dict.fromkeys(names, failure_mode)
        if isinstance(failure_mode, Mapping):
            for tier, mode in failure_mode.items():
                if tier not in names:
                    raise ConfigurationError("failure_mode names a tier that is not in the policies")
                if mode not in _MODES:
                    raise ConfigurationError("failure_mode must be 'open', 'closed' or 'local'")
            return dict(failure_mode)
        raise ConfigurationError("failure_mode must be a mode or a dict of tier to mode")

    def _conn_options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
            "retry": self._noretry,
            "retry_on_timeout": False,
            "client_name": "bastion-ratelimit",
        }

    @property
    def policies(self) -> dict[str, list[Any] | None]:
        """The tiers and their rates (``None``: unlimited)."""
        return self._local.policies

    @property
    def default(self) -> str:
        """The default tier."""
        return self._default_name

    @property
    def local(self) -> RateLimiter:
        """The in-process limiter used for unlimited tiers and as the ``"local"`` fallback."""
        return self._local

    def _after_fork(self) -> None:
        """In a forked child: drop the parent's connections without closing them (they are the parent's)."""
        self._lock = threading.Lock()
        self._pipe_sync = None
        self._pipes = weakref.WeakKeyDictionary()
        self._pipe_locks = weakref.WeakKeyDictionary()
        self._aclients = weakref.WeakKeyDictionary()

    def close(self) -> None:
        """Close the connection this limiter opened (it reconnects if used again)."""
        with self._lock:
            pipe, self._pipe_sync = self._pipe_sync, None
        if pipe is not None:
            pipe.fail(ConnectionError("closed"))

    def __enter__(self) -> RedisRateLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisRateLimiter(tiers={list(self._tiers)!r}, default={self._default_name!r})"

    # ----------------------------------------------------------------------------------------- helpers

    def _spec(self, tier: object) -> tuple[str, _Tier | None]:
        if tier is None:
            name = self._default_name
        elif isinstance(tier, str):
            name = tier if tier in self._tiers else self._default_name
        else:
            raise ConfigurationError("tier must be a str or None")
        return name, self._tiers[name]

    @staticmethod
    def _cost(spec: _Tier, cost: object) -> int:
        # any int but a bool, as RateLimiter takes it (an IntEnum member too)
        if not isinstance(cost, int) or isinstance(cost, bool):
            raise ConfigurationError("cost must be an int")
        if not 0 <= cost <= spec.max_cost:
            raise ConfigurationError("cost must be between 0 and the tier's burst")
        return int(cost)

    @staticmethod
    def _request(spec: _Tier, digest: bytes, cost: int) -> bytes:
        tail = spec.tail1 if cost == 1 else _bulk(b"%d" % cost) + spec.rate_args
        if len(spec.key_suffixes) == 1:
            return spec.head + spec.key_prefix + digest + spec.key_suffixes[0] + tail
        keys = b"".join([spec.key_prefix + digest + suffix for suffix in spec.key_suffixes])
        return spec.head + keys + tail

    def _argv(self, spec: _Tier, digest: bytes, cost: int) -> list[Any]:
        tag = spec.tag + digest + b"}:"
        keys = [tag + b"%d" % i for i in range(len(spec.shape))]
        return [len(keys), *keys, cost, *spec.rate_argv]

    @staticmethod
    def _decision(name: str, spec: _Tier, cost: int, reply: bytes) -> Decision:
        d = Decision._from_resp(name, spec.packed, cost, reply)
        if d is None:
            raise ProtocolError("unexpected reply to the rate-limit script")
        return d

    def _degraded(self, name: str, spec: _Tier, key: str | bytes, cost: int) -> Decision:
        if spec.mode == "local":
            return self._local.check(key, name, cost)._relabel("fallback")
        if spec.mode == "open":
            return Decision(True, name, source="open")
        wait = max(self._down_until - time.monotonic(), self._retry_interval, 0.001)
        return Decision(False, name, retry_after=wait, source="closed")

    def _failed(self, exc: BaseException) -> None:
        # Redis answered this one request with an error about its key (e.g. WRONGTYPE: the key holds
        # something else, or an unusable value): the server is fine, so only this request degrades.
        # (redis-py raises subclasses of ResponseError for server states: ReadOnlyError, OutOfMemoryError, …)
        if type(exc) is self._redis_py.ResponseError and not str(exc).startswith(_SERVER_STATE_ERRORS):
            return
        self._down_until = time.monotonic() + self._retry_interval

    def _is_down(self) -> bool:
        return self._down_until != 0.0 and time.monotonic() < self._down_until

    @staticmethod
    def _raise_if_refused(d: Decision) -> Decision:
        if d.allowed:
            return d
        if d.source == "closed":
            raise AuthUnavailable("rate limiting is temporarily unavailable", retry_after=d.retry_after)
        raise RateLimited(retry_after=d.retry_after)

    # ------------------------------------------------------------------------------------ sync, Redis I/O

    def _sync_pipe(self) -> SyncPipe:
        pipe = self._pipe_sync
        if pipe is not None and pipe.error is None:
            return pipe
        with self._lock:
            pipe = self._pipe_sync
            if pipe is None or pipe.error is not None:
                cls, kwargs = self._conn_factory
                conn = cls(**kwargs)
                conn.connect()
                pipe = self._pipe_sync = SyncPipe(conn, self._timeout, self._spin)
        return pipe

    def _call(self, spec: _Tier, digest: bytes, cost: int) -> bytes:
        """Run the script for one key: its raw reply (a caller's client's answer is encoded back to RESP).

        Raises on any failure; the caller applies the failure mode.
        """
        pipe = self._pipe_sync
        if pipe is None or pipe.error is not None:
            if self._conn_factory is None:
                return self._call_generic(spec, digest, cost)
            pipe = self._sync_pipe()
        # the common request (cost 1, one rate) is precomputed but for the digest
        request = spec.pre1 + digest + spec.post1 if cost == 1 and spec.single else self._request(spec, digest, cost)
        reply = pipe.call(request)
        if reply.__class__ is bytes:
            return reply
        if isinstance(reply, ErrorReply) and str(reply).startswith("NOSCRIPT"):
            load = b"*3\r\n" + _bulk(b"SCRIPT") + _bulk(b"LOAD") + _bulk(SCRIPT.encode())
            loaded = pipe.call(load)
            if isinstance(loaded, ErrorReply):
                # its own prefix says what it means (-NOPERM: Redis is unusable to us, not one key)
                raise self._redis_py.ResponseError(str(loaded))
            if loaded != _bulk(SCRIPT_SHA.encode()):
                raise ProtocolError("SCRIPT LOAD returned an unexpected digest")
            reply = pipe.call(request)
        if isinstance(reply, ErrorReply):
            raise self._redis_py.ResponseError(str(reply))
        return reply

    def _call_generic(self, spec: _Tier, digest: bytes, cost: int) -> bytes:
        client = self._generic
        if client is None:
            raise ConfigurationError("this limiter was given an asyncio client: use acheck/aallow/aacquire")
        argv = self._argv(spec, digest, cost)
        try:
            reply = client.evalsha(SCRIPT_SHA, *argv)
        except self._redis_py.exceptions.NoScriptError:
            client.script_load(SCRIPT)
            reply = client.evalsha(SCRIPT_SHA, *argv)
        return _resp(reply)

    def _errors(self) -> tuple[type[BaseException], ...]:
        # TimeoutError: asyncio.timeout; OSError: sockets (socket.timeout is an OSError)
        return (self._redis_py.RedisError, OSError, TimeoutError, ProtocolError)

    # --------------------------------------------------------------------------------------- sync API

    def check(self, key: str | bytes, tier: str | None = None, cost: int = 1) -> Decision:
        """Take ``cost`` tokens from ``key``'s shared bucket in ``tier`` if every rate has them."""
        name, spec = self._spec(tier)
        if spec is None:
            return self._local.check(key, name, cost)
        if cost.__class__ is not int or not 0 <= cost <= spec.max_cost:
            cost = self._cost(spec, cost)  # raises
        digest = _digest(key)
        if self._down_until != 0.0 and self._is_down():
            return self._degraded(name, spec, key, cost)
        try:
            d = Decision._from_resp(name, spec.packed, cost, self._call(spec, digest, cost))
            if d is None:
                raise ProtocolError("unexpected reply to the rate-limit script")
        except self._errors() as exc:
            self._failed(exc)
            return self._degraded(name, spec, key, cost)
        return d

    def allow(self, key: str | bytes, tier: str | None = None) -> bool:
        """True if ``key`` may make one request now (and takes the token)."""
        name, spec = self._spec(tier)
        if spec is None:
            return self._local.allow(key, name)  # True, once the key's type is checked
        digest = _digest(key)
        if not self._is_down():
            try:
                return self._decision(name, spec, 1, self._call(spec, digest, 1)).allowed
            except self._errors() as exc:
                self._failed(exc)
        return self._degraded(name, spec, key, 1).allowed

    def acquire(self, key: str | bytes, tier: str | None = None, cost: int = 1) -> Decision:
        """Like :meth:`check`, but raise ``RateLimited`` when refused (``AuthUnavailable`` when closed)."""
        return self._raise_if_refused(self.check(key, tier, cost))

    # -------------------------------------------------------------------------------------- asyncio API

    def _async_client(self) -> Any:
        if self._aclient is not None:
            return self._aclient
        if self._url is None:
            raise ConfigurationError("the async methods need a URL or a redis.asyncio client")
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            import redis.asyncio as redis_asyncio
            from redis.asyncio.retry import Retry as AsyncRetry
            from redis.backoff import NoBackoff

            options = {**self._conn_options(), "retry": AsyncRetry(NoBackoff(), 0)}
            client = redis_asyncio.Redis.from_url(self._url, **options)
            self._aclients[loop] = client
        return client

    async def _pipe(self) -> AsyncPipe:
        loop = asyncio.get_running_loop()
        pipe = self._pipes.get(loop)
        if pipe is not None and pipe.error is None:
            return pipe
        # one connection per loop: the tasks that arrive while it is being made wait for it
        lock = self._pipe_locks.get(loop)
        if lock is None:
            lock = self._pipe_locks[loop] = asyncio.Lock()
        async with lock:
            pipe = self._pipes.get(loop)
            if pipe is None or pipe.error is not None:
                conn = self._async_client().connection_pool.make_connection()
                await conn.connect()
                pipe = self._pipes[loop] = AsyncPipe(conn)
        return pipe

    async def _acall(self, spec: _Tier, digest: bytes, cost: int) -> bytes:
        client = self._async_client()
        if self._aclient is not None:
            # a caller's client (e.g. a cluster): its own evalsha, no pipelining of ours
            argv = self._argv(spec, digest, cost)
            async with asyncio.timeout(self._timeout):
                try:
                    reply = await client.evalsha(SCRIPT_SHA, *argv)
                except self._redis_py.exceptions.NoScriptError:
                    await client.script_load(SCRIPT)
                    reply = await client.evalsha(SCRIPT_SHA, *argv)
            return _resp(reply)
        request = self._request(spec, digest, cost)
        pipe: AsyncPipe | None = None
        try:
            async with asyncio.timeout(self._timeout):
                pipe = await self._pipe()
                value = await pipe.submit(request)
                if isinstance(value, ErrorReply) and str(value).startswith("NOSCRIPT"):
                    await client.script_load(SCRIPT)
                    value = await pipe.submit(request)
        except TimeoutError:
            if pipe is not None:
                pipe.fail(TimeoutError("Redis did not answer in time"))
            raise
        if isinstance(value, ErrorReply):
            raise self._redis_py.ResponseError(str(value))
        return value

    async def acheck(self, key: str | bytes, tier: str | None = None, cost: int = 1) -> Decision:
        """:meth:`check` for asyncio."""
        name, spec = self._spec(tier)
        if spec is None:
            return self._local.check(key, name, cost)
        cost = self._cost(spec, cost)
        digest = _digest(key)
        if self._is_down():
            return self._degraded(name, spec, key, cost)
        try:
            return self._decision(name, spec, cost, await self._acall(spec, digest, cost))
        except self._errors() as exc:
            self._failed(exc)
            return self._degraded(name, spec, key, cost)

    async def aallow(self, key: str | bytes, tier: str | None = None) -> bool:
        """:meth:`allow` for asyncio."""
        return (await self.acheck(key, tier)).allowed

    async def aacquire(self, key: str | bytes, tier: str | None = None, cost: int = 1) -> Decision:
        """:meth:`acquire` for asyncio."""
        return self._raise_if_refused(await self.acheck(key, tier, cost))

    async def aclose(self) -> None:
        """Close the asyncio clients this limiter made (and the sync connections)."""
        self.close()
        loop = asyncio.get_running_loop()
        pipe = self._pipes.pop(loop, None)
        if pipe is not None:
            pipe.fail(ConnectionError("closed"))
            with contextlib.suppress(BaseException):
                await pipe.task
        clients = list(self._aclients.values())
        self._aclients.clear()
        for client in clients:
            await client.aclose()
