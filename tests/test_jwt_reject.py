"""One test (or more) per rule of DESIGN §7: each builds the offending token with ``cryptography`` and asserts
the exact error code. None of these may raise anything but a bastion error."""

from __future__ import annotations

import base64
import json
from typing import Any

import bastion
import pytest
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
    sign,
)

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def code_of(verifier: bastion.JWTVerifier, token: str | bytes, now: float = NOW) -> str:
    with pytest.raises(bastion.AuthError) as info:
        verifier.verify(token, now=now)
    return info.value.code


# -- algorithms ------------------------------------------------------------------------------------------------


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


# -- signatures ------------------------------------------------------------------------------------------------


def _es256(signature: bytes) -> tuple[bastion.JWTVerifier, str]:
    pair = ec_pair("P-256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["ES256"])
    h, p = b64json({"alg": "ES256"}), b64json(claims())
    return v, f"{h}.{p}.{b64(signature)}"


def test_ecdsa_good_signature_verifies() -> None:
    pair = ec_pair("P-256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["ES256"])
    assert v.verify(make({"alg": "ES256"}, claims(), pair.private), now=NOW)["sub"] == "user_1"


@pytest.mark.parametrize(
    "signature",
    [
        bytes(64),  # r = s = 0
        bytes(32) + (1).to_bytes(32, "big"),  # r = 0
        (1).to_bytes(32, "big") + bytes(32),  # s = 0
        P256_N.to_bytes(32, "big") * 2,  # r = s = n
        (P256_N + 1).to_bytes(32, "big") + (1).to_bytes(32, "big"),  # r > n
        b"\xff" * 64,  # r, s = 2^256 - 1
        b"",
        bytes(63),
        bytes(65),
    ],
)
def test_ecdsa_scalars_out_of_range_and_wrong_lengths(signature: bytes) -> None:
    v, token = _es256(signature)
    assert code_of(v, token) == "invalid_signature"


def test_ecdsa_s_or_r_at_n_with_a_real_other_half() -> None:
    pair = ec_pair("P-256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["ES256"])
    good = make({"alg": "ES256"}, claims(), pair.private)
    raw = base64.urlsafe_b64decode(good.split(".")[2] + "==")
    h, p, _ = good.split(".")
    for bad in (raw[:32] + P256_N.to_bytes(32, "big"), P256_N.to_bytes(32, "big") + raw[32:]):
        assert code_of(v, f"{h}.{p}.{b64(bad)}") == "invalid_signature"
    # r + n overflows 32 bytes for most r; a signature with s replaced by s + n (when it fits) must fail too
    s = int.from_bytes(raw[32:], "big")
    if s + P256_N < 2**256:
        assert code_of(v, f"{h}.{p}.{b64(raw[:32] + (s + P256_N).to_bytes(32, 'big'))}") == "invalid_signature"


def test_ecdsa_der_signature_is_refused() -> None:
    pair = ec_pair("P-256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["ES256"])
    der = make({"alg": "ES256"}, claims(), pair.private, der=True)
    assert code_of(v, der) == "invalid_signature"
    # a DER encoding of a valid raw signature is refused as well
    raw_token = make({"alg": "ES256"}, claims(), pair.private)
    h, p, s = raw_token.split(".")
    raw = base64.urlsafe_b64decode(s + "==")
    der_sig = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert code_of(v, f"{h}.{p}.{b64(der_sig)}") == "invalid_signature"


def test_rsa_signature_must_be_exactly_the_modulus_length() -> None:
    pair = rsa_pair()
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["RS256"])
    good = make({"alg": "RS256"}, claims(), pair.private)
    assert v.verify(good, now=NOW)["sub"] == "user_1"
    h, p, s = good.split(".")
    raw = base64.urlsafe_b64decode(s + "==")
    assert len(raw) == 256
    for bad in (b"\x00" + raw, raw[:-1], raw + b"\x00", raw[:128], b""):
        assert code_of(v, f"{h}.{p}.{b64(bad)}") == "invalid_signature"


def test_signature_over_other_bytes_fails_for_every_family() -> None:
    cases: list[tuple[str, Any, bastion.Key]] = [
        ("HS256", SECRET, bastion.Key.hmac(SECRET)),
        ("RS256", rsa_pair().private, bastion.Key.from_pem(rsa_pair().public_pem)),
        ("PS256", rsa_pair().private, bastion.Key.from_pem(rsa_pair().public_pem)),
        ("ES256", ec_pair().private, bastion.Key.from_pem(ec_pair().public_pem)),
        ("EdDSA", ed_pair().private, bastion.Key.from_pem(ed_pair().public_pem)),
    ]
    for alg, private, public in cases:
        v = bastion.JWTVerifier(public, algorithms=[alg])
        good = make({"alg": alg}, claims(), private)
        assert v.verify(good, now=NOW)["sub"] == "user_1"
        h, _, s = good.split(".")
        other = b64json(claims(sub="admin"))
        assert code_of(v, f"{h}.{other}.{s}") == "invalid_signature", alg


# -- key hygiene at load time ----------------------------------------------------------------------------------


def test_short_hmac_secret_refused_at_load() -> None:
    with pytest.raises(bastion.WeakKeyError) as info:
        bastion.Key.hmac(b"x" * 31)
    assert info.value.code == "weak_key"
    with pytest.raises(bastion.WeakKeyError):
        bastion.Key.hmac(b"x" * 40, alg="HS384")
    with pytest.raises(bastion.WeakKeyError):
        bastion.Key.from_jwk({"kty": "oct", "k": b64(b"x" * 16)})
    # a 32-byte secret cannot serve HS384 or HS512: refused when the verifier is built
    with pytest.raises(bastion.WeakKeyError):
        bastion.JWTVerifier(bastion.Key.hmac(b"x" * 32), algorithms=["HS256", "HS512"])


def test_small_rsa_key_refused_at_load() -> None:
    small = rsa_pair(1024)
    for pem in (small.public_pem, small.private_pem):
        with pytest.raises(bastion.WeakKeyError) as info:
            bastion.Key.from_pem(pem)
        assert info.value.code == "weak_key"
    numbers = small.private.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": b64(numbers.n.to_bytes(128, "big")), "e": "AQAB"}
    with pytest.raises(bastion.WeakKeyError):
        bastion.Key.from_jwk(jwk)


def test_rsa_exponent_and_size_limits() -> None:
    n = rsa_pair().private.public_key().public_numbers().n.to_bytes(256, "big")
    with pytest.raises(bastion.WeakKeyError):
        bastion.Key.from_jwk({"kty": "RSA", "n": b64(n), "e": "AQ"})  # e = 1
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.from_jwk({"kty": "RSA", "n": b64(n), "e": "BA"})  # e = 4: even
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.from_jwk({"kty": "RSA", "n": b64(b"\xff" * 1100), "e": "AQAB"})  # 8800 bits
    assert bastion.Key.hmac(SECRET).kty == "oct"
    assert bastion.Key.from_pem(rsa_pair(2048, 3).public_pem).kty == "RSA"  # e = 3 is allowed


def test_ec_point_must_be_on_the_curve() -> None:
    numbers = ec_pair().private.public_key().public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), ((numbers.y + 1) % 2**256).to_bytes(32, "big")
    with pytest.raises(bastion.InvalidKeyError) as info:
        bastion.Key.from_jwk({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)})
    assert info.value.code == "invalid_key"


def test_jwk_not_for_signatures_is_not_used_to_verify() -> None:
    pair = ec_pair()
    n = pair.private.public_key().public_numbers()
    base = {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
    sig_key = bastion.Key.from_pem(ec_pair("P-384").public_pem, kid="sig")
    extras: list[dict[str, Any]] = [{"use": "enc"}, {"key_ops": ["encrypt"]}, {"key_ops": []}]
    for extra in extras:
        jwks = {"keys": [{**base, "kid": "e1", **extra}]}
        keys = bastion.KeySet([*bastion.KeySet.from_jwks(jwks).keys(), sig_key])
        v = bastion.JWTVerifier(keys, algorithms=["ES256", "ES384"])
        token = make({"alg": "ES256", "kid": "e1"}, claims(), pair.private)
        assert code_of(v, token) == "unknown_key"
        with pytest.raises(bastion.ConfigurationError):
            bastion.JWTVerifier(bastion.KeySet.from_jwks(jwks), algorithms=["ES256"])
    ok = bastion.JWTVerifier(bastion.Key.from_jwk({**base, "use": "sig", "key_ops": ["verify"]}), algorithms=["ES256"])
    assert ok.verify(make({"alg": "ES256"}, claims(), pair.private), now=NOW)["sub"] == "user_1"


# -- structure, base64url, JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "=",  # padding on the signature
        lambda t: t.replace(".", "=.", 1),  # padding on the header
        lambda t: t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t) else t[:-1] + "+",
        lambda t: t[:10] + " " + t[10:],
        lambda t: t[:10] + "\n" + t[10:],
        lambda t: t + "\t",
    ],
)
def test_non_canonical_base64url(mangle: Any) -> None:
    assert code_of(hs_verifier(), mangle(hs_token())) == "token_malformed"


