"""The framework integrations under test: one set of tokens, the requests of every DESIGN §4 row, and the
reference each integration is compared with — the same request through ``bastion.asgi.AuthMiddleware``.

Every app under comparison gets its own Authenticator (same keys, same store, a fresh limiter and its own audit
logger), so the RateLimit values and the audit records of two apps that saw the same requests are equal."""

from __future__ import annotations

import importlib
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bastion
import pytest
from bastion.rules import Rule
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests import jwt_tokens, secrets_registry
from tests.opaque_support import PEPPER
from tests.request_support import TIERS, Keys, collecting, hs_keys, issue, make_auth, starlette_app

ROOT = Path(__file__).resolve().parent.parent
#: the rules the middleware reference applies: what the integrations' endpoints ask for themselves
RULES = [
    Rule("/health", auth="none"),
    Rule("/public/*", auth="optional"),
    Rule("/api/reports/{id}", methods=["DELETE"], roles=["admin"]),
    Rule("/api/reports*", scopes=["read:reports"]),
]
_LOGGERS = itertools.count()


def example(name: str) -> Any:
    """The module ``examples/<name>.py``."""
    return importlib.import_module(f"examples.{name}")


def remembered(token: str) -> str:
    secrets_registry.remember(token)
    return token


@dataclass
class World:
    """The keys, the store and one token for each case, minted once for every app of a test."""

    keys: Keys
    store: bastion.TokenStore
    tokens: dict[str, str]

    def auth(self, **kw: Any) -> tuple[bastion.Authenticator, str]:
        """A fresh Authenticator (its own limiter and audit logger) and the name of that logger."""
        logger = f"tests.integrations.{next(_LOGGERS)}"
        limiter = bastion.RateLimiter(TIERS, default="default")
        return make_auth(self.keys, self.store, limiter, audit=bastion.audit.AuditLog(logger), **kw), logger


def make_world(tmp_path: Path) -> World:
    keys = hs_keys()
    store = bastion.TokenStore(f"sqlite:///{tmp_path / 'tokens.db'}", pepper=PEPPER)
    now = int(time.time())
    good = keys.token()
    head, body, signature = good.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    revoked = issue(store, "user_4", scopes=["read:reports"]).token
    store.revoke(revoked)
    other = bastion.TokenStore(None, pepper=PEPPER)
    try:
        unknown = issue(other, "user_5").token
    finally:
        other.close()
    tokens = {
        "good": good,
        "opaque": issue(store, "user_3", scopes=["read:reports"], roles=["user"]).token,
        "no_scope": keys.token({"scope": "other"}),
        "admin": keys.token({"roles": ["admin"], "scope": None}),
        "tight": keys.token({"sub": f"tight_{time.time_ns()}", "tier": "tight"}),
        "token_expired": keys.token({"exp": now - 100, "iat": now - 200}),
        "token_not_yet_valid": keys.token({"nbf": now + 600}),
        "invalid_issuer": keys.token({"iss": "https://elsewhere.test"}),
        "invalid_audience": keys.token({"aud": "api://other"}),
        "invalid_type": keys.token(typ="JWT"),
        "missing_claim": keys.token({"sub": None}),
        "invalid_claim": keys.token({"scope": 5}),
        "invalid_signature": remembered(f"{head}.{body}.{flipped}"),
        "unknown_key": keys.token(kid="nope"),
        "unsupported_algorithm": keys.token(alg="HS512"),
        "unsupported_header": keys.token(crit=["exp"]),
        "token_malformed": "abc.def",
        "token_too_large": "a" * 4100 + "." + "b" * 4100 + ".c",
        "unknown_token": unknown,
        "token_revoked": revoked,
    }
    return World(keys, store, tokens)


@dataclass(frozen=True)
class Row:
    """One request and the code it must get (``None``: admitted)."""

    name: str
    method: str
    path: str
    authorization: str | None
    code: str | None

    def headers(self, world: World) -> dict[str, str]:
        if self.authorization is None:
            return {}
        if self.authorization.startswith("="):  # a literal header value
            return {"Authorization": self.authorization[1:]}
        return {"Authorization": f"Bearer {world.tokens[self.authorization]}"}


