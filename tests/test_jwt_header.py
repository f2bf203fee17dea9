"""JWT header rules: members refused (`crit`, `b64`, JWE, nested JWTs), members ignored and never fetched
(`jku`, `x5u`, `jwk`, `x5c`), `typ`, raw and escaped header JSON, and the member cap.
"""

from __future__ import annotations

import json
from typing import Any

import bastion
import bastion.dangerous
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.jwt_tokens import (
    NOW,
    SECRET,
    b64,
    b64json,
    claims,
    code_of,
    ec_pair,
    hs_token,
    hs_verifier,
    make,
    rsa_pair,
)

# -- header tricks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"crit": []}, "unsupported_header"),
        ({"crit": ["x"], "x": 1}, "unsupported_header"),
        ({"crit": ["exp"]}, "unsupported_header"),
        ({"crit": None}, "unsupported_header"),
        ({"b64": False, "crit": ["b64"]}, "unsupported_header"),
        ({"b64": False}, "unsupported_header"),
        ({"b64": True}, "unsupported_header"),
        ({"zip": "DEF"}, "unsupported_header"),
        ({"enc": "A128GCM"}, "unsupported_header"),
        ({"enc": "A256GCM", "zip": "DEF"}, "unsupported_header"),
        ({"cty": "JWT"}, "unsupported_header"),
        ({"cty": "jwt"}, "unsupported_header"),
        ({"cty": "application/JWT"}, "unsupported_header"),
        ({"cty": 5}, "token_malformed"),
        ({"typ": 5}, "token_malformed"),
        ({"typ": None}, "token_malformed"),
        ({"alg": ["HS256"]}, "token_malformed"),
        ({"alg": None}, "token_malformed"),
        ({"alg": "HS256 "}, "unsupported_algorithm"),
        ({"alg": "hs256"}, "unsupported_algorithm"),
    ],
)
def test_header_members(extra: dict[str, Any], expected: str) -> None:
    header = {"alg": "HS256", "kid": "k1", **extra}
    assert code_of(hs_verifier(), make(header, claims(), SECRET, alg="HS256")) == expected


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "whatever", ""])
def test_typ_is_ignored_when_not_configured(typ: str) -> None:
    assert hs_verifier().verify(hs_token(typ=typ), now=NOW) == claims()


@pytest.mark.parametrize(
    ("configured", "header", "ok"),
    [
        ("at+jwt", "AT+JWT", True),
        ("at+jwt", "application/at+jwt", True),
        ("at+jwt", "APPLICATION/AT+JWT", True),
        ("application/at+jwt", "at+jwt", True),
        ("at+jwt", "JWT", False),
        ("at+jwt", None, False),
        ("at+jwt", "at+jwt; charset=x", False),
        ("at+jwt", "application/", False),
        ("at+jwt", "application/application/at+jwt", False),
        ("at+jwt", "at+jwt ", False),
    ],
)
def test_typ_variants(configured: str, header: str | None, ok: bool) -> None:
    v = hs_verifier(typ=configured)
    token = hs_token(typ=header)
    if ok:
        assert v.verify(token, now=NOW) == claims()
    else:
        assert code_of(v, token) == "invalid_type"


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "all"])
def test_attacker_key_headers_are_ignored(member: str) -> None:
    """The attacker signs with their own RSA key and points every key header at it: never trusted."""
    victim = rsa_pair()
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_jwk = bastion.Key.from_pem(
        attacker.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).public_jwk()
    values: dict[str, Any] = {
        "jwk": attacker_jwk,
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": ["MIIBszCCAVmgAwIBAgIU"],
        "x5t": "c29tZS10aHVtYnByaW50",
        "x5t#S256": "c29tZS10aHVtYnByaW50",
    }
    extra = values if member == "all" else {member: values[member]}
    v = bastion.JWTVerifier(bastion.Key.from_pem(victim.public_pem, kid="v"), algorithms=["RS256"])
    forged = make({"alg": "RS256", "kid": "v", **extra}, claims(sub="admin"), attacker)
    assert code_of(v, forged) == "invalid_signature"
    forged_no_kid = make({"alg": "RS256", **extra}, claims(sub="admin"), attacker)
    assert code_of(v, forged_no_kid) == "invalid_signature"
    # the same headers on a genuine token change nothing
    genuine = make({"alg": "RS256", "kid": "v", **extra}, claims(), victim.private)
    assert v.verify(genuine, now=NOW) == claims()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"alg":"HS256","kid":"k1","kid":"k2"}', "token_malformed"),
        (b'{"alg":"HS256","alg":"none","kid":"k1"}', "token_malformed"),
        (b'{"alg":"HS256","kid":"k1","x":{"a":1,"a":1}}', "token_malformed"),
        (b'\xef\xbb\xbf{"alg":"HS256","kid":"k1"}', "token_malformed"),
        (b'{"alg":"HS256","kid":"k1"} x', "token_malformed"),
        (b'{"alg":"HS256","kid":"k1"}{}', "token_malformed"),
        (b'{"alg":"HS256","kid":"k1","x":' + b"[" * 40 + b"]" * 40 + b"}", "token_malformed"),
        (b'["HS256"]', "token_malformed"),
        (b'{"alg":"HS256","kid":"\\ud800"}', "token_malformed"),
        (b'{"alg":"HS256","kid":"k1","x":NaN}', "token_malformed"),
        (b'{"kid":"k1"}', "token_malformed"),
        (b'{"alg":"HS256","kid":"k\xc0\xb1"}', "token_malformed"),
    ],
)
def test_raw_header_json(raw: bytes, expected: str) -> None:
    assert code_of(hs_verifier(), make(b64(raw), claims(), SECRET, alg="HS256")) == expected


