"""Shared helpers for the OAuth provider tests: a provider served over real HTTP on a loopback port.

``serve_asgi`` runs ``uvicorn.Server`` in a thread; ``serve_wsgi`` a threading ``wsgiref`` server. Every secret
and token a test gets goes through :func:`keep` (``secrets_registry.remember``), so the session can prove none
of them reached a log record.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import uvicorn
from bastion import TokenStore
from bastion.oauth import Provider, default_limiter

from tests import secrets_registry
from tests.opaque_support import PEPPER, fresh_pg_url
from tests.servers import PostgresServer, free_port

secrets_registry.remember(PEPPER)


def keep(value: Any) -> Any:
    """Remember every token-like string in ``value`` (a str, or a token response's dict) and return it."""
    if isinstance(value, str):
        secrets_registry.remember(value)
    elif isinstance(value, dict):
        for key in ("access_token", "refresh_token", "secret"):
            if isinstance(value.get(key), str):
                secrets_registry.remember(value[key])
    return value


@contextlib.contextmanager
def serve_asgi(app: Any, port: int) -> Iterator[str]:
    """``app`` under uvicorn on ``127.0.0.1:port``, in a thread; yields the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextlib.contextmanager
def serve_wsgi(app: Any, port: int) -> Iterator[str]:
    """``app`` under a threading wsgiref server on ``127.0.0.1:port``; yields the base URL."""
    server = make_server("127.0.0.1", port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Served:
    """A provider behind a real server: its store, the base URL, and one client with its secret."""

    provider: Provider
    store: TokenStore
    url: str
    store_url: str
    client_id: str
    secret: str

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    def post(self, path: str, data: dict[str, str], auth: tuple[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, data=data, auth=auth if auth is not None else (self.client_id, self.secret))


def store_url_of(kind: str, tmp_path: Any, pg: PostgresServer | None) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'oauth.db'}"
    assert pg is not None
    return fresh_pg_url(pg)


@contextlib.contextmanager
def served(
    kind: str, mode: str, tmp_path: Any, pg: PostgresServer | None, *, wsgi: bool = False, limiter: Any = None
) -> Iterator[Served]:
    """A provider over a fresh store of ``kind`` issuing ``mode`` access tokens, served over HTTP, with a client
    allowed both grants and the scopes ``read`` and ``write``."""
    url = store_url_of(kind, tmp_path, pg)
    store = TokenStore(url, pepper=PEPPER, poll_interval=0.05)
    port = free_port()
    provider = Provider(
        store,
        issuer=f"http://127.0.0.1:{port}",
        access_tokens=mode,  # type: ignore[arg-type]
        limiter=limiter or default_limiter(),
        scopes_supported=["read", "write"],
    )
    made = provider.clients.create(
        "svc", grant_types=["client_credentials", "refresh_token"], scopes=["read", "write"], tier="gold"
    )
    assert made.secret is not None
    keep(made.secret)
    serve = serve_wsgi(provider.wsgi(), port) if wsgi else serve_asgi(provider.asgi(), port)
    try:
        with serve as base:
            yield Served(provider, store, base, url, "svc", made.secret)
    finally:
        store.close()
