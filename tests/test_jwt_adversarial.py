"""An attacker's review of the JWT verifier: someone holding the public keys, valid sample tokens and their own
keys tries algorithm confusion, header, JSON, base64 and signature tricks, claim edge cases, cache abuse and
threads. Every test asserts the exact bastion error code (or the exact accepted claims).

The review found seven defects, each reproduced here first as a failing test and now fixed: a deadlock of the
verified-token cache under threads (Python code ran under a slot lock), PEM/SSH key text accepted as an HMAC
secret, and non-string / surrogate / out-of-range configuration values raising TypeError, UnicodeEncodeError or
OverflowError instead of ConfigurationError. (The seventh, a quadratic duplicate-member scan of oversized
headers, has no timed test by policy: headers and JWKs are now capped at 128 members per object.)
"""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bastion
import bastion.dangerous
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.jwt_tokens import (
    NOW,
    SECRET,
    b64,
    b64json,
    claims,
    ec_pair,
    ed_pair,
    hs_token,
    hs_verifier,
    make,
    rsa_pair,
)

ROOT = Path(__file__).resolve().parent.parent

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P521_N = int(
    "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA" + "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16
)
ED25519_L = 2**252 + 27742317777372353535851937790883648493
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def code_of(verifier: bastion.JWTVerifier, token: Any, now: Any = NOW) -> str:
    with pytest.raises(bastion.AuthError) as info:
        verifier.verify(token, now=now)
    return info.value.code


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def with_signature(token: str, signature: bytes) -> str:
    h, p, _ = token.split(".")
    return f"{h}.{p}.{b64(signature)}"


def raw_payload_token(payload: bytes, **header: Any) -> str:
    return hs_token(payload, **header)


# -- algorithm confusion ---------------------------------------------------------------------------------------


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


# -- algorithm / key-type mismatches ---------------------------------------------------------------------------


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


# -- none ------------------------------------------------------------------------------------------------------


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


# -- kid tricks ------------------------------------------------------------------------------------------------


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


# -- header tricks ---------------------------------------------------------------------------------------------


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


# -- JSON tricks in the payload --------------------------------------------------------------------------------

EXP = NOW + 600


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"sub":"u","exp":%d,"x":{"a":1,"a":2}}' % EXP, "token_malformed"),
        (b'{"sub":"u","exp":%d,"x":[{"a":{"b":1,"b":1}}]}' % EXP, "token_malformed"),
        (b'{"exp":1,"exp":%d}' % EXP, "token_malformed"),
        (b'{"exp":%d,"\\u0065xp":1}' % EXP, "token_malformed"),
        (b'{"exp":%d,"aud":"a","aud":"b"}' % EXP, "token_malformed"),
        (b'{"exp":1e400}', "token_malformed"),
        (b'{"exp":-1e400}', "token_malformed"),
        (b'{"exp":%d,"x":1e400}' % EXP, "token_malformed"),
        (b'{"exp":NaN}', "token_malformed"),
        (b'{"exp":%d,"x":Infinity}' % EXP, "token_malformed"),
        (b'{"exp":%d,"x":-Infinity}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\\ud800"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\\udc00x"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\\ud800\\u0041"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\xc0\xaf"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\xed\xa0\x80"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\xff"}' % EXP, "token_malformed"),
        (b'\xef\xbb\xbf{"exp":%d}' % EXP, "token_malformed"),
        (b'{"exp":%d}x' % EXP, "token_malformed"),
        (b'{"exp":%d}{}' % EXP, "token_malformed"),
        (b'{"exp":%d}\x00' % EXP, "token_malformed"),
        (b'{"exp":%d}\xc2\xa0' % EXP, "token_malformed"),
        (b'{\x0b"exp":%d}' % EXP, "token_malformed"),
        (b'{"exp":%d,"x":' % EXP + b"[" * 32 + b"]" * 32 + b"}", "token_malformed"),
        (b'{"exp":%d,"sub":"a\x00b"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"a\tb"}' % EXP, "token_malformed"),
        (b'[{"exp":%d}]' % EXP, "token_malformed"),
        (b'"exp"', "token_malformed"),
        (b"", "token_malformed"),
        (b"{'exp':%d}" % EXP, "token_malformed"),
        (b'{"exp":%d,}' % EXP, "token_malformed"),
        (b'{"exp":0%d}' % EXP, "token_malformed"),
        (b'{"exp":+%d}' % EXP, "token_malformed"),
        (b'{"exp":%d.}' % EXP, "token_malformed"),
        (b'{"exp":0x10}', "token_malformed"),
        (b'{"exp":%d,"b":True}' % EXP, "token_malformed"),
        (b'{"exp":%d/*c*/}' % EXP, "token_malformed"),
        (b'{"exp":%d,"s":"\\a"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"s":"\\U0041"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"s":"\\u00"}' % EXP, "token_malformed"),
        # integers beyond what Python will parse from text (4300 digits) cannot be represented
        (b'{"exp":%d,"x":%s}' % (EXP, b"1" * 5000), "token_malformed"),
        (b'{"exp":' + b"1" * 5000 + b"}", "token_malformed"),
        # NumericDates that are not finite JSON numbers
        (b'{"exp":' + b"1" * 400 + b"}", "invalid_claim"),
        (b'{"exp":-' + b"1" * 400 + b"}", "invalid_claim"),
        (b'{"exp":"%d"}' % EXP, "invalid_claim"),
        (b'{"exp":true}', "invalid_claim"),
        (b'{"exp":false}', "invalid_claim"),
        (b'{"exp":null}', "invalid_claim"),
        (b'{"exp":[%d]}' % EXP, "invalid_claim"),
        (b'{"exp":{}}', "invalid_claim"),
        (b'{"exp":%d,"nbf":"0"}' % EXP, "invalid_claim"),
        (b'{"exp":%d,"iat":null}' % EXP, "invalid_claim"),
        (b'{"exp":-0.0}', "token_expired"),
        (b'{"exp":-0}', "token_expired"),
        (b"{}", "missing_claim"),
    ],
)
def test_payload_json_rejections(payload: bytes, expected: str) -> None:
    assert code_of(hs_verifier(), raw_payload_token(payload)) == expected


