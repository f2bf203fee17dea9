"""`bastion.Authenticator` called directly: ``authenticate`` / ``authenticate_async``, ``rules=``, its
configuration errors, ``tier_of``, and the shared limiter's closed failure mode seen through a middleware."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import bastion
import pytest

from tests.opaque_support import PEPPER
from tests.request_support import RULES, TIERS, Client, Keys, hs_keys, issue, make_auth
from tests.servers import start_redis, unavailable


@pytest.fixture
def keys() -> Keys:
    return hs_keys()


@pytest.fixture
def store() -> Iterator[bastion.TokenStore]:
    s = bastion.TokenStore(None, pepper=PEPPER)
    yield s
    s.close()


@pytest.fixture
def auth(keys: Keys, store: bastion.TokenStore) -> bastion.Authenticator:
    return make_auth(keys, store, bastion.RateLimiter(TIERS, default="default"))


def bearer(token: str) -> str:
    return f"Bearer {token}"


# -- authenticate ------------------------------------------------------------------------------------------


def test_authenticate_returns_the_principal(auth: bastion.Authenticator, keys: Keys, store: bastion.TokenStore) -> None:
    principal = auth.authenticate(bearer(keys.token({"sub": "alice"})))
    assert isinstance(principal, bastion.Principal)
    assert principal.subject == "alice"
    assert principal.token_type == "jwt"
    assert principal.scopes == frozenset({"read:reports"})
    opaque = issue(store, "bob", scopes=["a", "b"])
    got = auth.authenticate(bearer(opaque.token).encode())  # bytes, as ASGI hands a header over
    assert got is not None
    assert (got.subject, got.token_type, got.scopes) == ("bob", "opaque", frozenset({"a", "b"}))


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, bastion.MissingToken),
        ("Basic dXNlcjpwdw==", bastion.MissingToken),
        ("Bearer a b", bastion.InvalidRequest),
        ("Bearer not-a-token", bastion.InvalidToken),
        ("Bearer bstk_" + "Z" * 49, bastion.InvalidToken),
    ],
)
def test_authenticate_raises_the_refusal(
    auth: bastion.Authenticator, authorization: str | None, error: type[bastion.AuthError]
) -> None:
    with pytest.raises(error) as info:
        auth.authenticate(authorization)
    assert isinstance(info.value, bastion.AuthError)
    with pytest.raises(error) as again:
        asyncio.run(auth.authenticate_async(authorization))
    assert again.value.code == info.value.code


def test_expired_and_revoked_tokens_raise_their_own_classes(
    auth: bastion.Authenticator, keys: Keys, store: bastion.TokenStore
) -> None:
    with pytest.raises(bastion.errors.TokenExpired):
        auth.authenticate(bearer(keys.token({"exp": int(time.time()) - 100})))
    token = keys.token({"jti": "gone"})
    store.revoke_jti("gone", time.time() + 600)
    with pytest.raises(bastion.TokenRevoked):
        auth.authenticate(bearer(token))
    with pytest.raises(bastion.TokenRevoked):
        asyncio.run(auth.authenticate_async(bearer(token)))


def test_authenticate_async_returns_the_principal(auth: bastion.Authenticator, keys: Keys) -> None:
    principal = asyncio.run(auth.authenticate_async(bearer(keys.token({"sub": "carol"}))))
    assert principal is not None
    assert principal.subject == "carol"


def test_the_api_key_argument(keys: Keys, store: bastion.TokenStore) -> None:
    auth = make_auth(keys, store, None, api_key_header="X-API-Key")
    opaque = issue(store, "partner")
    principal = auth.authenticate(api_key=opaque.token)
    assert principal is not None
    assert principal.subject == "partner"
    with pytest.raises(bastion.InvalidRequest):
        auth.authenticate(bearer(keys.token()), api_key=opaque.token)
    with pytest.raises(bastion.InvalidToken):
        auth.authenticate(api_key=keys.token())  # a JWT is never an API key


def test_rules_lists(auth: bastion.Authenticator, keys: Keys) -> None:
    # without rules= every path needs a token
    with pytest.raises(bastion.MissingToken):
        auth.authenticate(path="/health")
    assert auth.authenticate(path="/health", rules=RULES) is None  # auth="none"
    assert auth.authenticate(path="/public/info", rules=RULES) is None  # optional, anonymous
    optional = auth.authenticate(bearer(keys.token()), path="/public/info", rules=RULES)
    assert optional is not None
    assert optional.subject == "user_1"
    with pytest.raises(bastion.Forbidden):
        auth.authenticate(bearer(keys.token()), method="DELETE", path="/api/reports/1", rules=RULES)
    with pytest.raises(bastion.InsufficientScope):
        auth.authenticate(bearer(keys.token({"scope": "other"})), path="/api/reports", rules=RULES)
    rules = [bastion.Rule("/open", auth="none")]
    assert asyncio.run(auth.authenticate_async(path="/open", rules=rules)) is None
    outcome = auth.decide(bearer(keys.token()), method="DELETE", path="/api/reports/1", rules=RULES)
    assert outcome.rule == 2
    assert outcome.error is not None
    assert outcome.error.code == "forbidden"
    assert auth.decide(bearer(keys.token()), path="/api/elsewhere", rules=RULES).rule == len(RULES) - 1
    assert auth.decide(bearer(keys.token()), path="/elsewhere", rules=RULES).rule == -1  # the default


def test_bad_rules_are_a_configuration_error(auth: bastion.Authenticator) -> None:
    with pytest.raises(bastion.ConfigurationError):
        auth.authenticate(path="/x", rules=["/x"])  # type: ignore[list-item]


# -- configuration -----------------------------------------------------------------------------------------


def verifier(keys: Keys) -> bastion.JWTVerifier:
    return bastion.JWTVerifier(keys.verify_key, algorithms=[keys.alg])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to verify"),
        ({"jwt": "v", "tier_of": "premium"}, "tier_of"),
        ({"jwt": "v", "realm": 'a"b'}, "realm"),
        ({"jwt": "v", "realm": ""}, "realm"),
        ({"jwt": "v", "realm": 7}, "realm"),
        ({"jwt": "v", "api_key_header": "X-API-Key"}, "needs tokens"),
        ({"tokens": "s", "api_key_header": "Authorization"}, "Authorization"),
        ({"tokens": "s", "api_key_header": "authorization"}, "Authorization"),
        ({"tokens": "s", "api_key_header": "X API Key"}, "api_key_header"),
        ({"tokens": "s", "api_key_header": ""}, "api_key_header"),
        ({"jwt": "v", "limiter": object()}, "limiter"),
        ({"jwt": "v", "limiter": {"default": bastion.Rate(1, per=1)}}, "limiter"),
        ({"jwt": "v", "audit": "bastion.audit"}, "audit"),
    ],
)
def test_configuration_errors(kwargs: dict[str, Any], message: str, keys: Keys, store: bastion.TokenStore) -> None:
    given: dict[str, Any] = {k: verifier(keys) if v == "v" else store if v == "s" else v for k, v in kwargs.items()}
    with pytest.raises(bastion.ConfigurationError, match=message):
        bastion.Authenticator(**given)


@pytest.mark.parametrize("bad", [0, -1, "8192", 1.5, True])
def test_bad_max_header_bytes(keys: Keys, bad: Any) -> None:
    with pytest.raises(bastion.ConfigurationError):
        bastion.Authenticator(verifier(keys), max_header_bytes=bad)


def test_max_header_bytes_caps_the_value(keys: Keys) -> None:
    token = keys.token()
    auth = bastion.Authenticator(verifier(keys), max_header_bytes=len(bearer(token)) - 1)
    with pytest.raises(bastion.InvalidRequest):
        auth.authenticate(bearer(token))
    assert bastion.Authenticator(verifier(keys), max_header_bytes=len(bearer(token))).authenticate(bearer(token))


# -- tier_of -----------------------------------------------------------------------------------------------


def test_tier_of_chooses_the_tier(keys: Keys, store: bastion.TokenStore) -> None:
    seen: list[str] = []

    def tier_of(principal: bastion.Principal) -> str | None:
        seen.append(principal.subject)
        return "tight" if principal.subject.startswith("free") else None

    auth = make_auth(keys, store, bastion.RateLimiter(TIERS, default="default"), tier_of=tier_of)
    free = keys.token({"sub": "free-1", "tier": "admin"})  # tier_of overrides the token's own tier
    first = auth.decide(bearer(free))
    assert first.error is None
    assert first.decision is not None
    assert first.decision.tier == "tight"
    refused = auth.decide(bearer(free))
    assert refused.error is not None
    assert refused.error.code == "rate_limited"
    paid = auth.decide(bearer(keys.token({"sub": "paid-1"})))
    assert paid.decision is not None
    assert paid.decision.tier == "default"  # None: the limiter's default tier
    assert seen == ["free-1", "free-1", "paid-1"]


class TierBug(Exception):
    """A bug in the application's tier_of."""


