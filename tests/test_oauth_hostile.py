"""The provider's public API given hostile values in every argument: a bastion error or success, never a
TypeError, ValueError or the hostile object's own exception — and the endpoints answer hostile requests with
4xx bodies, never an exception."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import bastion
import pytest
from bastion.errors import BastionError
from bastion.oauth import KeyRing, Provider, Request

from tests.oauth_support import keep
from tests.test_hostile_values import EvilStr, Mischief


class EvilMapping(dict[str, Any]):
    def items(self) -> Any:
        raise Mischief("items")


HOSTILE: list[object] = [
    None, True, 0, -1, 2**70, math.nan, math.inf, "", "x" * 5000, "\x00", "a b", b"bytes", EvilStr("evil"),
    object(), [], [1], [EvilStr("s")], {}, EvilMapping(a=1), {"keys": "no"}, ("t",),
]  # fmt: skip


@pytest.fixture
def provider() -> Iterator[Provider]:
    store = bastion.TokenStore(None, pepper=b"h" * 32)
    p = Provider(store, issuer="https://auth.test")
    made = p.clients.create("svc", grant_types=["client_credentials", "refresh_token"], scopes=["read"])
    keep(made.secret)
    yield p
    store.close()


def _only_bastion_errors(call: Callable[[object], object]) -> None:
    for value in HOSTILE:
        try:
            result = call(value)
        except BastionError:
            continue
        if isinstance(result, dict):
            keep(result)


def test_constructors_and_methods(provider: Provider) -> None:
    store = provider.store
    for name in ("issuer", "access_tokens", "audience", "keys", "access_ttl", "refresh_ttl", "limiter"):
        _only_bastion_errors(lambda v, n=name: Provider(store, **{"issuer": "https://a.test", n: v}))  # type: ignore[misc]
    _only_bastion_errors(lambda v: Provider(v, issuer="https://a.test"))  # type: ignore[arg-type]
    _only_bastion_errors(lambda v: Provider(store, issuer="https://a.test", scopes_supported=v))  # type: ignore[arg-type]
    _only_bastion_errors(lambda v: KeyRing(v))  # type: ignore[arg-type]
    _only_bastion_errors(lambda v: KeyRing.generate(v))  # type: ignore[arg-type]
    _only_bastion_errors(lambda v: provider.keys.generate_next(v))  # type: ignore[arg-type]
    clients = provider.clients
    for name in ("name", "grant_types", "scopes", "tier", "jwks", "secret", "introspect_any"):
        _only_bastion_errors(lambda v, n=name: keep(clients.create(**{n: v}).secret))  # type: ignore[misc]
    _only_bastion_errors(lambda v: clients.create(v))  # type: ignore[arg-type]
    _only_bastion_errors(lambda v: clients.get(v))  # type: ignore[arg-type]
    _only_bastion_errors(lambda v: clients.disable(v))  # type: ignore[arg-type]
    _only_bastion_errors(lambda v: keep(clients.rotate_secret("svc", grace=v).secret))  # type: ignore[arg-type]
    _only_bastion_errors(lambda v: clients.update("svc", scopes=v))
    for name in ("subject", "client_id", "scopes"):
        _only_bastion_errors(
            lambda v, n=name: provider.issue_tokens(**{"subject": "u", "client_id": "svc", n: v})  # type: ignore[misc]
        )
    _only_bastion_errors(lambda v: provider.handle(v))  # type: ignore[arg-type]
    _only_bastion_errors(lambda v: provider.handle(Request("POST", "/oauth/token", v)))  # type: ignore[arg-type]


def _headers(basic: str | None) -> dict[str, str]:
    h = {"content-type": "application/x-www-form-urlencoded"}
    if basic is not None:
        h["authorization"] = basic
    return h


@pytest.mark.parametrize(
    "body",
    [
        b"", b"%", b"grant_type", b"\xff\xfe", b"=" * 100, b"grant_type=client_credentials&scope=" + b"a" * 5000,
        b"grant_type=refresh_token&refresh_token=bstr_" + b"A" * 49, b"grant_type=client_credentials&scope=%00",
        b"client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c",
        b"client_assertion_type=x&client_assertion=" + b"e" * 9000, b"client_id=svc&client_secret=\x00",
    ],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_hostile_requests_get_4xx_bodies(provider: Provider, body: bytes, path: str) -> None:
    for basic in (None, "Basic", "Basic !!!", "Basic " + base64.b64encode(b"svc").decode(), "Bearer x"):
        response = provider.handle(Request("POST", path, _headers(basic), body, "192.0.2.1"))
        assert 400 <= response.status < 500
        assert set(json.loads(response.body)) == {"error", "error_description"}
