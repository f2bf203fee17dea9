"""`JWKSClient` against a real HTTP server on loopback (tests/jwks_server.py) that counts requests: rotation,
removal, outages, slow and hostile servers, random-kid floods from threads and tasks, discovery, several
issuers on one Authenticator, and both middlewares end to end."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import bastion
import pytest
from bastion.jwks import _fetch

from tests import secrets_registry
from tests.jwks_server import Provider, jwks, mint, running
from tests.request_support import Client

ES = ["ES256"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running() as p:
        yield p


def client(provider: Provider, path: str = "/jwks", **kw: Any) -> bastion.JWKSClient:
    kw.setdefault("allow_http", True)
    kw.setdefault("background", False)
    return bastion.JWKSClient(provider.url(path), **kw)


def authenticator(*verifiers: bastion.JWTVerifier) -> bastion.Authenticator:
    return bastion.Authenticator(jwt=verifiers[0] if len(verifiers) == 1 else list(verifiers))


def code(auth: bastion.Authenticator, token: str) -> str:
    outcome = auth.decide(f"Bearer {token}")
    return "ok" if outcome.error is None else outcome.error.code


async def acode(auth: bastion.Authenticator, token: str) -> str:
    outcome = await auth.decide_async(f"Bearer {token}")
    return "ok" if outcome.error is None else outcome.error.code


def test_a_new_kid_costs_one_fetch_then_verifies(provider: Provider) -> None:
    k1, k2 = bastion.Key.generate("ES256", kid="k1"), bastion.Key.generate("ES256", kid="k2")
    provider.serve("/jwks", jwks(k1))
    c = client(provider)
    auth = authenticator(c.verifier(algorithms=ES))
    assert code(auth, mint(k1)) == "ok"  # the first token loads the set
    assert provider.count("/jwks") == 1
    assert code(auth, mint(k1)) == "ok"
    assert provider.count("/jwks") == 1  # known keys: no fetch
    provider.serve("/jwks", jwks(k1, k2))
    assert code(auth, mint(k2)) == "ok"  # rotation: the new kid is fetched for, once
    assert provider.count("/jwks") == 2
    assert sorted(c.keys.kids) == ["k1", "k2"]  # type: ignore[union-attr]


def test_kid_misses_fetch_once_per_cooldown_and_are_remembered(provider: Provider) -> None:
    k1 = bastion.Key.generate("ES256", kid="k1")
    provider.serve("/jwks", jwks(k1))
    c = client(provider, cooldown=0.3)
    auth = authenticator(c.verifier(algorithms=ES))
    assert c.refresh() is True
    one, two = bastion.Key.generate("ES256", kid="one"), bastion.Key.generate("ES256", kid="two")
    assert code(auth, mint(one)) == "unknown_key"  # one fetch, still missing: remembered
    assert provider.count("/jwks") == 2
    assert code(auth, mint(two)) == "unknown_key"  # another kid within the cooldown: no fetch
    assert provider.count("/jwks") == 2
    time.sleep(0.35)
    assert code(auth, mint(one)) == "unknown_key"  # the negative cache: no fetch for the same kid
    assert provider.count("/jwks") == 2
    assert code(auth, mint(two)) == "unknown_key"  # past the cooldown: one fetch
    assert provider.count("/jwks") == 3
    assert code(auth, mint(k1)) == "ok"


def test_a_removed_key_stops_verifying_at_the_next_refresh(provider: Provider) -> None:
    k1, k2 = bastion.Key.generate("ES256", kid="k1"), bastion.Key.generate("ES256", kid="k2")
    provider.serve("/jwks", jwks(k1, k2))
    c = client(provider)
    verifier = c.verifier(algorithms=ES, cache_size=64)
    auth = authenticator(verifier)
    old = mint(k1)
    assert code(auth, old) == "ok"
    assert code(auth, old) == "ok"
    assert verifier.verify(old)["sub"] == "alice"
    provider.serve("/jwks", jwks(k2))
    assert c.refresh() is True
    assert code(auth, old) == "unknown_key"  # the principal cache was cleared with the keys
    with pytest.raises(bastion.UnknownKey):
        verifier.verify(old)
    assert code(auth, mint(k2)) == "ok"


def test_an_outage_serves_the_last_good_set_then_recovers(provider: Provider, caplog: Any) -> None:
    k1, k2 = bastion.Key.generate("ES256", kid="k1"), bastion.Key.generate("ES256", kid="k2")
    provider.serve("/jwks", jwks(k1))
    c = client(provider)
    auth = authenticator(c.verifier(algorithms=ES))
    assert c.refresh() is True
    provider.serve("/jwks", {"error": "down"}, status=503)
    with caplog.at_level(logging.WARNING, logger="bastion.jwks"):
        assert c.refresh() is False
    assert "keeping the last good key set" in caplog.text
    assert "HTTP 503" in caplog.text
    assert code(auth, mint(k1)) == "ok"
    provider.serve("/jwks", jwks(k2))
    assert c.refresh() is True
    assert code(auth, mint(k2)) == "ok"
    assert code(auth, mint(k1)) == "unknown_key"


def test_no_set_ever_loaded_is_auth_unavailable_with_retry_after(provider: Provider) -> None:
    provider.serve("/jwks", {"error": "down"}, status=500)
    c = client(provider, cooldown=10)
    auth = authenticator(c.verifier(algorithms=ES))
    token = mint(bastion.Key.generate("ES256", kid="k1"))
    outcome = auth.decide(f"Bearer {token}")
    assert outcome.error is not None
    assert outcome.error.code == "auth_unavailable"
    assert outcome.error.status == 503
    assert isinstance(outcome.error, bastion.AuthUnavailable)
    assert outcome.error.retry_after is not None
    assert 1.0 <= outcome.error.retry_after <= 10
    assert code(auth, token) == "auth_unavailable"  # within the cooldown: no second fetch
    assert provider.count("/jwks") == 1


def test_the_set_is_dropped_after_its_grace(provider: Provider) -> None:
    k1 = bastion.Key.generate("ES256", kid="k1")
    provider.serve("/jwks", jwks(k1), headers={"Cache-Control": "max-age=0"})
    c = client(provider, min_ttl=0.2, grace=0.3, cooldown=0.1, background=True)
    auth = authenticator(c.verifier(algorithms=ES))
    try:
        assert code(auth, mint(k1)) == "ok"
        provider.serve("/jwks", {"error": "down"}, status=500)
        deadline = time.monotonic() + 5
        while c.keys is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.keys is None  # past expiry + grace with every refresh failing
        assert code(auth, mint(k1)) == "auth_unavailable"
    finally:
        c.close()


def test_the_background_refresh_follows_max_age(provider: Provider) -> None:
    k1, k2 = bastion.Key.generate("ES256", kid="k1"), bastion.Key.generate("ES256", kid="k2")
    provider.serve("/jwks", jwks(k1), headers={"Cache-Control": "public, max-age=1"})
    c = client(provider, min_ttl=0.5, background=True)
    verifier = c.verifier(algorithms=ES)
    try:
        deadline = time.monotonic() + 3
        while c.keys is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert verifier.has_kid("k1")
        provider.serve("/jwks", jwks(k2), headers={"Cache-Control": "max-age=1"})
        deadline = time.monotonic() + 5
        while not verifier.has_kid("k2") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert verifier.has_kid("k2")
        assert not verifier.has_kid("k1")
    finally:
        c.close()


def test_max_age_is_clamped() -> None:
    def age(header: str | None) -> float:
        return _fetch.max_age(header, default=3600, low=300, high=86400)

    assert age(None) == 3600
    assert age("max-age=600") == 600
    assert age("public, max-age=5") == 300
    assert age("max-age=99999999") == 86400
    assert age("no-store") == 300
    assert age('private, max-age="900"') == 900
    assert age("s-maxage=9, stale-while-revalidate=5") == 3600


def test_a_slow_server_is_bounded_by_the_timeout(provider: Provider) -> None:
    provider.serve("/jwks", jwks(bastion.Key.generate("ES256", kid="k1")), delay=3)
    c = client(provider, timeout=0.3, connect_timeout=0.3)
    started = time.monotonic()
    assert c.refresh() is False
    assert time.monotonic() - started < 1.5
    provider.serve("/jwks", jwks(bastion.Key.generate("ES256", kid="k1")), drip=0.05)
    c = client(provider, timeout=0.3, connect_timeout=0.3)  # every byte in time, the whole far too slow
    started = time.monotonic()
    assert c.refresh() is False
    assert time.monotonic() - started < 2.5


def test_a_slow_server_never_blocks_the_event_loop(provider: Provider) -> None:
    provider.serve("/jwks", jwks(bastion.Key.generate("ES256", kid="k1")), delay=3)
    c = client(provider, timeout=0.5, connect_timeout=0.5)
    auth = authenticator(c.verifier(algorithms=ES))
    token = mint(bastion.Key.generate("ES256", kid="k1"))

    async def main() -> tuple[str, int, float]:
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        result = await acode(auth, token)
        elapsed = time.monotonic() - started
        stop = True
        await task
        return result, ticks, elapsed

    result, ticks, elapsed = asyncio.run(main())
    assert result == "auth_unavailable"
    assert elapsed < 2.0
    assert elapsed >= 0.4  # the fetch did wait for the read timeout
    assert ticks >= max(5, elapsed / 0.01 * 0.2)  # and the loop kept turning meanwhile (a blocked loop: 0 or 1)


def test_a_random_kid_flood_costs_one_fetch_per_cooldown(provider: Provider) -> None:
    k1 = bastion.Key.generate("ES256", kid="k1")
    provider.serve("/jwks", jwks(k1), delay=0.2)  # slow enough that the misses overlap
    c = client(provider, cooldown=60)
    auth = authenticator(c.verifier(algorithms=ES))
    assert c.refresh() is True
    tokens = [mint(k1, kid=uuid.uuid4().hex) for _ in range(200)]
    results: list[str] = []
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        got = [code(auth, t) for t in chunk]
        with lock:
            results.extend(got)

    async def tasks(chunk: list[str]) -> list[str]:
        return list(await asyncio.gather(*(acode(auth, t) for t in chunk)))

    threads = [threading.Thread(target=worker, args=(tokens[i : i + 10],)) for i in range(0, 100, 10)]
    for t in threads:
        t.start()
    async_results = asyncio.run(tasks(tokens[100:]))
    for t in threads:
        t.join()
    assert set(results) | set(async_results) == {"unknown_key"}
    assert len(results) + len(async_results) == 200
    assert provider.count("/jwks") == 2  # the load, then one refetch: every other miss waited or was refused
    assert code(auth, mint(k1)) == "ok"
    assert provider.count("/jwks") == 2


def test_a_document_over_the_cap_is_refused(provider: Provider) -> None:
    k1 = bastion.Key.generate("ES256", kid="k1")
    doc = jwks(k1)
    doc["padding"] = "x" * 5000
    provider.serve("/jwks", doc)
    assert client(provider, max_bytes=4096).refresh() is False  # declared by Content-Length
    provider.serve("/jwks", doc, drip=0.0001)
    c = client(provider, max_bytes=4096)
    assert c.refresh() is False  # no Content-Length: counted while read
    assert c.keys is None
    assert client(provider, max_bytes=8192).refresh() is True


def test_redirects_stay_on_the_same_host(provider: Provider) -> None:
    k1 = bastion.Key.generate("ES256", kid="k1")
    provider.serve("/jwks", jwks(k1))
    provider.serve("/moved", status=302, headers={"Location": "/jwks"})
    assert client(provider, "/moved").refresh() is True
    elsewhere = f"http://localhost:{provider.port}/jwks"
    provider.serve("/away", status=301, headers={"Location": elsewhere})
    c = client(provider, "/away")
    assert c.refresh() is False
    assert c.keys is None
    assert provider.count("/jwks") == 1  # never followed


def test_http_is_refused_unless_allowed(provider: Provider) -> None:
    with pytest.raises(bastion.ConfigurationError, match="https"):
        bastion.JWKSClient(provider.url("/jwks"))
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWKSClient("file:///etc/passwd", allow_http=True)
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWKSClient("https://user:pw@idp.example/jwks")
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWKSClient("https://idp.example/jwks", timeout=-1)
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWKSClient("https://idp.example/jwks", headers={"X": 1})  # type: ignore[dict-item]


def test_a_malformed_or_hostile_document_never_replaces_a_good_set(provider: Provider) -> None:
    k1 = bastion.Key.generate("ES256", kid="k1")
    provider.serve("/jwks", jwks(k1))
    c = client(provider)
    auth = authenticator(c.verifier(algorithms=ES))
    assert c.refresh() is True
    symmetric = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
    secrets_registry.remember(symmetric)
    hostile: list[dict[str, Any]] = [
        {"raw": b"{not json"},
        {"body": {"keys": "nope"}},
        {"body": {"keys": [{"kty": "oct", "k": symmetric, "kid": "h"}]}},  # a secret: refused, whole
        {"body": {"keys": [{**k1.public_jwk(), "use": "enc"}]}},  # nothing left to verify with
        {"raw": b"\xff\xfe"},
        {"body": {"keys": [k1.public_jwk(), {"kty": "OKP", "crv": "Ed25519", "x": b64(b"\x01" + bytes(31))}]}},
        {"body": {"keys": [k1.public_jwk(), {"kty": "RSA", "n": b64(b"\xc1" * 128), "e": "AQAB", "kid": "s"}]}},
    ]
    for answer in hostile:
        provider.serve("/jwks", **answer)
        assert c.refresh() is False, answer
        assert code(auth, mint(k1)) == "ok"
    assert c.keys is not None
    assert c.keys.kids == ["k1"]


def test_key_ops_without_verify_is_not_used(provider: Provider) -> None:
    k1, k2 = bastion.Key.generate("ES256", kid="k1"), bastion.Key.generate("ES256", kid="k2")
    provider.serve("/jwks", {"keys": [k1.public_jwk(), {**k2.public_jwk(), "key_ops": ["encrypt"]}]})
    c = client(provider)
    auth = authenticator(c.verifier(algorithms=ES))
    assert c.refresh() is True
    assert code(auth, mint(k1)) == "ok"
    assert code(auth, mint(k2)) == "unknown_key"


# -- discovery -------------------------------------------------------------------------------------------


def test_discovery_without_a_path(provider: Provider) -> None:
    k1 = bastion.Key.generate("ES256", kid="k1")
    issuer = provider.base
    provider.serve("/.well-known/openid-configuration", {"issuer": issuer, "jwks_uri": provider.url("/keys")})
    provider.serve("/keys", jwks(k1))
    c = bastion.JWKSClient.from_issuer(issuer, allow_http=True, background=False)
    auth = authenticator(c.verifier(algorithms=ES))
    assert c.issuer == issuer
    assert code(auth, mint(k1, issuer=issuer)) == "ok"
    assert code(auth, mint(k1, issuer="https://other.example")) == "invalid_issuer"  # issuer= is the discovered
    k2 = bastion.Key.generate("ES256", kid="k2")
    provider.serve("/keys", jwks(k1, k2))
    assert code(auth, mint(k2, issuer=issuer)) == "ok"
    # the metadata is fetched once; a kid miss refetches the JWKS only
    assert provider.count("/.well-known/openid-configuration") == 1
    assert provider.count("/keys") == 2


def test_discovery_with_a_path(provider: Provider) -> None:
    k1 = bastion.Key.generate("ES256", kid="k1")
    issuer = provider.url("/tenants/a")
    provider.serve(
        "/.well-known/oauth-authorization-server/tenants/a", {"issuer": issuer, "jwks_uri": provider.url("/a")}
    )
    provider.serve("/a", jwks(k1))
    c = bastion.JWKSClient.from_issuer(issuer, discovery="oauth", allow_http=True, background=False)
    assert c.refresh() is True
    # "auto": OpenID first ({issuer}/.well-known/openid-configuration, 404 here), then RFC 8414
    c = bastion.JWKSClient.from_issuer(issuer, allow_http=True, background=False)
    assert c.refresh() is True
    assert provider.count("/tenants/a/.well-known/openid-configuration") == 1
    provider.serve("/tenants/a/.well-known/openid-configuration", {"issuer": issuer, "jwks_uri": provider.url("/a")})
    c = bastion.JWKSClient.from_issuer(issuer, discovery="openid", allow_http=True, background=False)
    assert c.refresh() is True
    assert provider.count("/.well-known/oauth-authorization-server/tenants/a") == 2


def test_discovery_refuses_another_issuer(provider: Provider) -> None:
    issuer = provider.base
    provider.serve("/.well-known/openid-configuration", {"issuer": issuer + "/", "jwks_uri": provider.url("/keys")})
    provider.serve("/keys", jwks(bastion.Key.generate("ES256", kid="k1")))
    c = bastion.JWKSClient.from_issuer(issuer, discovery="openid", allow_http=True, background=False)
    assert c.refresh() is False
    assert c.keys is None
    assert provider.count("/keys") == 0
    provider.serve("/.well-known/openid-configuration", {"issuer": issuer, "jwks_uri": "ftp://x/keys"})
    assert c.refresh() is False
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWKSClient.from_issuer(issuer, allow_http=True, discovery="guess")


# -- several issuers, and both middlewares -----------------------------------------------------------------


def test_two_issuers_on_one_authenticator(provider: Provider) -> None:
    ka, kb = bastion.Key.generate("ES256", kid="a1"), bastion.Key.generate("ES256", kid="b1")
    provider.serve("/a", jwks(ka))
    provider.serve("/b", jwks(kb))
    ia, ib = "https://a.example", "https://b.example"
    va = client(provider, "/a").verifier(algorithms=ES, issuer=ia, audience="api")
    vb = client(provider, "/b").verifier(algorithms=ES, issuer=ib)
    auth = authenticator(va, vb)
    assert code(auth, mint(ka, issuer=ia, audience="api")) == "ok"
    assert code(auth, mint(kb, issuer=ib)) == "ok"
    assert code(auth, mint(ka, issuer=ia)) == "invalid_audience"  # issuer a's rules only
    assert code(auth, mint(kb, issuer="https://c.example")) == "invalid_issuer"
    assert code(auth, mint(kb)) == "invalid_issuer"  # no iss at all
    assert code(auth, mint(kb, issuer=ia, audience="api")) == "unknown_key"  # b's key under a's name
    assert provider.count("/a") == 2
    assert provider.count("/b") == 1
    with pytest.raises(bastion.ConfigurationError, match="issuer"):
        authenticator(va, client(provider, "/b").verifier(algorithms=ES))
    with pytest.raises(bastion.ConfigurationError, match="same issuer"):
        authenticator(va, client(provider, "/b").verifier(algorithms=ES, issuer=ia))


def test_local_keys_rotate_while_threads_verify() -> None:
    old, new = bastion.Key.generate("ES256", kid="old"), bastion.Key.generate("ES256", kid="new")
    verifier = bastion.JWTVerifier(old, algorithms=ES, cache_size=16)
    auth = authenticator(verifier)
    t_old, t_new = mint(old), mint(new)
    seen: set[str] = set()
    stop = threading.Event()

    def verify() -> None:
        while not stop.is_set():
            seen.add(code(auth, t_old))

    threads = [threading.Thread(target=verify) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(50):
        verifier.replace_keys([old, new])
        verifier.replace_keys(bastion.KeySet([old]))
    stop.set()
    for t in threads:
        t.join()
    assert seen == {"ok"}  # the old key was in every set: no verification saw a half-replaced one
    verifier.replace_keys([new])
    assert code(auth, t_old) == "unknown_key"
    assert code(auth, t_new) == "ok"
    with pytest.raises(bastion.ConfigurationError):
        verifier.replace_keys([new, new])  # two keys with one kid: refused, the keys stay
    assert code(auth, t_new) == "ok"
    with pytest.raises(bastion.ConfigurationError):
        verifier.clear_keys()  # only for a verifier fed by a key source


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_end_to_end_through_the_middleware(provider: Provider, kind: str) -> None:
    k1, k2 = bastion.Key.generate("ES256", kid="k1"), bastion.Key.generate("ES256", kid="k2")
    provider.serve("/jwks", jwks(k1))
    c = client(provider)
    http = Client(kind, authenticator(c.verifier(algorithms=ES)))
    scope = {"scope": "read:reports"}
    r = http.get("/api/reports", mint(k1, scope))
    assert r.status == 200
    assert r.body["subject"] == "alice"
    provider.serve("/jwks", jwks(k1, k2))
    assert http.get("/api/reports", mint(k2, scope)).status == 200
    assert provider.count("/jwks") == 2
    r = http.get("/api/reports", mint(bastion.Key.generate("ES256", kid="k3"), scope))
    assert r.status == 401
    assert r.body["error"] == "unknown_key"


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_end_to_end_unavailable_is_503(provider: Provider, kind: str) -> None:
    provider.serve("/jwks", {"error": "down"}, status=500)
    http = Client(kind, authenticator(client(provider).verifier(algorithms=ES)))
    r = http.get("/api/me", mint(bastion.Key.generate("ES256", kid="k1")))
    assert r.status == 503
    assert r.body["error"] == "auth_unavailable"
    assert int(r.headers["retry-after"]) >= 1


def test_a_kid_miss_never_rereads_the_metadata(provider: Provider) -> None:
    k1, k2 = bastion.Key.generate("ES256", kid="k1"), bastion.Key.generate("ES256", kid="k2")
    issuer = provider.base
    provider.serve("/.well-known/openid-configuration", {"issuer": issuer, "jwks_uri": provider.url("/keys")})
    provider.serve("/keys", jwks(k1))
    c = bastion.JWKSClient.from_issuer(issuer, metadata_ttl=1, allow_http=True, background=False)
    auth = authenticator(c.verifier(algorithms=ES))
    assert c.refresh() is True
    time.sleep(1.1)  # the metadata is due again, for a scheduled refresh only
    provider.serve("/keys", jwks(k1, k2))
    assert code(auth, mint(k2, issuer=issuer)) == "ok"
    assert provider.count("/.well-known/openid-configuration") == 1
    assert c.refresh() is True
    assert provider.count("/.well-known/openid-configuration") == 2


def test_a_forked_worker_refreshes_on_its_own(provider: Provider) -> None:
    provider.serve("/jwks", jwks(bastion.Key.generate("ES256", kid="k1")))
    c = client(provider, background=True)
    verifier = c.verifier(algorithms=ES)
    try:
        assert c.refresh() is True
        pid = os.fork()
        if pid == 0:  # the child: a thread of its own, a lock nobody holds, and the parent's keys
            ok = c._thread is not None and c._thread.is_alive() and verifier.has_kid("k1") and c.refresh()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        c.close()


def test_the_core_asks_for_the_key_once(provider: Provider) -> None:
    provider.serve("/jwks", jwks(bastion.Key.generate("ES256", kid="k1")))
    c = client(provider)
    auth = authenticator(c.verifier(algorithms=ES))
    assert c.refresh() is True
    header = f"Bearer {mint(bastion.Key.generate('ES256', kid='k9'))}"
    rules = auth._rules
    step = auth._core.step(rules, "GET", "/", None, header, None, None)
    assert step.kind == bastion.Outcome.NEED_KEY
    assert step.need == (c, "k9")
    again = auth._core.step(rules, "GET", "/", None, header, None, None, True)
    assert again.kind == bastion.Outcome.REFUSED
    assert again.error is not None
    assert again.error.code == "unknown_key"
    # a local verifier refuses at once: there is nobody to ask
    local = authenticator(bastion.JWTVerifier(bastion.Key.generate("ES256", kid="k1"), algorithms=ES))
    assert local._core.step(rules, "GET", "/", None, header, None, None).kind == bastion.Outcome.REFUSED
    with pytest.raises(bastion.ConfigurationError, match="key_source"):
        bastion.JWTVerifier(None, algorithms=ES, key_source=object())
    with pytest.raises(bastion.ConfigurationError):
        bastion.Outcome(bastion.Outcome.NEED_KEY + 1)


def test_a_miss_that_joins_an_older_fetch_is_not_remembered(provider: Provider) -> None:
    k1, k2 = bastion.Key.generate("ES256", kid="k1"), bastion.Key.generate("ES256", kid="k2")
    provider.serve("/jwks", jwks(k1), delay=0.5)
    c = client(provider)
    auth = authenticator(c.verifier(algorithms=ES))
    refresh = threading.Thread(target=c.refresh)
    refresh.start()
    deadline = time.monotonic() + 5
    while provider.count("/jwks") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    provider.serve("/jwks", jwks(k1, k2))  # published after the fetch in flight was answered
    token = mint(k2)
    assert code(auth, token) == "unknown_key"  # joined the older fetch, which cannot have it
    refresh.join()
    assert code(auth, token) == "ok"  # not remembered missing: its own fetch brings it
    assert provider.count("/jwks") == 2
