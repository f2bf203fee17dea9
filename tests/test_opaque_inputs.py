"""Every malformed argument ends in a documented bastion error, on every backend: ConfigurationError for bad
arguments, an AuthError subclass for a bad token; never TypeError / ValueError / OverflowError /
UnicodeEncodeError / a driver exception, and never auth_unavailable for what is the caller's mistake."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bastion
import pytest
from bastion import TokenStore

from tests.opaque_support import PEPPER, open_store
from tests.servers import PostgresServer

BACKENDS = ["memory", "sqlite", "postgresql"]


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenStore]:
    pg: PostgresServer | None = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    yield from open_store(request.param, tmp_path_factory.mktemp("inputs"), pg, background=False)


def deep(n: int) -> object:
    value: object = []
    for _ in range(n):
        value = [value]
    return value


BAD_ISSUE: list[dict[str, Any]] = [
    {"subject": "u", "ttl": 10**400},
    {"subject": "u", "ttl": -(10**400)},
    {"subject": "u", "ttl": -1},
    {"subject": "u", "ttl": float("-inf")},
    {"subject": "u", "ttl": "60"},
    {"subject": "a\x00b"},
    {"subject": "line\nbreak"},
    {"subject": "\udcff"},
    {"subject": "x" * 10_000},
    {"subject": b"user"},
    {"subject": "u", "scopes": ["\udcff"]},
    {"subject": "u", "scopes": ["a\x00"]},
    {"subject": "u", "scopes": {"read": True}},
    {"subject": "u", "roles": ["\x7f"]},
    {"subject": "u", "name": "\udcff"},
    {"subject": "u", "name": "a\x00"},
    {"subject": "u", "tier": "\udcff"},
    {"subject": "u", "client_id": "c\x00"},
    {"subject": "u", "metadata": {"a": "\udcff"}},
    {"subject": "u", "metadata": {"a": 10**400}},
    {"subject": "u", "metadata": {"a": 2**64}},
    {"subject": "u", "metadata": {"a": float("nan")}},
    {"subject": "u", "metadata": {"a": deep(200)}},
    {"subject": "u", "metadata": {"a": deep(5000)}},
    {"subject": "u", "metadata": {1: "int key"}},
    {"subject": "u", "metadata": {"a": {2: "nested int key"}}},
    {"subject": "u", "metadata": {"a": b"bytes"}},
    {"subject": "u", "metadata": {"a": "x" * 70_000}},
    {"subject": "u", "metadata": "a string"},
    {"subject": "u", "kind": b"k"},
    {"subject": "u", "kind": "kk"},
]


@pytest.mark.parametrize("kwargs", BAD_ISSUE, ids=[f"{i}-{sorted(k)[-1]}" for i, k in enumerate(BAD_ISSUE)])
def test_bad_issue_arguments_are_configuration_errors(store: TokenStore, kwargs: dict[str, Any]) -> None:
    before = len(store.list("u"))
    with pytest.raises(bastion.ConfigurationError) as info:
        store.issue(**kwargs)
    assert info.value.code == "invalid_configuration"
    assert len(store.list("u")) == before, "nothing is written for a refused issue"


def test_good_unusual_arguments_round_trip(store: TokenStore) -> None:
    meta = {"ünï": "cødé ☃", "n": 2**63 - 1, "neg": -(2**63), "f": 1.5, "l": [1, None, True], "o": {"k": "v"}}
    t = store.issue("usér ☃", scopes="read write", roles=("r",), name="naïve", metadata=meta, ttl=2**40 % 86400 + 1)
    p = store.verify(t.token)
    assert p.subject == "usér ☃"
    assert p.scopes == frozenset({"read", "write"})
    assert p.claims["ünï"] == "cødé ☃"
    assert p.claims["n"] == 2**63 - 1
    assert p.claims["neg"] == -(2**63)
    info = store.get(t.id)
    assert info is not None
    assert info.metadata == meta
    assert [i.id for i in store.list("usér ☃")] == [t.id]


def expect_config(f: Callable[[], object]) -> None:
    with pytest.raises(bastion.ConfigurationError) as info:
        f()
    assert info.value.code == "invalid_configuration"


def test_bad_arguments_elsewhere(store: TokenStore) -> None:
    t = store.issue("v")
    for bad in (10**400, -(10**400), float("nan"), float("inf"), -1, "1", True):
        expect_config(lambda bad=bad: store.rotate(t.token, grace=bad))  # type: ignore[misc]
    for subject in ("\udcff", "a\x00", "", 5, None, "x" * 10_000):
        expect_config(lambda s=subject: store.revoke_subject(s))  # type: ignore[misc]
        expect_config(lambda s=subject: store.list(s))  # type: ignore[misc]
    for reason in ("\udcff", "a\x00", 5):
        expect_config(lambda r=reason: store.revoke_id(t.id, reason=r))  # type: ignore[misc]
    for now in (True, float("nan"), float("inf"), 10**400, "now", b"1"):
        expect_config(lambda n=now: store.verify(t.token, now=n))  # type: ignore[misc]
    # lookups of what cannot exist answer "nothing", never raise
    for key in ("\udcff", "a\x00", 5, None, b"x", "x" * 10_000):
        assert store.get(key) is None  # type: ignore[arg-type]
        assert store.subject_valid_after(key) is None  # type: ignore[arg-type]
    assert store.verify(t.token).subject == "v"


BAD_TOKENS: list[object] = [
    None,
    5,
    5.0,
    ["bstk_"],
    bytearray(b"bstk_"),
    "",
    "\x00" * 54,
    "bstk_" + "\udcff" * 49,
    "bstk_" + "é" * 49,
    "a" * 1_000_000,
    b"\xff" * 54,
]


@pytest.mark.parametrize("token", BAD_TOKENS, ids=[type(t).__name__ + str(i) for i, t in enumerate(BAD_TOKENS)])
def test_bad_tokens_are_malformed_everywhere(store: TokenStore, token: object) -> None:
    calls: list[Callable[[Any], object]] = [store.verify, store.revoke, store.rotate]
    for call in calls:
        with pytest.raises(bastion.TokenMalformed):
            call(token)


class _ShortStr(str):
    """A str that lies about its length: the length check must look at the characters, not at __len__."""

    def __len__(self) -> int:
        return 0


def _calls(store: TokenStore) -> list[Callable[[Any], object]]:
    return [store.verify, lambda t: asyncio.run(store.averify(t)), store.revoke, store.rotate]


@pytest.mark.parametrize("char", ["\u00e9", "\u20ac", "\U0001f600", "\udc80"])
def test_long_non_ascii_str_is_malformed_without_being_encoded(store: TokenStore, char: str) -> None:
    # CPython keeps the UTF-8 form it builds for a non-ASCII str, and sys.getsizeof counts it: a str whose size
    # did not change was never encoded. No token is longer than a few dozen characters.
    for call in _calls(store):
        for text in (char * (1 << 22), _ShortStr(char * 1000), store.issue("u").token + char):
            size = sys.getsizeof(text)
            with pytest.raises(bastion.TokenMalformed) as info:
                call(text)
            assert info.value.code == "token_malformed"
            assert sys.getsizeof(text) == size, "the str was encoded before it was refused"


def test_foreign_token_stores_refuse_non_ascii_at_any_length(tmp_path: Path) -> None:
    with TokenStore(None, pepper=PEPPER, foreign_tokens=True) as store:
        for n in (20, 300, 512, 513, 100_000):
            text = "".join(["\u00e9"] * n)  # 2n bytes of UTF-8; foreign tokens are ASCII, at most 512 bytes
            size = sys.getsizeof(text)
            with pytest.raises(bastion.TokenMalformed):
                store.verify(text)
            if n > 512:
                assert sys.getsizeof(text) == size
        # a plausible 512-character foreign token is looked up (and unknown), one more character is not
        with pytest.raises(bastion.UnknownToken):
            store.verify("a" * 512)
        with pytest.raises(bastion.TokenMalformed):
            store.verify("a" * 513)
        with pytest.raises(bastion.TokenMalformed):
            store.verify("\ud800" + "a" * 40)


def test_sqlite_path_that_cannot_be_opened_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(bastion.ConfigurationError) as info:
        TokenStore(f"sqlite:///{tmp_path}/missing/dir/t.db", pepper=PEPPER)
    assert info.value.code == "invalid_configuration"
    assert PEPPER.decode() not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@127.0.0.1:notaport/db",
        "postgresql://u@127.0.0.1:99999/db",
        "postgresql://u:hunter2@127.0.0.1/db?bogusopt=1",
        "postgresql://u:hunter2@[::1/x",
    ],
)
def test_malformed_postgresql_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(bastion.ConfigurationError) as info:
        TokenStore(url, pepper=PEPPER, timeout=0.5)
    assert info.value.code == "invalid_configuration"
    assert "hunter2" not in str(info.value)
    assert info.value.__cause__ is None, "the parser's message quotes the URL, password included"


@pytest.mark.parametrize(
    "url", ["postgresql://u@127.0.0.1:1,127.0.0.1:2/db", "postgresql://u@127.0.0.1:1,127.0.0.1/db"]
)
def test_multi_host_urls_are_accepted(url: str) -> None:
    # libpq's host lists, with an empty port meaning the default: valid, so unreachable here, not misconfigured
    with pytest.raises(bastion.AuthUnavailable):
        TokenStore(url, pepper=PEPPER, timeout=0.5)


def test_unreachable_host_is_auth_unavailable_and_leaves_no_thread_behind() -> None:
    import threading

    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(bastion.AuthUnavailable):
        TokenStore("postgresql://u@nohost.invalid:1/x", pepper=PEPPER, timeout=0.5)
    leaked = [t.name for t in threading.enumerate() if t.ident not in before]
    assert leaked == [], "a failed store keeps no pool thread retrying in the background"


def test_bad_import_rows_are_configuration_errors(store: TokenStore) -> None:
    good = {"digest": bytes(32), "subject": "imp", "expires_at": 2e9}
    for rows, scheme in [
        (5, "sha256"),
        ([5], "sha256"),
        (["row"], "sha256"),
        ([{**good, "digest": "00" * 32}], "sha256"),
        ([{**good, "subject": "a\x00"}], "sha256"),
        ([{**good, "expires_at": 10**400}], "sha256"),
        ([{**good, "created_at": "yesterday"}], "sha256"),
        ([{**good, "kind": ["k"]}], "sha256"),
        ([{**good, "pepper_id": ["x"]}], "hmac-sha256"),
        ([good], "md5"),
        ([good], ["sha256"]),
    ]:
        with pytest.raises(bastion.ConfigurationError):
            store.import_hashed(rows, scheme=scheme)  # type: ignore[arg-type]
    assert store.list("imp") == []
