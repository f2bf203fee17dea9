"""JWT construction-time input: non-string, surrogate and out-of-range arguments are ConfigurationErrors,
never a TypeError, UnicodeEncodeError or OverflowError from inside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bastion
import bastion.dangerous
import pytest

from tests.jwt_tokens import (
    SECRET,
    hs_token,
    hs_verifier,
    rsa_pair,
)


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
