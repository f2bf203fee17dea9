"""A key provider on loopback for the JWKS tests: a threaded ``http.server`` serving documents the test controls
(a JWK Set, discovery metadata), and able to rotate, fail, be slow, redirect, or send too much. It counts the
requests of every path, so a test can assert how many fetches the client made."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import bastion

from tests import secrets_registry


@dataclass
class Route:
    """What one path answers: ``status``, a JSON ``body`` (or raw ``raw`` bytes), extra ``headers``, after
    ``delay`` seconds; ``drip`` sends the body a byte at a time that many seconds apart."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0


class Provider:
    """The server's state: routes by path, and a count of requests by path (thread-safe)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: Any = None, **kw: Any) -> None:
        with self.lock:
            self.routes[path] = Route(body=body, **kw)

    def count(self, path: str) -> int:
        with self.lock:
            return self.hits[path]

    def answer(self, path: str) -> Route:
        with self.lock:
            self.hits[path] += 1
            return self.routes.get(path, Route(status=404, body={"error": "not found"}))


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            route = provider.answer(self.path)
            if route.delay:
                time.sleep(route.delay)
            data = route.raw if route.raw is not None else json.dumps(route.body).encode()
            try:
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                if not route.drip:
                    self.send_header("Content-Length", str(len(data)))
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                if route.drip:
                    for i in range(len(data)):
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                        time.sleep(route.drip)
                else:
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout under test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def running() -> Iterator[Provider]:
    """A provider on a free loopback port for the duration of the block."""
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    server.daemon_threads = True
    provider.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="jwks-test-server", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def jwks(*keys: bastion.Key) -> dict[str, Any]:
    """The public JWK Set of ``keys``."""
    return bastion.KeySet(list(keys)).to_jwks()


def mint(
    key: bastion.Key, claims: dict[str, Any] | None = None, *, kid: str | None = None, alg: str = "ES256", **signer: Any
) -> str:
    """A token signed by ``key`` (its kid in the header, or ``kid``), remembered as a secret."""
    headers = {"kid": kid} if kid is not None else None
    claims = {"sub": "alice", "scope": "read", **(claims or {})}
    token = bastion.JWTSigner(key, algorithm=alg, **signer).sign(claims, headers)
    secrets_registry.remember(token)
    return token
