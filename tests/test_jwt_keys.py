"""JWT key selection: `kid` is only a map key (tricks, types, presence rules), duplicate kids, and the one
key that can serve a token without a kid.
"""

from __future__ import annotations

import json
from typing import Any

import bastion
import bastion.dangerous
import pytest

from tests.jwt_tokens import (
    NOW,
    SECRET,
    b64,
    claims,
    code_of,
    ec_pair,
    hs_token,
    hs_verifier,
    make,
    rsa_pair,
)


@pytest.mark.parametrize(
    "kid",
    [
        "../../../../etc/passwd",
        "..\\..\\windows",
        "k1' OR '1'='1",
        "k1\u0000",
        "K1",
        "k1 ",
        " k1",
        "",
        "k" * 256,
        "k" * 257,
        "k" * 5000,
        "%6b1",
        "k1\n",
        "\u212a1",
    ],
)
def test_kid_tricks_are_unknown_keys(kid: str) -> None:
    assert code_of(hs_verifier(), hs_token(kid=kid)) == "unknown_key"


@pytest.mark.parametrize("kid", [None, 1, 1.5, True, ["k1"], {"k1": 1}])
def test_non_string_kid_is_malformed(kid: Any) -> None:
    token = make(b64(json.dumps({"alg": "HS256", "kid": kid}).encode()), claims(), SECRET, alg="HS256")
    assert code_of(hs_verifier(), token) == "token_malformed"


def test_kid_presence_rules() -> None:
    keyed = hs_verifier()
    unkeyed = bastion.JWTVerifier(bastion.Key.hmac(SECRET), algorithms=["HS256"])
    assert code_of(unkeyed, hs_token(kid="k1")) == "unknown_key"
    assert unkeyed.verify(make({"alg": "HS256"}, claims(), SECRET), now=NOW) == claims()
    # a token without kid is served by the one key that can serve its alg (DESIGN §3), kid or not
    assert keyed.verify(make({"alg": "HS256"}, claims(), SECRET), now=NOW) == claims()
    two = bastion.JWTVerifier(
        [bastion.Key.hmac(SECRET, kid="a"), bastion.Key.hmac(SECRET[::-1], kid="b")], algorithms=["HS256"]
    )
    assert code_of(two, make({"alg": "HS256"}, claims(), SECRET)) == "unknown_key"
    assert code_of(two, make({"alg": "HS256", "kid": "b"}, claims(), SECRET)) == "invalid_signature"


def test_duplicate_kids_are_refused_everywhere() -> None:
    rsa_jwk = {**bastion.Key.from_pem(rsa_pair().public_pem).public_jwk(), "kid": "d"}
    ec_jwk = {**bastion.Key.from_pem(ec_pair("P-256").public_pem).public_jwk(), "kid": "d"}
    enc_jwk = {**ec_jwk, "use": "enc"}
    for keys in ([rsa_jwk, ec_jwk], [rsa_jwk, rsa_jwk], [rsa_jwk, enc_jwk]):
        with pytest.raises(bastion.InvalidKeyError) as info:
            bastion.KeySet.from_jwks({"keys": keys})
        assert info.value.code == "invalid_key"
    with pytest.raises(bastion.InvalidKeyError):
        bastion.KeySet([bastion.Key.hmac(SECRET, kid="d"), bastion.Key.hmac(SECRET[::-1], kid="d")])
    with pytest.raises(bastion.InvalidKeyError):
        bastion.JWTVerifier(
            [bastion.Key.hmac(SECRET, kid="d"), bastion.Key.hmac(SECRET[::-1], kid="d")], algorithms=["HS256"]
        )
    with pytest.raises(bastion.InvalidKeyError):
        bastion.KeySet.from_jwks('{"keys":[],"keys":[]}')
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.from_jwk('{"kty":"oct","k":"' + b64(SECRET) + '","kid":"a","kid":"b"}')


@pytest.mark.parametrize(
    "kid",
    [
        "../../../../dev/null",
        "' OR '1'='1",
        "k1\x00",
        "k1 ",
        "K1",
        "http://attacker.example/key",
        "$(whoami)",
        "k" * 257,
        "k" * 5000,
        "",
    ],
)
def test_kid_is_only_a_map_key(kid: str) -> None:
    token = hs_token(kid=kid)
    with pytest.raises(bastion.UnknownKey) as info:
        hs_verifier().verify(token, now=NOW)
    assert info.value.code == "unknown_key"
    assert kid not in str(info.value) or kid == ""
    assert token not in repr(info.value)


@pytest.mark.parametrize("kid", [5, None, ["k1"], {"k": 1}, True])
def test_kid_of_the_wrong_type(kid: Any) -> None:
    header = b64(json.dumps({"alg": "HS256", "kid": kid}).encode())
    assert code_of(hs_verifier(), make(header, claims(), SECRET)) == "token_malformed"


def test_key_selection_without_kid() -> None:
    one = bastion.JWTVerifier(bastion.Key.hmac(SECRET), algorithms=["HS256"])
    assert one.verify(hs_token(kid=None), now=NOW)["sub"] == "user_1"
    two = bastion.JWTVerifier([bastion.Key.hmac(SECRET), bastion.Key.hmac(SECRET[::-1])], algorithms=["HS256"])
    assert code_of(two, hs_token(kid=None)) == "unknown_key"
    with_kid = bastion.JWTVerifier(
        [bastion.Key.hmac(SECRET, kid="a"), bastion.Key.hmac(SECRET[::-1], kid="b")], algorithms=["HS256"]
    )
    assert code_of(with_kid, hs_token(kid="k1")) == "unknown_key"
    assert with_kid.verify(hs_token(kid="a"), now=NOW)["sub"] == "user_1"
    assert code_of(with_kid, hs_token(kid="b")) == "invalid_signature"
