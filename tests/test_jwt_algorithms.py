"""JWT algorithms: the allow-list, `none` in every spelling, keys bound to one algorithm family, and
HMAC that can never be keyed with public-key text (algorithm confusion). Each test asserts the exact error code.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import bastion
import bastion.dangerous
import pytest
from cryptography.hazmat.primitives import serialization

from tests.jwt_tokens import (
    NOW,
    SECRET,
    b64,
    b64json,
    claims,
    code_of,
    ec_pair,
    ed_pair,
    hs_token,
    hs_verifier,
    make,
    rsa_pair,
    sign,
)

# -- algorithm confusion -----------------------------------------------------------------------------------------------


def _public_key_secrets() -> dict[str, bytes]:
    pair = rsa_pair()
    der = pair.private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = bastion.Key.from_pem(pair.public_pem).public_jwk()
    return {
        "pem": pair.public_pem,
        "der": der,
        "jwk": json.dumps(jwk).encode(),
        "jwk_compact": json.dumps(jwk, separators=(",", ":")).encode(),
    }


@pytest.mark.parametrize("form", ["pem", "der", "jwk", "jwk_compact"])
def test_hs256_maced_with_public_key_bytes_never_verifies(form: str) -> None:
    secret = _public_key_secrets()[form]
    pair = rsa_pair()
    key = bastion.Key.from_pem(pair.public_pem)
    no_kid = make({"alg": "HS256"}, claims(), secret)
    assert code_of(bastion.JWTVerifier(key, algorithms=["RS256"]), no_kid) == "unsupported_algorithm"
    careless = bastion.JWTVerifier(key, algorithms=["HS256", "RS256", "PS256", "ES256", "EdDSA"])
    assert code_of(careless, no_kid) == "unknown_key"
    jwks = bastion.KeySet.from_jwks({"keys": [{**key.public_jwk(), "kid": "r1"}]})
    with_kid = make({"alg": "HS256", "kid": "r1"}, claims(), secret)
    assert code_of(bastion.JWTVerifier(jwks, algorithms=["RS256", "HS256"]), with_kid) == "unsupported_algorithm"


def test_public_keys_cannot_be_bound_to_hmac() -> None:
    pair = rsa_pair()
    with pytest.raises(bastion.InvalidKeyError) as info:
        bastion.Key.from_pem(pair.public_pem, alg="HS256")
    assert info.value.code == "invalid_key"
    with pytest.raises(bastion.InvalidKeyError) as info:
        bastion.Key.from_jwk({**bastion.Key.from_pem(pair.public_pem).public_jwk(), "alg": "HS256"})
    assert info.value.code == "invalid_key"
    with pytest.raises(bastion.ConfigurationError) as cinfo:
        bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["HS256"])
    assert cinfo.value.code == "invalid_configuration"


@pytest.mark.parametrize("how", ["Key.hmac", "oct JWK"])
def test_hmac_secret_that_is_a_public_key_pem_is_refused(how: str) -> None:
    pem = rsa_pair().public_pem
    calls: dict[str, Callable[[], object]] = {
        "Key.hmac": lambda: bastion.Key.hmac(pem),
        "oct JWK": lambda: bastion.Key.from_jwk({"kty": "oct", "k": b64(pem)}),
    }
    with pytest.raises(bastion.InvalidKeyError):
        calls[how]()


# -- algorithm / key-type mismatches -----------------------------------------------------------------------------------


def test_ps_and_rs_with_the_same_rsa_key() -> None:
    pair = rsa_pair()
    key = bastion.Key.from_pem(pair.public_pem)
    both = bastion.JWTVerifier(key, algorithms=["RS256", "PS256"])
    assert both.verify(make({"alg": "RS256"}, claims(), pair.private), now=NOW) == claims()
    assert both.verify(make({"alg": "PS256"}, claims(), pair.private), now=NOW) == claims()
    assert code_of(both, make({"alg": "PS256"}, claims(), pair.private, alg="RS256")) == "invalid_signature"
    assert code_of(both, make({"alg": "RS256"}, claims(), pair.private, alg="PS256")) == "invalid_signature"
    rs_only = bastion.JWTVerifier(key, algorithms=["RS256"])
    assert code_of(rs_only, make({"alg": "PS256"}, claims(), pair.private)) == "unsupported_algorithm"
    bound = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem, alg="RS256"), algorithms=["RS256", "PS256"])
    assert code_of(bound, make({"alg": "PS256"}, claims(), pair.private)) == "unknown_key"
    sha = bastion.JWTVerifier(key, algorithms=["RS256", "RS384"])
    assert code_of(sha, make({"alg": "RS384"}, claims(), pair.private, alg="RS256")) == "invalid_signature"


def test_es256_token_against_a_p384_key() -> None:
    p256, p384 = ec_pair("P-256"), ec_pair("P-384")
    with pytest.raises(bastion.ConfigurationError) as info:
        bastion.JWTVerifier(bastion.Key.from_pem(p384.public_pem), algorithms=["ES256"])
    assert info.value.code == "invalid_configuration"
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.from_pem(p384.public_pem, alg="ES256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(p384.public_pem), algorithms=["ES256", "ES384"])
    assert code_of(v, make({"alg": "ES256"}, claims(), p256.private)) == "unknown_key"
    vk = bastion.JWTVerifier(bastion.Key.from_pem(p384.public_pem, kid="e"), algorithms=["ES256", "ES384"])
    assert code_of(vk, make({"alg": "ES256", "kid": "e"}, claims(), p256.private)) == "unsupported_algorithm"
    assert (
        code_of(vk, make({"alg": "ES256", "kid": "e"}, claims(), p384.private, alg="ES384")) == "unsupported_algorithm"
    )
    assert vk.verify(make({"alg": "ES384", "kid": "e"}, claims(), p384.private), now=NOW) == claims()


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("EdDSA", None),
        ("Ed25519", None),
        ("ed25519", "unsupported_algorithm"),
        ("EDDSA", "unsupported_algorithm"),
        ("eddsa", "unsupported_algorithm"),
        ("ED25519", "unsupported_algorithm"),
        ("Ed448", "unsupported_algorithm"),
    ],
)
def test_eddsa_spellings(spelling: str, expected: str | None) -> None:
    pair = ed_pair()
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["EdDSA", "Ed25519"])
    token = make({"alg": spelling}, claims(), pair.private, alg="EdDSA")
    if expected is None:
        assert v.verify(token, now=NOW) == claims()
    else:
        assert code_of(v, token) == expected


def test_eddsa_bound_key_does_not_serve_the_other_name_and_config_names_are_exact() -> None:
    pair = ed_pair()
    bound = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem, alg="EdDSA"), algorithms=["EdDSA", "Ed25519"])
    assert code_of(bound, make({"alg": "Ed25519"}, claims(), pair.private)) == "unknown_key"
    for name in ("ed25519", "NONE", "none", "HS256 "):
        with pytest.raises(bastion.ConfigurationError) as info:
            bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=[name])
        assert info.value.code == "invalid_configuration"


# -- none --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE", "NoNe", "noNE"])
@pytest.mark.parametrize("signature", ["", "c2ln", b64(SECRET)])
def test_alg_none_every_casing_and_signature(spelling: str, signature: str) -> None:
    token = f"{b64json({'alg': spelling, 'kid': 'k1'})}.{b64json(claims())}.{signature}"
    assert code_of(hs_verifier(), token) == "unsupported_algorithm"
    no_kid = f"{b64json({'alg': spelling})}.{b64json(claims())}.{signature}"
    assert (
        code_of(bastion.JWTVerifier(bastion.Key.hmac(SECRET), algorithms=["HS256"]), no_kid) == "unsupported_algorithm"
    )


def test_alg_none_spelled_with_escapes_and_with_crit() -> None:
    escaped = b64(b'{"alg":"\\u006eone","kid":"k1"}')
    assert code_of(hs_verifier(), f"{escaped}.{b64json(claims())}.") == "unsupported_algorithm"
    with_crit = b64(b'{"alg":"none","crit":["x"],"x":1}')
    assert code_of(hs_verifier(), f"{with_crit}.{b64json(claims())}.") == "unsupported_algorithm"


# -- algorithms --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2ln"])
def test_alg_none_in_every_spelling(spelling: str, signature: str) -> None:
    token = f"{b64json({'alg': spelling, 'kid': 'k1'})}.{b64json(claims())}.{signature}"
    assert code_of(hs_verifier(), token) == "unsupported_algorithm"


def test_alg_none_is_refused_in_the_allow_list() -> None:
    with pytest.raises(bastion.ConfigurationError) as info:
        hs_verifier(algorithms=["none"])
    assert info.value.code == "invalid_configuration"
    with pytest.raises(bastion.ConfigurationError):
        hs_verifier(algorithms=[])
    with pytest.raises(bastion.ConfigurationError):
        hs_verifier(algorithms=["HS257"])


def test_alg_outside_the_allow_list() -> None:
    token = make({"alg": "HS512", "kid": "k1"}, claims(), SECRET * 2)
    assert code_of(hs_verifier(), token) == "unsupported_algorithm"
    assert code_of(hs_verifier(), hs_token(alg="hs256")) == "unsupported_algorithm"


def test_hs256_maced_with_the_public_key_pem_is_refused() -> None:
    pair = rsa_pair()
    key = bastion.Key.from_pem(pair.public_pem, kid="rsa")
    forged_kid = make({"alg": "HS256", "kid": "rsa"}, claims(), pair.public_pem)
    forged = make({"alg": "HS256"}, claims(), pair.public_pem)
    only_rsa = bastion.JWTVerifier(key, algorithms=["RS256"])
    assert code_of(only_rsa, forged_kid) == "unsupported_algorithm"
    assert code_of(only_rsa, forged) == "unsupported_algorithm"
    # even a careless allow-list cannot turn the RSA key into an HMAC secret
    careless = bastion.JWTVerifier(key, algorithms=["RS256", "HS256"])
    assert code_of(careless, forged_kid) == "unsupported_algorithm"
    assert code_of(careless, forged) == "unknown_key"


def test_token_alg_must_match_the_key() -> None:
    pair = ec_pair("P-256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem, kid="ec"), algorithms=["ES256", "ES384"])
    token = make({"alg": "ES384", "kid": "ec"}, claims(), ec_pair("P-384").private)
    assert code_of(v, token) == "unsupported_algorithm"


def test_ed25519_and_eddsa_names() -> None:
    pair = ed_pair()
    key = bastion.Key.from_pem(pair.public_pem)
    for alg in ("EdDSA", "Ed25519"):
        v = bastion.JWTVerifier(key, algorithms=[alg])
        assert v.verify(make({"alg": alg}, claims(), pair.private), now=NOW)["sub"] == "user_1"
    only_eddsa = bastion.JWTVerifier(key, algorithms=["EdDSA"])
    assert code_of(only_eddsa, make({"alg": "Ed25519"}, claims(), pair.private)) == "unsupported_algorithm"
    assert sign("EdDSA", pair.private, b"x") == sign("Ed25519", pair.private, b"x")
