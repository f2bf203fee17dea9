"""Hypothesis: random strings never crash and never verify; issued tokens verify until expiry or revocation."""

from __future__ import annotations

import string

import bastion
import pytest
from bastion import TokenStore
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.opaque_support import PEPPER

STORE = TokenStore(None, pepper=PEPPER, background=False)
FOREIGN = TokenStore(None, pepper=PEPPER, foreign_tokens=True, background=False)
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def rejected(store: TokenStore, token: object) -> str:
    try:
        store.verify(token)  # type: ignore[arg-type]
    except bastion.AuthError as exc:
        return exc.code
    raise AssertionError("a random string verified")


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
@settings(max_examples=400, deadline=None)
def test_random_input_never_verifies(token: str | bytes) -> None:
    assert rejected(STORE, token) == "token_malformed"
    assert rejected(FOREIGN, token) in ("token_malformed", "unknown_token")


@given(kind=st.sampled_from("karc"), body=st.text(alphabet=BASE62, min_size=49, max_size=49))
@settings(max_examples=300, deadline=None)
def test_token_shaped_strings_never_verify(kind: str, body: str) -> None:
    # right prefix, type letter, length and alphabet: the checksum (or, if it happens to fit, the lookup) rejects
    assert rejected(STORE, f"bst{kind}_{body}") in ("token_malformed", "unknown_token")


@given(
    ttl=st.floats(min_value=1, max_value=10 * 86400),
    offset=st.floats(min_value=0, max_value=20 * 86400),
    revoke=st.booleans(),
    kind=st.sampled_from("karc"),
)
@settings(max_examples=150, deadline=None)
def test_issued_tokens_verify_until_expiry_or_revocation(ttl: float, offset: float, revoke: bool, kind: str) -> None:
    issued = STORE.issue("prop_user", ttl=ttl, kind=kind)  # type: ignore[arg-type]
    at = issued.created_at + offset
    if revoke:
        STORE.revoke_id(issued.id)
        assert rejected(STORE, issued.token) == "token_revoked"
    elif offset < ttl:
        assert STORE.verify(issued.token, now=at).token_id == issued.id
    else:
        with pytest.raises(bastion.TokenExpired) as info:
            STORE.verify(issued.token, now=at)
        assert info.value.code == "token_expired"
    # one character changed anywhere after the prefix never verifies
    i = 5 + int(offset) % (len(issued.token) - 5)
    c = issued.token[i]
    mutated = issued.token[:i] + ("A" if c != "A" else "B") + issued.token[i + 1 :]
    assert rejected(STORE, mutated) == "token_malformed"