def test_escaped_header_names_and_values_are_decoded_before_matching() -> None:
    raw = b'{"\\u0061lg":"\\u0048S256","kid":"\\u006b1"}'
    assert hs_verifier().verify(make(b64(raw), claims(), SECRET, alg="HS256"), now=NOW) == claims()


def test_header_objects_are_capped_so_the_duplicate_scan_stays_linear() -> None:
    key = bastion.Key.hmac(SECRET, kid="k1")
    members = {f"m{i}": i for i in range(200)}
    header = {"alg": "HS256", "kid": "k1", **members}
    h = b64(json.dumps(header).encode())
    p = b64(json.dumps({"sub": "u", "exp": 2_000_000_000}).encode())
    with pytest.raises(bastion.TokenMalformed):
        bastion.JWTVerifier(key, algorithms=["HS256"]).verify(f"{h}.{p}.{b64(b'x' * 32)}")


def test_header_must_be_an_object() -> None:
    for header in ("[]", '"HS256"', "1"):
        assert code_of(hs_verifier(), make(b64(header.encode()), claims(), SECRET)) == "token_malformed"
    assert code_of(hs_verifier(), make(b64json({"kid": "k1"}), claims(), SECRET)) == "token_malformed"


# -- headers -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"crit": []},
        {"crit": ["b64"], "b64": False},
        {"b64": True},
        {"enc": "A256GCM"},
        {"zip": "DEF"},
        {"cty": "JWT"},
        {"cty": "jwt"},
        {"cty": "application/JWT"},
    ],
)
def test_unsupported_headers(extra: dict[str, Any]) -> None:
    assert code_of(hs_verifier(), hs_token(**extra)) == "unsupported_header"


def test_jku_jwk_x5u_x5c_are_ignored() -> None:
    attacker = ec_pair("P-256")
    n = attacker.private.public_key().public_numbers()
    attacker_jwk = {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
    trusted = ec_pair("P-384")
    v = bastion.JWTVerifier(bastion.Key.from_pem(trusted.public_pem, kid="t"), algorithms=["ES256", "ES384"])
    for header in (
        {"alg": "ES256", "jwk": attacker_jwk},
        {"alg": "ES256", "kid": "t", "jwk": attacker_jwk},
        {"alg": "ES256", "jku": "https://attacker.example/jwks.json"},
        {"alg": "ES256", "x5u": "https://attacker.example/cert.pem"},
        {"alg": "ES256", "x5c": ["MIIB"]},
    ):
        code = code_of(v, make(header, claims(), attacker.private))
        assert code in ("unknown_key", "unsupported_algorithm"), header
    # a genuine token carrying those members still verifies: they are ignored, not refused
    genuine = make(
        {"alg": "ES384", "kid": "t", "jku": "https://x.example", "x5u": "https://y.example", "jwk": attacker_jwk},
        claims(),
        trusted.private,
    )
    assert v.verify(genuine, now=NOW)["sub"] == "user_1"


def test_typ() -> None:
    v = hs_verifier(typ="at+jwt")
    for typ in ("at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"):
        assert v.verify(hs_token(typ=typ), now=NOW)["sub"] == "user_1"
    for typ in ("JWT", "jwt", "at+jwt2", "application/", ""):
        with pytest.raises(bastion.InvalidType) as info:
            v.verify(hs_token(typ=typ), now=NOW)
        assert info.value.code == "invalid_type"
        assert info.value.claim == "typ"
    assert code_of(v, hs_token()) == "invalid_type"
    assert code_of(v, hs_token(typ=5)) == "token_malformed"
    # no typ configured: any typ is accepted
    assert hs_verifier().verify(hs_token(typ="whatever"), now=NOW)["sub"] == "user_1"
