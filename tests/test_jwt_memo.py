"""The verifier's per-instance memos on the HS256 fast path: claims dicts built from a template of the
claim names already seen in verified tokens, and configured issuer/audience strings reused. Neither may
change what ``verify`` returns, leak between tokens, or let a forged token teach the verifier."""

from __future__ import annotations

import json
import random
from typing import Any

import bastion
import pytest

from tests.jwt_tokens import NOW, hs_token, hs_verifier, make

ISS = "https://issuer.example"
AUD = "api://memo"


def verifier() -> bastion.JWTVerifier:
    return hs_verifier(issuer=ISS, audience=[AUD, "api://other"])


def payload(**extra: Any) -> dict[str, Any]:
    return {"iss": ISS, "sub": "u1", "aud": AUD, "exp": NOW + 60, "iat": NOW - 1, **extra}


def test_many_shapes_and_orders_give_the_parsed_payload_in_document_order() -> None:
    v = verifier()
    rng = random.Random(7)
    for i in range(60):
        members = list(payload(n=i, scope=f"s{i % 3}").items())
        rng.shuffle(members)
        if i % 4 == 0:
            members.append((f"extra{i % 9}", [i, {"k": None}]))
        claims = dict(members)
        out = v.verify(hs_token(claims), now=NOW)
        assert out == claims
        assert list(out) == [k for k, _ in members]
        # a second verification of the same shape (now served from the template) agrees too
        assert v.verify(hs_token(claims), now=NOW) == claims


def test_returned_dicts_are_independent_of_the_template_and_of_each_other() -> None:
    v = verifier()
    token = hs_token(payload(roles=["a"]))
    first = v.verify(token, now=NOW)
    first["sub"] = "changed"
    first["roles"].append("b")
    first["new"] = 1
    second = v.verify(token, now=NOW)
    assert second == payload(roles=["a"])
    assert second is not first
    other = v.verify(hs_token(payload(roles=["z"], sub="u2")), now=NOW)
    assert other["sub"] == "u2"
    assert other["roles"] == ["z"]
    assert second["sub"] == "u1"


def test_duplicate_members_are_refused_before_and_after_a_shape_is_known() -> None:
    v = verifier()
    names = f'{{"iss":"{ISS}","sub":"u1","aud":"{AUD}","exp":{NOW + 60},"iat":{NOW - 1}'
    dup = hs_token((names + ',"sub":"u2"}').encode())
    with pytest.raises(bastion.TokenMalformed):
        v.verify(dup, now=NOW)
    assert v.verify(hs_token((names + "}").encode()), now=NOW)["sub"] == "u1"
    with pytest.raises(bastion.TokenMalformed):
        v.verify(dup, now=NOW)


def test_a_forged_token_teaches_nothing() -> None:
    v = verifier()
    claims = payload(role="admin")
    forged = make({"alg": "HS256", "kid": "k1"}, claims, b"another-secret-of-32-bytes-len!!", alg="HS256")
    for _ in range(10):
        with pytest.raises(bastion.InvalidSignature):
            v.verify(forged, now=NOW)
    # the same names in a genuine token still come out right
    assert v.verify(hs_token(claims), now=NOW) == claims


def test_configured_issuer_and_audience_strings_are_equal_values() -> None:
    v = verifier()
    out = v.verify(hs_token(payload(aud=["api://other", AUD])), now=NOW)
    assert out["iss"] == ISS
    assert type(out["iss"]) is str
    assert out["aud"] == ["api://other", AUD]
    escaped = json.dumps(payload(), ensure_ascii=True).replace("issuer", "\\u0069ssuer").encode()
    assert v.verify(hs_token(escaped), now=NOW)["iss"] == ISS
    with pytest.raises(bastion.InvalidIssuer):
        v.verify(hs_token(payload(iss=ISS + "x")), now=NOW)


def test_payload_with_many_members_verifies() -> None:
    v = hs_verifier()
    claims = {"sub": "u", "exp": NOW + 60, **{f"c{i}": i for i in range(200)}}
    assert v.verify(hs_token(claims), now=NOW) == claims
    assert v.verify(hs_token(claims), now=NOW) == claims
