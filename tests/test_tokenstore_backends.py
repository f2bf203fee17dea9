"""TokenStore behaviour on every backend: memory, a real SQLite file, a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import bastion
import pytest
from bastion import TokenStore

from tests.opaque_support import PEPPER, open_store
from tests.servers import PostgresServer

BACKENDS = ["memory", "sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenStore]:
    pg: PostgresServer | None = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    yield from open_store(request.param, tmp_path, pg, usage_interval=3600)


def codes(store: TokenStore, token: object, **kw: float) -> str:
    with pytest.raises(bastion.AuthError) as info:
        store.verify(token, **kw)  # type: ignore[arg-type]
    return info.value.code


def test_issue_verify_principal(store: TokenStore) -> None:
    issued = store.issue("user_1", scopes=["read:reports"], roles=["user"], tier="third_party", ttl=3600, name="ci")
    assert issued.token.startswith("bstk_")
    assert len(issued.token) == 54
    assert issued.token not in repr(issued)
    assert issued.token not in str(issued)
    assert issued.expires_at == pytest.approx(issued.created_at + 3600, abs=1e-3)
    p = store.verify(issued.token)
    assert (p.subject, p.token_type, p.token_id, p.tier) == ("user_1", "opaque", issued.id, "third_party")
    assert p.scopes == frozenset({"read:reports"})
    assert p.roles == frozenset({"user"})
    assert p.expires_at == issued.expires_at
    assert store.verify(issued.token.encode()) is p, "a hit returns the record's cached Principal"


def test_every_error_code(store: TokenStore) -> None:
    issued = store.issue("user_2", ttl=100)
    t = issued.token
    # one character changed: the checksum catches it before any lookup
    changed = t[:10] + ("a" if t[10] != "a" else "b") + t[11:]
    assert codes(store, changed) == "token_malformed"
    assert codes(store, t[:-1]) == "token_malformed"
    assert codes(store, "xyz" + t[3:]) == "token_malformed"  # other prefix
    assert codes(store, t[:3] + "a" + t[4:]) == "token_malformed"  # other type letter (checksum no longer fits)
    assert codes(store, "") == "token_malformed"
    assert codes(store, None) == "token_malformed"
    assert codes(store, 12) == "token_malformed"
    assert codes(store, "bstk_\udcff" + t[6:]) == "token_malformed"
    other = TokenStore(None, prefix="abc")
    try:
        foreign = other.issue("x").token
        assert codes(store, foreign) == "token_malformed"
        assert codes(other, t) == "token_malformed"
    finally:
        other.close()
    stranger = TokenStore(None, pepper=PEPPER)
    try:
        assert codes(store, stranger.issue("x", kind="a").token) == "unknown_token"
    finally:
        stranger.close()
    assert codes(store, t, now=issued.expires_at) == "token_expired"
    assert codes(store, t, now=issued.expires_at + 1) == "token_expired"
    assert store.verify(t, now=issued.expires_at - 1).subject == "user_2"
    assert store.revoke_id(issued.id, reason="test") is True
    assert codes(store, t) == "token_revoked"
    assert store.revoke_id(issued.id) is False, "already revoked"
    info = store.get(issued.id)
    assert info is not None
    assert info.revoked_reason == "test"
    assert not info.is_active()


def test_rotate_grace_then_revoked(store: TokenStore) -> None:
    old = store.issue("user_3", scopes=["a"], kind="r", ttl=1000)
    new = store.rotate(old.token, grace=30)
    assert new.token != old.token
    assert new.kind == "r"
    assert new.scopes == ("a",)
    now = time.time()
    assert store.verify(old.token, now=now + 10).token_id == old.id, "old token works during the grace period"
    assert codes(store, old.token, now=now + 31) == "token_revoked", "rotated past grace"
    assert store.verify(new.token).token_id == new.id
    info = store.get(new.id)
    assert info is not None
    assert info.parent_id == old.id
    assert info.family_id == old.id
    old_info = store.get(old.id)
    assert old_info is not None
    assert old_info.revoked_reason == "rotated"
    # rotating the old token again during its grace period works but does not extend that period
    again = store.rotate(old.token, grace=3600)
    assert codes(store, old.token, now=now + 31) == "token_revoked"
    assert store.verify(again.token).token_id == again.id
    newest = store.rotate(new.token, grace=0)
    assert codes(store, new.token) == "token_revoked"
    newest_info = store.get(newest.id)
    assert newest_info is not None
    assert newest_info.family_id == old.id


def test_revoke_subject_kills_earlier_tokens_only(store: TokenStore) -> None:
    a = store.issue("user_4")
    b = store.issue("user_4", kind="a")
    other = store.issue("user_5")
    store.verify(a.token)  # cached in the index before the cut
    cut = store.revoke_subject("user_4")
    assert cut >= b.created_at
    assert codes(store, a.token) == "token_revoked"
    assert codes(store, b.token) == "token_revoked"
    assert store.verify(other.token).subject == "user_5"
    later = store.issue("user_4")  # at once: no sleep needed, issued after the cut means alive
    assert store.verify(later.token).subject == "user_4"
    assert store.subject_valid_after("user_4") == cut
    assert store.subject_valid_after("user_5") is None
    # a fresh index (another process, a restart) sees the same cut from the backend
    store._clear()
    assert codes(store, a.token) == "token_revoked"
    assert store.verify(later.token).subject == "user_4"


def test_revoke_by_token_and_list_get(store: TokenStore) -> None:
    a = store.issue("user_6", name="laptop", metadata={"device": "mac"})
    b = store.issue("user_6", name="ci")
    assert store.revoke(a.token) is True
    assert codes(store, a.token) == "token_revoked"
    infos = store.list("user_6")
    assert [i.id for i in infos] == [a.id, b.id]
    assert infos[0].metadata == {"device": "mac"}
    assert infos[1].name == "ci"
    for info in infos:
        assert a.token not in repr(info)
        assert b.token not in repr(info)
    assert store.get("nope") is None
    assert store.get("0" * 22) is None
    assert store.list("nobody") == []
    assert store.revoke_id("0" * 22) is False
    with pytest.raises(bastion.TokenMalformed):
        store.revoke("not a token")


def test_usage_is_counted_and_flushed(store: TokenStore) -> None:
    t = store.issue("user_7")
    for _ in range(5):
        store.verify(t.token)
    info = store.get(t.id)
    assert info is not None
    assert info.use_count == 0, "nothing is written on the request path"
    assert store.flush() == 1, "one row per token used"
    info = store.get(t.id)
    assert info is not None
    assert info.use_count == 5
    assert info.last_used_at is not None
    store.verify(t.token)
    store.flush()
    info = store.get(t.id)
    assert info is not None
    assert info.use_count == 6
    assert store.flush() == 0


def test_async_variants(store: TokenStore) -> None:
    async def main() -> None:
        issued = await store.aissue("user_8", scopes=["x"])
        store._clear()  # force the async miss path
        p = await store.averify(issued.token)
        assert p.subject == "user_8"
        assert p.has_scopes("x")
        assert (await store.averify(issued.token)) is p
        new = await store.arotate(issued.token, grace=0)
        with pytest.raises(bastion.TokenRevoked):
            await store.averify(issued.token)
        assert [i.id for i in await store.alist("user_8")] == [issued.id, new.id]
        info = await store.aget(new.id)
        assert info is not None
        assert info.parent_id == issued.id
        assert await store.arevoke_id(new.id) is True
        with pytest.raises(bastion.TokenRevoked):
            await store.averify(new.token)
        again = await store.aissue("user_8")
        await store.arevoke_subject("user_8")
        with pytest.raises(bastion.TokenRevoked):
            await store.averify(again.token)
        with pytest.raises(bastion.TokenMalformed):
            await store.averify("garbage")

    asyncio.run(main())


def test_unknown_digests_are_cached_negatively(tmp_path: Path) -> None:
    from tests.opaque_support import CountingStore

    url = f"sqlite:///{tmp_path / 'neg.db'}"
    store = CountingStore(url, pepper=PEPPER, negative_ttl=0.3)
    other = TokenStore(url, pepper=PEPPER)
    try:
        stranger = TokenStore(None, pepper=PEPPER)
        token = stranger.issue("ghost").token
        stranger.close()
        CountingStore.fetches = 0
        for _ in range(50):
            with pytest.raises(bastion.UnknownToken):
                store.verify(token)
        assert CountingStore.fetches == 1, "a flood of the same unknown token reaches the database once"
        # a token issued by another process is visible here: its digest was never looked up...
        issued = other.issue("u")
        assert store.verify(issued.token).subject == "u"
        # ...and one that was (an imported token tried before the import) is found after the negative TTL
        time.sleep(0.35)
        with pytest.raises(bastion.UnknownToken):
            store.verify(token)
        assert CountingStore.fetches == 3
    finally:
        store.close()
        other.close()


def test_close_flushes_usage_and_stops_serving(store: TokenStore) -> None:
    t = store.issue("user_9")
    for _ in range(3):
        store.verify(t.token)
    store.close()
    # a closed store hears no revocation any more: serving its cached records would fail open
    with pytest.raises(bastion.AuthUnavailable):
        store.verify(t.token)

    async def amain() -> None:
        with pytest.raises(bastion.AuthUnavailable):
            await store.averify(t.token)
        with pytest.raises(bastion.AuthUnavailable):
            await store.aissue("user_9")

    asyncio.run(amain())
    store.close()  # idempotent


def test_usage_counted_before_close_is_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'close.db'}"
    first = TokenStore(url, pepper=PEPPER, usage_interval=3600)
    t = first.issue("u")
    for _ in range(4):
        first.verify(t.token)
    first.close()

    async def amain() -> None:
        second = TokenStore(url, pepper=PEPPER, usage_interval=3600)
        second.verify(t.token)
        await second.aclose()
        with pytest.raises(bastion.AuthUnavailable):
            await second.averify(t.token)

    asyncio.run(amain())
    with TokenStore(url, pepper=PEPPER, background=False) as third:
        info = third.get(t.id)
        assert info is not None
        assert info.use_count == 5