@pytest.mark.parametrize(
    ("payload", "accepted"),
    [
        (
            b'{"sub":"u","exp":%d,"__proto__":{"admin":true}}' % EXP,
            {"sub": "u", "exp": EXP, "__proto__": {"admin": True}},
        ),
        (b'{"exp":%d,"x":-0}' % EXP, {"exp": EXP, "x": 0}),
        (b'{"exp":1.8000006E9}', {"exp": 1800000600.0}),
        (b'{"exp":18000006e2}', {"exp": 1800000600.0}),
        (b'{"exp":9223372036854775808}', {"exp": 9223372036854775808}),
        (b'{"exp":1e308}', {"exp": 1e308}),
        (b'{"exp":%d,"n":123456789012345678901234567890}' % EXP, {"exp": EXP, "n": 123456789012345678901234567890}),
        (b' \t\r\n{ "exp" : %d , "sub" : "u" } \n' % EXP, {"exp": EXP, "sub": "u"}),
        (b'{"exp":%d,"sub":"\\ud83d\\ude00"}' % EXP, {"exp": EXP, "sub": "\U0001f600"}),
        (b'{"exp":%d,"sub":"\\u0000"}' % EXP, {"exp": EXP, "sub": "\x00"}),
        (b'{"exp":%d,"a\\/b":"\\u00e9\xc3\xa9"}' % EXP, {"exp": EXP, "a/b": "éé"}),
        (b'{"exp":%d,"s":"a\x7fb\xe2\x80\xa8\\uffff"}' % EXP, {"exp": EXP, "s": "a\x7fb\u2028\uffff"}),
        (b'{"exp":%d,"x":' % EXP + b"[" * 31 + b"]" * 31 + b"}", {"exp": EXP, "x": json.loads("[" * 31 + "]" * 31)}),
    ],
)
def test_payload_json_accepted(payload: bytes, accepted: dict[str, Any]) -> None:
    assert hs_verifier().verify(raw_payload_token(payload), now=NOW) == accepted


