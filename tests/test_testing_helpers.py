"""bastion.testing: minted tokens verify through the real Authenticator; a fixed principal is a real Principal;
bastion.testing.fastapi runs an app as that principal, its routes' requirements still applied."""

from __future__ import annotations

import math
import pickle
import time
from pathlib import Path
from typing import Any

import bastion
import pytest
from bastion.testing import mint_token, principal
from bastion.testing.fastapi import as_principal
from fastapi.testclient import TestClient

from tests.integration_support import example, remembered
from tests.opaque_support import PEPPER

SECRET = b"testing-helpers-secret-of-32-bytes!"
ISSUER = "https://auth.example.com"


def signer() -> bastion.JWTSigner:
    return bastion.JWTSigner(bastion.Key.hmac(SECRET, kid="k1"), "HS256", issuer=ISSUER)


def authenticator(store: bastion.TokenStore | None = None) -> bastion.Authenticator:
    verifier = bastion.JWTVerifier(bastion.Key.hmac(SECRET, kid="k1"), algorithms=["HS256"], issuer=ISSUER)
    return bastion.Authenticator(jwt=verifier, tokens=store)


def test_a_minted_jwt_carries_what_was_asked() -> None:
    auth = authenticator()
    token = remembered(mint_token(signer(), "ana", scopes=["read:reports", "write"], roles=["admin"], tier="gold"))
    p = auth.authenticate(f"Bearer {token}")
    assert p is not None
    assert (p.subject, p.scopes, p.roles, p.tier, p.token_type) == (
        "ana",
        frozenset({"read:reports", "write"}),
        frozenset({"admin"}),
        "gold",
        "jwt",
    )
    assert p.expires_at is not None
    assert time.time() + 890 < p.expires_at <= time.time() + 901


def test_ttl_and_extra_claims() -> None:
    auth = authenticator()
    token = remembered(mint_token(signer(), "ana", ttl=1, claims={"client_id": "ana"}))
    p = auth.authenticate(f"Bearer {token}")
    assert p is not None
    assert p.client_id == "ana"
    assert p.rate_limit_key == "ana"
    assert p.expires_at is not None
    assert p.expires_at <= time.time() + 2
    with pytest.raises(bastion.TokenExpired):
        auth.authenticate(f"Bearer {token}", now=time.time() + 5)


def test_opaque_tokens_from_a_store_or_an_authenticator(tmp_path: Path) -> None:
    store = bastion.TokenStore(f"sqlite:///{tmp_path / 't.db'}", pepper=PEPPER)
    try:
        auth = authenticator(store)
        for issuer in (store, auth):
            token = remembered(mint_token(issuer, "bot", scopes=["read:reports"], tier="trial", claims={"k": "v"}))
            p = auth.authenticate(f"Bearer {token}")
            assert p is not None
            assert (p.subject, p.token_type, p.tier, p.scopes) == (
                "bot",
                "opaque",
                "trial",
                frozenset({"read:reports"}),
            )
            assert p.claims["k"] == "v"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "kw", "match"),
    [
        ((authenticator(), "ana"), {}, "JWTSigner"),
        (("not a signer", "ana"), {}, "JWTSigner"),
        ((signer(), ""), {}, "subject"),
        ((signer(), "ana"), {"ttl": 0}, "ttl"),
        ((signer(), "ana"), {"ttl": math.inf}, "ttl"),
        ((signer(), "ana"), {"scopes": "read:reports"}, "list of strings"),
        ((signer(), "ana"), {"claims": ["sub"]}, "mapping"),
    ],
)
def test_mint_token_refuses_what_it_cannot_do(args: tuple[Any, ...], kw: dict[str, Any], match: str) -> None:
    with pytest.raises(bastion.ConfigurationError, match=match):
        mint_token(*args, **kw)


def test_a_fixed_principal_is_a_real_principal() -> None:
    p = principal(
        "svc", scopes=["a", "b", "a"], roles=["admin"], tier="internal", client_id="svc", token_id="t1", claims={"x": 1}
    )
    assert isinstance(p, bastion.Principal)
    assert (p.subject, p.scopes, p.roles, p.tier, p.token_id) == (
        "svc",
        frozenset({"a", "b"}),
        frozenset({"admin"}),
        "internal",
        "t1",
    )
    assert p.rate_limit_key == "svc"  # a machine client: client_id == subject
    assert p.has_scopes("a", "b")
    assert not p.has_scopes("c")
    assert p.has_role("admin")
    assert p.claims["x"] == 1
    assert p.expires_at is None
    assert p.is_authenticated
    assert pickle.loads(pickle.dumps(p)).scopes == p.scopes
    assert principal("u", expires_at=1e9).expires_at == 1e9
    assert principal("u", token_type="opaque").token_type == "opaque"


