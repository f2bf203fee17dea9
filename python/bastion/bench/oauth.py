"""``python -m bastion bench oauth``: the provider's token endpoint and introspection over real HTTP, against
an Authlib authorization server doing the same grant.

Every server runs under uvicorn on a loopback port, in a thread of this process: bastion's provider as ASGI
(JWT and opaque access tokens, over an in-memory store) and as WSGI, and Authlib's Flask
``AuthorizationServer`` with its ``ClientCredentialsGrant`` and ``IntrospectionEndpoint`` (opaque bearer
tokens kept in a dict) through uvicorn's WSGI interface. One keep-alive ``httpx.Client`` sends the requests
one after another, so a time per call is one request's latency and its inverse one client's throughput.
The rate limits are lifted for the run (every request would otherwise pass bastion's throttle too).
"""

from __future__ import annotations

import atexit
import hmac
import os
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

from bastion.bench import NOT_INSTALLED, Case, Group

GROUP_TOKEN = "token endpoint: client_credentials, one keep-alive client"
GROUP_INTROSPECT = "introspection of a live access token"


def _serve(app: Any, interface: Literal["asgi3", "wsgi"] = "asgi3") -> str:
    import uvicorn

    if interface == "wsgi":
        from uvicorn.middleware.wsgi import WSGIMiddleware  # type: ignore[attr-defined]

        # uvicorn's own WSGI bridge, wrapped here so that its deprecation notice (a2wsgi is not a dependency)
        # is silenced in this thread rather than raised in the server's
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            app = WSGIMiddleware(app)
    with _socket() as sock:
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off", interface="asgi3"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)

    atexit.register(stop)
    return f"http://127.0.0.1:{port}"


def _socket() -> Any:
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _provider(mode: str, issuer: str) -> tuple[Any, str]:
    """A provider over an in-memory store with one client, the limits lifted: (provider, the client's secret)."""
    from bastion import Rate, RateLimiter, TokenStore
    from bastion.oauth import FAILURES_TIER, REQUESTS_TIER, Provider

    store = TokenStore(None, pepper=secrets.token_bytes(32))
    limiter = RateLimiter({REQUESTS_TIER: Rate(1_000_000, 1.0), FAILURES_TIER: Rate(10, 60.0)}, default=REQUESTS_TIER)
    provider = Provider(store, issuer=issuer, access_tokens=mode, limiter=limiter)  # type: ignore[arg-type]
    made = provider.clients.create("bench", scopes=["read"])
    assert made.secret is not None
    return provider, made.secret


def _bastion(mode: str, wsgi: bool = False) -> tuple[str, str, str]:
    """A provider served over HTTP: (base URL, client id, secret)."""
    with _socket() as sock:
        placeholder = sock.getsockname()[1]
    provider, secret = _provider(mode, f"http://127.0.0.1:{placeholder}")
    url = _serve(provider.wsgi(), "wsgi") if wsgi else _serve(provider.asgi())
    return url, "bench", secret


def _in_process() -> Callable[[], object]:
    """The token endpoint's own work (JWT), without HTTP: ``Provider.handle`` on a prepared request."""
    import base64

    from bastion.oauth import Request

    provider, secret = _provider("jwt", "https://auth.bench")
    basic = "Basic " + base64.b64encode(f"bench:{secret}".encode()).decode()
    headers = {"authorization": basic, "content-type": "application/x-www-form-urlencoded"}
    request = Request("POST", "/oauth/token", headers, b"grant_type=client_credentials&scope=read", "127.0.0.1")

    def call() -> object:
        return provider.handle(request).status == 200

    return call