def test_nesting_ten_thousand_deep() -> None:
    payload = b'{"exp":%d,"x":' % EXP + b"[" * 10_000 + b"]" * 10_000 + b"}"
    token = raw_payload_token(payload)
    assert code_of(hs_verifier(), token) == "token_too_large"
    assert code_of(hs_verifier(max_token_bytes=len(token)), token) == "token_malformed"
    objects = b'{"exp":%d,"x":' % EXP + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}"
    token = raw_payload_token(objects)
    assert code_of(hs_verifier(max_token_bytes=len(token)), token) == "token_malformed"
    header = b64(b'{"alg":"HS256","kid":"k1","x":' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    token = make(header, claims(), SECRET, alg="HS256")
    assert code_of(hs_verifier(max_token_bytes=len(token)), token) == "token_malformed"


# -- size cap --------------------------------------------------------------------------------------------------


def token_of_length(length: int) -> str:
    """A valid HS256 token of exactly ``length`` bytes (padding claims adjusted until it fits)."""
    base = len(hs_token(claims(pad="")))
    estimate = max(0, (length - base) * 3 // 4)
    for extra in ("", "y", "yy", "yyy"):
        for k in range(max(0, estimate - 6), estimate + 6):
            token = hs_token(claims(pad="x" * k), x=extra)
            if len(token) == length:
                return token
    raise AssertionError(f"no token of length {length}")


@pytest.mark.parametrize("cap", [300, 8192, 1 << 20])
def test_token_exactly_at_the_cap_verifies_and_one_more_byte_does_not(cap: int) -> None:
    v = hs_verifier(max_token_bytes=cap)
    at_cap = token_of_length(cap)
    assert v.verify(at_cap, now=NOW)["sub"] == "user_1"
    assert v.verify(at_cap.encode(), now=NOW)["sub"] == "user_1"
    over = token_of_length(cap + 1)
    assert code_of(v, over) == "token_too_large"
    assert code_of(hs_verifier(max_token_bytes=cap, cache_size=4), over) == "token_too_large"


@pytest.mark.parametrize("filler", ["a", ".", "\u00e9", "\x00"])
def test_one_megabyte_is_refused_before_decoding(filler: str) -> None:
    big = filler * (1 << 20)
    assert code_of(hs_verifier(), big) == "token_too_large"
    assert code_of(hs_verifier(cache_size=8), big.encode()) == "token_too_large"
    assert code_of(hs_verifier(max_token_bytes=1 << 20), big + "x") == "token_too_large"


# A str whose length in code points is over the cap is refused before CPython encodes it to UTF-8. CPython keeps
# the UTF-8 form it builds for a non-ASCII str (PyUnicode_AsUTF8AndSize) and sys.getsizeof counts it: a str
# whose size did not change was never encoded.


class _ShortStr(str):
    """A str that lies about its length: the cap must look at the characters, not at __len__."""

    def __len__(self) -> int:
        return 0


def _text_entry_points(cap: int) -> dict[str, Callable[[str], object]]:
    key = bastion.Key.hmac(SECRET, kid="k1")
    plain = hs_verifier(max_token_bytes=cap)
    cached = hs_verifier(max_token_bytes=cap, cache_size=8)
    return {
        "verify": lambda t: plain.verify(t, now=NOW),
        "verify (cache)": lambda t: cached.verify(t, now=NOW),
        "decode_unverified": lambda t: bastion.dangerous.decode_unverified(t, max_token_bytes=cap),
        "verify_jws": lambda t: bastion.dangerous.verify_jws(t, key, algorithms=["HS256"], max_token_bytes=cap),
    }


ENTRY_POINTS = list(_text_entry_points(8192))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("char", ["\u00e9", "\u20ac", "\U0001f600", "\udc80"])
def test_huge_non_ascii_str_is_refused_without_being_encoded(entry: str, char: str) -> None:
    call = _text_entry_points(8192)[entry]
    for text in (char * (1 << 22), _ShortStr(char * (1 << 22)), hs_token() + char * 8192):
        size = sys.getsizeof(text)
        with pytest.raises(bastion.TokenTooLarge) as info:
            call(text)
        assert info.value.code == "token_too_large"
        assert str(info.value) == "the token is too large"
        assert sys.getsizeof(text) == size, "the str was encoded before the cap refused it"


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_str_under_the_cap_in_characters_but_over_it_in_bytes_is_refused(entry: str) -> None:
    cap = 301  # token_of_length(300) exists
    call = _text_entry_points(cap)[entry]
    under = "".join(["\u00e9"] * 200)  # 200 characters, 400 bytes of UTF-8; built at run time, not a shared constant
    size = sys.getsizeof(under)
    with pytest.raises(bastion.TokenTooLarge):
        call(under)
    # the probe above is not blind: this str was within the cap in characters, so it was encoded and measured
    assert sys.getsizeof(under) > size
    # at the boundary: cap characters (passes the first check) but cap + 1 bytes
    at_cap = token_of_length(cap - 1) + "\u00e9"
    assert len(at_cap) == cap
    with pytest.raises(bastion.TokenTooLarge):
        call(at_cap)
    # and cap characters of ASCII are cap bytes: past the size check (the stray "x" spoils the signature,
    # which decode_unverified does not look at)
    ascii_at_cap = token_of_length(cap - 1) + "x"
    if entry == "decode_unverified":
        decoded: Any = call(ascii_at_cap)
        assert decoded["claims"]["sub"] == "user_1"
    else:
        with pytest.raises(bastion.InvalidSignature):
            call(ascii_at_cap)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_lone_surrogates_within_the_cap_are_token_malformed(entry: str) -> None:
    call = _text_entry_points(8192)[entry]
    for text in ("\ud800" + hs_token(), hs_token() + "\udfff", _ShortStr("\udc80" + hs_token())):
        with pytest.raises(bastion.TokenMalformed) as info:
            call(text)
        assert info.value.code == "token_malformed"


# -- base64 tricks ---------------------------------------------------------------------------------------------


def _set_trailing_bits(segment: str) -> str:
    assert len(segment) % 4 in (2, 3)
    last = B64_ALPHABET.index(segment[-1])
    return segment[:-1] + B64_ALPHABET[last | 1]


def _mangled() -> dict[str, str]:
    t = hs_token()
    h, p, s = t.split(".")
    return {
        "padding on header": f"{h}=.{p}.{s}",
        "padding on signature": f"{h}.{p}.{s}=",
        "padding everywhere": f"{h}==.{p}==.{s}==",
        "plus and slash": f"{h}.{p}.{s.replace('-', '+').replace('_', '/')}"
        if ("-" in s or "_" in s)
        else f"{h}.{p}.+{s[1:]}",
        "space inside": f"{h}.{p[:5]} {p[5:]}.{s}",
        "newline at end": f"{t}\n",
        "crlf inside": f"{h}.{p[:4]}\r\n{p[4:]}.{s}",
        "tab before signature": f"{h}.{p}.\t{s}",
        "leading space": f" {t}",
        "trailing bits in signature": f"{h}.{p}.{_set_trailing_bits(s)}",
        "truncated signature (1 char short)": f"{h}.{p}.{s[:-2]}",
        "one char segment": f"{h}.{p}.A",
        "standard alphabet header": f"{base64.b64encode(unb64(h)).decode()}.{p}.{s}",
    }


@pytest.mark.parametrize("name", list(_mangled()))
def test_non_canonical_base64url(name: str) -> None:
    assert code_of(hs_verifier(), _mangled()[name]) == "token_malformed"


def test_trailing_bits_in_header_and_payload() -> None:
    for sub in ("u", "uu", "uuu", "uuuu"):
        h, p, s = hs_token(claims(sub=sub)).split(".")
        if len(p) % 4 in (2, 3):
            assert code_of(hs_verifier(), f"{h}.{_set_trailing_bits(p)}.{s}") == "token_malformed"
    for kid in ("k1", "k1" * 2):
        h, p, s = hs_token(kid=kid).split(".")
        if len(h) % 4 in (2, 3):
            assert code_of(hs_verifier(), f"{_set_trailing_bits(h)}.{p}.{s}") == "token_malformed"


@pytest.mark.parametrize(
    "shape",
    [
        "",
        ".",
        "..",
        "...",
        "....",
        "h",
        "h.p",
        ".p.s",
        "h..s",
        "{t}.",
        ".{t}",
        "{t}.{s}",
        "{h}.{p}",
        "{h}\u3002{p}\u3002{s}",
    ],
)
def test_segment_counts(shape: str) -> None:
    t = hs_token()
    h, p, s = t.split(".")
    token = shape.format(t=t, h=h, p=p, s=s)
    assert code_of(hs_verifier(), token) == "token_malformed"


def test_empty_signature_segment_is_a_bad_signature() -> None:
    h, p, _ = hs_token().split(".")
    assert code_of(hs_verifier(), f"{h}.{p}.") == "invalid_signature"


# -- ECDSA -----------------------------------------------------------------------------------------------------


def _es_parts(curve: str, alg: str) -> tuple[bastion.JWTVerifier, str, int, int, int]:
    pair = ec_pair(curve)
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=[alg])
    token = make({"alg": alg}, claims(), pair.private)
    raw = unb64(token.split(".")[2])
    n = len(raw) // 2
    return v, token, int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"), n


def _rs(r: int, s: int, n: int) -> bytes:
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


@pytest.mark.parametrize(
    "case",
    [
        "r=0",
        "s=0",
        "r=s=0",
        "r=n",
        "s=n",
        "r=n+r",
        "s=n+s",
        "r=s=1",
        "r=s=n-1",
        "all ff",
        "der",
        "63",
        "65",
        "empty",
        "r only",
        "r||s||r",
    ],
)
def test_ecdsa_p256_bad_signatures(case: str) -> None:
    v, token, r, s, n = _es_parts("P-256", "ES256")
    assert v.verify(token, now=NOW) == claims()
    sigs = {
        "r=0": _rs(0, s, n),
        "s=0": _rs(r, 0, n),
        "r=s=0": bytes(2 * n),
        "r=n": _rs(P256_N, s, n),
        "s=n": _rs(r, P256_N, n),
        "r=n+r": (r + P256_N).to_bytes(n + 1, "big") + s.to_bytes(n, "big"),
        "s=n+s": r.to_bytes(n, "big") + (s + P256_N).to_bytes(n + 1, "big"),
        "r=s=1": _rs(1, 1, n),
        "r=s=n-1": _rs(P256_N - 1, P256_N - 1, n),
        "all ff": b"\xff" * 2 * n,
        "der": encode_dss_signature(r, s),
        "63": _rs(r, s, n)[:-1],
        "65": _rs(r, s, n) + b"\x00",
        "empty": b"",
        "r only": r.to_bytes(n, "big"),
        "r||s||r": _rs(r, s, n) + r.to_bytes(n, "big"),
    }
    assert code_of(v, with_signature(token, sigs[case])) == "invalid_signature"


def test_ecdsa_p521_scalar_bounds() -> None:
    v, token, r, s, n = _es_parts("P-521", "ES512")
    assert n == 66
    for sig in (_rs(r, P521_N, n), _rs(P521_N, s, n), _rs(r, 0, n), _rs(r, s, n)[:130], b"\x02" + _rs(r, s, n)[1:]):
        assert code_of(v, with_signature(token, sig)) == "invalid_signature"


@pytest.mark.parametrize(("curve", "alg", "order"), [("P-256", "ES256", P256_N), ("P-521", "ES512", P521_N)])
def test_ecdsa_high_s_is_accepted(curve: str, alg: str, order: int) -> None:
    """NOTE, not a defect: JOSE (RFC 7518 §3.4) does not require low-s, and aws-lc accepts (r, n-s). So every
    ECDSA token has a second valid spelling: never use the token text as a replay or revocation key."""
    v, token, r, s, n = _es_parts(curve, alg)
    twin = with_signature(token, _rs(r, order - s, n))
    assert twin != token
    assert v.verify(twin, now=NOW) == claims()


def test_ed25519_signature_malleability_is_refused() -> None:
    pair = ed_pair()
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["EdDSA"])
    token = make({"alg": "EdDSA"}, claims(), pair.private)
    raw = unb64(token.split(".")[2])
    s = int.from_bytes(raw[32:], "little")
    for sig in (raw[:32] + (s + ED25519_L).to_bytes(32, "little"), bytes(64), raw[:63], raw + b"\x00"):
        assert code_of(v, with_signature(token, sig)) == "invalid_signature"


