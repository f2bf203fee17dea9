"""The verified-token cache: every hit re-checks the clock and returns an independent dict; forged and
expired tokens are never cached.
"""

from __future__ import annotations

from tests.jwt_tokens import (
    NOW,
    b64json,
    claims,
    code_of,
    hs_token,
    hs_verifier,
)


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
