"""What the Flask, Django and DRF tests share: one request per DESIGN §4 error row, a request path with its own
audit logger, and the comparison of a framework's response with :class:`bastion.wsgi.AuthMiddleware`'s."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bastion
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.test import Client as WerkzeugClient

from tests import jwt_tokens, secrets_registry
from tests.opaque_support import PEPPER
from tests.request_support import TIERS, Keys, Response, Stack, collecting, hs_keys, issue, make_auth

#: (error code, method, path, headers): a request the rules of tests.request_support.RULES refuse with that code
Row = tuple[str, str, str, dict[str, str]]
#: sends one request: (method, path, headers) -> Response
Send = Callable[[str, str, dict[str, str]], Response]

# headers a framework adds to every response of its own (none of them is bastion's business)
FRAMEWORK_HEADERS = frozenset({"date", "server", "x-frame-options", "x-content-type-options", "vary", "allow"})


def make_stack(tmp_path: Path, logger: str, **kw: Any) -> Stack:
    """HS256 JWTs, an SQLite token store, the in-process limiter and an audit log on ``logger``."""
    keys = hs_keys()
    store = bastion.TokenStore(f"sqlite:///{tmp_path / 'tokens.db'}", pepper=PEPPER)
    limiter = bastion.RateLimiter(TIERS, default="default")
    auth = make_auth(keys, store, limiter, audit=bastion.audit.AuditLog(logger), **kw)
    return Stack(keys, store, limiter, auth)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _crafted(keys: Keys, header: dict[str, Any], key: Any = None, alg: str | None = None) -> str:
    now = int(time.time())
    payload = {"sub": "user_1", "iss": "https://issuer.test", "iat": now - 5, "exp": now + 600}
    h = {"alg": keys.alg, "kid": keys.kid, "typ": "at+jwt", **header}
    token = jwt_tokens.make(h, payload, keys.raw_key if key is None else key, alg=alg or h["alg"])
    secrets_registry.remember(token)
    return token


def error_rows(stack: Stack) -> list[Row]:
    """One request for every row of the DESIGN §4 table the rules can produce, but ``rate_limited`` and
    ``auth_unavailable`` (they need a state: :func:`tight_token`, a closed store)."""
    keys, now = stack.keys, int(time.time())
    revoked = issue(stack.store, "user_revoked", scopes=["read:reports"])
    assert stack.store.revoke(revoked.token)
    stranger = issue(bastion.TokenStore(None, pepper=PEPPER), "nobody")
    other_key = ec.generate_private_key(ec.SECP256R1()) if keys.alg != "HS256" else b"x" * 32
    me = "/api/me"
    return [
        ("missing_token", "GET", me, {}),
        ("missing_token", "GET", me, {"Authorization": "Basic dXNlcjpwdw=="}),
        ("invalid_request", "GET", me, {"Authorization": "Bearer a b"}),
        ("invalid_request", "GET", "/api/../admin", {}),
        ("token_malformed", "GET", me, bearer("abc.def")),
        ("token_too_large", "GET", me, bearer("a" * 4100 + "." + "b" * 4100 + ".c")),
        ("unsupported_algorithm", "GET", me, bearer(_crafted(keys, {"alg": "HS512"}, jwt_tokens.SECRET, "HS512"))),
        ("unsupported_header", "GET", me, bearer(_crafted(keys, {"crit": ["exp"]}))),
        ("unknown_key", "GET", me, bearer(_crafted(keys, {"kid": "nope"}))),
        ("invalid_signature", "GET", me, bearer(_crafted(keys, {}, other_key))),
        ("token_expired", "GET", me, bearer(keys.token({"exp": now - 100}))),
        ("token_not_yet_valid", "GET", me, bearer(keys.token({"nbf": now + 600}))),
        ("invalid_issuer", "GET", me, bearer(keys.token({"iss": "https://other.test"}))),
        ("invalid_audience", "GET", me, bearer(keys.token({"aud": "someone-else"}))),
        ("invalid_type", "GET", me, bearer(keys.token(typ="JWT"))),
        ("missing_claim", "GET", me, bearer(keys.token({"exp": None}))),
        ("invalid_claim", "GET", me, bearer(keys.token({"scope": 7}))),
        ("unknown_token", "GET", me, bearer(stranger.token)),
        ("token_revoked", "GET", me, bearer(revoked.token)),
        ("insufficient_scope", "GET", "/api/reports", bearer(keys.token({"scope": "other"}))),
        ("forbidden", "DELETE", "/api/reports/7", bearer(keys.token())),
    ]


def tight_token(keys: Keys) -> str:
    """A token of a fresh subject in the tier allowing one request an hour: its second request is 429."""
    return keys.token({"sub": f"tight-{time.perf_counter_ns()}", "tier": "tight"})


def assert_same(got: Response, want: Response) -> None:
    """``got`` is the response ``want`` is: status, body and every header but a framework's own."""
    assert (got.status, got.body) == (want.status, want.body)
    mine = {k: v for k, v in got.headers.items() if k not in FRAMEWORK_HEADERS}
    theirs = {k: v for k, v in want.headers.items() if k not in FRAMEWORK_HEADERS}
    assert mine == theirs


def assert_bastion_refusal(r: Response, code: str) -> None:
    """A refusal in bastion's shape for ``code`` (DESIGN §4), whoever rendered it."""
    # invalid_token: the base of the 401 family, which another scheme's AuthenticationFailed maps to (DRF)
    cls = bastion.InvalidToken if code == "invalid_token" else bastion.errors.ERRORS_BY_CODE[code]
    assert issubclass(cls, bastion.AuthError)
    assert r.status == cls.status, (r.status, r.body)
    assert r.body == {"error": code, "message": r.body["message"]}
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-type"] == "application/json"
    if cls.status in (400, 401, 403):
        assert r.headers["www-authenticate"].startswith('Bearer realm="api"')
    else:
        assert "www-authenticate" not in r.headers


def wsgi_sender(app: Any) -> Send:
    """Requests to a WSGI app through werkzeug's test client, closing each response as a server does."""
    client = WerkzeugClient(app)

    def send(method: str, path: str, headers: dict[str, str]) -> Response:
        r = client.open(path, method=method, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        data = r.get_data()
        r.close()
        hdrs = {k.lower(): v for k, v in r.headers.items()}
        body = json.loads(data) if data and "json" in hdrs.get("content-type", "") else data
        return Response(r.status_code, hdrs, body)

    return send


@contextmanager
def audited(stack: Stack) -> Iterator[list[dict[str, object]]]:
    """The audit records ``stack`` writes while the block runs (as dicts without the request id, timestamp and
    duration, which differ between any two requests), complete once the block has ended."""
    assert stack.auth.audit is not None
    out: list[dict[str, object]] = []
    stack.auth.audit.flush()  # what earlier requests queued is not this block's
    with collecting(stack.auth.audit.logger.name) as got:
        yield out
        stack.auth.audit.flush()
    for record in got:
        fields = dict(record.bastion_audit.as_dict())
        assert isinstance(fields.pop("request.id"), str)
        assert isinstance(fields.pop("duration_ms"), float)
        out.append(fields)


__all__ = [
    "FRAMEWORK_HEADERS",
    "Row",
    "Send",
    "assert_bastion_refusal",
    "assert_same",
    "audited",
    "bearer",
    "error_rows",
    "make_stack",
    "tight_token",
    "wsgi_sender",
]
