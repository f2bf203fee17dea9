"""The JWT API surface: verifier options and their errors, the verified-token cache, the signer, and the
quarantined ``bastion.dangerous`` helpers."""

from __future__ import annotations

import time
from typing import Any

import bastion
import pytest
from bastion.dangerous import decode_unverified

from tests.jwt_tokens import NOW, SECRET, claims, ec_pair, hs_token, hs_verifier, make, rsa_pair


def test_verify_returns_a_plain_dict_and_accepts_str_or_bytes() -> None:
    v = hs_verifier()
    token = hs_token(claims(scope="read write", n=1.5, nested={"a": [1, {"b": None}]}))
    out = v.verify(token, now=NOW)
    assert type(out) is dict
    assert out == {**claims(), "scope": "read write", "n": 1.5, "nested": {"a": [1, {"b": None}]}}
    assert v.verify(token.encode(), now=NOW) == out
    assert v.verify(token, now=float(NOW)) == out
    assert v.algorithms == ["HS256"]


def test_now_defaults_to_the_clock() -> None:
    v = hs_verifier()
    live = hs_token({"sub": "u", "exp": time.time() + 60})
    assert v.verify(live)["sub"] == "u"
    with pytest.raises(bastion.TokenExpired):
        v.verify(hs_token({"sub": "u", "exp": time.time() - 1}))
    with pytest.raises(bastion.TokenExpired):
        v.verify(hs_token({"sub": "u", "exp": time.time() - 1}), now=None)


@pytest.mark.parametrize("now", ["1", float("nan"), float("inf"), True, [1]])
def test_bad_now_is_a_configuration_error(now: Any) -> None:
    with pytest.raises(bastion.ConfigurationError):
        hs_verifier().verify(hs_token(), now=now)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"algorithms": "HS257"},
        {"algorithms": ["HS256", 5]},
        {"algorithms": 5},
        {"leeway": -1},
        {"leeway": "5"},
        {"leeway": float("nan")},
        {"leeway": True},
        {"max_token_bytes": 0},
        {"max_token_bytes": -5},
        {"max_token_bytes": "big"},
        {"cache_size": -1},
        {"cache_size": 1 << 30},
        {"require": ["exp", "custom"]},
        {"require": 5},
        {"typ": 5},
        {"issuer": 5},
        {"audience": [1]},
    ],
)
def test_bad_verifier_options_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("algorithms", ["HS256"])
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWTVerifier(bastion.Key.hmac(SECRET), **kwargs)


@pytest.mark.parametrize("keys", [None, "secret", b"secret", 5, [5], [bastion.Key.hmac(SECRET), "x"]])
def test_bad_keys_argument(keys: Any) -> None:
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWTVerifier(keys, algorithms=["HS256"])


def test_algorithms_is_required() -> None:
    with pytest.raises(TypeError):
        bastion.JWTVerifier(bastion.Key.hmac(SECRET))  # type: ignore[call-arg]
    assert bastion.JWTVerifier(bastion.Key.hmac(SECRET), algorithms="HS256").algorithms == ["HS256"]


# -- cache -----------------------------------------------------------------------------------------------------


def test_cache_hit_rechecks_the_clock_and_returns_fresh_dicts() -> None:
    v = hs_verifier(cache_size=8, audience="api")
    token = hs_token(claims(aud=["api", "web"], exp=NOW + 100, nbf=NOW - 5, meta={"k": [1]}))
    first = v.verify(token, now=NOW)
    first["aud"].append("mutated")
    first["meta"]["k"].append(2)
    first["sub"] = "mutated"
    second = v.verify(token, now=NOW + 50)  # a hit
    assert second["aud"] == ["api", "web"]
    assert second["meta"] == {"k": [1]}
    assert second["sub"] == "user_1"
    assert second is not first
    with pytest.raises(bastion.TokenExpired):
        v.verify(token, now=NOW + 100)
    with pytest.raises(bastion.TokenNotYetValid):
        v.verify(token, now=NOW - 6)
    assert v.verify(token, now=NOW + 99)["sub"] == "user_1"
    v.clear_cache()
    assert v.verify(token, now=NOW)["sub"] == "user_1"


def test_cache_never_serves_a_different_token() -> None:
    v = hs_verifier(cache_size=1)
    good = hs_token(claims(sub="a"))
    assert v.verify(good, now=NOW)["sub"] == "a"
    h, _p, s = good.split(".")
    forged = make({"alg": "HS256", "kid": "k1"}, claims(sub="b"), b"x" * 32).split(".")
    with pytest.raises(bastion.InvalidSignature):
        v.verify(f"{forged[0]}.{forged[1]}.{s}", now=NOW)  # same signature segment, other content
    with pytest.raises(bastion.InvalidSignature):
        v.verify(f"{h}.{forged[1]}.{s}", now=NOW)
    other = hs_token(claims(sub="c"))
    assert v.verify(other, now=NOW)["sub"] == "c"  # evicts "a" from the single slot
    assert v.verify(good, now=NOW)["sub"] == "a"
    with pytest.raises(bastion.TokenTooLarge):
        v.verify("x" * 9000, now=NOW)


def test_cached_and_uncached_agree_on_errors() -> None:
    plain, cached = hs_verifier(), hs_verifier(cache_size=4)
    for token in (hs_token(claims(exp=NOW - 1)), hs_token(claims(aud="x")), "a.b.c", hs_token(alg="none")):
        codes = []
        for v in (plain, cached, cached):
            with pytest.raises(bastion.AuthError) as info:
                v.verify(token, now=NOW)
            codes.append(info.value.code)
        assert len(set(codes)) == 1, codes
    assert "cache_size=4" in repr(cached)


# -- signer ----------------------------------------------------------------------------------------------------


