"""Opaque-token defects an outside review found: revoking by token or by id, metadata of any JSON shape
round-tripping exactly, rotation of long-lived imported tokens."""

from __future__ import annotations

import hashlib
import math
import random
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import bastion
import pytest
from bastion import TokenStore

from tests.opaque_support import PEPPER, open_store
from tests.servers import PostgresServer

BACKENDS = ["memory", "sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenStore]:
    pg: PostgresServer | None = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    yield from open_store(request.param, tmp_path, pg, usage_interval=3600, foreign_tokens=True)


def _import(store: TokenStore, token: str, **row: Any) -> None:
    digest = hashlib.sha256(token.encode()).digest()
    store.import_hashed([{"digest": digest, "subject": "imported", **row}], scheme="sha256")


# ------------------------------------------------------------------------------------ revoke by token / id


def test_a_foreign_token_shaped_like_an_id_is_revoked_by_revoke(store: TokenStore) -> None:
    foreign = "A1b2C3d4E5f6G7h8I9j0Kl"  # 22 alphanumeric characters: the shape of a record id
    _import(store, foreign, expires_at=time.time() + 3600)
    assert store.verify(foreign).subject == "imported"
    assert store.revoke(foreign) is True
    with pytest.raises(bastion.TokenRevoked):
        store.verify(foreign)


def test_revoke_id_revokes_by_id_and_revoke_takes_tokens(store: TokenStore) -> None:
    t = store.issue("u")
    assert store.revoke(t.id) is False, "a foreign-token store takes every string as a token"
    assert store.revoke_id(t.id) is True
    assert store.revoke_id(t.id) is False, "already revoked"
    with pytest.raises(bastion.TokenRevoked):
        store.verify(t.token)
    assert store.revoke_id("not an id") is False
    with pytest.raises(bastion.ConfigurationError):
        store.revoke_id(b"0" * 22)  # type: ignore[arg-type]
    with pytest.raises(bastion.ConfigurationError):
        store.revoke_id(t.id, reason="rotated")


def test_revoke_of_an_id_in_a_bastion_only_store_is_deprecated_but_works(tmp_path: Path) -> None:
    with TokenStore(None, pepper=PEPPER) as store:
        t = store.issue("u")
        with pytest.warns(DeprecationWarning, match="revoke_id"):
            assert store.revoke(t.id) is True
        with pytest.raises(bastion.TokenRevoked):
            store.verify(t.token)
        u = store.issue("u")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert store.revoke(u.token) is True
        with pytest.raises(bastion.TokenMalformed):
            store.revoke("not a token")


def test_cli_revokes_by_id_with_the_flag(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with TokenStore(url, pepper=b"c" * 32, background=False) as store:
        t = store.issue("alice")
    env = {"BASTION_PEPPER": "c" * 32, "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "bastion", "tokens", "revoke", "--store", url, "--id", t.id]
    out = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    again = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert again.returncode == 1
    with TokenStore(url, pepper=b"c" * 32, background=False) as store, pytest.raises(bastion.TokenRevoked):
        store.verify(t.token)


# ------------------------------------------------------------------------------------------ metadata


def _floats(n: int) -> list[float]:
    rng = random.Random(5)
    out = [0.1, 0.2, 1 / 3, 5e-324, 2.2250738585072011e-308, 1.7976931348623157e308, 1e16, 1e22, 1e-7, -0.0, 1.0]
    while len(out) < n:
        f = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(f):
            out.append(f)
    return out


def test_float_metadata_round_trips_exactly_everywhere(store: TokenStore) -> None:
    floats = _floats(600)
    for i in range(0, len(floats), 200):
        chunk = floats[i : i + 200]
        t = store.issue("u", metadata={"f": chunk, "one": chunk[-1]})
        store._clear()  # the claims are read back from the backend's text, not from the issuing call
        for got in (store.verify(t.token).claims, store.get(t.id).metadata):  # type: ignore[union-attr]
            assert [struct.pack("<d", f) for f in got["f"]] == [struct.pack("<d", f) for f in chunk]
            assert struct.pack("<d", got["one"]) == struct.pack("<d", chunk[-1])
            assert all(type(f) is float for f in got["f"])


class _Frozen(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._d = data

    def __getitem__(self, k: str) -> Any:
        return self._d[k]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


class _Seq(Sequence[int]):
    def __getitem__(self, i: Any) -> Any:
        return [1, 2, 3][i]

    def __len__(self) -> int:
        return 3


def _thaw(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def test_metadata_takes_any_mapping_and_sequence(store: TokenStore) -> None:
    first = store.issue("u", metadata={"team": {"name": "a", "ids": (1, 2)}})
    claims = store.verify(first.token).claims  # read-only nested mappings
    second = store.issue("u", metadata={"copied": claims, "frozen": _Frozen({"x": _Seq()}), "p": MappingProxyType({})})
    expect = {"copied": {"team": {"name": "a", "ids": [1, 2]}}, "frozen": {"x": [1, 2, 3]}, "p": {}}
    assert store.get(second.id).metadata == expect  # type: ignore[union-attr]
    assert _thaw(store.verify(second.token).claims) == expect  # read-only: mappingproxy and tuple
    for bad in ({"b": b"bytes"}, {"s": {1, 2}}, {"k": {1: "int key"}}, {"o": object()}):
        with pytest.raises(bastion.ConfigurationError):
            store.issue("u", metadata=bad)


# ------------------------------------------------------------------------------------------ rotation


def test_rotation_of_a_token_living_longer_than_issue_allows(store: TokenStore) -> None:
    foreign = "long-lived-imported-token-0001"
    now = time.time()
    _import(store, foreign, created_at=now - 10, expires_at=now + 50 * 366 * 86400)
    new = store.rotate(foreign, grace=0)
    assert new.expires_at - new.created_at == pytest.approx(50 * 366 * 86400 + 10, abs=1)
    assert store.verify(new.token).subject == "imported"