def test_non_zero_trailing_bits() -> None:
    token = hs_token()
    h, p, s = token.split(".")
    # 32-byte HMAC → 43 chars, the last one carries 2 unused bits; flip one of them
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(s[-1])
    assert last & 0b11 == 0
    bad = s[:-1] + alphabet[last | 1]
    assert code_of(hs_verifier(), f"{h}.{p}.{bad}") == "token_malformed"
    # the same in the header: {"alg":"HS256","kid":"k1"} is 26 bytes, so its last char has 4 unused bits
    last_h = alphabet.index(h[-1])
    assert len(h) % 4 == 3
    assert last_h & 0b11 == 0
    bad_h = h[:-1] + alphabet[last_h | 1]
    assert code_of(hs_verifier(), f"{bad_h}.{p}.{s}") == "token_malformed"


@pytest.mark.parametrize("token", ["", ".", "..", "a.b", "a.b.c.d", "...", "abc", "a..c", ".b.c"])
def test_exactly_three_segments(token: str) -> None:
    assert code_of(hs_verifier(), token) == "token_malformed"


def test_four_segments_of_a_real_token() -> None:
    assert code_of(hs_verifier(), hs_token() + ".e30") == "token_malformed"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"sub":"a","sub":"b","exp":1900000000}',
        b'{"exp":1900000000,"exp":1900000001}',
        b'{"exp":1900000000,"x":{"a":1,"a":2}}',
        b'{"exp":1900000000,"sub":"a","\\u0073ub":"b"}',
    ],
)
def test_duplicate_members_in_the_payload(payload: bytes) -> None:
    assert code_of(hs_verifier(), hs_token(payload)) == "token_malformed"


