"""Key loading: PEM (SPKI, PKCS#1, PKCS#8, SEC 1), JWK, JWKS; algorithm binding; reprs without key material."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import bastion
import bastion.dangerous
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.jwt_tokens import (
    NOW,
    SECRET,
    b64,
    claims,
    code_of,
    ec_pair,
    ed_pair,
    make,
    rsa_pair,
)

Enc = serialization.Encoding
Pub = serialization.PublicFormat
Priv = serialization.PrivateFormat


def _verifies(key: bastion.Key, alg: str, private: Any) -> bool:
    token = make({"alg": alg}, claims(), private)
    return bool(bastion.JWTVerifier(key, algorithms=[alg]).verify(token, now=NOW)["sub"] == "user_1")


def _pems(private: Any) -> dict[str, bytes]:
    pub = private.public_key()
    out = {
        "spki": pub.public_bytes(Enc.PEM, Pub.SubjectPublicKeyInfo),
        "pkcs8": private.private_bytes(Enc.PEM, Priv.PKCS8, serialization.NoEncryption()),
    }
    if isinstance(private, rsa.RSAPrivateKey):
        out["pkcs1-public"] = pub.public_bytes(Enc.PEM, Pub.PKCS1)
        out["pkcs1-private"] = private.private_bytes(Enc.PEM, Priv.TraditionalOpenSSL, serialization.NoEncryption())
    if isinstance(private, ec.EllipticCurvePrivateKey):
        out["sec1"] = private.private_bytes(Enc.PEM, Priv.TraditionalOpenSSL, serialization.NoEncryption())
    return out


@pytest.mark.parametrize(
    ("alg", "pair_name"),
    [("RS256", "rsa"), ("PS512", "rsa"), ("ES256", "P-256"), ("ES384", "P-384"), ("ES512", "P-521"), ("EdDSA", "ed")],
)
def test_every_pem_format_loads_and_verifies(alg: str, pair_name: str) -> None:
    pair = rsa_pair() if pair_name == "rsa" else ed_pair() if pair_name == "ed" else ec_pair(pair_name)
    for fmt, pem in _pems(pair.private).items():
        for text in (pem, pem.decode()):
            key = bastion.Key.from_pem(text, kid=fmt)
            assert key.kid == fmt
            assert key.is_private == ("private" in fmt or fmt in ("pkcs8", "sec1")), fmt
            assert _verifies(key, alg, pair.private), fmt
        if key.is_private:
            token = bastion.JWTSigner(key, alg).sign({"sub": "s"}, now=NOW)
            public = bastion.Key.from_pem(pair.public_pem, kid=key.kid)  # the token names the signer's kid
            assert bastion.JWTVerifier(public, algorithms=[alg]).verify(token, now=NOW)["sub"] == "s"
            anonymous = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=[alg])
            with pytest.raises(bastion.UnknownKey):
                anonymous.verify(token, now=NOW)


def test_pem_problems_are_invalid_key() -> None:
    encrypted = rsa_pair().private.private_bytes(Enc.PEM, Priv.PKCS8, serialization.BestAvailableEncryption(b"pw"))
    cases: list[Any] = [
        encrypted,
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        b"not a pem",
        b"",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(Enc.PEM, Pub.SubjectPublicKeyInfo),
        5,
        None,
    ]
    for pem in cases:
        with pytest.raises(bastion.InvalidKeyError) as info:
            bastion.Key.from_pem(pem)
        assert info.value.code == "invalid_key"


def test_alg_binding() -> None:
    rsa_key = bastion.Key.from_pem(rsa_pair().public_pem, alg="RS384")
    assert rsa_key.alg == "RS384"
    assert _verifies(rsa_key, "RS384", rsa_pair().private)
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWTVerifier(rsa_key, algorithms=["RS256"])  # the only key cannot serve RS256
    both = bastion.JWTVerifier([rsa_key, bastion.Key.hmac(SECRET)], algorithms=["RS256", "RS384", "HS256"])
    with pytest.raises(bastion.UnknownKey):
        both.verify(make({"alg": "RS256"}, claims(), rsa_pair().private), now=NOW)
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.from_pem(ec_pair().public_pem, alg="ES384")  # P-256 key
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.from_pem(ec_pair().public_pem, alg="RS256")
    with pytest.raises(bastion.ConfigurationError):
        bastion.Key.from_pem(ec_pair().public_pem, alg="none")
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.hmac(SECRET, alg="ES256")


def _jwk(private: Any, *, with_private: bool) -> dict[str, Any]:
    if isinstance(private, rsa.RSAPrivateKey):
        n = private.private_numbers()
        pub = n.public_numbers
        out = {"kty": "RSA", "n": b64(pub.n.to_bytes(256, "big")), "e": b64(pub.e.to_bytes(3, "big"))}
        if with_private:
            for name, v in (("d", n.d), ("p", n.p), ("q", n.q), ("dp", n.dmp1), ("dq", n.dmq1), ("qi", n.iqmp)):
                out[name] = b64(v.to_bytes((v.bit_length() + 7) // 8, "big"))
        return out
    if isinstance(private, ec.EllipticCurvePrivateKey):
        size = (private.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[private.curve.key_size]
        en = private.private_numbers()
        out = {
            "kty": "EC",
            "crv": crv,
            "x": b64(en.public_numbers.x.to_bytes(size, "big")),
            "y": b64(en.public_numbers.y.to_bytes(size, "big")),
        }
        if with_private:
            out["d"] = b64(en.private_value.to_bytes(size, "big"))
        return out
    raw_pub = private.public_key().public_bytes(Enc.Raw, Pub.Raw)
    out = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw_pub)}
    if with_private:
        out["d"] = b64(private.private_bytes(Enc.Raw, Priv.Raw, serialization.NoEncryption()))
    return out


@pytest.mark.parametrize(
    ("alg", "pair_name"),
    [("RS256", "rsa"), ("ES256", "P-256"), ("ES384", "P-384"), ("ES512", "P-521"), ("EdDSA", "ed")],
)
def test_jwk_public_and_private(alg: str, pair_name: str) -> None:
    pair = rsa_pair() if pair_name == "rsa" else ed_pair() if pair_name == "ed" else ec_pair(pair_name)
    public = bastion.Key.from_jwk(_jwk(pair.private, with_private=False))
    private = bastion.Key.from_jwk(json.dumps({**_jwk(pair.private, with_private=True), "kid": "p", "alg": alg}))
    public_p = bastion.Key.from_jwk({**_jwk(pair.private, with_private=False), "kid": "p"})
    assert not public.is_private
    assert private.is_private
    assert (private.kid, private.alg) == ("p", alg)
    assert _verifies(public, alg, pair.private)
    token = bastion.JWTSigner(private, alg).sign({"sub": "x"}, now=NOW)
    assert bastion.JWTVerifier(public_p, algorithms=[alg]).verify(token, now=NOW)["sub"] == "x"
    assert public.public_jwk() == {k: v for k, v in _jwk(pair.private, with_private=False).items() if k != "e"} | (
        {"e": "AQAB"} if pair_name == "rsa" else {}
    )


@pytest.mark.parametrize(
    "jwk",
    [
        {},
        {"kty": "RSA"},
        {"kty": "RSA", "n": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA"},
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "X25519", "x": b64(bytes(32))},
        {"kty": "OKP", "crv": "Ed448", "x": b64(bytes(57))},
        {"kty": "OKP", "crv": "Ed25519", "x": b64(bytes(31))},
        {"kty": "oct"},
        {"kty": "oct", "k": "not base64!"},
        {"kty": "oct", "k": b64(SECRET) + "="},
        {"kty": "oct", "k": 5},
        {"kty": "oct", "k": b64(SECRET), "alg": "RS256"},
        {"kty": "oct", "k": b64(SECRET), "alg": "A128KW"},
        {"kty": "oct", "k": b64(SECRET), "kid": 7},
        {"kty": "unknown"},
        {"kty": 1},
        "not json",
        '{"kty":"oct","kty":"oct","k":"' + b64(SECRET) + '"}',
        "[]",
        5,
        ["kty"],
    ],
)
def test_invalid_jwks_are_invalid_key(jwk: Any) -> None:
    with pytest.raises(bastion.InvalidKeyError) as info:
        bastion.Key.from_jwk(jwk)
    assert info.value.code == "invalid_key"


def test_rsa_jwk_with_inconsistent_private_members() -> None:
    jwk = _jwk(rsa_pair().private, with_private=True)
    jwk["d"] = jwk["d"][:-4] + "AAAA"
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.from_jwk(jwk)
    other = _jwk(ec_pair().private, with_private=True)
    other["d"] = _jwk(ec_pair("P-384").private, with_private=True)["d"][:43]
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.from_jwk(other)


def test_jwks_round_trip_public_members_only() -> None:
    jwks = {
        "keys": [
            {**_jwk(rsa_pair().private, with_private=True), "kid": "r", "alg": "RS256", "use": "sig"},
            {**_jwk(ec_pair().private, with_private=True), "kid": "e"},
            {**_jwk(ed_pair().private, with_private=False), "kid": "o"},
            {"kty": "oct", "k": b64(SECRET), "kid": "h"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
        ]
    }
    ks = bastion.KeySet.from_jwks(jwks, allow_symmetric=True)  # this one holds an HMAC secret ("h")
    assert len(ks) == 4
    assert ks.kids == ["r", "e", "o", "h"]
    assert bastion.KeySet.from_jwks(json.dumps(jwks), allow_symmetric=True).kids == ks.kids
    public = ks.to_jwks()
    assert [k["kid"] for k in public["keys"]] == ["r", "e", "o"]  # the HMAC secret is never exported
    private_members = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
    for k in public["keys"]:
        assert not private_members & set(k)
    assert public["keys"][0]["alg"] == "RS256"
    assert public["keys"][0]["use"] == "sig"
    again = bastion.KeySet.from_jwks(public)  # what to_jwks gives always loads with the default
    assert again.to_jwks() == public
    v = bastion.JWTVerifier(again, algorithms=["RS256", "ES256", "EdDSA"])
    assert v.verify(make({"alg": "ES256", "kid": "e"}, claims(), ec_pair().private), now=NOW)["sub"] == "user_1"
    assert v.verify(make({"alg": "EdDSA", "kid": "o"}, claims(), ed_pair().private), now=NOW)["sub"] == "user_1"


def test_jwks_problems() -> None:
    dup = {"keys": [{"kty": "oct", "k": b64(SECRET), "kid": "a"}, {"kty": "oct", "k": b64(SECRET[::-1]), "kid": "a"}]}
    with pytest.raises(bastion.InvalidKeyError, match="same kid"):
        bastion.KeySet.from_jwks(dup, allow_symmetric=True)
    with pytest.raises(bastion.InvalidKeyError):
        bastion.KeySet([bastion.Key.hmac(SECRET, kid="a"), bastion.Key.hmac(SECRET, kid="a")])
    with pytest.raises(bastion.InvalidKeyError):
        bastion.JWTVerifier(
            [bastion.Key.hmac(SECRET, kid="a"), bastion.Key.hmac(SECRET, kid="a")], algorithms=["HS256"]
        )
    bads: list[Any] = [{}, {"keys": {}}, {"keys": "x"}, [], "nope", 5]
    for bad in bads:
        with pytest.raises(bastion.InvalidKeyError):
            bastion.KeySet.from_jwks(bad)
    weak = {"keys": [{"kty": "oct", "k": b64(b"short"), "kid": "w", "use": "sig"}]}
    with pytest.raises(bastion.WeakKeyError):
        bastion.KeySet.from_jwks(weak, allow_symmetric=True)
    with pytest.raises(bastion.ConfigurationError):
        bastion.KeySet(["not a key"])  # type: ignore[list-item]


# -- symmetric keys in a JWKS are opt-in -------------------------------------------------------------------------


def _oct(secret: bytes, **members: Any) -> dict[str, Any]:
    return {"kty": "oct", "k": b64(secret), **members}


def _public_ec(kid: str) -> dict[str, Any]:
    return {**bastion.Key.from_pem(ec_pair().public_pem).public_jwk(), "kid": kid}


def _refusal(jwks: Any) -> bastion.InvalidKeyError:
    with pytest.raises(bastion.InvalidKeyError) as info:
        bastion.KeySet.from_jwks(jwks)
    assert type(info.value) is bastion.InvalidKeyError  # not WeakKeyError: the secret is never even looked at
    assert info.value.code == "invalid_key"
    assert "allow_symmetric=True" in str(info.value)
    return info.value


def _assert_no_secret(exc: BaseException, secret: bytes) -> None:
    shown = str(exc) + repr(exc) + repr(exc.args)
    assert b64(secret) not in shown
    assert secret.decode("latin-1") not in shown
    assert secret.hex() not in shown


def test_jwks_symmetric_member_is_refused_by_default_and_names_its_kid() -> None:
    secret = b"\x01S3cr3t-" * 4
    exc = _refusal({"keys": [_public_ec("pub"), _oct(secret, kid="hmac-2026")]})
    assert 'keys[1] (kid "hmac-2026")' in str(exc)
    _assert_no_secret(exc, secret)
    exc = _refusal(json.dumps({"keys": [_oct(secret)]}))  # JSON text too, and no kid
    assert "keys[0] (no kid)" in str(exc)
    _assert_no_secret(exc, secret)


def test_jwks_symmetric_refusal_does_not_depend_on_use_alg_or_loadability() -> None:
    secret = SECRET
    for member in (
        _oct(secret, use="enc", alg="A128KW", kid="wrap"),  # an encryption key, skipped when allowed
        _oct(b"short", kid="weak"),  # too short to load at all
        {"kty": "oct", "kid": "nok"},  # no k
        _oct(secret, kid="\n\x1b[31mred", alg="HS256"),
    ):
        exc = _refusal({"keys": [member]})
        _assert_no_secret(exc, secret)
    # the kid is quoted with its control characters escaped, never written raw into a message
    exc = _refusal({"keys": [_oct(secret, kid="\n\x1b[31mred")]})
    assert "\n" not in str(exc)
    assert "\x1b" not in str(exc)
    exc = _refusal({"keys": [_oct(secret, kid="k" * 10_000)]})
    assert "k" * 64 in str(exc)
    assert "k" * 65 not in str(exc)


def test_jwks_symmetric_members_load_with_the_opt_in() -> None:
    ks = bastion.KeySet.from_jwks({"keys": [_oct(SECRET, kid="h", alg="HS256")]}, allow_symmetric=True)
    loaded = ks.keys()
    assert [(k.kty, k.kid, k.alg) for k in loaded] == [("oct", "h", "HS256")]
    token = make({"alg": "HS256", "kid": "h"}, claims(), SECRET)
    assert bastion.JWTVerifier(ks, algorithms=["HS256"]).verify(token, now=NOW)["sub"] == "user_1"
    # an oct member for encryption is still skipped rather than loaded
    wrap = bastion.KeySet.from_jwks({"keys": [_oct(SECRET, use="enc", alg="A128KW")]}, allow_symmetric=True)
    assert len(wrap) == 0
    # explicit False is the default
    with pytest.raises(bastion.InvalidKeyError):
        bastion.KeySet.from_jwks({"keys": [_oct(SECRET)]}, allow_symmetric=False)


def test_jwks_mixed_sets() -> None:
    ec = ec_pair()
    mixed = {"keys": [_oct(SECRET, kid="h"), _public_ec("e"), _oct(SECRET[::-1], kid="h2")]}
    exc = _refusal(mixed)
    assert 'keys[0] (kid "h")' in str(exc)  # the first symmetric member is named
    _assert_no_secret(exc, SECRET)
    ks = bastion.KeySet.from_jwks(mixed, allow_symmetric=True)
    assert ks.kids == ["h", "e", "h2"]
    v = bastion.JWTVerifier(ks, algorithms=["HS256", "ES256"])
    assert v.verify(make({"alg": "ES256", "kid": "e"}, claims(), ec.private), now=NOW)["sub"] == "user_1"
    assert v.verify(make({"alg": "HS256", "kid": "h2"}, claims(), SECRET[::-1]), now=NOW)["sub"] == "user_1"
    # to_jwks never exports a secret: the public set reloads with the default and keeps only "e"
    public = ks.to_jwks()
    assert [k["kid"] for k in public["keys"]] == ["e"]
    assert b64(SECRET) not in json.dumps(public)
    assert bastion.KeySet.from_jwks(public).kids == ["e"]
    only_hmac = bastion.KeySet([bastion.Key.hmac(SECRET, kid="h")])
    assert only_hmac.to_jwks() == {"keys": []}
    assert len(bastion.KeySet.from_jwks(only_hmac.to_jwks())) == 0
    # an all-public set is unaffected by the flag either way
    public_only = {"keys": [_public_ec("a"), _public_ec("b")]}
    allowed = bastion.KeySet.from_jwks(public_only, allow_symmetric=True)
    assert bastion.KeySet.from_jwks(public_only).kids == allowed.kids == ["a", "b"]


def test_one_explicit_oct_jwk_still_loads() -> None:
    key = bastion.Key.from_jwk(_oct(SECRET, kid="h"))
    assert (key.kty, key.kid) == ("oct", "h")


@pytest.mark.parametrize("flag", [None, 0, 1, "yes", "False", 1.0, [], object()])
def test_allow_symmetric_must_be_a_bool(flag: Any) -> None:
    jwks: str | dict[str, Any]
    for jwks in ({"keys": []}, {"keys": [_oct(SECRET)]}, "not json"):
        with pytest.raises(bastion.ConfigurationError) as info:
            bastion.KeySet.from_jwks(jwks, allow_symmetric=flag)
        assert info.value.code == "invalid_configuration"


def test_reprs_never_show_key_material() -> None:
    keys = [
        bastion.Key.hmac(SECRET, kid="h"),
        bastion.Key.from_pem(rsa_pair().private_pem, kid="r"),
        bastion.Key.from_pem(ec_pair().private_pem),
        bastion.Key.from_pem(ed_pair().private_pem),
    ]
    n_b64 = b64(rsa_pair().private.public_key().public_numbers().n.to_bytes(256, "big"))
    for key in keys:
        text = repr(key) + str(key)
        assert SECRET.decode() not in text
        assert b64(SECRET) not in text
        assert n_b64[:20] not in text
        assert "private=True" in text
    assert repr(keys[0]) == 'Key(kty="oct", kid="h", size="256 bits", private=True)'
    assert repr(keys[1]) == 'Key(kty="RSA", kid="r", size="2048 bits", private=True)'
    v = bastion.JWTVerifier(bastion.KeySet(keys), algorithms=["HS256", "RS256"])
    assert SECRET.decode() not in repr(v)
    assert repr(bastion.KeySet(keys)) == "KeySet(4 keys)"
    with pytest.raises(bastion.InvalidKeyError):
        keys[0].public_jwk()


def test_ssh_public_key_text_is_not_an_hmac_secret() -> None:
    ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host"
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.hmac(ssh)


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


# -- hostile public keys: small-order Ed25519 points, unusable RSA exponents ------------------------------------

_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_P = 2**255 - 19
_HOSTILE_ED25519 = {
    "identity": (1).to_bytes(32, "little"),
    "all-zero x": bytes(32),
    "order 2": (_P - 1).to_bytes(32, "little"),
    "order 8": bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    "y = p": _P.to_bytes(32, "little"),
}


@pytest.mark.parametrize("name", sorted(_HOSTILE_ED25519))
def test_small_order_and_non_canonical_ed25519_keys_are_refused(name: str) -> None:
    x = _HOSTILE_ED25519[name]
    with pytest.raises((bastion.WeakKeyError, bastion.InvalidKeyError)):
        bastion.Key.from_jwk({"kty": "OKP", "crv": "Ed25519", "x": b64(x)})
    der = _ED25519_SPKI_PREFIX + x
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der) + b"\n-----END PUBLIC KEY-----\n"
    with pytest.raises((bastion.WeakKeyError, bastion.InvalidKeyError)):
        bastion.Key.from_pem(pem)
    with pytest.raises((bastion.WeakKeyError, bastion.InvalidKeyError)):
        bastion.KeySet.from_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64(x), "kid": "bad"}]})


def _rsa_with_exponent(e: int) -> rsa.RSAPrivateKey:
    base = rsa_pair().private.private_numbers()
    p, q = base.p, base.q
    phi = (p - 1) * (q - 1)
    d = pow(e, -1, phi)
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def test_rsa_keys_with_a_huge_exponent_are_refused_at_load() -> None:
    e = 2**64 + 1
    try:
        private = _rsa_with_exponent(e)
    except ValueError:  # gcd(e, phi) != 1 for this modulus: try the next odd candidate
        e = 2**64 + 3
        private = _rsa_with_exponent(e)
    public = private.public_key()
    pems = [
        public.public_bytes(Enc.PEM, Pub.SubjectPublicKeyInfo),
        public.public_bytes(Enc.PEM, Pub.PKCS1),
        private.private_bytes(Enc.PEM, Priv.PKCS8, serialization.NoEncryption()),
        private.private_bytes(Enc.PEM, Priv.TraditionalOpenSSL, serialization.NoEncryption()),
    ]
    for pem in pems:
        with pytest.raises(bastion.InvalidKeyError, match="exponent"):
            bastion.Key.from_pem(pem)
    n = public.public_numbers().n.to_bytes(256, "big")
    with pytest.raises(bastion.InvalidKeyError, match="exponent"):
        bastion.Key.from_jwk({"kty": "RSA", "n": b64(n), "e": b64(e.to_bytes(9, "big"))})
    with pytest.raises(bastion.InvalidKeyError):
        bastion.Key.from_jwk({"kty": "RSA", "n": b64(n), "e": b64(n)})  # e = n


# -- one kid limit, at load and at verification -------------------------------------------------------------------


def test_a_kid_the_verifier_could_not_look_up_is_refused_at_load() -> None:
    long, fits = "k" * 257, "k" * 256
    loaders: list[Callable[[str], object]] = [
        lambda kid: bastion.Key.hmac(SECRET, kid=kid),
        lambda kid: bastion.Key.generate("ES256", kid=kid),
        lambda kid: bastion.Key.from_pem(ec_pair().public_pem, kid=kid),
        lambda kid: bastion.Key.from_jwk({**bastion.Key.from_pem(ec_pair().public_pem).public_jwk(), "kid": kid}),
        lambda kid: bastion.KeySet.from_jwks({"keys": [{**_public_ec("x"), "kid": kid}]}),
    ]
    for load in loaders:
        with pytest.raises(bastion.ConfigurationError, match="at most 256 bytes"):
            load(long)
        assert load(fits) is not None
    key = bastion.Key.hmac(SECRET, kid=fits)
    token = bastion.JWTSigner(key, "HS256").sign({"sub": "u"}, now=NOW)
    assert bastion.JWTVerifier(key, algorithms=["HS256"]).verify(token, now=NOW)["sub"] == "u"
    # the signer's own header override follows the same rule
    with pytest.raises(bastion.ConfigurationError, match="at most 256 bytes"):
        bastion.JWTSigner(key, "HS256").sign({}, {"kid": long})
    with pytest.raises(bastion.ConfigurationError, match="kid"):
        bastion.JWTSigner(key, "HS256").sign({}, {"kid": 5})


# -- a JWKS skips members bastion does not implement ---------------------------------------------------------------


def test_jwks_skips_unsupported_members_with_a_warning() -> None:
    ed448 = {"kty": "OKP", "crv": "Ed448", "kid": "ed448\x1b[31m", "x": b64(bytes(57))}
    unknown = {"kty": "AKP", "kid": "pq-1", "alg": "ML-DSA-44", "pub": "AAAA"}
    k256 = {"kty": "EC", "crv": "secp256k1", "kid": "k", "x": b64(bytes(32)), "y": b64(bytes(32))}
    with pytest.warns(UserWarning, match="was skipped") as caught:
        ks = bastion.KeySet.from_jwks({"keys": [ed448, _public_ec("e"), unknown, k256]})
    assert ks.kids == ["e"]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3, messages
    assert 'keys[0] (kid "ed448\\u{1b}[31m")' in messages[0]
    assert "Ed448" in messages[0]
    assert "\x1b" not in "".join(messages)
    assert '(kid "k")' in messages[2]
    assert "secp256k1" in messages[2]
    # dangerous or malformed members of a known kind still refuse the set
    with pytest.raises(bastion.WeakKeyError):
        bastion.KeySet.from_jwks({"keys": [ed448, {"kty": "OKP", "crv": "Ed25519", "x": b64(bytes(32))}]})
    with pytest.raises(bastion.InvalidKeyError):
        bastion.KeySet.from_jwks({"keys": [_public_ec("e"), {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]})
    with pytest.raises(bastion.InvalidKeyError):
        bastion.KeySet.from_jwks({"keys": [_oct(SECRET, kid="h")]})


# -- arguments of the wrong type are configuration errors -----------------------------------------------------------


@pytest.mark.parametrize("not_a_key", [None, "secret", b"x" * 32, 5, [bastion.Key.hmac(SECRET)], object()])
def test_a_signer_needs_a_key(not_a_key: Any) -> None:
    with pytest.raises(bastion.ConfigurationError, match="private_key must be a Key"):
        bastion.JWTSigner(not_a_key)
