"""Nothing secret in JWT errors or reprs: no token, kid, secret or claim value in any message."""

from __future__ import annotations

import pickle

import bastion
import bastion.dangerous
import pytest

from tests.jwt_tokens import (
    NOW,
    SECRET,
    claims,
    hs_token,
    hs_verifier,
    make,
)

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


def test_errors_never_echo_the_token_or_claims() -> None:
    secretish = "very-private-subject-value"
    token = hs_token(claims(sub=secretish, exp=NOW - 5))
    with pytest.raises(bastion.AuthError) as info:
        hs_verifier().verify(token, now=NOW)
    text = f"{info.value!s} {info.value!r} {info.value.message}"
    assert secretish not in text
    assert token not in text
    assert SECRET.decode() not in text