def test_duplicate_members_in_the_header() -> None:
    header = b64(b'{"alg":"HS256","alg":"HS256","kid":"k1"}')
    token = make(header, claims(), SECRET)
    assert code_of(hs_verifier(), token) == "token_malformed"
    header = b64(b'{"alg":"none","alg":"HS256","kid":"k1"}')
    assert code_of(hs_verifier(), make(header, claims(), SECRET)) == "token_malformed"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "nan", "0x10", "01"])
def test_nan_and_other_non_json_numbers(number: str) -> None:
    payload = f'{{"sub":"u","exp":1900000000,"x":{number}}}'.encode()
    assert code_of(hs_verifier(), hs_token(payload)) == "token_malformed"
    exp = f'{{"sub":"u","exp":{number}}}'.encode()
    assert code_of(hs_verifier(), hs_token(exp)) == "token_malformed"


@pytest.mark.parametrize("depth", [33, 100, 3000])
def test_deep_nesting(depth: int) -> None:
    payload = ('{"exp":1900000000,"x":' + "[" * depth + "]" * depth + "}").encode()
    v = hs_verifier(max_token_bytes=1 << 20)
    assert code_of(v, hs_token(payload)) == "token_malformed"
    objects = ('{"exp":1900000000,"x":' + '{"a":' * depth + "1" + "}" * depth + "}").encode()
    assert code_of(v, hs_token(objects)) == "token_malformed"


def test_moderate_nesting_is_fine() -> None:
    payload = ('{"exp":1900000000,"x":' + "[" * 20 + "]" * 20 + "}").encode()
    assert hs_verifier().verify(hs_token(payload), now=NOW)["x"] == [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]


@pytest.mark.parametrize(
    "payload",
    [
        b'{"exp":1900000000,"s":"\xff"}',
        b'{"exp":1900000000,"s":"\xed\xa0\x80"}',  # UTF-8 encoded surrogate
        b'{"exp":1900000000,"s":"\\ud800"}',
        b'{"exp":1900000000,"s":"\\udc00x"}',
        b'{"exp":1900000000,"s":"a\x01b"}',
        b'\xef\xbb\xbf{"exp":1900000000}',  # BOM
        b"[]",
        b"123",
        b'"x"',
        b"null",
        b"",
        b'{"exp":1900000000}x',
        b"{'exp':1900000000}",
    ],
)
def test_invalid_json_text(payload: bytes) -> None:
    assert code_of(hs_verifier(), hs_token(payload)) == "token_malformed"


