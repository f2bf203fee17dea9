"""`JWKSClient`: an identity provider's keys, fetched over HTTPS and kept in memory for every verifier it feeds.

One client per key source, shared by every request, thread and task. Verification never waits on it: the
verifiers it makes hold the current key set in Rust, and the client replaces that set (atomically, the caches
cleared) when a fetch succeeds. Fetches happen

- in the background, on a daemon thread, ahead of the document's expiry (``Cache-Control: max-age``, clamped);
- when a token names a kid the verifier does not hold: the request path asks the client
  (:meth:`JWKSClient._refresh_for`, awaited as :meth:`JWKSClient._arefresh_for` under asyncio), which fetches
  at most once per ``cooldown`` and at most once at a time (one flight shared by every thread and task), and
  remembers kids that were still missing afterwards (a bounded negative cache). A random-kid flood therefore
  costs the provider at most one request per cooldown.

A failed fetch keeps the last good set for ``grace`` seconds past its expiry (logged on ``bastion.jwks``, never
with key material); with no good set, a token is ``auth_unavailable`` (503, ``Retry-After``).

Over 400 lines because the key set, the flight in progress, the cooldown, the negative cache and the background
thread are one piece of state under one lock: each decision (fetch or not, wait or not, drop the set or not)
reads all of them. HTTP, the URL rules and discovery are in ``_fetch.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import math
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bastion import _core
from bastion.errors import AuthUnavailable, ConfigurationError
from bastion.jwks import _fetch
from bastion.jwks._fetch import FetchError, Limits

__all__ = ["JWKSClient"]

log = logging.getLogger("bastion.jwks")
#: Fetch tasks in flight: the event loop keeps only weak references to tasks.
_TASKS: set[asyncio.Task[None]] = set()

_MIN_TTL: Final = 300.0
_MAX_TTL: Final = 86400.0
_DEFAULT_TTL: Final = 3600.0
#: A background refresh starts when this share of the document's lifetime is left.
_AHEAD: Final = 0.2
#: The URL of a client made by from_issuer, until its metadata names the JWKS (no URL is spelled like this).
_DISCOVERED: Final = "\x00discovered"


def _after_fork(ref: weakref.ref[JWKSClient]) -> None:
    client = ref()
    if client is not None:
        client._after_fork()


def _seconds(value: object, what: str, *, minimum: float = 0.0) -> float:
    """A finite number of seconds: exactly an int or a float (a subclass could compute anything)."""
    try:
        seconds = float(value) if type(value) in (int, float) else math.nan  # type: ignore[arg-type]
    except OverflowError:
        seconds = math.inf
    if not (math.isfinite(seconds) and seconds >= minimum):
        raise ConfigurationError(f"{what} must be a finite number of seconds >= {minimum:g}")
    return seconds


def _headers(headers: object) -> dict[str, str]:
    """``headers=``: a mapping of exactly str to str, copied (``None``: none)."""
    if headers is None:
        return {}
    if isinstance(headers, Mapping):
        try:
            pairs = list(headers.items())
        except Exception:  # a mapping that misbehaves is refused as not being one
            pairs = [(None, None)]
        if all(type(k) is str and type(v) is str for k, v in pairs):
            return dict(pairs)
    raise ConfigurationError("headers must be a mapping of str to str")


def _count(value: object, what: str) -> int:
    if type(value) is not int or value < 1:
        raise ConfigurationError(f"{what} must be a positive integer")
    return value


class JWKSClient:
    """The keys of one JWK Set URL (or of one issuer, :meth:`from_issuer`), for the verifiers it makes.

    ``url``: the JWKS document, ``https://`` (``http://`` only with ``allow_http=True``, for tests and internal
    networks). ``timeout``: seconds to wait for each read (default 5), ``connect_timeout`` to connect (default
    3); a whole fetch never takes longer than ``connect_timeout + 2 * timeout``. ``max_bytes``: the largest
    document read (default 256 KiB). ``headers``: sent with every GET. ``cooldown``: the least time between two
    fetches caused by unknown kids (default 30 s). ``min_ttl``/``max_ttl``: the clamp of ``Cache-Control:
    max-age`` (5 minutes, 24 hours); ``default_ttl`` without one (1 hour). ``grace``: how long past its expiry
    the last good set keeps serving while fetches fail (default 6 hours). ``negative_cache``: how many missing
    kids are remembered (default 1024). ``background``: refresh ahead of expiry on a daemon thread (default
    ``True``; ``False`` fetches only on a key need or :meth:`refresh`). Redirects are followed only to the same
    scheme, host and port.
    """

    def __init__(
        self,
        url: str,
        *,
        allow_http: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        connect_timeout: float = 3.0,
        max_bytes: int = 256 * 1024,
        cooldown: float = 30.0,
        min_ttl: float = _MIN_TTL,
        max_ttl: float = _MAX_TTL,
        default_ttl: float = _DEFAULT_TTL,
        grace: float = 6 * 3600.0,
        negative_cache: int = 1024,
        background: bool = True,
    ) -> None:
        _fetch.httpx_module()
        if type(allow_http) is not bool or type(background) is not bool:
            raise ConfigurationError("allow_http and background must be True or False")
        self._limits = Limits(
            allow_http=allow_http,
            connect_timeout=_seconds(connect_timeout, "connect_timeout", minimum=0.001),
            read_timeout=_seconds(timeout, "timeout", minimum=0.001),
            max_bytes=_count(max_bytes, "max_bytes"),
            headers=_headers(headers),
        )
        self._url: str | None = None if url is _DISCOVERED else _fetch.check_url(url, allow_http=allow_http)
        self._cooldown = _seconds(cooldown, "cooldown")
        self._min_ttl = _seconds(min_ttl, "min_ttl", minimum=0.001)
        self._max_ttl = _seconds(max_ttl, "max_ttl", minimum=self._min_ttl)
        self._default_ttl = _seconds(default_ttl, "default_ttl")
        self._grace = _seconds(grace, "grace")
        self._negative_max = _count(negative_cache, "negative_cache")
        self._background = background
        # discovery (from_issuer): the issuer, how to find its metadata, and the metadata's lifetime
        self._issuer: str | None = None
        self._discovery = "auto"
        self._metadata_ttl = _MAX_TTL
        self._metadata_until = 0.0
        # state, under _lock
        self._lock = threading.Lock()
        self._keys: _core.KeySet | None = None
        self._kids: frozenset[str] = frozenset()
        self._expires = 0.0  # monotonic: when the current set should have been replaced
        self._flight: concurrent.futures.Future[None] | None = None
        self._last_fetch = float("-inf")
        self._last_miss = float("-inf")  # the last fetch a kid miss caused while a set was loaded
        self._failures = 0
        self._negative: OrderedDict[str, float] = OrderedDict()
        self._verifiers: weakref.WeakSet[_core.JWTVerifier] = weakref.WeakSet()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        #: GETs sent, for monitoring (and the tests).
        self.fetches = 0
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    @classmethod
    def from_issuer(
        cls,
        issuer: str,
        *,
        discovery: str = "auto",
        metadata_ttl: float = _MAX_TTL,
        **options: Any,
    ) -> JWKSClient:
        """The keys of an issuer, found through its metadata: ``discovery="openid"`` reads
        ``{issuer}/.well-known/openid-configuration`` (OpenID Connect Discovery), ``"oauth"`` reads
        ``/.well-known/oauth-authorization-server`` inserted before the issuer's path (RFC 8414), ``"auto"``
        (default) tries both, in that order. The document's ``issuer`` must equal ``issuer`` exactly; its
        ``jwks_uri`` is then fetched as by the constructor. The metadata is kept for ``metadata_ttl`` seconds
        (default 24 h) and never refetched because of an unknown kid. The verifiers made by :meth:`verifier`
        check ``iss`` against ``issuer`` by default."""
        allow_http = options.get("allow_http", False)
        if type(allow_http) is not bool:
            raise ConfigurationError("allow_http must be True or False")
        _fetch.check_url(issuer, allow_http=allow_http, what="issuer")
        if type(discovery) is not str or discovery not in ("auto", "openid", "oauth"):
            raise ConfigurationError('discovery must be "auto", "openid" or "oauth"')
        client = cls(_DISCOVERED, **options)
        client._issuer = issuer
        client._discovery = discovery
        client._metadata_ttl = _seconds(metadata_ttl, "metadata_ttl", minimum=1.0)
        return client

    # -- what applications call ---------------------------------------------------------------------------

    def verifier(
        self,
        *,
        algorithms: str | Sequence[str],
        issuer: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        leeway: float | None = None,
        require: Sequence[str] | None = None,
        typ: str | None = None,
        max_token_bytes: int | None = None,
        cache_size: int | None = None,
    ) -> _core.JWTVerifier:
        """A :class:`bastion.JWTVerifier` over this client's keys (the same arguments; ``issuer`` defaults to the
        discovered issuer). Give it to :class:`bastion.Authenticator`: an unknown kid is then fetched for, once.
        Starts the background refresh."""
        verifier = _core.JWTVerifier(
            None,
            algorithms=algorithms,
            issuer=issuer if issuer is not None else self._issuer,
            audience=audience,
            leeway=leeway,
            require=require,
            typ=typ,
            max_token_bytes=max_token_bytes,
            cache_size=cache_size,
            key_source=self,
        )
        with self._lock:
            if self._keys is not None:
                self._install(verifier, self._keys)
            self._verifiers.add(verifier)
        self._start()
        return verifier

    @property
    def keys(self) -> _core.KeySet | None:
        """The key set in use (``None`` before the first successful fetch)."""
        return self._keys

    @property
    def issuer(self) -> str | None:
        """The issuer, for a client made by :meth:`from_issuer`."""
        return self._issuer

    def refresh(self) -> bool:
        """Fetch now (joining a fetch in flight), blocking; ``True`` when the keys were replaced."""
        return self._settled(self._wait(self._lead_or_join()))

    async def arefresh(self) -> bool:
        """:meth:`refresh`, awaited."""
        return self._settled(await self._await(self._lead_or_join_async()))

    def close(self) -> None:
        """Stop the background refresh (the keys stay in use)."""
        self._closed = True
        self._wake.set()

    def __repr__(self) -> str:
        source = repr(self._url) if self._issuer is None else f"issuer={self._issuer!r}"
        return f"JWKSClient({source}, keys={len(self._kids)})"

    # -- the request path's key need (rust/py/auth.rs yields it as NEED_KEY) ------------------------------

    def _refresh_for(self, kid: str | None) -> None:
        """After a token named ``kid`` that no verifier of this client holds: fetch (if the cooldown allows)
        or wait for the fetch in flight, blocking. Raises :class:`bastion.AuthUnavailable` while no set ever
        loaded; otherwise returns, and the request is verified once more (an unknown kid then is final)."""
        flight, led = self._flight_for(kid)
        if flight is not None:
            self._wait(flight)
        self._after_need(kid, checked=led)

    async def _arefresh_for(self, kid: str | None) -> None:
        """:meth:`_refresh_for`, awaited: the event loop never blocks on the fetch."""
        flight, led = self._flight_for(kid, asynchronous=True)
        if flight is not None:
            await self._await(flight)
        self._after_need(kid, checked=led)

    # -- single flight ------------------------------------------------------------------------------------

    def _flight_for(
        self, kid: str | None, *, asynchronous: bool = False
    ) -> tuple[concurrent.futures.Future[None] | None, bool]:
        """The fetch a key need waits for (``None`` when none is due: known kid, negative cache, cooldown), and
        whether this need started it. Only then does a kid still missing go to the negative cache: a fetch
        joined in flight may have begun before the provider published the kid."""
        flight, leader = self._claim(kid, miss=True)
        if leader:
            assert flight is not None
            if asynchronous:
                self._lead_async(flight, miss=True)
            else:
                self._lead(flight, miss=True)
        return flight, leader

    def _lead_or_join(self) -> concurrent.futures.Future[None]:
        flight, leader = self._claim(None, miss=False)
        assert flight is not None
        if leader:
            self._lead(flight)
        return flight

    def _lead_or_join_async(self) -> concurrent.futures.Future[None]:
        flight, leader = self._claim(None, miss=False)
        assert flight is not None
        if leader:
            self._lead_async(flight)
        return flight

    def _claim(self, kid: str | None, *, miss: bool) -> tuple[concurrent.futures.Future[None] | None, bool]:
        """The flight to wait for, and whether this caller leads it: one check and claim under the lock, so
        that N concurrent misses make one GET. A miss starts a fetch only when its kid is neither known nor
        remembered missing, and, once a set is loaded, at most once per cooldown; while none is loaded, at most
        one attempt per cooldown (a provider that is down is not hammered)."""
        with self._lock:
            if self._flight is not None:
                return self._flight, False
            now = time.monotonic()
            if miss:
                if kid is not None and (kid in self._kids or self._negative.get(kid, float("-inf")) > now):
                    return None, False
                last = self._last_miss if self._keys is not None else self._last_fetch
                if now - last < self._cooldown:
                    return None, False
                if self._keys is not None:
                    self._last_miss = now
            flight: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._flight = flight
            self._last_fetch = now
            return flight, True

    def _lead(self, flight: concurrent.futures.Future[None], *, miss: bool = False) -> None:
        try:
            result: Any = _fetch.run(self._plan(miss=miss), self._limits)
        except Exception as exc:
            result = exc
        except BaseException as exc:
            self._finish(flight, exc)
            raise
        self._finish(flight, result)

    def _lead_async(self, flight: concurrent.futures.Future[None], *, miss: bool = False) -> None:
        # a task of its own: a request cancelled while it waits never cancels the fetch others wait for
        task = asyncio.ensure_future(self._alead(flight, miss))
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)

    async def _alead(self, flight: concurrent.futures.Future[None], miss: bool) -> None:
        try:
            result: Any = await _fetch.arun(self._plan(miss=miss), self._limits)
        except Exception as exc:
            result = exc
        except BaseException as exc:  # cancelled with its loop: the waiters must still wake
            self._finish(flight, exc)
            raise
        self._finish(flight, result)

    # A flight's failure was logged when it settled; its waiters read the state it left, so they ignore it.
    def _wait(self, flight: concurrent.futures.Future[None]) -> concurrent.futures.Future[None]:
        with contextlib.suppress(Exception):
            flight.result(timeout=self._limits.deadline * 3)
        return flight

    async def _await(self, flight: concurrent.futures.Future[None]) -> concurrent.futures.Future[None]:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(flight)), self._limits.deadline * 3)
        return flight

    def _settled(self, flight: concurrent.futures.Future[None]) -> bool:
        return flight.done() and flight.exception() is None

    def _after_need(self, kid: str | None, *, checked: bool) -> None:
        """After a key need: unavailable while no set is loaded; a kid that a fetch started for it did not
        bring is remembered missing until the next scheduled refresh (at least a cooldown)."""
        with self._lock:
            if self._keys is None:
                retry = max(1.0, self._cooldown - (time.monotonic() - self._last_fetch))
                raise AuthUnavailable("the token's keys cannot be fetched: retry later", retry_after=retry)
            if checked and kid is not None and kid not in self._kids:
                self._negative[kid] = time.monotonic() + max(self._cooldown, self._expires - time.monotonic())
                self._negative.move_to_end(kid)
                while len(self._negative) > self._negative_max:
                    self._negative.popitem(last=False)

    # -- one fetch ----------------------------------------------------------------------------------------

    def _plan(self, *, miss: bool) -> _fetch.Plan:
        """What one fetch does: the metadata when it is due (from_issuer; a kid miss never re-reads it once
        known), then the JWK Set."""
        due = self._url is None or (not miss and time.monotonic() >= self._metadata_until)
        if self._issuer is not None and due:
            self._url = yield from self._counted(_fetch.metadata_plan(self._issuer, self._discovery, self._limits))
            self._metadata_until = time.monotonic() + self._metadata_ttl
        assert self._url is not None
        plan = _fetch.jwks_plan(
            self._url, self._limits, default=self._default_ttl, low=self._min_ttl, high=self._max_ttl
        )
        return (yield from self._counted(plan))

    def _counted(self, plan: _fetch.Plan) -> _fetch.Plan:
        response: Any = None
        while True:
            try:
                url = plan.send(response)
            except StopIteration as stop:
                return stop.value
            self.fetches += 1
            response = yield url

    def _finish(self, flight: concurrent.futures.Future[None], result: Any) -> None:
        """Settle a flight: a good set replaces the keys of every verifier; a failure keeps the last good set."""
        with self._lock:
            self._flight = None
            if isinstance(result, _fetch.Fetched):
                self._keys = result.keys
                self._kids = frozenset(result.keys.kids)
                self._expires = time.monotonic() + result.max_age
                self._failures = 0
                for kid in [k for k in self._negative if k in self._kids]:
                    del self._negative[kid]
                for verifier in list(self._verifiers):
                    self._install(verifier, result.keys)
            else:
                self._failures += 1
                reason = str(result) if isinstance(result, FetchError) else type(result).__name__
                kept = "keeping the last good key set" if self._keys is not None else "no key set loaded yet"
                log.warning("JWKS fetch failed (%s): %s", kept, reason)
        self._wake.set()
        if isinstance(result, _fetch.Fetched):
            flight.set_result(None)
        else:
            flight.set_exception(result if isinstance(result, BaseException) else FetchError("no document"))

    def _install(self, verifier: _core.JWTVerifier, keys: _core.KeySet) -> None:
        try:
            verifier.replace_keys(keys)
        except ConfigurationError as exc:
            # e.g. no key in the set serves this verifier's algorithms: it keeps the keys it had
            log.warning("JWKS key set not installed in a verifier: %s", exc.message)

    # -- the background refresh -----------------------------------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked worker (gunicorn ``--preload``): the parent's thread and any flight in it did not come
        along, and its lock may be held by a thread that no longer exists. The keys did."""
        self._lock = threading.Lock()
        self._flight = None
        self._thread = None
        self._wake = threading.Event()
        if len(self._verifiers):
            self._start()

    def _start(self) -> None:
        if not self._background or self._closed:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="bastion-jwks", daemon=True)
        self._thread.start()

    def _next_wake(self) -> float:
        """Seconds until the background thread acts: a refresh ahead of expiry, a retry after a failure
        (backing off from the cooldown), or the end of the grace, when the last good set is dropped."""
        now = time.monotonic()
        with self._lock:
            if self._keys is None or self._failures:
                backoff = min(max(self._cooldown, 1.0) * 2 ** min(self._failures, 10), self._max_ttl)
                due = self._last_fetch + (backoff if self._failures else 0.0)
                if self._keys is not None:
                    due = min(due, self._expires + self._grace)
                return max(0.0, due - now)
            lifetime = max(self._expires - self._last_fetch, 0.0)
            return max(0.0, self._expires - lifetime * _AHEAD - now)

    def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            delay = self._next_wake()
            if delay > 0 and self._wake.wait(delay):
                continue  # something changed (a fetch settled, close()): recompute
            if self._closed:
                return
            self._drop_if_stale()
            if self._next_wake() <= 0:
                self._wait(self._lead_or_join())

    def _drop_if_stale(self) -> None:
        with self._lock:
            if self._keys is None or time.monotonic() < self._expires + self._grace:
                return
            log.warning("JWKS key set expired past its grace with every refresh failing: dropping it")
            self._keys = None
            self._kids = frozenset()
            for verifier in list(self._verifiers):
                verifier.clear_keys()
