"""Differential: bastion and PyJWT agree on accept/reject for generated HS256 tokens (claims around the clock,
issuers, audiences, algorithms), where the two libraries' documented rules are the same."""

from __future__ import annotations

import time
from typing import Any

import bastion
import jwt as pyjwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.jwt_tokens import SECRET

# both libraries read the wall clock here (PyJWT takes no `now`): offsets stay far from it, so the few
# milliseconds between the two reads never decide
NOW = int(time.time())
ISSUER = "https://issuer.test"
AUDIENCE = "api"
OFFSET = st.integers(min_value=-10_000, max_value=10_000).filter(lambda n: abs(n) >= 60)

VERIFIER = bastion.JWTVerifier(
    bastion.Key.hmac(SECRET), algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, require=("exp",)
)


@st.composite
def tokens(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    claims: dict[str, Any] = {"sub": draw(st.sampled_from(["u1", "svc"]))}
    if draw(st.booleans()):
        claims["exp"] = NOW + draw(OFFSET)
    if draw(st.booleans()):
        claims["nbf"] = NOW + draw(OFFSET)
    claims["iss"] = draw(st.sampled_from([ISSUER, "https://other.test", None]))
    claims["aud"] = draw(st.sampled_from([AUDIENCE, "other", [AUDIENCE, "x"], ["x"], None]))
    claims = {k: v for k, v in claims.items() if v is not None}
    alg = draw(st.sampled_from(["HS256", "HS256", "HS384"]))
    return pyjwt.encode(claims, SECRET, algorithm=alg), claims


def pyjwt_accepts(token: str) -> bool:
    try:
        pyjwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            issuer=ISSUER,
            audience=AUDIENCE,
            options={"require": ["exp", "iss", "aud"]},
            leeway=0,
        )
    except pyjwt.PyJWTError:
        return False
    return True


def bastion_accepts(token: str) -> bool:
    try:
        VERIFIER.verify(token)
    except bastion.AuthError:
        return False
    return True


@pytest.mark.filterwarnings("ignore:The HMAC key is 32 bytes long")  # the HS384 tokens, refused by both
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens())
def test_bastion_and_pyjwt_agree(case: tuple[str, dict[str, Any]]) -> None:
    token, claims = case
    assert bastion_accepts(token) == pyjwt_accepts(token), claims


def test_the_comparison_is_not_vacuous() -> None:
    good = pyjwt.encode({"sub": "u", "exp": NOW + 600, "iss": ISSUER, "aud": AUDIENCE}, SECRET, algorithm="HS256")
    expired = pyjwt.encode({"sub": "u", "exp": NOW - 600, "iss": ISSUER, "aud": AUDIENCE}, SECRET, algorithm="HS256")
    assert bastion_accepts(good)
    assert pyjwt_accepts(good)
    assert not bastion_accepts(expired)
    assert not pyjwt_accepts(expired)