def test_header_must_be_an_object() -> None:
    for header in ("[]", '"HS256"', "1"):
        assert code_of(hs_verifier(), make(b64(header.encode()), claims(), SECRET)) == "token_malformed"
    assert code_of(hs_verifier(), make(b64json({"kid": "k1"}), claims(), SECRET)) == "token_malformed"


def test_huge_tokens_are_refused_before_decoding() -> None:
    v = hs_verifier()
    big = hs_token(claims(pad="x" * 9000))
    assert code_of(v, big) == "token_too_large"
    assert code_of(v, "!" * 100_000) == "token_too_large"
    assert code_of(v, b"\xff" * 10_000) == "token_too_large"
    small = hs_verifier(max_token_bytes=100)
    assert code_of(small, hs_token()) == "token_too_large"
    assert hs_verifier(max_token_bytes=20_000).verify(big, now=NOW)["pad"] == "x" * 9000


# -- headers ---------------------------------------------------------------------------------------------------


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


# -- claims ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["1900000000", True, False, None, [1900000000], {"t": 1}])
def test_numeric_dates_must_be_numbers(claim: str, value: Any) -> None:
    with pytest.raises(bastion.InvalidClaim) as info:
        hs_verifier().verify(hs_token(claims(**{claim: value})), now=NOW)
    assert info.value.code == "invalid_claim"
    assert info.value.claim == claim


def test_numeric_dates_may_be_floats_and_big_ints() -> None:
    v = hs_verifier()
    assert v.verify(hs_token(claims(exp=NOW + 0.5)), now=NOW)["exp"] == NOW + 0.5
    huge = b'{"sub":"u","exp":100000000000000000000000000000}'
    assert v.verify(hs_token(huge), now=NOW)["exp"] == 10**29


def test_exp_is_required_by_default_and_exp_equal_now_is_expired() -> None:
    v = hs_verifier()
    with pytest.raises(bastion.MissingClaim) as missing:
        v.verify(hs_token({"sub": "u"}), now=NOW)
    assert missing.value.claim == "exp"
    with pytest.raises(bastion.TokenExpired):
        v.verify(hs_token(claims(exp=NOW)), now=NOW)
    assert v.verify(hs_token(claims(exp=NOW)), now=NOW - 0.001)["sub"] == "user_1"
    lenient = hs_verifier(leeway=30)
    assert lenient.verify(hs_token(claims(exp=NOW)), now=NOW + 29)["sub"] == "user_1"
    assert code_of(lenient, hs_token(claims(exp=NOW)), now=NOW + 30) == "token_expired"


def test_nbf_and_iat_in_the_future() -> None:
    v = hs_verifier()
    with pytest.raises(bastion.TokenNotYetValid) as nbf:
        v.verify(hs_token(claims(nbf=NOW + 1)), now=NOW)
    assert nbf.value.claim == "nbf"
    with pytest.raises(bastion.TokenNotYetValid) as iat:
        v.verify(hs_token(claims(iat=NOW + 60)), now=NOW)
    assert iat.value.claim == "iat"
    assert hs_verifier(leeway=60).verify(hs_token(claims(iat=NOW + 60, nbf=NOW + 60)), now=NOW)["sub"] == "user_1"


def test_token_expired_only_after_the_signature() -> None:
    expired = claims(exp=NOW - 100)
    forged = make({"alg": "HS256", "kid": "k1"}, expired, b"another secret of 32 bytes......")
    assert code_of(hs_verifier(), forged) == "invalid_signature"
    assert code_of(hs_verifier(), hs_token(expired)) == "token_expired"
    not_yet = make({"alg": "HS256", "kid": "k1"}, claims(nbf=NOW + 100), b"another secret of 32 bytes......")
    assert code_of(hs_verifier(), not_yet) == "invalid_signature"
    bad_type = make({"alg": "HS256", "kid": "k1"}, claims(exp="soon"), b"another secret of 32 bytes......")
    assert code_of(hs_verifier(), bad_type) == "invalid_signature"