# -- RSA -------------------------------------------------------------------------------------------------------


def test_rsa_signature_shapes() -> None:
    pair = rsa_pair()
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["RS256", "PS256"])
    token = make({"alg": "RS256"}, claims(), pair.private)
    sig = unb64(token.split(".")[2])
    n = pair.private.public_key().public_numbers().n
    assert len(sig) == 256
    for bad in (
        sig[1:],
        sig[:-1],
        b"\x00" + sig,
        sig + b"\x00",
        bytes(256),
        b"",
        (1).to_bytes(256, "big"),
        n.to_bytes(256, "big"),
        (n - 1).to_bytes(256, "big"),
        (int.from_bytes(sig, "big") + n).to_bytes(257, "big"),
    ):
        assert code_of(v, with_signature(token, bad)) == "invalid_signature"
    ps = make({"alg": "PS256"}, claims(), pair.private)
    assert code_of(v, with_signature(ps, unb64(ps.split(".")[2])[:-1])) == "invalid_signature"


# -- claims ----------------------------------------------------------------------------------------------------


def _t(**c: Any) -> str:
    return hs_token(c)


@pytest.mark.parametrize(
    ("verifier_kw", "token_claims", "now", "expected"),
    [
        ({}, {"exp": NOW}, NOW, "token_expired"),
        ({}, {"exp": NOW}, NOW - 1e-6, None),
        ({}, {"exp": NOW + 0.5}, NOW + 0.5, "token_expired"),
        ({}, {"exp": NOW + 10, "nbf": NOW}, NOW, None),
        ({}, {"exp": NOW + 10, "nbf": NOW + 0.5}, NOW, "token_not_yet_valid"),
        ({}, {"exp": NOW + 10, "iat": NOW}, NOW, None),
        ({}, {"exp": NOW + 10, "iat": NOW + 1}, NOW, "token_not_yet_valid"),
        ({"leeway": 5}, {"exp": NOW}, NOW + 4.999, None),
        ({"leeway": 5}, {"exp": NOW}, NOW + 5, "token_expired"),
        ({"leeway": 5}, {"exp": NOW + 100, "nbf": NOW + 5}, NOW, None),
        ({"leeway": 5}, {"exp": NOW + 100, "nbf": NOW + 5.001}, NOW, "token_not_yet_valid"),
        ({"leeway": 5}, {"exp": NOW + 100, "iat": NOW + 5}, NOW, None),
        ({"leeway": 5}, {"exp": NOW + 100, "iat": NOW + 5.5}, NOW, "token_not_yet_valid"),
        ({"leeway": 0.5}, {"exp": NOW}, NOW + 0.25, None),
        ({}, {"exp": -1}, NOW, "token_expired"),
        ({}, {"exp": NOW + 1, "aud": "api"}, NOW, "invalid_audience"),
        ({}, {"exp": NOW + 1, "aud": []}, NOW, "invalid_audience"),
        ({}, {"exp": NOW + 1, "aud": ["api", 1]}, NOW, "invalid_claim"),
        ({}, {"exp": NOW + 1, "iss": 5}, NOW, "invalid_claim"),
        ({}, {"exp": NOW + 1, "sub": 5}, NOW, "invalid_claim"),
        ({}, {"exp": NOW + 1, "jti": []}, NOW, "invalid_claim"),
        ({"require": []}, {}, NOW, None),
        ({"require": ["exp", "nbf"]}, {"exp": NOW + 1}, NOW, "missing_claim"),
        ({"require": "exp"}, {"sub": "x"}, NOW, "missing_claim"),
        ({"require": ["iss", "aud"], "audience": "api"}, {"exp": NOW + 1, "aud": "api"}, NOW, "missing_claim"),
    ],
)
def test_claim_edges(
    verifier_kw: dict[str, Any], token_claims: dict[str, Any], now: float, expected: str | None
) -> None:
    v = hs_verifier(**verifier_kw)
    token = _t(**token_claims)
    if expected is None:
        assert v.verify(token, now=now) == token_claims
    else:
        assert code_of(v, token, now=now) == expected