def test_a_tier_of_that_raises_propagates(keys: Keys, store: bastion.TokenStore) -> None:
    def tier_of(principal: bastion.Principal) -> str | None:
        raise TierBug("tier lookup failed")

    auth = make_auth(keys, store, bastion.RateLimiter(TIERS, default="default"), tier_of=tier_of)
    token = keys.token()
    with pytest.raises(TierBug):
        auth.authenticate(bearer(token))
    with pytest.raises(TierBug):
        auth.decide(bearer(token))
    with pytest.raises(TierBug):
        asyncio.run(auth.authenticate_async(bearer(token)))
    for kind in ("asgi", "wsgi"):  # not a 401 nor a 503: the app's bug reaches the server
        with pytest.raises(TierBug):
            Client(kind, auth).get("/api/me", token=token)
    # a request that never reaches the rate limit never asks tier_of
    assert Client("asgi", auth).get("/health").status == 200


def test_tier_of_naming_an_unknown_tier_gets_the_default_tier(keys: Keys, store: bastion.TokenStore) -> None:
    # as documented for the limiters: an unknown tier name at request time falls back to the default
    auth = make_auth(keys, store, bastion.RateLimiter(TIERS, default="default"), tier_of=lambda p: "no-such-tier")
    outcome = auth.decide(bearer(keys.token()))
    assert outcome.error is None
    assert outcome.decision is not None
    assert outcome.decision.tier == "default"
    for kind in ("asgi", "wsgi"):
        assert Client(kind, auth).get("/api/me", token=keys.token()).status == 200


