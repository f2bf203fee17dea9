"""Hypothesis: arbitrary input and mutated valid tokens only ever raise bastion errors, and a token whose bytes
changed never verifies."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import bastion
import pytest
from bastion.dangerous import decode_unverified
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.jwt_tokens import NOW, SECRET, b64, claims, ec_pair, ed_pair, hs_token, make, rsa_pair

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = {
    "HS256": (bastion.Key.hmac(SECRET, kid="k1"), SECRET),
    "RS256": (bastion.Key.from_pem(rsa_pair().public_pem, kid="k1"), rsa_pair().private),
    "ES256": (bastion.Key.from_pem(ec_pair().public_pem, kid="k1"), ec_pair().private),
    "EdDSA": (bastion.Key.from_pem(ed_pair().public_pem, kid="k1"), ed_pair().private),
}
VERIFIER = bastion.JWTVerifier(
    [bastion.KeySet([KEYS["HS256"][0]]).keys()[0]], algorithms=["HS256"], audience=["api"], issuer="https://i"
)
POLICY: dict[str, Any] = {"audience": "api", "issuer": "https://i"}
ALL = {alg: bastion.JWTVerifier(key, algorithms=[alg], **POLICY) for alg, (key, _) in KEYS.items()}
CACHED = {alg: bastion.JWTVerifier(key, algorithms=[alg], cache_size=64, **POLICY) for alg, (key, _) in KEYS.items()}
TOKENS = {
    alg: make({"alg": alg, "kid": "k1"}, claims(aud="api", iss="https://i"), priv) for alg, (_, priv) in KEYS.items()
}


def test_the_genuine_tokens_verify() -> None:
    for alg, token in TOKENS.items():
        assert ALL[alg].verify(token, now=NOW)["aud"] == "api"


def only_bastion_errors(verifier: bastion.JWTVerifier, token: Any) -> dict[str, Any] | None:
    try:
        return verifier.verify(token, now=NOW)
    except bastion.AuthError:
        return None


@SETTINGS
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    assert only_bastion_errors(VERIFIER, data) is None
    for v in ALL.values():
        assert only_bastion_errors(v, data) is None
    with contextlib.suppress(bastion.AuthError):
        decode_unverified(data)


@SETTINGS
@given(text=st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    assert only_bastion_errors(VERIFIER, text) is None


@SETTINGS
@given(
    parts=st.lists(
        st.sampled_from(["", ".", "e30", "eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJub25lIn0", "=", "A", "_-", "\x00", "é"]),
        max_size=12,
    )
)
def test_token_shaped_garbage(parts: list[str]) -> None:
    assert only_bastion_errors(VERIFIER, "".join(parts)) is None


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, str]:
    alg = draw(st.sampled_from(sorted(TOKENS)))
    token = TOKENS[alg]
    kind = draw(st.sampled_from(["replace", "insert", "delete", "swap", "truncate", "segment"]))
    i = draw(st.integers(0, len(token) - 1))
    c = draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00é"))
    if kind == "replace":
        out = token[:i] + c + token[i + 1 :]
    elif kind == "insert":
        out = token[:i] + c + token[i:]
    elif kind == "delete":
        out = token[:i] + token[i + 1 :]
    elif kind == "swap":
        j = draw(st.integers(0, len(token) - 1))
        chars = list(token)
        chars[i], chars[j] = chars[j], chars[i]
        out = "".join(chars)
    elif kind == "truncate":
        out = token[:i]
    else:
        h, p, s = token.split(".")
        other = TOKENS[draw(st.sampled_from(sorted(TOKENS)))].split(".")
        which = draw(st.integers(0, 2))
        seg = [h, p, s]
        seg[which] = other[which]
        out = ".".join(seg)
    return alg, out


@SETTINGS
@given(case=mutations())
def test_mutated_tokens_never_verify(case: tuple[str, str]) -> None:
    alg, mutated = case
    assume(mutated != TOKENS[alg])
    assert only_bastion_errors(ALL[alg], mutated) is None
    # with a warm cache holding the genuine token, the mutated one still fails
    assert CACHED[alg].verify(TOKENS[alg], now=NOW)["sub"] == "user_1"
    assert only_bastion_errors(CACHED[alg], mutated) is None
    assert only_bastion_errors(CACHED[alg], mutated.encode("utf-8", "surrogatepass")) is None


@SETTINGS
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )
)
def test_payload_json_matches_the_stdlib(value: Any) -> None:
    for ensure_ascii in (True, False):
        payload = json.dumps({"exp": NOW + 60, "v": value}, ensure_ascii=ensure_ascii).encode()
        got = VERIFIER_NO_AUD.verify(hs_token(payload), now=NOW)
        assert got == json.loads(payload)


VERIFIER_NO_AUD = bastion.JWTVerifier(bastion.Key.hmac(SECRET, kid="k1"), algorithms=["HS256"])


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_arbitrary_payload_bytes_under_a_valid_signature(raw: bytes) -> None:
    # a correctly MACed token whose payload is any bytes: a bastion error or a dict, nothing else
    token = make({"alg": "HS256", "kid": "k1"}, raw, SECRET)
    allowed = {"token_malformed", "missing_claim", "invalid_claim", "token_expired", "token_not_yet_valid"}
    out: Any = None
    try:
        out = VERIFIER_NO_AUD.verify(token, now=NOW)
    except bastion.AuthError as e:
        out = e.code
    assert isinstance(out, dict) or out in allowed | {"invalid_audience"}


@pytest.mark.parametrize("bad", [None, 5, 3.5, ["a"], object(), bytearray(b"a.b.c"), memoryview(b"a.b.c")])
def test_non_token_objects_are_token_malformed(bad: Any) -> None:
    with pytest.raises(bastion.TokenMalformed):
        VERIFIER.verify(bad, now=NOW)


def test_lone_surrogate_str_is_token_malformed() -> None:
    with pytest.raises(bastion.TokenMalformed):
        VERIFIER.verify("\ud800" + TOKENS["HS256"], now=NOW)
    assert b64(b"x") == "eA"