AUD_ISS = {"audience": ["api", "web"], "issuer": "https://idp"}


@pytest.mark.parametrize(
    ("token_claims", "expected"),
    [
        ({"aud": ["x", "web"], "iss": "https://idp"}, None),
        ({"aud": "api", "iss": "https://idp"}, None),
        ({"aud": [], "iss": "https://idp"}, "invalid_audience"),
        ({"iss": "https://idp"}, "invalid_audience"),
        ({"aud": "", "iss": "https://idp"}, "invalid_audience"),
        ({"aud": "API", "iss": "https://idp"}, "invalid_audience"),
        ({"aud": "api\u0000", "iss": "https://idp"}, "invalid_audience"),
        ({"aud": [["api"]], "iss": "https://idp"}, "invalid_claim"),
        ({"aud": None, "iss": "https://idp"}, "invalid_claim"),
        ({"aud": {"api": 1}, "iss": "https://idp"}, "invalid_claim"),
        ({"aud": True, "iss": "https://idp"}, "invalid_claim"),
        ({"aud": ["api", None], "iss": "https://idp"}, "invalid_claim"),
        ({"aud": "api", "iss": ["https://idp"]}, "invalid_claim"),
        ({"aud": "api", "iss": None}, "invalid_claim"),
        ({"aud": "api", "iss": "https://idp\u200b"}, "invalid_issuer"),
        ({"aud": "api", "iss": "https://IDP"}, "invalid_issuer"),
        ({"aud": "api"}, "invalid_issuer"),
    ],
)
def test_audience_and_issuer(token_claims: dict[str, Any], expected: str | None) -> None:
    v = hs_verifier(**AUD_ISS)
    full = {"exp": NOW + 1, **token_claims}
    if expected is None:
        assert v.verify(_t(**full), now=NOW) == full
    else:
        assert code_of(v, _t(**full)) == expected


def test_audience_configured_as_any_iterable_of_strings() -> None:
    good: list[Any] = [["api"], ("api",), "api", ["x", "api"]]
    for audience in good:
        assert hs_verifier(audience=audience).verify(_t(exp=NOW + 1, aud="api"), now=NOW)["aud"] == "api"
    bad: list[Any] = [b"api", [b"api"], ["api", 1], 5]
    for wrong in bad:
        with pytest.raises(bastion.ConfigurationError) as info:
            hs_verifier(audience=wrong)
        assert info.value.code == "invalid_configuration"


def test_claim_errors_only_after_the_signature() -> None:
    wrong = b"w" * 32
    v = hs_verifier(**AUD_ISS)
    for bad in (
        claims(exp=NOW - 5),
        claims(aud="evil", iss="https://idp"),
        claims(exp="soon"),
        claims(nbf=NOW + 100),
        claims(iss=5),
        {"sub": "no exp"},
    ):
        assert code_of(v, make({"alg": "HS256", "kid": "k1"}, bad, wrong)) == "invalid_signature"