def _authlib() -> tuple[str, str, str]:
    """Authlib's Flask authorization server, client_credentials and introspection, tokens in a dict."""
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http
    from authlib.integrations.flask_oauth2 import AuthorizationServer
    from authlib.oauth2.rfc6749 import ClientMixin, grants
    from authlib.oauth2.rfc7662 import IntrospectionEndpoint
    from flask import Flask

    secret = secrets.token_urlsafe(32)

    class Client(ClientMixin):  # type: ignore[misc]
        client_id = "bench"

        def get_client_id(self) -> str:
            return self.client_id

        def get_default_redirect_uri(self) -> None:
            return None

        def get_allowed_scope(self, scope: str) -> str:
            return " ".join(s for s in (scope or "").split() if s == "read")

        def check_redirect_uri(self, redirect_uri: str) -> bool:
            return False

        def check_client_secret(self, client_secret: str) -> bool:
            return hmac.compare_digest(client_secret, secret)

        def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
            return method in ("client_secret_basic", "client_secret_post")

        def check_response_type(self, response_type: str) -> bool:
            return False

        def check_grant_type(self, grant_type: str) -> bool:
            return grant_type == "client_credentials"

    class Token(dict[str, Any]):
        """What Authlib's introspection endpoint asks of a stored token."""

        def is_expired(self) -> bool:
            return bool(self["iat"] + self["expires_in"] <= time.time())

        def is_revoked(self) -> bool:
            return False

    client = Client()
    tokens: dict[str, Token] = {}
    lock = threading.Lock()

    def save_token(token: dict[str, Any], request: Any) -> None:
        with lock:
            tokens[token["access_token"]] = Token(token, client_id=request.client.client_id, iat=int(time.time()))

    class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
        def query_token(self, token: str, token_type_hint: str | None) -> Token | None:
            return tokens.get(token)

        def introspect_token(self, token: dict[str, Any]) -> dict[str, Any]:
            return {
                "active": token["iat"] + token["expires_in"] > time.time(),
                "client_id": token["client_id"],
                "scope": token.get("scope", ""),
                "exp": token["iat"] + token["expires_in"],
            }

        def check_permission(self, token: dict[str, Any], client: Any, request: Any) -> bool:
            return bool(token["client_id"] == client.client_id)

    app = Flask("authlib-bench")
    server = AuthorizationServer(
        app, query_client=lambda cid: client if cid == "bench" else None, save_token=save_token
    )
    server.register_grant(grants.ClientCredentialsGrant)
    server.register_endpoint(Introspection)
    app.add_url_rule("/oauth/token", "token", server.create_token_response, methods=["POST"])
    app.add_url_rule(
        "/oauth/introspect",
        "introspect",
        lambda: server.create_endpoint_response(Introspection.ENDPOINT_NAME),
        methods=["POST"],
    )
    return _serve(app, "wsgi"), "bench", secret


def _token_call(http: Any, url: str, auth: tuple[str, str]) -> Callable[[], object]:
    def call() -> object:
        r = http.post(url + "/oauth/token", data={"grant_type": "client_credentials", "scope": "read"}, auth=auth)
        return r.status_code == 200 and "access_token" in r.json()

    return call


def _introspect_call(http: Any, url: str, auth: tuple[str, str]) -> Callable[[], object]:
    token = http.post(url + "/oauth/token", data={"grant_type": "client_credentials"}, auth=auth).json()["access_token"]

    def call() -> object:
        r = http.post(url + "/oauth/introspect", data={"token": token}, auth=auth)
        return r.status_code == 200 and r.json().get("active") is True

    return call


def _is_true(result: object) -> bool:
    return result is True


def cases(quick: bool = False) -> list[Case]:
    try:
        import httpx
        import uvicorn  # noqa: F401
    except ImportError:
        return [Case(GROUP_TOKEN, "bastion Provider (ASGI, JWT)", None, missing=f"httpx/uvicorn {NOT_INSTALLED}")]
    http = httpx.Client(timeout=10)
    atexit.register(http.close)
    servers: list[tuple[str, bool, Callable[[], tuple[str, str, str]]]] = [
        ("bastion Provider (ASGI, JWT)", True, lambda: _bastion("jwt")),
        ("bastion Provider (ASGI, opaque)", False, lambda: _bastion("opaque")),
        ("bastion Provider (WSGI under uvicorn, JWT)", False, lambda: _bastion("jwt", wsgi=True)),
    ]
    out: list[Case] = []
    started = [(name, main, *make()) for name, main, make in servers]
    try:
        authlib: tuple[str, str, str] | None = _authlib()
        why = ""
    except ImportError:
        authlib, why = None, f"Authlib/Flask {NOT_INSTALLED}"
    for group, make_call in ((GROUP_TOKEN, _token_call), (GROUP_INTROSPECT, _introspect_call)):
        for name, main, url, cid, secret in started:
            out.append(Case(group, name, make_call(http, url, (cid, secret)), is_bastion=main, ok=_is_true))
        if group == GROUP_TOKEN:
            out.append(Case(group, "bastion Provider.handle (JWT, in process, no HTTP)", _in_process(), ok=_is_true))
        name = "Authlib AuthorizationServer (Flask, WSGI under uvicorn)"
        if authlib is None:
            out.append(Case(group, name, None, missing=why))
        else:
            out.append(Case(group, name, make_call(http, authlib[0], (authlib[1], authlib[2])), ok=_is_true))
    return out


def footer(groups: Sequence[Group]) -> list[str]:
    lines = []
    for g in groups:
        bastion_row = next((r for r in g.rows if r.is_bastion and r.median_s), None)
        if bastion_row is not None and bastion_row.median_s:
            lines.append(f"{g.name}: bastion (ASGI, JWT) {1 / bastion_row.median_s:,.0f} requests/s from one client")
    lines.append("sequential requests on one keep-alive connection: latency, not a server's saturated throughput")
    return lines
