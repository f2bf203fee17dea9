"""The two threads of a token store: the background worker (other processes' revocations, usage flushes, index
sweeps, event pruning) and its watchdog (which drops the index when the worker stops reading the change feed).

Both hold the store by a weak reference, so a store that is no longer used is collected and its threads end.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

from bastion.errors import AuthUnavailable
from bastion.tokens import ops
from bastion.tokens.backends import Backend, backend_errors

if TYPE_CHECKING:
    from bastion.tokens.store import TokenStore

__all__ = ["EVENT_RETENTION", "start"]

#: how long revocation events are kept for other processes to catch up
EVENT_RETENTION = 86400.0
_log = logging.getLogger("bastion.tokens")


def start(store: TokenStore, backend: Backend, stop: threading.Event) -> tuple[threading.Thread, threading.Thread]:
    """Start the worker and the watchdog of ``store``; both end when ``stop`` is set or the store is collected."""
    ref = weakref.ref(store)
    worker = threading.Thread(target=_work, args=(ref, backend, stop), name="bastion-tokens", daemon=True)
    watchdog = threading.Thread(target=_watch, args=(ref, stop), name="bastion-tokens-watchdog", daemon=True)
    worker.start()
    watchdog.start()
    return worker, watchdog


def _work(ref: weakref.ref[TokenStore], backend: Backend, stop: threading.Event) -> None:
    """The background thread: other processes' revocations, usage flushes, index sweeps, event pruning."""
    store = ref()
    if store is None:
        return
    next_flush = time.monotonic() + store.usage_interval
    next_sweep = time.monotonic() + 60.0
    del store
    while not stop.is_set():
        store = ref()
        if store is None:
            return
        try:
            store._apply_events()
            store._fed_at = now = time.monotonic()
            if now >= next_flush:
                store._flush_usage()
                next_flush = now + store.usage_interval
            if now >= next_sweep:
                store._sweep(time.time())
                store._sql(ops.prune_events(time.time() - EVENT_RETENTION), write=True)
                next_sweep = now + 60.0
            timeout = max(0.0, min(store.poll_interval, next_flush - now))
        except Exception as exc:  # this thread must outlive any failure
            # the change feed could not be read: revocations made elsewhere are unknown, so serve nothing from
            # memory (fail closed) until it reads again
            store._clear()
            timeout = 1.0
            if not isinstance(exc, (AuthUnavailable, *backend_errors())):
                _log.warning("bastion token store: background thread error (%s); retrying", type(exc).__name__)
        del store
        if not backend.wait(timeout, stop):
            store = ref()
            if store is not None:
                store._clear()
            del store


def _watch(ref: weakref.ref[TokenStore], stop: threading.Event) -> None:
    """The watchdog: if the background thread has not read the change feed for ``10 × poll_interval`` (at least
    1 s) — it hangs on a database that stopped answering, say, behind a network partition while other hosts can
    still revoke — drop the index, so that nothing is served from memory that might have been revoked meanwhile."""
    while True:
        store = ref()
        if store is None:
            return
        period = min(1.0, store._stale_after / 4)
        if time.monotonic() - store._fed_at > store._stale_after:
            store._clear()
        del store
        if stop.wait(period):
            return