# -- time ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        True,
        False,
        "1800000000",
        b"1",
        float("nan"),
        float("inf"),
        float("-inf"),
        10**400,
        -(10**400),
        [],
        {},
        object(),
        1 + 1j,
    ],
    ids=repr,
)
def test_bad_now_is_a_configuration_error_never_a_type_error(now: Any) -> None:
    for v in (hs_verifier(), hs_verifier(cache_size=4)):
        with pytest.raises(bastion.ConfigurationError) as info:
            v.verify(hs_token(), now=now)
        assert info.value.code == "invalid_configuration"
        assert not isinstance(info.value, (TypeError, OverflowError))


def test_extreme_finite_now() -> None:
    assert code_of(hs_verifier(), hs_token(), now=1e308) == "token_expired"
    assert code_of(hs_verifier(), hs_token(), now=-1e308) == "token_not_yet_valid"
    assert hs_verifier().verify(hs_token(), now=NOW) == claims()


# -- token types -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [None, 5, 1.5, ["a.b.c"], bytearray(b"a.b.c"), memoryview(b"a.b.c"), "", b"", "   ", "\ud800", "a.b.c\ud800"],
    ids=repr,
)
def test_token_of_the_wrong_type_or_text_is_malformed(token: Any) -> None:
    assert code_of(hs_verifier(), token) == "token_malformed"
    assert code_of(hs_verifier(cache_size=2), token) == "token_malformed"


@pytest.mark.parametrize("where", ["nul at end", "nul at start", "nul as dot", "non-ascii", "fullwidth"])
def test_token_text_tricks(where: str) -> None:
    t = hs_token()
    token = {
        "nul at end": t + "\x00",
        "nul at start": "\x00" + t,
        "nul as dot": t.replace(".", "\x00", 1),
        "non-ascii": "é" + t,
        "fullwidth": t.replace("e", "\uff45", 1),
    }[where]
    assert code_of(hs_verifier(), token) == "token_malformed"
    assert code_of(hs_verifier(), token.encode("utf-8", "surrogatepass")) == "token_malformed"


def test_str_and_bytes_give_the_same_claims() -> None:
    t = hs_token()
    assert hs_verifier().verify(t, now=NOW) == hs_verifier().verify(t.encode(), now=NOW) == claims()


# -- cache -----------------------------------------------------------------------------------------------------


def test_cache_rechecks_times_and_returns_independent_dicts() -> None:
    v = hs_verifier(cache_size=4)
    payload = claims(exp=NOW + 100, nbf=NOW - 5, nested={"a": [1, {"b": 2}]}, lst=[1, 2])
    token = hs_token(payload)
    first = v.verify(token, now=NOW)
    first["nested"]["a"][1]["b"] = 99
    first["lst"].append(3)
    first["sub"] = "admin"
    second = v.verify(token, now=NOW + 1)
    assert second == payload
    second["nested"]["a"].append("x")
    second["new"] = 1
    assert v.verify(token.encode(), now=NOW + 2) == payload
    assert code_of(v, token, now=NOW + 100) == "token_expired"
    assert code_of(v, token, now=NOW - 6) == "token_not_yet_valid"
    assert v.verify(token, now=NOW + 99) == payload


def test_cache_with_leeway_and_iat() -> None:
    v = hs_verifier(cache_size=4, leeway=5)
    token = hs_token(claims(exp=NOW + 10, iat=NOW))
    assert v.verify(token, now=NOW)["sub"] == "user_1"
    assert v.verify(token, now=NOW + 14.9)["sub"] == "user_1"
    assert code_of(v, token, now=NOW + 15) == "token_expired"
    assert code_of(v, token, now=NOW - 5.5) == "token_not_yet_valid"


def test_forged_tokens_never_hit_the_cache() -> None:
    v = hs_verifier(cache_size=1)
    token = hs_token(claims(sub="alice"))
    assert v.verify(token, now=NOW)["sub"] == "alice"
    h, p, s = token.split(".")
    forged_payload = b64json(claims(sub="admin"))
    assert code_of(v, f"{h}.{forged_payload}.{s}") == "invalid_signature"
    assert code_of(v, f"{h}.{p}x.{s}") in ("token_malformed", "invalid_signature")
    assert code_of(v, f"{h}.{p[:-1]}.{s}") in ("token_malformed", "invalid_signature")
    assert code_of(v, token + "A") == "invalid_signature"
    assert code_of(v, token[:-1]) in ("token_malformed", "invalid_signature")
    assert code_of(v, f"{h}.{p}.{s}".replace(".", "..", 1)) == "token_malformed"
    # an expired cached token is still expired, and a hit never hides a stricter verifier's rules
    assert v.verify(token, now=NOW)["sub"] == "alice"
    strict = hs_verifier(cache_size=1, audience="api")
    assert code_of(strict, token) == "invalid_audience"
    assert code_of(strict, token) == "invalid_audience"


def test_expired_token_is_not_cached_and_clear_cache_forgets() -> None:
    v = hs_verifier(cache_size=4)
    token = hs_token(claims(exp=NOW + 10))
    assert code_of(v, token, now=NOW + 10) == "token_expired"
    assert v.verify(token, now=NOW)["sub"] == "user_1"
    v.clear_cache()
    assert code_of(v, token, now=NOW + 10) == "token_expired"
    assert v.verify(token, now=NOW)["sub"] == "user_1"


# -- threads ---------------------------------------------------------------------------------------------------


