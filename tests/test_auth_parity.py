"""The blocking and the asyncio driver of `bastion.Authenticator` give the same outcome for any request.

Hypothesis draws a method, a path (the rules of ``request_support.RULES`` and anything else) and an
Authorization value: valid JWTs, opaque tokens in the store's index and not in it (so the record-fetch step
runs, blocking in one driver and awaited in the other), revoked ones of both kinds, garbage and the hostile
header fixture. ``decide`` and ``decide_async`` must agree on the error, the subject, the rule and the rate
decision — whose ``remaining`` differs by exactly the one request the first call spent (the tier is so large,
and refills so slowly, that nothing else moves it). Once with the in-process limiter, once with Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import bastion
import pytest
from bastion import _core
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.opaque_support import PEPPER
from tests.request_support import RULES, Keys, hs_keys, issue, make_auth
from tests.servers import RedisServer
from tests.test_bearer import FIXTURES, header

#: one tier, large and refilling one request per 1000 s: two calls in a row differ by exactly one request
TIERS = {"default": bastion.Rate(1_000_000, per=10**9)}


class FetchCountingStore(bastion.TokenStore):
    """A real store that counts the record fetches of the request path, per driver."""

    fetched = 0
    afetched = 0

    def _fetch_row(self, miss: _core._Miss) -> Any:
        type(self).fetched += 1
        return super()._fetch_row(miss)

    async def _afetch_row(self, miss: _core._Miss) -> Any:
        type(self).afetched += 1
        return await super()._afetch_row(miss)


@dataclass
class World:
    auth: bastion.Authenticator
    store: FetchCountingStore
    #: ids of tokens the store must fetch: evicted from its index before every call
    unindexed: list[str]
    headers: list[str]


@pytest.fixture(scope="module", params=["local", "redis"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[World]:
    url = f"sqlite:///{tmp_path_factory.mktemp('parity') / 'tokens.db'}"
    store = FetchCountingStore(url, pepper=PEPPER)
    issuer = bastion.TokenStore(url, pepper=PEPPER)  # another process's store: its tokens are not in `store`
    if request.param == "local":
        limiter: Any = bastion.RateLimiter(TIERS, default="default")
    else:
        limiter = bastion.RedisRateLimiter(redis_server.url, TIERS, default="default", prefix=f"par{time.time_ns()}:")
    keys: Keys = hs_keys()
    auth = make_auth(keys, store, limiter)

    jwts = [
        keys.token(),
        keys.token({"sub": "admin_1", "roles": ["admin"]}),
        keys.token({"sub": "reader", "scope": "other"}),
        keys.token({"exp": int(time.time()) - 100}),
        keys.token({"jti": "revoked-jti", "sub": "user_7"}),
        keys.token({"sub": "cut-off", "iat": int(time.time()) - 60}),
        keys.token(typ="JWT"),
    ]
    store.revoke_jti("revoked-jti", time.time() + 3600)
    store.revoke_subject("cut-off")
    indexed = [issue(store, "indexed_1", scopes=["read:reports"]), issue(store, "indexed_2", roles=["admin"])]
    fetched = [issue(issuer, "fetched_1", scopes=["read:reports"]), issue(issuer, "fetched_2")]
    revoked = [issue(store, "revoked_indexed"), issue(issuer, "revoked_fetched")]
    for r in revoked:
        assert issuer.revoke(r.id)
    store._evict(revoked[0].id)
    tokens = [*jwts, *(t.token for t in (*indexed, *fetched, *revoked))]
    headers = [f"Bearer {t}" for t in tokens] + [
        f"bearer {tokens[0]}",
        f"Bearer {tokens[0]}x",
        f"Bearer {tokens[8]}"[:-3],
    ]
    try:
        yield World(auth, store, [t.id for t in (*fetched, *revoked)], headers)
    finally:
        issuer.close()
        store.close()


def hostile_values() -> list[str]:
    out: list[str] = []
    for case in FIXTURES["authorization"]:
        values = case["values"] or []
        if len(values) == 1:
            out.append(header(values[0]).decode("latin-1"))
    return out


PATHS = ["/health", "/public/info", "/api/me", "/api/reports", "/api/reports/7", "/api/x/y", "/", "/other"]


def requests(world_headers: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str, Any]]:
    methods = st.sampled_from(["GET", "POST", "DELETE", "OPTIONS", "PUT"]) | st.text(min_size=1, max_size=8)
    paths = st.sampled_from(PATHS) | st.text(max_size=20).map(lambda s: "/" + s)
    authorization = st.one_of(
        st.none(),
        world_headers,
        world_headers.map(str.encode),  # as ASGI hands a header over
        st.sampled_from(hostile_values()),
        st.text(max_size=40),
        st.text(max_size=40).map(lambda s: "Bearer " + s),
        st.binary(max_size=40),
    )
    return st.tuples(methods, paths, authorization)


def summary(outcome: _core.Outcome) -> tuple[Any, ...]:
    error = outcome.error
    principal = outcome.principal
    decision = outcome.decision
    return (
        None if error is None else error.code,
        None if principal is None else principal.subject,
        outcome.rule,
        None if decision is None else (decision.tier, decision.allowed, decision.limit),
    )


def both(world: World, method: str, path: str, authorization: Any) -> tuple[_core.Outcome, _core.Outcome]:
    for token_id in world.unindexed:
        world.store._evict(token_id)
    sync = world.auth.decide(authorization, method=method, path=path, rules=RULES)
    for token_id in world.unindexed:
        world.store._evict(token_id)
    asynchronous = asyncio.run(world.auth.decide_async(authorization, method=method, path=path, rules=RULES))
    return sync, asynchronous


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decide_and_decide_async_agree(world: World, data: st.DataObject) -> None:
    method, path, authorization = data.draw(requests(st.sampled_from(world.headers)))
    sync, asynchronous = both(world, method, path, authorization)
    assert summary(sync) == summary(asynchronous)
    assert sync.kind == asynchronous.kind
    if sync.decision is not None and asynchronous.decision is not None and sync.decision.limit:
        # the same key, one request later
        assert sync.decision.remaining - asynchronous.decision.remaining == 1


def test_every_kind_of_header_reaches_its_step(world: World) -> None:
    # the property above is only as good as its inputs: each family gives the outcome it stands for
    seen = {summary(both(world, "GET", "/api/me", h)[0])[0] for h in world.headers}
    assert {None, "token_revoked", "token_expired", "invalid_type", "token_malformed"} <= seen
    before = (FetchCountingStore.fetched, FetchCountingStore.afetched)
    sync, asynchronous = both(world, "GET", "/api/reports", world.headers[9])  # fetched_1, not in the index
    assert summary(sync) == summary(asynchronous) == (None, "fetched_1", 3, ("default", True, 1_000_000))
    assert FetchCountingStore.fetched > before[0]
    assert FetchCountingStore.afetched > before[1]
