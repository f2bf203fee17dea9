"""``RedisRateLimiter``: one rate-limit budget shared by every host, kept in Redis.

The interface and semantics of :class:`bastion.RateLimiter`, with the GCRA run in Redis by one atomic script
per check (``gcra.lua``, sent by ``_script``) over a pipelining connection of bastion's own (``_pipe``). This
module owns the rest: the configuration, the per-tier failure mode when Redis cannot answer, and the thin
sync and asyncio methods. Where a check's time goes: docs/PERFORMANCE.md, last section. Over 400 lines because the
connections it keeps (one per process, one per event loop, or a caller's client; forgotten after a fork) are
configured here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Mapping
from functools import partial
from typing import Any, TypeAlias

from bastion._core import Decision, RateLimiter, _redis_key_digest
from bastion.errors import AuthUnavailable, ConfigurationError, RateLimited
from bastion.ratelimit import FailureMode, Policies, _script
from bastion.ratelimit._pipe import AsyncPipe, ErrorReply, ProtocolError, SyncPipe
from bastion.ratelimit._script import LOAD, SCRIPT, SCRIPT_SHA, Tier, aevaluate, argv, evaluate, request

__all__ = ["DEFAULT_SPIN", "RedisRateLimiter"]

#: seconds a lone synchronous caller polls for its reply before blocking, unless ``spin=`` says otherwise
DEFAULT_SPIN = 100e-6

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


#: a check on its way to Redis: tier name, tier, key, key digest, cost
_Call: TypeAlias = tuple[str, Tier, "str | bytes", bytes, int]
#: ``SCRIPT LOAD`` in the exchange through a caller's client
_LOAD: Any = object()

#: BLAKE3-128 of the key as 32 hex digits (Rust): the same on every host, never the raw identity.
_digest = _redis_key_digest


_LIMITERS: weakref.WeakSet[RedisRateLimiter] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for limiter in list(_LIMITERS):
        limiter._after_fork()


os.register_at_fork(after_in_child=_forget_connections_after_fork)


def _seconds(value: object, message: str, low: float, high: float, *, low_open: bool = False) -> float:
    """A number of seconds in ``[low, high]`` (``(low, high]`` if ``low_open``), as a float; anything else (a
    bool, NaN, an int beyond the float range, a str) is a ConfigurationError saying ``message``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(message)
    try:
        seconds = float.__float__(value) if isinstance(value, float) else float(int.__int__(value))
    except OverflowError:
        raise ConfigurationError(message) from None
    if not (low < seconds if low_open else low <= seconds) or not seconds <= high:
        raise ConfigurationError(message)
    return seconds


def _mode(mode: object, message: str) -> str:
    name = str.__str__(mode) if isinstance(mode, str) else None
    if name is None or name not in _MODES:
        raise ConfigurationError(message)
    return name