def test_issuer_exact_match() -> None:
    v = hs_verifier(issuer="https://idp.example")
    assert v.verify(hs_token(claims(iss="https://idp.example")), now=NOW)["iss"] == "https://idp.example"
    for iss in ("https://idp.example/", "HTTPS://IDP.EXAMPLE", "https://idp.example ", "", "https://idp.exampl"):
        with pytest.raises(bastion.InvalidIssuer):
            v.verify(hs_token(claims(iss=iss)), now=NOW)
    assert code_of(v, hs_token(claims())) == "invalid_issuer"
    assert code_of(v, hs_token(claims(iss=["https://idp.example"]))) == "invalid_claim"
    assert code_of(v, hs_token(claims(iss=None))) == "invalid_claim"
    many = hs_verifier(issuer=["https://a.example", "https://b.example"])
    assert many.verify(hs_token(claims(iss="https://b.example")), now=NOW)["iss"] == "https://b.example"


def test_audience_any_of() -> None:
    v = hs_verifier(audience="api")
    assert v.verify(hs_token(claims(aud="api")), now=NOW)["aud"] == "api"
    assert v.verify(hs_token(claims(aud=["web", "api"])), now=NOW)["aud"] == ["web", "api"]
    for aud in ("API", "api ", "web", [], ["web"], ""):
        with pytest.raises(bastion.InvalidAudience) as info:
            v.verify(hs_token(claims(aud=aud)), now=NOW)
        assert info.value.claim == "aud"
    assert code_of(v, hs_token(claims())) == "invalid_audience"  # configured audience, no aud
    assert code_of(v, hs_token(claims(aud=["api", 5]))) == "invalid_claim"
    assert code_of(v, hs_token(claims(aud=5))) == "invalid_claim"
    assert code_of(v, hs_token(claims(aud=None))) == "invalid_claim"
    multi = hs_verifier(audience=["api", "web"])
    assert multi.verify(hs_token(claims(aud="web")), now=NOW)["aud"] == "web"


def test_aud_in_token_without_configured_audience() -> None:
    assert code_of(hs_verifier(), hs_token(claims(aud="api"))) == "invalid_audience"
    assert code_of(hs_verifier(), hs_token(claims(aud=[]))) == "invalid_audience"


def test_sub_and_jti_must_be_strings() -> None:
    assert code_of(hs_verifier(), hs_token(claims(sub=5))) == "invalid_claim"
    assert code_of(hs_verifier(), hs_token(claims(jti=["x"]))) == "invalid_claim"


def test_required_claims() -> None:
    v = hs_verifier(require=["exp", "iss", "jti"])
    with pytest.raises(bastion.MissingClaim) as info:
        v.verify(hs_token(claims(iss="x")), now=NOW)
    assert info.value.claim == "jti"
    assert v.verify(hs_token(claims(iss="x", jti="j")), now=NOW)["jti"] == "j"
    assert hs_verifier(require=[]).verify(hs_token({"sub": "u"}), now=NOW) == {"sub": "u"}
    with pytest.raises(bastion.ConfigurationError):
        hs_verifier(require=["custom"])


# -- kid -------------------------------------------------------------------------------------------------------


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


def test_errors_never_echo_the_token_or_claims() -> None:
    secretish = "very-private-subject-value"
    token = hs_token(claims(sub=secretish, exp=NOW - 5))
    with pytest.raises(bastion.AuthError) as info:
        hs_verifier().verify(token, now=NOW)
    text = f"{info.value!s} {info.value!r} {info.value.message}"
    assert secretish not in text
    assert token not in text
    assert SECRET.decode() not in text


def test_ed25519_and_eddsa_names() -> None:
    pair = ed_pair()
    key = bastion.Key.from_pem(pair.public_pem)
    for alg in ("EdDSA", "Ed25519"):
        v = bastion.JWTVerifier(key, algorithms=[alg])
        assert v.verify(make({"alg": alg}, claims(), pair.private), now=NOW)["sub"] == "user_1"
    only_eddsa = bastion.JWTVerifier(key, algorithms=["EdDSA"])
    assert code_of(only_eddsa, make({"alg": "Ed25519"}, claims(), pair.private)) == "unsupported_algorithm"
    assert sign("EdDSA", pair.private, b"x") == sign("Ed25519", pair.private, b"x")