_TOKEN_ROWS = [
    "token_malformed",
    "token_too_large",
    "unsupported_algorithm",
    "unsupported_header",
    "unknown_key",
    "invalid_signature",
    "token_expired",
    "token_not_yet_valid",
    "invalid_issuer",
    "invalid_audience",
    "invalid_type",
    "missing_claim",
    "invalid_claim",
    "unknown_token",
    "token_revoked",
]
#: every DESIGN §4 row a request can produce against a running store, plus the admitted cases, in order
ROWS = [
    Row("admitted", "GET", "/api/me", "good", None),
    Row("opaque", "GET", "/api/reports", "opaque", None),
    Row("missing_token", "GET", "/api/me", None, "missing_token"),
    Row("other_scheme", "GET", "/api/me", "=Basic dXNlcjpwdw==", "missing_token"),
    Row("invalid_request", "GET", "/api/me", "=Bearer a b", "invalid_request"),
    Row("empty_bearer", "GET", "/api/me", "=Bearer", "invalid_request"),
    *(Row(code, "GET", "/api/me", code, code) for code in _TOKEN_ROWS),
    Row("insufficient_scope", "GET", "/api/reports", "no_scope", "insufficient_scope"),
    Row("forbidden", "DELETE", "/api/reports/7", "good", "forbidden"),
    Row("admin", "DELETE", "/api/reports/7", "admin", None),
    Row("first", "GET", "/api/me", "tight", None),
    Row("rate_limited", "GET", "/api/me", "tight", "rate_limited"),
    Row("open", "GET", "/health", "=Bearer a b", None),
    Row("anonymous", "GET", "/public/info", None, None),
    Row("optional_bad", "GET", "/public/info", "token_expired", "token_expired"),
    Row("optional_good", "GET", "/public/info", "good", None),
]


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]  # lowercase names, in order
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def refusal(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """What a refusal is compared on: everything."""
        return self.status, self.headers, self.body

    def ratelimit(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.headers if k.startswith("ratelimit")]


def answers(app: Any, world: World, rows: list[Row] = ROWS) -> list[Answer]:
    """Each row's answer from ``app`` (an ASGI app), through the framework's TestClient."""
    out = []
    with TestClient(app, raise_server_exceptions=True) as client:
        for row in rows:
            r = client.request(row.method, row.path, headers=row.headers(world))
            out.append(Answer(r.status_code, [(k.lower(), v) for k, v in r.headers.multi_items()], r.content))
    return out


def reference(world: World, rows: list[Row] = ROWS, **mw: Any) -> tuple[list[Answer], list[dict[str, Any]]]:
    """The middleware's answers and audit records for ``rows``."""
    auth, logger = world.auth()
    app = bastion.asgi.AuthMiddleware(starlette_app(), auth, rules=RULES, **mw)
    with audited(auth, logger) as records:
        got = answers(app, world, rows)
    return got, records


@contextmanager
def audited(auth: bastion.Authenticator, logger: str) -> Iterator[list[dict[str, Any]]]:
    """The audit records ``auth`` writes while the block runs, as dicts (flushed at the end)."""
    got: list[dict[str, Any]] = []
    with collecting(logger) as records:
        yield got
        assert auth.audit is not None
        assert auth.audit.flush(5.0)
    got.extend(r.bastion_audit.as_dict() for r in records)


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """An audit record without what differs between two runs of the same request (its id and timing) and the
    rule pattern (an integration's requirement is no route rule)."""
    return {k: v for k, v in record.items() if k not in ("request.id", "duration_ms", "http.route")}


def assert_same(rows: list[Row], got: list[Answer], want: list[Answer], *, ordered: bool = True) -> None:
    """Refusals identical to the middleware's (status, every header, body); admitted requests with the same status
    and the same RateLimit fields. ``ordered=False``: the same headers, in any order (behind the middleware, which
    appends the RateLimit fields of a request it admitted to whatever the app answered)."""
    assert len(got) == len(want) == len(rows)
    for row, g, w in zip(rows, got, want, strict=True):
        if row.code is None:
            assert (g.status, g.ratelimit()) == (w.status, w.ratelimit()), row.name
            assert g.status < 400, (row.name, g.status, g.body)
        elif ordered:
            assert g.refusal() == w.refusal(), row.name
        else:
            assert (g.status, sorted(g.headers), g.body) == (w.status, sorted(w.headers), w.body), row.name
            assert g.body.startswith(f'{{"error":"{row.code}",'.encode()), (row.name, g.body)


def close_code(client: TestClient, path: str, headers: dict[str, str]) -> int:
    """The code a WebSocket handshake to ``path`` is closed with before it is accepted."""
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(path, headers=headers):
        raise AssertionError("the handshake was accepted")
    return closed.value.code


def jwt_with(world: World, claims: dict[str, Any]) -> str:
    """A token signed with the world's key, its claims exactly ``claims`` (a raw mint, no defaults)."""
    h = {"alg": world.keys.alg, "kid": world.keys.kid, "typ": "at+jwt"}
    return remembered(jwt_tokens.make(h, claims, world.keys.raw_key, alg=world.keys.alg))


Factory = Callable[[bastion.Authenticator], Any]