class RedisRateLimiter:
    """A rate limiter whose buckets live in Redis, shared by every process and host that uses it.

    ``redis``: a URL (``redis://``, ``rediss://``, ``unix://``), a ``redis.Redis`` client (its connection
    settings are reused, with bastion's ``timeout``), a ``redis.asyncio.Redis`` client (async methods
    only) or another redis-py client with ``evalsha`` (e.g. ``RedisCluster``; its own timeouts apply).
    ``policies``, ``default``: as for :class:`bastion.RateLimiter`. ``failure_mode``: one mode for every
    tier, or a dict of tier → mode (tiers not named use ``"local"``), applied when Redis cannot answer within
    ``timeout`` seconds (a call queued behind another's round trip waits at most twice that, and one that waited for
    another thread's connection three times, however many threads call): ``"local"`` falls
    back to an in-process limiter with the same policies (``Decision.source == "fallback"``), ``"open"`` admits
    (``source == "open"``), ``"closed"`` refuses (``source == "closed"``; ``acquire`` raises ``AuthUnavailable``,
    a 503, rather than ``RateLimited``); after a failure Redis is not asked again for ``retry_interval``
    seconds. ``max_keys`` and ``clock`` configure
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
        timeout = _seconds(timeout, "timeout must be a number of seconds in (0, 60]", 0, 60, low_open=True)
        if spin is None:
            spin = min(DEFAULT_SPIN, timeout)
        self._spin = _seconds(
            spin, "spin must be a number of seconds in [0, 0.01], and at most timeout", 0, min(0.01, timeout)
        )
        retry_interval = _seconds(retry_interval, "retry_interval must be a number of seconds in [0, 86400]", 0, 86400)
        # isprintable: no line breaks, no lone surrogates (which have no UTF-8 form); a str subclass's own
        # methods are never called
        prefix = str.__str__(prefix) if isinstance(prefix, str) else prefix
        if not isinstance(prefix, str) or not prefix or not prefix.isprintable() or "{" in prefix or "}" in prefix:
            raise ConfigurationError("prefix must be a non-empty printable str without braces")
        for name in self._local.policies:
            if "{" in name or "}" in name:
                # a brace would end the hash tag early and put every identity of the tier in one slot
                raise ConfigurationError("a tier name used with Redis must not contain braces")
        modes = self._modes(failure_mode)
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._down_until = 0.0
        self._tiers: dict[str, Tier | None] = {
            name: _script.tier(name, rates, prefix, modes.get(name, "local"))
            for name, rates in self._local.policies.items()
        }
        self._default_name: str = self._local.default
        self._noretry = Retry(NoBackoff(), 0)
        # sync: our own connections, made by redis-py's connection class with our timeouts
        self._conn_factory: Any = None
        self._generic: Any = None  # a client used through evalsha (cluster, …)
        self._pipe_sync: SyncPipe | None = None
        #: when the last connection attempt failed (monotonic): threads that waited for it fail at once too
        self._connect_failed_at = -1.0
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
            self._url = str.__str__(redis)
            try:
                pool = redis_py.ConnectionPool.from_url(self._url, **self._conn_options())
            except Exception:
                # the parser's message quotes the URL, which may hold a password: not chained
                raise ConfigurationError(
                    "the Redis URL cannot be parsed (use redis://, rediss:// or unix://)"
                ) from None
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
        bad_mode = "failure_mode must be 'open', 'closed' or 'local'"
        if isinstance(failure_mode, str):
            return dict.fromkeys(names, _mode(failure_mode, bad_mode))
        if isinstance(failure_mode, Mapping):
            try:
                items = list(failure_mode.items())
            except Exception:  # a mapping whose own methods fail
                raise ConfigurationError("failure_mode could not be read") from None
            modes: dict[str, str] = {}
            for tier, mode in items:
                name = str.__str__(tier) if isinstance(tier, str) else None
                if name is None or name not in names:
                    raise ConfigurationError("failure_mode names a tier that is not in the policies")
                modes[name] = _mode(mode, bad_mode)
            return modes
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

    @staticmethod
    def _cost(spec: Tier, cost: object) -> int:
        # any int but a bool, as RateLimiter takes it (an IntEnum member too)
        if not isinstance(cost, int) or isinstance(cost, bool):
            raise ConfigurationError("cost must be an int")
        if not 0 <= cost <= spec.max_cost:
            raise ConfigurationError("cost must be between 0 and the tier's burst")
        return int(cost)

    def _begin(self, key: str | bytes, tier: str | None, cost: int) -> Decision | _Call:
        """Everything a check decides before Redis: the answer itself (an unlimited tier, Redis known to be
        down) or what to ask Redis."""
        if tier is None:
            name = self._default_name
        elif isinstance(tier, str):
            name = tier if tier in self._tiers else self._default_name  # an unknown tier: the default
        else:
            raise ConfigurationError("tier must be a str or None")
        spec = self._tiers[name]
        if spec is None:
            return self._local.check(key, name, cost)
        if cost.__class__ is not int or not 0 <= cost <= spec.max_cost:
            cost = self._cost(spec, cost)  # raises, or converts an int subclass
        digest = _digest(key)
        if self._down_until != 0.0 and time.monotonic() < self._down_until:  # Redis failed a moment ago
            return self._degraded(name, spec, key, cost)
        return name, spec, key, digest, cost

    @staticmethod
    def _decided(call: _Call, reply: bytes) -> Decision:
        d = Decision._from_resp(call[0], call[1].packed, call[4], reply)
        if d is None:
            raise ProtocolError("unexpected reply to the rate-limit script")
        return d

    def _fallback(self, call: _Call, exc: BaseException) -> Decision:
        """Redis could not answer ``call``: the tier's failure mode decides."""
        self._failed(exc)
        name, spec, key, _digest, cost = call
        return self._degraded(name, spec, key, cost)

    def _degraded(self, name: str, spec: Tier, key: str | bytes, cost: int) -> Decision:
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
        # one thread connects; the others wait for it at most ``timeout`` and take its outcome: a connection, or
        # its failure at once (never a connection attempt each, in turn, behind the lock)
        asked = time.monotonic()
        if not self._lock.acquire(timeout=self._timeout):
            raise TimeoutError("another thread is still connecting to Redis")
        try:
            pipe = self._pipe_sync
            if pipe is not None and pipe.error is None:
                return pipe
            if self._connect_failed_at >= asked:
                raise ConnectionError("Redis could not be reached just now")
            cls, kwargs = self._conn_factory
            conn = cls(**kwargs)
            try:
                conn.connect()
            except BaseException:
                self._connect_failed_at = time.monotonic()
                raise
            pipe = self._pipe_sync = SyncPipe(conn, self._timeout, self._spin)
            return pipe
        finally:
            self._lock.release()

    def _eval(self, spec: Tier, digest: bytes, cost: int) -> bytes:
        """Run the script for one key: its raw reply (a caller's client's answer is encoded back to RESP).

        Raises on any failure; the caller applies the failure mode.
        """
        pipe = self._pipe_sync
        if pipe is None or pipe.error is not None:
            if self._conn_factory is None:
                client = self._generic
                if client is None:
                    raise ConfigurationError("this limiter was given an asyncio client: use acheck/aallow/aacquire")
                return evaluate(
                    argv(spec, digest, cost), _LOAD, self._redis_py.ResponseError, partial(self._send, client)
                )
            pipe = self._sync_pipe()
        return evaluate(request(spec, digest, cost), LOAD, self._redis_py.ResponseError, pipe.call)

    def _send(self, client: Any, message: Any) -> object:
        """One message of the script's exchange through a caller's client (which has its own ``evalsha``)."""
        if message is _LOAD:
            client.script_load(SCRIPT)
            return _script.LOADED
        try:
            return _script.resp(client.evalsha(SCRIPT_SHA, *message))
        except self._redis_py.exceptions.NoScriptError as exc:
            return ErrorReply(f"NOSCRIPT {exc}")

    def _errors(self) -> tuple[type[BaseException], ...]:
        # TimeoutError: asyncio.timeout; OSError: sockets (socket.timeout is an OSError)
        return (self._redis_py.RedisError, OSError, TimeoutError, ProtocolError)

    # --------------------------------------------------------------------------------------- sync API

    def check(self, key: str | bytes, tier: str | None = None, cost: int = 1) -> Decision:
        """Take ``cost`` tokens from ``key``'s shared bucket in ``tier`` if every rate has them."""
        call = self._begin(key, tier, cost)
        if isinstance(call, Decision):
            return call
        try:
            return self._decided(call, self._eval(call[1], call[3], call[4]))
        except self._errors() as exc:
            return self._fallback(call, exc)

    def allow(self, key: str | bytes, tier: str | None = None) -> bool:
        """True if ``key`` may make one request now (and takes the token)."""
        return self.check(key, tier).allowed

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

    async def _aeval(self, spec: Tier, digest: bytes, cost: int) -> bytes:
        """:meth:`_eval` for asyncio: one pipelining connection per event loop, or a caller's client."""
        client = self._async_client()
        if self._aclient is not None:
            # a caller's client (e.g. a cluster): its own evalsha, no pipelining of ours
            async with asyncio.timeout(self._timeout):
                return await aevaluate(
                    argv(spec, digest, cost), _LOAD, self._redis_py.ResponseError, partial(self._asend, client)
                )
        pipe: AsyncPipe | None = None
        try:
            async with asyncio.timeout(self._timeout):
                pipe = await self._pipe()
                return await aevaluate(request(spec, digest, cost), LOAD, self._redis_py.ResponseError, pipe.submit)
        except TimeoutError:
            if pipe is not None:
                pipe.fail(TimeoutError("Redis did not answer in time"))
            raise

    async def _asend(self, client: Any, message: Any) -> object:
        """:meth:`_send` through a caller's asyncio client."""
        if message is _LOAD:
            await client.script_load(SCRIPT)
            return _script.LOADED
        try:
            return _script.resp(await client.evalsha(SCRIPT_SHA, *message))
        except self._redis_py.exceptions.NoScriptError as exc:
            return ErrorReply(f"NOSCRIPT {exc}")

    async def acheck(self, key: str | bytes, tier: str | None = None, cost: int = 1) -> Decision:
        """:meth:`check` for asyncio."""
        call = self._begin(key, tier, cost)
        if isinstance(call, Decision):
            return call
        try:
            return self._decided(call, await self._aeval(call[1], call[3], call[4]))
        except self._errors() as exc:
            return self._fallback(call, exc)

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