# -- the shared limiter down ------------------------------------------------------------------------------


def test_redis_down_with_the_closed_mode_is_a_503(keys: Keys, store: bastion.TokenStore) -> None:
    try:
        server = start_redis()
    except (OSError, RuntimeError) as exc:
        unavailable(f"cannot start redis-server: {exc}")
    try:
        limiter = bastion.RedisRateLimiter(
            server.url, TIERS, default="default", failure_mode="closed", timeout=0.2, retry_interval=0.0
        )
        auth = make_auth(keys, store, limiter)
        clients = [Client("asgi", auth), Client("wsgi", auth)]
        for client in clients:
            assert client.get("/api/me", token=keys.token()).status == 200
        server.stop()
        for client in clients:
            r = client.get("/api/me", token=keys.token())
            assert r.status == 503, r.body
            assert r.body["error"] == "auth_unavailable"
            assert re.fullmatch(r"[1-9][0-9]*", r.headers["retry-after"])
            assert "www-authenticate" not in r.headers
        with pytest.raises(bastion.AuthUnavailable):
            auth.authenticate(bearer(keys.token()))
        with pytest.raises(bastion.AuthUnavailable):
            asyncio.run(auth.authenticate_async(bearer(keys.token())))
        # a route that needs no token never reaches the limiter: still served
        for client in clients:
            assert client.get("/health").status == 200
    finally:
        server.stop()


def test_import_bastion_loads_no_database_or_redis_driver() -> None:
    """``import bastion`` stays light: psycopg and redis-py are imported by the stores and limiters that use
    them, not by the package (psycopg alone was 40% of the import)."""
    import subprocess
    import sys

    code = "import sys, bastion; print(sorted(m for m in ('psycopg', 'psycopg_pool', 'redis') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
