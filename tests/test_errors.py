"""The error taxonomy: Rust and Python agree, every class pickles, statuses match DESIGN §4."""

from __future__ import annotations

import pickle

import bastion
import pytest
from bastion import _core, errors


def test_rust_and_python_error_codes_agree() -> None:
    assert sorted(_core.ERROR_CODES) == sorted(errors.ERRORS_BY_CODE)
    assert len(set(_core.ERROR_CODES)) == len(_core.ERROR_CODES)


@pytest.mark.parametrize("code", sorted(errors.ERRORS_BY_CODE))
def test_every_class_pickles_with_its_attributes(code: str) -> None:
    cls = errors.ERRORS_BY_CODE[code]
    err = cls("a message")
    assert err.code == code
    assert err.message == "a message"
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert back.message == "a message"
    assert back.__dict__ == err.__dict__
    assert isinstance(back, bastion.BastionError)


def test_extra_attributes_round_trip() -> None:
    e1 = errors.RateLimited("slow down", retry_after=2.5)
    assert pickle.loads(pickle.dumps(e1)).retry_after == 2.5
    e2 = errors.MissingClaim("need exp", claim="exp")
    assert pickle.loads(pickle.dumps(e2)).claim == "exp"
    e3 = errors.InsufficientScope(required_scopes=["read:reports", "write:reports"])
    back = pickle.loads(pickle.dumps(e3))
    assert back.required_scopes == ("read:reports", "write:reports")
    assert back.message == errors.InsufficientScope.default_message


STATUS = {
    "missing_token": (401, None),
    "invalid_request": (400, "invalid_request"),
    "token_malformed": (401, "invalid_token"),
    "token_too_large": (401, "invalid_token"),
    "unsupported_algorithm": (401, "invalid_token"),
    "unsupported_header": (401, "invalid_token"),
    "unknown_key": (401, "invalid_token"),
    "invalid_signature": (401, "invalid_token"),
    "token_expired": (401, "invalid_token"),
    "token_not_yet_valid": (401, "invalid_token"),
    "invalid_issuer": (401, "invalid_token"),
    "invalid_audience": (401, "invalid_token"),
    "invalid_type": (401, "invalid_token"),
    "missing_claim": (401, "invalid_token"),
    "invalid_claim": (401, "invalid_token"),
    "unknown_token": (401, "invalid_token"),
    "token_revoked": (401, "invalid_token"),
    "insufficient_scope": (403, "insufficient_scope"),
    "forbidden": (403, "insufficient_scope"),
    "rate_limited": (429, None),
    "auth_unavailable": (503, None),
}


@pytest.mark.parametrize(("code", "expected"), sorted(STATUS.items()))
def test_status_and_rfc6750_code(code: str, expected: tuple[int, str | None]) -> None:
    cls = errors.ERRORS_BY_CODE[code]
    assert issubclass(cls, errors.AuthError)
    assert (cls.status, cls.rfc6750_error) == expected
    assert cls().to_dict() == {"error": code, "message": cls.default_message}


def test_configuration_errors_are_value_errors() -> None:
    for code in ("invalid_configuration", "weak_key", "invalid_key"):
        cls = errors.ERRORS_BY_CODE[code]
        assert issubclass(cls, bastion.ConfigurationError)
        assert issubclass(cls, ValueError)
        assert not issubclass(cls, errors.AuthError)
