"""No token, token body, pepper or digest in any repr, str, exception message or log record."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from pathlib import Path

import bastion
import pytest
from bastion import TokenStore

from tests.opaque_support import PEPPER, body_of, open_store
from tests.servers import PostgresServer


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenStore]:
    pg: PostgresServer | None = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    yield from open_store(request.param, tmp_path, pg, usage_interval=0.05)


def test_nothing_secret_in_reprs_messages_or_logs(store: TokenStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    issued = store.issue("sam", scopes=["read"], metadata={"k": "v"})
    secrets_ = [issued.token, body_of(issued.token), PEPPER.decode()]
    digest = store._lookup_keys(issued.token)[0][2]
    secrets_ += [digest.hex(), repr(digest)]
    texts: list[str] = []
    p = store.verify(issued.token)
    texts += [repr(p), str(p), repr(issued), str(issued), repr(store), str(store), str(pickle.dumps(p))]
    info = store.get(issued.id)
    texts += [repr(info), repr(store.list("sam"))]
    with TokenStore(None, pepper=PEPPER, background=False) as stranger:
        unknown = stranger.issue("x").token  # well formed, not in this store
    secrets_ += [unknown, body_of(unknown)]
    miss = store._probe(unknown)
    assert isinstance(miss, bastion._core._Miss)
    texts.append(repr(miss))
    with pytest.raises(bastion.UnknownToken) as unknown_exc:
        store.verify(unknown)
    texts += [str(unknown_exc.value), repr(unknown_exc.value)]
    last = "1" if issued.token[-1] == "0" else "0"
    for bad in (issued.token[:-1] + last, issued.token + "x", issued.token.upper()):
        with pytest.raises(bastion.AuthError) as exc:
            store.verify(bad)
        texts += [str(exc.value), repr(exc.value), exc.value.message]
    rotated = store.rotate(issued.token, grace=0)
    secrets_.append(rotated.token)
    with pytest.raises(bastion.TokenRevoked) as revoked:
        store.verify(issued.token)
    texts += [str(revoked.value), repr(rotated)]
    store.revoke(rotated.token, reason="test")
    store.flush()
    texts += [r.getMessage() for r in caplog.records]
    for text in texts:
        for n, secret in enumerate(secrets_):
            assert secret not in text, (n, text)
