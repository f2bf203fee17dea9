"""The Principal: immutable, made in Rust, Starlette BaseUser duck type, no secret in its repr."""

from __future__ import annotations

import bastion
import pytest
from bastion import Principal, TokenStore


@pytest.fixture(scope="module")
def store() -> TokenStore:
    return TokenStore(None, background=False)


def test_fields_and_helpers(store: TokenStore) -> None:
    t = store.issue(
        "user_1",
        scopes="read:reports write",
        roles=["admin", "user"],
        tier="internal",
        metadata={"team": "ops", "n": 2},
    )
    p = store.verify(t.token)
    assert isinstance(p, Principal)
    assert p.scopes == frozenset({"read:reports", "write"})
    assert isinstance(p.scopes, frozenset)
    assert p.roles == frozenset({"admin", "user"})
    assert isinstance(p.roles, frozenset)
    assert p.has_scopes("read:reports")
    assert p.has_scopes("read:reports", "write")
    assert p.has_scopes()
    assert not p.has_scopes("read:reports", "delete")
    assert not p.has_scopes(42)  # type: ignore[arg-type]
    assert p.has_role("admin")
    assert not p.has_role("root")
    assert not p.has_role(None)  # type: ignore[arg-type]
    assert (p.tier, p.token_type, p.token_id, p.issuer, p.client_id) == ("internal", "opaque", t.id, None, None)
    assert dict(p.claims) == {"team": "ops", "n": 2}
    assert p.rate_limit_key == "user_1"
    # Starlette BaseUser duck type
    assert p.is_authenticated is True
    assert p.display_name == "user_1"
    assert p.identity == "user_1"


def test_immutable(store: TokenStore) -> None:
    p = store.verify(store.issue("user_2", metadata={"a": 1}).token)
    with pytest.raises(AttributeError):
        p.subject = "mallory"  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.claims["a"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError):
        p.scopes.add("admin")  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        Principal()


def test_repr_has_no_secret(store: TokenStore) -> None:
    t = store.issue("user_3", scopes=["a"])
    p = store.verify(t.token)
    text = repr(p)
    assert t.token not in text
    assert t.token[5:20] not in text
    assert "user_3" in text
    assert t.id in text
    assert "opaque" in text


def test_machine_clients_rate_limit_by_client(store: TokenStore) -> None:
    user_via_app = store.verify(store.issue("user_4", client_id="mobile_app").token)
    assert (user_via_app.client_id, user_via_app.rate_limit_key) == ("mobile_app", "user_4")
    client_credential = store.verify(store.issue("svc_owner", client_id="billing", kind="c").token)
    assert client_credential.rate_limit_key == "billing"
    self_client = store.verify(store.issue("cron", client_id="cron").token)
    assert self_client.rate_limit_key == "cron"


def test_cached_and_released(store: TokenStore) -> None:
    import gc
    import weakref

    t = store.issue("user_5")
    p = store.verify(t.token)
    assert store.verify(t.token) is p
    assert store.revoke_id(t.id)
    with pytest.raises(bastion.TokenRevoked):
        store.verify(t.token)
    assert p.subject == "user_5", "a Principal outlives its record's eviction"
    # a store and its cached principals are collected (no cycle through the per-record cache)
    s = TokenStore(None, background=False)
    q = s.verify(s.issue("x").token)
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is None
    assert q.subject == "x"


def test_nested_claims_cannot_be_changed_through_the_cached_principal(store: TokenStore) -> None:
    # the Principal of a record is cached and handed to every request: a handler must not be able to change what
    # the next request sees
    t = store.issue("user_6", metadata={"groups": ["staff"], "org": {"id": 1, "tags": ["a"]}})
    p = store.verify(t.token)
    groups = p.claims["groups"]
    with pytest.raises((AttributeError, TypeError)):
        groups.append("admin")
    with pytest.raises(TypeError):
        p.claims["org"]["id"] = 2
    with pytest.raises((AttributeError, TypeError)):
        p.claims["org"]["tags"].append("b")
    again = store.verify(t.token)
    assert list(again.claims["groups"]) == ["staff"]
    assert again.claims["org"]["id"] == 1
    assert list(again.claims["org"]["tags"]) == ["a"]
    # still plain data: sequences compare and serialise like the lists they came from
    assert tuple(again.claims["groups"]) == ("staff",)
    assert dict(again.claims["org"]) == {"id": 1, "tags": ("a",)}


def test_copy_and_pickle(store: TokenStore) -> None:
    import copy
    import pickle

    t = store.issue("user_7", scopes=["a", "b"], roles=["r"], tier="gold", client_id="app", metadata={"x": [1, 2]})
    p = store.verify(t.token)
    assert copy.copy(p) is p, "immutable: a copy is the object itself"
    assert copy.deepcopy(p) is p
    q = pickle.loads(pickle.dumps(p))
    assert isinstance(q, Principal)
    for attr in (
        "subject",
        "client_id",
        "scopes",
        "roles",
        "tier",
        "token_type",
        "token_id",
        "issuer",
        "expires_at",
        "rate_limit_key",
    ):
        assert getattr(q, attr) == getattr(p, attr), attr
    assert dict(q.claims) == dict(p.claims)
    assert repr(q) == repr(p)
    machine = store.verify(store.issue("svc", client_id="billing", kind="c").token)
    assert pickle.loads(pickle.dumps(machine)).rate_limit_key == "billing"
    assert t.token not in str(pickle.dumps(p))


def test_metadata_numbers_round_trip_exactly(store: TokenStore) -> None:
    import pickle

    floats = [0.1, 1 / 3, 1e300, 5e-324, -0.0, 2.5e-308, 123456789.12345678, 1e16, 5.0]
    ints = [2**64 - 1, -(2**63), 2**63, 0]
    many = {f"m{i}": i for i in range(300)}  # more members than a JWT header may have
    t = store.issue("user_9", metadata={"f": floats, "i": ints, "many": many})
    p = store.verify(t.token)
    for q in (p, pickle.loads(pickle.dumps(p))):
        assert [repr(f) for f in q.claims["f"]] == [repr(f) for f in floats]
        assert all(type(f) is float for f in q.claims["f"])
        assert list(q.claims["i"]) == ints
        assert all(type(i) is int for i in q.claims["i"])
        assert dict(q.claims["many"]) == many
