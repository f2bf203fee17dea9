"""RFC 6750 bearer credentials through the binding: hostile headers from JSON fixtures, properties, challenges."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import bastion
import pytest
from bastion import _core
from hypothesis import given
from hypothesis import strategies as st

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "bearer" / "hostile_headers.json").read_text("utf-8"))
B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
ERRORS: dict[str, type[bastion.AuthError]] = {
    "missing_token": bastion.MissingToken,
    "invalid_request": bastion.InvalidRequest,
}


def header(spec: str | dict[str, Any]) -> bytes:
    """A fixture value: latin-1 code points, one per byte, or ``{prefix, fill, count}``."""
    if isinstance(spec, dict):
        text: str = spec["prefix"] + spec["fill"] * spec["count"]
        return text.encode("latin-1")
    return spec.encode("latin-1")


def check(parse: Any, case: dict[str, Any]) -> None:
    values = None if case["values"] is None else [header(v) for v in case["values"]]
    # the same header as ASGI (bytes) and as WSGI (latin-1 str) gives it
    forms: list[Any] = [values, None if values is None else [v.decode("latin-1") for v in values]]
    if values is not None and len(values) == 1:
        forms += [values[0], values[0].decode("latin-1"), tuple(values)]
    for form in forms:
        if "token" in case["expect"]:
            assert parse(form) == header(case["expect"]["token"])
        else:
            with pytest.raises(ERRORS[case["expect"]["error"]]) as info:
                parse(form)
            assert info.value.code == case["expect"]["error"]


@pytest.mark.parametrize("case", FIXTURES["authorization"], ids=lambda c: c["id"])
def test_authorization_fixture(case: dict[str, Any]) -> None:
    check(_core.parse_authorization, case)


@pytest.mark.parametrize("case", FIXTURES["api_key"], ids=lambda c: c["id"])
def test_api_key_fixture(case: dict[str, Any]) -> None:
    check(_core.parse_api_key, case)


def test_the_fixture_covers_every_outcome() -> None:
    outcomes = [c["expect"].get("error", "token") for c in FIXTURES["authorization"]]
    assert len(outcomes) >= 30
    assert {o: outcomes.count(o) >= 5 for o in ("token", "missing_token", "invalid_request")} == dict.fromkeys(
        ("token", "missing_token", "invalid_request"), True
    )


def test_max_bytes_caps_each_value() -> None:
    assert len("Bearer ") + 8192 == _core.DEFAULT_MAX_HEADER_BYTES
    assert _core.parse_authorization(b"Bearer abc", max_bytes=10) == b"abc"
    with pytest.raises(bastion.InvalidRequest):
        _core.parse_authorization(b"Bearer abcd", max_bytes=10)
    # a long str is refused before it is encoded, with the same error
    with pytest.raises(bastion.InvalidRequest):
        _core.parse_authorization("Bearer " + "é" * 20, max_bytes=10)


@pytest.mark.parametrize("bad", [-1, 1.5, "10", None, True])
def test_bad_max_bytes_is_a_configuration_error(bad: Any) -> None:
    with pytest.raises(bastion.ConfigurationError, match="max_bytes"):
        _core.parse_authorization(b"Bearer abc", max_bytes=bad)


@pytest.mark.parametrize("bad", [5, [5], [b"Bearer a", 5], bytearray(b"Bearer a"), {"Bearer a"}, "Bearer \u0100"])
def test_values_that_are_not_header_bytes_are_invalid_request(bad: Any) -> None:
    with pytest.raises(bastion.InvalidRequest):
        _core.parse_authorization(bad)


def test_a_str_with_lone_surrogates_is_invalid_request() -> None:
    with pytest.raises(bastion.InvalidRequest):
        _core.parse_authorization("Bearer \udcff")


AUTH_ERRORS = (bastion.MissingToken, bastion.InvalidRequest)


@given(st.lists(st.binary(max_size=64), max_size=3))
def test_random_bytes_give_a_b64token_or_one_of_two_errors(values: list[bytes]) -> None:
    try:
        token = _core.parse_authorization(values)
    except AUTH_ERRORS:
        return
    assert B64TOKEN.fullmatch(token)
    assert token in values[0]
    assert _core.parse_authorization(b"Bearer " + token) == token


@given(st.binary(max_size=64), st.sampled_from([b"Bearer ", b"bearer  ", b"BEARER\t", b"Bearer"]))
def test_random_bytes_after_the_scheme(body: bytes, scheme: bytes) -> None:
    try:
        token = _core.parse_authorization(scheme + body)
    except AUTH_ERRORS as e:
        refusal: bastion.AuthError = e
    else:
        assert B64TOKEN.fullmatch(token)
        assert token == (scheme + body).strip(b" \t")[len(scheme.strip()) :].strip(b" ")
        return
    # after "Bearer " the scheme is settled: only a malformed credential remains
    assert type(refusal) is bastion.InvalidRequest or not scheme.startswith(b"Bearer ")


b64chars = st.sampled_from(list(b"ABCXYZabcxyz0189-._~+/"))


@given(
    st.lists(b64chars, min_size=1, max_size=40).map(bytes),
    st.integers(0, 3),
    st.integers(1, 4),
    st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_every_well_formed_header_is_accepted(body: bytes, pad: int, spaces: int, upper: list[bool]) -> None:
    token = body + b"=" * pad
    scheme = bytes(c - 32 if u else c for c, u in zip(b"bearer", upper, strict=True))
    assert _core.parse_authorization([scheme + b" " * spaces + token]) == token
    assert _core.parse_api_key(token) == token


def test_errors_never_echo_the_header() -> None:
    for value in (b"Bearer s3cr3t=x", b"Bearer s3cr3t\r\n", b"Bearer s3cr3t more", b"s3cr3t"):
        with pytest.raises(bastion.AuthError) as info:
            _core.parse_authorization(value)
        assert "s3cr3t" not in str(info.value)
        assert "s3cr3t" not in repr(info.value)


# --------------------------------------------------------------------------------------------------
# the challenge


def test_challenge_layout() -> None:
    assert _core.bearer_challenge("api") == 'Bearer realm="api"'
    assert (
        _core.bearer_challenge("api", "invalid_token", "the token has expired")
        == 'Bearer realm="api", error="invalid_token", error_description="the token has expired"'
    )
    assert (
        _core.bearer_challenge("api", "insufficient_scope", scope="read:reports admin")
        == 'Bearer realm="api", error="insufficient_scope", scope="read:reports admin"'
    )
    assert _core.bearer_challenge("", description="", scope="") == "Bearer"


HOSTILE = ["a\r\nSet-Cookie: x=1", 'a", error="none', "a\\", "\x00\x7f", "é☃\U0001f600", "\udcff", "\n" * 50]


@pytest.mark.parametrize("text", HOSTILE)
def test_no_challenge_input_reaches_the_header_raw(text: str) -> None:
    value = _core.bearer_challenge(text, text, text, text)
    assert all(0x20 <= ord(c) < 0x7F for c in value)
    # the four attributes stay four quoted strings: every quote inside one is escaped
    unescaped = re.sub(r'\\["\\]', "", value)
    assert unescaped.count('"') == 8
    assert re.fullmatch(r'Bearer realm="[^"]*", error="[^"]*", error_description="[^"]*", scope="[^"]*"', unescaped)


@given(st.text(max_size=40), st.text(max_size=40))
def test_challenge_is_always_one_safe_header_value(realm: str, description: str) -> None:
    value = _core.bearer_challenge(realm, "invalid_token", description)
    assert all(0x20 <= ord(c) < 0x7F for c in value)
    assert re.fullmatch(
        r'Bearer( realm="(?:[^"\\]|\\["\\])*",)? error="invalid_token"(, error_description="[^"\\]*")?', value
    )


@pytest.mark.parametrize("args", [(5,), (None,), ("api", 1), ("api", None, b"x"), ("api", None, None, ["s"])])
def test_challenge_arguments_must_be_text(args: tuple[Any, ...]) -> None:
    with pytest.raises(bastion.ConfigurationError):
        _core.bearer_challenge(*args)
