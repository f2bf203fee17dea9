"""Real OAuth clients against the provider over HTTP: Authlib, requests-oauth2client, requests-oauthlib.

Each runs on SQLite and on the PostgreSQL fixture, with JWT and with opaque access tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import bastion
import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError as AuthlibError

from tests.oauth_support import Served, keep, served

BACKENDS = ["sqlite", "postgresql"]
MODES = ["jwt", "opaque"]


@pytest.fixture(params=[(k, m) for k in BACKENDS for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def srv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    kind, mode = request.param
    pg = request.getfixturevalue("postgres_server") if kind == "postgresql" else None
    with served(kind, mode, tmp_path, pg) as s:
        yield s


def _authenticator(srv: Served) -> bastion.Authenticator:
    return bastion.Authenticator(jwt=srv.provider.verifier(), tokens=srv.store)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials_introspect_revoke(srv: Served, method: str) -> None:
    session = OAuth2Session(srv.client_id, srv.secret, scope="read", token_endpoint_auth_method=method)
    token = keep(session.fetch_token(srv.token_url, grant_type="client_credentials"))
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "read"
    assert "refresh_token" not in token  # RFC 6749 §4.4.3
    principal = _authenticator(srv).authenticate("Bearer " + token["access_token"])
    assert principal is not None
    assert principal.subject == "svc"
    assert principal.scopes == frozenset({"read"})
    info = session.introspect_token(srv.url + "/oauth/introspect", token=token["access_token"]).json()
    assert info["active"] is True
    assert info["client_id"] == "svc"
    assert info["scope"] == "read"
    revoked = session.revoke_token(srv.url + "/oauth/revoke", token=token["access_token"])
    assert revoked.status_code == 200
    assert session.introspect_token(srv.url + "/oauth/introspect", token=token["access_token"]).json() == {
        "active": False
    }
    with pytest.raises(bastion.TokenRevoked):
        _authenticator(srv).authenticate("Bearer " + token["access_token"])


def test_authlib_refresh_rotates_and_reuse_kills_the_family(srv: Served) -> None:
    first = keep(srv.provider.issue_tokens(subject="alice", client_id="svc", scopes=["read", "write"]))
    session = OAuth2Session(srv.client_id, srv.secret)
    second = keep(session.refresh_token(srv.token_url, refresh_token=first["refresh_token"]))
    assert second["refresh_token"] != first["refresh_token"]
    third = keep(session.refresh_token(srv.token_url, refresh_token=second["refresh_token"], scope="read"))
    assert third["scope"] == "read"
    auth = _authenticator(srv)
    principal = auth.authenticate("Bearer " + third["access_token"])
    assert principal is not None
    assert principal.subject == "alice"
    # the spent second refresh token comes back: the whole family dies
    with pytest.raises(AuthlibError) as caught:
        session.refresh_token(srv.token_url, refresh_token=second["refresh_token"])
    assert caught.value.error == "invalid_grant"
    with pytest.raises(AuthlibError):
        session.refresh_token(srv.token_url, refresh_token=third["refresh_token"])
    for token in (first["access_token"], second["access_token"], third["access_token"]):
        with pytest.raises(bastion.TokenRevoked):
            auth.authenticate("Bearer " + token)
        info = session.introspect_token(srv.url + "/oauth/introspect", token=token).json()
        assert info == {"active": False}


def test_authlib_revoking_a_refresh_token_revokes_its_family(srv: Served) -> None:
    first = keep(srv.provider.issue_tokens(subject="bob", client_id="svc"))
    session = OAuth2Session(srv.client_id, srv.secret)
    second = keep(session.refresh_token(srv.token_url, refresh_token=first["refresh_token"]))
    assert session.revoke_token(srv.url + "/oauth/revoke", token=second["refresh_token"]).status_code == 200
    with pytest.raises(bastion.TokenRevoked):
        _authenticator(srv).authenticate("Bearer " + second["access_token"])
    with pytest.raises(AuthlibError):
        session.refresh_token(srv.token_url, refresh_token=second["refresh_token"])
    # unknown tokens: 200 all the same (RFC 7009 §2.2)
    assert session.revoke_token(srv.url + "/oauth/revoke", token="not-a-token").status_code == 200


def test_requests_oauth2client_discovery_and_client_credentials(srv: Served) -> None:
    from requests_oauth2client import OAuth2Client

    client = OAuth2Client.from_discovery_endpoint(
        srv.url + "/.well-known/oauth-authorization-server",
        issuer=srv.url,
        auth=(srv.client_id, srv.secret),
        testing=True,
    )
    assert client.token_endpoint == srv.token_url
    token = client.client_credentials(scope="write")
    keep(str(token.access_token))
    assert token.scope == "write"
    principal = _authenticator(srv).authenticate("Bearer " + str(token.access_token))
    assert principal is not None
    assert principal.scopes == frozenset({"write"})
    assert client.introspect_token(str(token.access_token))["active"] is True


def test_requests_oauth2client_private_key_jwt_and_replay(srv: Served) -> None:
    from jwskate import Jwk, JwkSet
    from requests_oauth2client import OAuth2Client, PrivateKeyJwt

    private = Jwk.generate(alg="ES256", kid="client-key-1")
    keep(private.to_json())
    srv.provider.clients.create("signer", scopes=["read"], jwks=JwkSet(keys=[private.public_jwk()]), secret=False)
    auth = PrivateKeyJwt("signer", private)
    client = OAuth2Client(token_endpoint=srv.token_url, auth=auth, testing=True)
    token = client.client_credentials(scope="read")
    keep(str(token.access_token))
    principal = _authenticator(srv).authenticate("Bearer " + str(token.access_token))
    assert principal is not None
    assert principal.subject == "signer"
    # one assertion, sent twice: the second is a replay
    assertion = auth.client_assertion(srv.token_url)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    assert httpx.post(srv.token_url, data=form).status_code == 200
    again = httpx.post(srv.token_url, data=form)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
    # an assertion signed by another key is refused
    other = PrivateKeyJwt("signer", Jwk.generate(alg="ES256", kid="client-key-1"))
    forged = httpx.post(srv.token_url, data={**form, "client_assertion": other.client_assertion(srv.token_url)})
    assert forged.status_code == 401


def test_requests_oauthlib_backend_application_client(srv: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from oauthlib.oauth2 import BackendApplicationClient
    from requests_oauthlib import OAuth2Session as OAuthlibSession

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http in the test only
    # requests-oauthlib logs whole token responses at DEBUG: that client's leak, kept out of the session's
    # no-secret check, which is about what bastion logs
    quiet = logging.getLogger("requests_oauthlib.oauth2_session")
    monkeypatch.setattr(quiet, "disabled", True)
    session = OAuthlibSession(client=BackendApplicationClient(client_id=srv.client_id))
    token = keep(dict(session.fetch_token(srv.token_url, client_id=srv.client_id, client_secret=srv.secret)))
    assert token["scope"] in (["read", "write"], "read write")
    principal = _authenticator(srv).authenticate("Bearer " + token["access_token"])
    assert principal is not None
    assert principal.client_id == "svc"
