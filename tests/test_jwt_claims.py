"""JWT claims, checked only after the signature: NumericDates, exp/nbf/iat against `now` and leeway, iss,
aud, sub/jti, required claims, and what `now=` accepts.
"""

from __future__ import annotations

from typing import Any

import bastion
import bastion.dangerous
import pytest

from tests.jwt_tokens import (
    NOW,
    claims,
    code_of,
    hs_token,
    hs_verifier,
    make,
)

# -- claims ------------------------------------------------------------------------------------------------------------


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


# -- time --------------------------------------------------------------------------------------------------------------


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