@pytest.mark.parametrize(
    "kw",
    [
        {"subject": ""},
        {"subject": 5},
        {"subject": "u", "tier": 3},
        {"subject": "u", "token_type": "saml"},
        {"subject": "u", "claims": {"x": object()}},
        {"subject": "u", "expires_at": "soon"},
        {"subject": "u", "scopes": [1]},
    ],
)
def test_a_fixed_principal_refuses_bad_values(kw: dict[str, Any]) -> None:
    with pytest.raises(bastion.ConfigurationError):
        principal(**kw)


@pytest.fixture
def app(tmp_path: Path) -> Any:
    env = {"BASTION_JWT_SECRET": SECRET.decode(), "BASTION_TOKEN_DB": f"sqlite:///{tmp_path / 'ex.db'}"}
    return example("fastapi_app").create_app(env)


def test_the_fastapi_example_with_real_tokens(app: Any) -> None:
    service = app.state.service
    reader = remembered(mint_token(signer(), "ana", scopes=["read:reports"]))
    admin = remembered(mint_token(service.auth, "root", roles=["admin"]))
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/api/v1/me").json()["error"] == "missing_token"
        h = {"Authorization": f"Bearer {reader}"}
        assert client.get("/api/v1/me", headers=h).json() == {"subject": "ana", "scopes": ["read:reports"], "roles": []}
        assert client.get("/api/v1/reports", headers=h).json()["owner"] == "ana"
        assert client.delete("/api/v1/reports/1", headers=h).json()["error"] == "forbidden"
        assert client.delete("/api/v1/reports/1", headers={"Authorization": f"Bearer {admin}"}).status_code == 204
        trial = remembered(mint_token(signer(), "trial_user", tier="trial"))
        statuses = [
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {trial}"}).status_code for _ in range(6)
        ]
        assert statuses == [200] * 5 + [429]
    assert service.audit.dropped == 0


def test_as_principal_overrides_every_bastion_dependency(app: Any) -> None:
    bearer = app.state.bearer
    reader = principal("ana", scopes=["read:reports"])
    with TestClient(app) as client:
        with as_principal(app, bearer, reader):
            assert client.get("/api/v1/me").json()["subject"] == "ana"  # no token sent
            assert client.get("/api/v1/reports").json()["owner"] == "ana"
            r = client.delete("/api/v1/reports/1")
            assert (r.status_code, r.json()["error"]) == (403, "forbidden")  # the route's roles still apply
        with as_principal(app, bearer, principal("bob")):
            r = client.get("/api/v1/reports")
            assert (r.status_code, r.json()["error"]) == (403, "insufficient_scope")
            assert 'scope="read:reports"' in r.headers["www-authenticate"]
        with as_principal(app, bearer, principal("root", roles=["admin"])):
            assert client.delete("/api/v1/reports/1").status_code == 204
        with as_principal(app, bearer, None):
            assert client.get("/api/v1/me").json()["error"] == "missing_token"
        # outside the block, the real authentication is back
        assert app.dependency_overrides == {}
        assert client.get("/api/v1/me").json()["error"] == "missing_token"


def test_as_principal_keeps_the_apps_own_overrides(app: Any) -> None:
    bearer = app.state.bearer

    async def mine() -> bastion.Principal:
        return principal("mine")

    app.dependency_overrides[bearer] = mine
    with as_principal(app, bearer, principal("ana")), TestClient(app) as client:
        assert client.get("/api/v1/me").json()["subject"] == "ana"
    assert app.dependency_overrides == {bearer: mine}
    with pytest.raises(bastion.ConfigurationError), as_principal(app, "bearer", None):  # type: ignore[arg-type]
        raise AssertionError("not reached")
    with pytest.raises(bastion.ConfigurationError), as_principal(app, bearer, "ana"):  # type: ignore[arg-type]
        raise AssertionError("not reached")
