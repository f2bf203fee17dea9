"""Constructors validate eagerly: bad URLs, peppers, prefixes, options → ConfigurationError with a code."""

from __future__ import annotations

import bastion
import pytest
from bastion import TokenStore

GOOD = b"g" * 32


@pytest.mark.parametrize(
    ("args", "kwargs", "code"),
    [
        (("mysql://x",), {"pepper": GOOD}, "invalid_configuration"),
        (("sqlite://relative.db",), {"pepper": GOOD}, "invalid_configuration"),
        (("sqlite:///",), {"pepper": GOOD}, "invalid_configuration"),
        ((42,), {"pepper": GOOD}, "invalid_configuration"),
        (("sqlite:///x.db",), {}, "invalid_configuration"),
        ((None,), {"pepper": b"short"}, "weak_key"),
        ((None,), {"pepper": b"s" * 31}, "weak_key"),
        ((None,), {"pepper": "not bytes" * 8}, "invalid_configuration"),
        ((None,), {"pepper": GOOD, "peppers": {"a": GOOD}}, "invalid_configuration"),
        ((None,), {"peppers": {}}, "invalid_configuration"),
        ((None,), {"peppers": {"a": GOOD, "b": GOOD}}, "invalid_configuration"),
        ((None,), {"peppers": {"a": GOOD}, "pepper_id": "b"}, "invalid_configuration"),
        ((None,), {"peppers": {"a": GOOD, "b": b"x"}, "pepper_id": "a"}, "weak_key"),
        ((None,), {"prefix": "Bst"}, "invalid_configuration"),
        ((None,), {"prefix": "b"}, "invalid_configuration"),
        ((None,), {"prefix": "bs_t"}, "invalid_configuration"),
        ((None,), {"prefix": "abcdefghijk"}, "invalid_configuration"),
        ((None,), {"prefix": 3}, "invalid_configuration"),
        ((None,), {"negative_ttl": -1}, "invalid_configuration"),
        ((None,), {"negative_ttl": float("nan")}, "invalid_configuration"),
        ((None,), {"negative_cache_size": -5}, "invalid_configuration"),
        ((None,), {"usage_interval": 0}, "invalid_configuration"),
        ((None,), {"default_ttl": float("inf")}, "invalid_configuration"),
        ((None,), {"pool_size": 0}, "invalid_configuration"),
        ((None,), {"timeout": 0}, "invalid_configuration"),
        ((None,), {"foreign_tokens": "yes"}, "invalid_configuration"),
        ((None,), {"pepper": GOOD, "pepper_id": ["x"]}, "invalid_configuration"),
        ((None,), {"peppers": {("x",): GOOD}, "pepper_id": ("x",)}, "invalid_configuration"),
        ((None,), {"peppers": [("a", GOOD)]}, "invalid_configuration"),
    ],
)
def test_bad_configuration(args: tuple[object, ...], kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(bastion.ConfigurationError) as info:
        TokenStore(*args, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code
    assert isinstance(info.value, ValueError)
    assert GOOD.decode() not in str(info.value)


def test_bad_issue_arguments() -> None:
    store = TokenStore(None)
    try:
        for kwargs in [
            {"subject": ""},
            {"subject": "u", "kind": "x"},
            {"subject": "u", "ttl": 0},
            {"subject": "u", "ttl": float("nan")},
            {"subject": "u", "ttl": True},
            {"subject": "u", "scopes": ["has space"]},
            {"subject": "u", "scopes": [1]},
            {"subject": "u", "scopes": 5},
            {"subject": "u", "roles": b"admin"},
            {"subject": "u", "client_id": 3},
            {"subject": 7},
            {"subject": "u", "metadata": {"x": object()}},
            {"subject": "u", "metadata": [1]},
            {"subject": "u", "tier": ""},
        ]:
            with pytest.raises(bastion.ConfigurationError):
                store.issue(**kwargs)  # type: ignore[arg-type]
        t = store.issue("u")
        with pytest.raises(bastion.ConfigurationError):
            store.verify(t.token, now=float("nan"))
        with pytest.raises(bastion.ConfigurationError):
            store.verify(t.token, now="soon")  # type: ignore[arg-type]
        with pytest.raises(bastion.ConfigurationError):
            store.rotate(t.token, grace=-1)
        with pytest.raises(bastion.ConfigurationError):
            store.revoke_subject("")
        with pytest.raises(bastion.ConfigurationError):
            store.list(5)  # type: ignore[arg-type]
        assert store.get(5) is None  # type: ignore[arg-type]
        with pytest.raises(bastion.TokenMalformed):
            store.revoke(5)  # type: ignore[arg-type]
        assert "scopes" in repr(t)
        assert t.token not in repr(store)
    finally:
        store.close()


def test_memory_store_defaults() -> None:
    with TokenStore(None) as store:
        assert (store.prefix, store.url_kind, len(store)) == ("bst", "memory", 0)
        t = store.issue("u", kind="c", client_id="svc")
        assert len(store) == 1
        assert t.token.startswith("bstc_")
        assert store.verify(t.token).rate_limit_key == "svc"
    with TokenStore("sqlite:///:memory:", prefix="acme1") as store:
        assert store.issue("u").token.startswith("acme1k_")