def test_threads_mixing_keys_forgeries_and_the_header_memo() -> None:
    """Eight threads, no cache: RS256 and HS256 tokens under several kids (filling the header memo while
    forged tokens with the same headers arrive): each result belongs to its own token."""
    pair = rsa_pair()
    keys = bastion.KeySet(
        [
            bastion.Key.from_pem(pair.public_pem, kid="rsa"),
            bastion.Key.hmac(SECRET, kid="hs"),
            bastion.Key.hmac(SECRET[::-1], kid="hs2"),
        ]
    )
    v = bastion.JWTVerifier(keys, algorithms=["RS256", "HS256"])
    good: list[tuple[str, str]] = []
    bad: list[str] = []
    for i in range(12):
        sub = f"user_{i}"
        good.append((make({"alg": "RS256", "kid": "rsa"}, claims(sub=sub), pair.private), sub))
        good.append((make({"alg": "HS256", "kid": "hs"}, claims(sub=sub), SECRET), sub))
        good.append((make({"alg": "HS256", "kid": "hs2"}, claims(sub=sub), SECRET[::-1]), sub))
        bad.append(make({"alg": "HS256", "kid": "hs"}, claims(sub=sub), SECRET[::-1]))
        bad.append(make({"alg": "HS256", "kid": "rsa"}, claims(sub=sub), pair.public_pem))
    errors: list[str] = []

    def work(offset: int) -> None:
        for round_ in range(20):
            token, sub = good[(offset + round_) % len(good)]
            if v.verify(token, now=NOW)["sub"] != sub:
                errors.append(f"wrong claims for {sub}")
            forged = bad[(offset + round_) % len(bad)]
            try:
                v.verify(forged, now=NOW)
                errors.append("forged token verified")
            except (bastion.InvalidSignature, bastion.UnsupportedAlgorithm):
                pass

    threads = [threading.Thread(target=work, args=(i * 5,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


_HAMMER = """
import sys, threading, time
import bastion
sys.setswitchinterval(1e-6)
{setup}
key = bastion.Key.hmac(b"0123456789abcdef0123456789abcdef", kid="k1")
signer = bastion.JWTSigner(key, "HS256", ttl=None)
claims = {{"sub": "u", "exp": 1800000010, "nested": {{"a": [1, 2]}}}}
token = signer.sign(claims, headers={{"kid": "k1"}}, now=1800000000)
v = bastion.JWTVerifier(key, algorithms=["HS256"], cache_size=1)
v.verify(token, now=1800000000)
{arm}
stop = time.monotonic() + 5
def run():
    while time.monotonic() < stop:
        try:
            v.verify(token, now={now})
        except bastion.TokenExpired:
            pass
threads = [threading.Thread(target=run, daemon=True) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done")
"""


def _hammer(setup: str, arm: str, now: str) -> str:
    script = textwrap.dedent(_HAMMER).format(setup=setup, arm=arm, now=now)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=20, check=False
    )
    return result.stdout.strip() + result.stderr.strip()


def test_cache_hit_of_an_expired_token_from_two_threads_does_not_deadlock() -> None:
    assert _hammer("", "", "1800000020") == "done"


def test_cache_hit_with_gc_finalizers_from_two_threads_does_not_deadlock() -> None:
    setup = textwrap.dedent(
        """
        import gc
        class Bomb:
            def __init__(self):
                self.me = self
            def __del__(self):
                Bomb()
                time.sleep(0)
        """
    )
    assert _hammer(setup, "Bomb(); gc.set_threshold(1, 1, 1)", "1800000000") == "done"


def test_the_same_hammer_without_a_cache_finishes() -> None:
    """Control for the two deadlock tests: the harness itself finishes when the cache is off."""
    script = textwrap.dedent(_HAMMER).format(setup="", arm="", now="1800000020").replace("cache_size=1", "cache_size=0")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "done", result.stderr


# -- nothing secret in errors ----------------------------------------------------------------------------------

SECRET_VALUE = "SUBJECT-VALUE-4f1e"
SECRET_KID = "KID-VALUE-9a3c"


def _leak_cases() -> list[tuple[bastion.JWTVerifier, str]]:
    key = bastion.Key.hmac(SECRET, kid=SECRET_KID)
    v = bastion.JWTVerifier(key, algorithms=["HS256"], audience="api", issuer="iss", typ="at+jwt")
    h = {"alg": "HS256", "kid": SECRET_KID, "typ": "at+jwt"}
    good = {"sub": SECRET_VALUE, "aud": "api", "iss": "iss", "exp": NOW + 60}
    return [
        (v, make(h, {**good, "exp": NOW - 5}, SECRET, alg="HS256")),
        (v, make(h, {**good, "aud": SECRET_VALUE}, SECRET, alg="HS256")),
        (v, make(h, {**good, "iss": SECRET_VALUE}, SECRET, alg="HS256")),
        (v, make(h, {**good, "exp": SECRET_VALUE}, SECRET, alg="HS256")),
        (v, make(h, {**good, "nbf": NOW + 50}, SECRET, alg="HS256")),
        (v, make({**h, "typ": SECRET_VALUE}, good, SECRET, alg="HS256")),
        (v, make(h, good, b"w" * 32, alg="HS256")),
        (v, make({**h, "kid": SECRET_VALUE}, good, SECRET, alg="HS256")),
        (v, make({**h, "kid": SECRET_VALUE * 30}, good, SECRET, alg="HS256")),
        (v, make({**h, "alg": SECRET_VALUE}, good, SECRET, alg="HS256")),
        (v, make({**h, "crit": [SECRET_VALUE]}, good, SECRET, alg="HS256")),
        (v, make(h, b'{"sub":"' + SECRET_VALUE.encode() + b'","sub":1}', SECRET, alg="HS256")),
        (v, SECRET_VALUE + "." + SECRET_VALUE + "." + SECRET_VALUE),
        (v, SECRET_VALUE * 1000),
    ]


@pytest.mark.parametrize("index", range(14))
def test_errors_never_contain_the_token_a_kid_the_secret_or_a_claim_value(index: int) -> None:
    verifier, token = _leak_cases()[index]
    with pytest.raises(bastion.AuthError) as info:
        verifier.verify(token, now=NOW)
    exc = info.value
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is type(exc)
    assert clone.code == exc.code
    texts = [
        str(exc),
        repr(exc),
        repr(exc.args),
        repr(vars(exc)),
        exc.message,
        str(clone),
        repr(clone),
        repr(pickle.dumps(exc)),
    ]
    for needle in (token, SECRET_VALUE, SECRET_KID, SECRET.decode(), token.split(".")[0]):
        for text in texts:
            assert needle not in text
    assert exc.__cause__ is None
    assert exc.__context__ is None


def test_verifier_and_key_reprs_hold_no_secret() -> None:
    key = bastion.Key.hmac(SECRET, kid=SECRET_KID)
    v = bastion.JWTVerifier(key, algorithms=["HS256"], cache_size=4)
    token = make({"alg": "HS256", "kid": SECRET_KID}, claims(sub=SECRET_VALUE), SECRET)
    v.verify(token, now=NOW)
    for text in (repr(key), repr(v), str(v)):
        assert SECRET.decode() not in text
        assert SECRET.hex() not in text
        assert token not in text
        assert SECRET_VALUE not in text
    assert SECRET_KID not in repr(v)


# -- construction-time input that escapes the documented errors ---------------------------------------------


def _config_calls() -> dict[str, Callable[[], object]]:
    return {
        "Key.hmac(kid=5)": lambda: bastion.Key.hmac(SECRET, kid=5),  # type: ignore[arg-type]
        "Key.hmac(alg=5)": lambda: bastion.Key.hmac(SECRET, alg=5),  # type: ignore[arg-type]
        "Key.from_pem(kid=5)": lambda: bastion.Key.from_pem(rsa_pair().public_pem, kid=5),  # type: ignore[arg-type]
        "JWTSigner(issuer=5)": lambda: bastion.JWTSigner(bastion.Key.hmac(SECRET), "HS256", issuer=5),  # type: ignore[arg-type]
    }


@pytest.mark.parametrize("call", list(_config_calls()))
def test_non_string_key_arguments_are_configuration_errors(call: str) -> None:
    with pytest.raises(bastion.ConfigurationError):
        _config_calls()[call]()


def _surrogate_calls() -> dict[str, Callable[[], object]]:
    return {
        "issuer": lambda: hs_verifier(issuer="\ud800"),
        "audience": lambda: hs_verifier(audience=["\ud800"]),
        "typ": lambda: hs_verifier(typ="\ud800"),
        "algorithms": lambda: hs_verifier(algorithms=["\ud800"]),
        "Key.hmac kid": lambda: bastion.Key.hmac(SECRET, kid="\ud800"),
        "Key.hmac secret": lambda: bastion.Key.hmac("\ud800" * 40),
    }


@pytest.mark.parametrize("call", list(_surrogate_calls()))
def test_lone_surrogates_in_configuration_are_configuration_errors(call: str) -> None:
    with pytest.raises(bastion.ConfigurationError):
        _surrogate_calls()[call]()


@pytest.mark.parametrize("call", ["decode_unverified", "verify_jws", "JWTSigner ttl"])
def test_out_of_range_integers_are_configuration_errors(call: str) -> None:
    token = hs_token()
    key = bastion.Key.hmac(SECRET, kid="k1")
    calls: dict[str, Callable[[], object]] = {
        "decode_unverified": lambda: bastion.dangerous.decode_unverified(token, max_token_bytes=-1),
        "verify_jws": lambda: bastion.dangerous.verify_jws(token, key, algorithms=["HS256"], max_token_bytes=-1),
        "JWTSigner ttl": lambda: bastion.JWTSigner(key, "HS256", ttl=10**30),
    }
    with pytest.raises(bastion.BastionError):
        calls[call]()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"leeway": 10**400},
        {"leeway": float("nan")},
        {"leeway": -1},
        {"leeway": "5"},
        {"leeway": True},
        {"max_token_bytes": -1},
        {"max_token_bytes": 10**30},
        {"max_token_bytes": 0},
        {"cache_size": -1},
        {"cache_size": (1 << 24) + 1},
        {"algorithms": 5},
        {"algorithms": ["HS256", 5]},
        {"require": ["custom"]},
        {"issuer": 5},
        {"typ": 5},
    ],
    ids=repr,
)
def test_verifier_options_out_of_range_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(bastion.ConfigurationError) as info:
        hs_verifier(**kwargs)
    assert info.value.code == "invalid_configuration"


def test_header_objects_are_capped_so_the_duplicate_scan_stays_linear() -> None:
    key = bastion.Key.hmac(SECRET, kid="k1")
    members = {f"m{i}": i for i in range(200)}
    header = {"alg": "HS256", "kid": "k1", **members}
    h = b64(json.dumps(header).encode())
    p = b64(json.dumps({"sub": "u", "exp": 2_000_000_000}).encode())
    with pytest.raises(bastion.TokenMalformed):
        bastion.JWTVerifier(key, algorithms=["HS256"]).verify(f"{h}.{p}.{b64(b'x' * 32)}")


def test_ssh_public_key_text_is_not_an_hmac_secret() -> None:
    ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host"
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.hmac(ssh)