def test_signer_adds_iat_exp_jti_and_keeps_caller_claims() -> None:
    key = bastion.Key.hmac(SECRET, kid="k1")
    signer = bastion.JWTSigner(key, "HS256", issuer="https://idp", audience=["api", "web"], ttl=60, typ="at+jwt")
    assert signer.algorithm == "HS256"
    assert "HS256" in repr(signer)
    assert SECRET.decode() not in repr(signer)
    token = signer.sign({"sub": "u", "scope": "read"}, now=NOW + 0.7)
    v = hs_verifier(issuer="https://idp", audience="web", typ="at+jwt")
    out = v.verify(token, now=NOW)
    assert out["iat"] == NOW
    assert out["exp"] == NOW + 60
    assert out["iss"] == "https://idp"
    assert out["aud"] == ["api", "web"]
    assert len(out["jti"]) == 22
    assert decode_unverified(token)["header"] == {"alg": "HS256", "kid": "k1", "typ": "at+jwt"}
    kept = signer.sign({"sub": "u", "exp": NOW + 5, "iat": NOW - 1, "jti": "mine", "iss": "other", "aud": "x"}, now=NOW)
    c = decode_unverified(kept)["claims"]
    assert (c["exp"], c["iat"], c["jti"], c["iss"], c["aud"]) == (NOW + 5, NOW - 1, "mine", "other", "x")
    ids = {signer.sign({"sub": "u"}, now=NOW) for _ in range(50)}
    assert len(ids) == 50  # random jti


def test_signer_headers_and_ttl_none() -> None:
    signer = bastion.JWTSigner(bastion.Key.hmac(SECRET, kid="k1"), "HS256", ttl=None)
    token = signer.sign({"sub": "u"}, headers={"kid": "other", "typ": "JWT", "x-extra": [1, 2]}, now=NOW)
    d = decode_unverified(token)
    assert d["header"] == {"alg": "HS256", "kid": "other", "typ": "JWT", "x-extra": [1, 2]}
    assert "exp" not in d["claims"]
    for bad in ({"alg": "none"}, {"crit": ["x"]}, {"b64": False}, {"enc": "A128GCM"}, {5: "x"}, "x"):
        with pytest.raises(bastion.ConfigurationError):
            signer.sign({"sub": "u"}, headers=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "claims_arg",
    [
        {"x": object()},
        {"x": float("nan")},
        {"x": float("inf")},
        {5: "x"},
        {"x": {1: 2}},
        {"x": "\ud800"},
        ["sub"],
        "s",
        {"x": {"y": [{"z": set()}]}},
    ],
)
def test_signer_refuses_non_json_claims(claims_arg: Any) -> None:
    signer = bastion.JWTSigner(bastion.Key.hmac(SECRET), "HS256")
    with pytest.raises(bastion.ConfigurationError):
        signer.sign(claims_arg)


def test_signer_writes_every_json_type() -> None:
    signer = bastion.JWTSigner(bastion.Key.hmac(SECRET), "HS256")
    value = {"n": None, "t": True, "f": False, "i": -(2**70), "x": 1e-7, "s": 'q"\\\n\u00e9\U0001f600', "l": (1, [2])}
    out = bastion.JWTVerifier(bastion.Key.hmac(SECRET), algorithms=["HS256"]).verify(
        signer.sign({"v": value}, now=NOW), now=NOW
    )
    assert out["v"] == {**value, "l": [1, [2]]}


def test_signer_configuration_errors() -> None:
    public = bastion.Key.from_pem(ec_pair().public_pem)
    with pytest.raises(bastion.InvalidKeyError):
        bastion.JWTSigner(public, "ES256")  # no private key
    with pytest.raises(bastion.InvalidKeyError):
        bastion.JWTSigner(bastion.Key.from_pem(ec_pair().private_pem), "ES384")
    with pytest.raises(bastion.WeakKeyError):
        bastion.JWTSigner(bastion.Key.hmac(SECRET), "HS512")
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWTSigner(bastion.Key.hmac(SECRET), "none")
    with pytest.raises(bastion.ConfigurationError):
        bastion.JWTSigner(bastion.Key.hmac(SECRET), "HS256", ttl=0)
    assert bastion.JWTSigner(bastion.Key.from_pem(ec_pair().private_pem)).algorithm == "ES256"
    rs = bastion.JWTSigner(bastion.Key.from_pem(rsa_pair().private_pem), "PS256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(rsa_pair().public_pem), algorithms=["PS256"])
    assert v.verify(rs.sign({"sub": "p"}, now=NOW), now=NOW)["sub"] == "p"


# -- dangerous -------------------------------------------------------------------------------------------------


def test_decode_unverified_reads_without_verifying_but_stays_strict() -> None:
    forged = make({"alg": "HS256", "kid": "zz"}, claims(sub="anyone"), b"whatever secret, any length at all")
    out = decode_unverified(forged)
    assert out == {"header": {"alg": "HS256", "kid": "zz"}, "claims": claims(sub="anyone")}
    assert decode_unverified(forged.encode()) == out
    for bad in ("a.b", hs_token(b'{"a":1,"a":2}'), "x" * 9000):
        with pytest.raises(bastion.AuthError):
            decode_unverified(bad)
    with pytest.raises(bastion.TokenMalformed):
        decode_unverified("x" * 9000, max_token_bytes=9000)  # the cap can be raised; it is still no token


def test_module_exports() -> None:
    for name in ("Key", "KeySet", "JWTVerifier", "JWTSigner", "dangerous"):
        assert name in bastion.__all__
        assert hasattr(bastion, name)
    assert bastion.Key.__module__ == "bastion._core"
    from bastion import _core

    assert "EdDSA" in _core.JWT_ALGORITHMS
    assert "none" not in _core.JWT_ALGORITHMS
