"""Strict JSON in JWT payloads and headers: duplicate members at any depth, NaN/Infinity and overflowing
numbers, nesting depth, invalid text; and what is accepted exactly as the standard library reads it.
"""

from __future__ import annotations

import json
from typing import Any

import bastion
import pytest

from tests.jwt_tokens import (
    NOW,
    SECRET,
    b64,
    claims,
    code_of,
    hs_token,
    hs_verifier,
    make,
    raw_payload_token,
)

EXP = NOW + 600


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"sub":"u","exp":%d,"x":{"a":1,"a":2}}' % EXP, "token_malformed"),
        (b'{"sub":"u","exp":%d,"x":[{"a":{"b":1,"b":1}}]}' % EXP, "token_malformed"),
        (b'{"exp":1,"exp":%d}' % EXP, "token_malformed"),
        (b'{"exp":%d,"\\u0065xp":1}' % EXP, "token_malformed"),
        (b'{"exp":%d,"aud":"a","aud":"b"}' % EXP, "token_malformed"),
        (b'{"exp":1e400}', "token_malformed"),
        (b'{"exp":-1e400}', "token_malformed"),
        (b'{"exp":%d,"x":1e400}' % EXP, "token_malformed"),
        (b'{"exp":NaN}', "token_malformed"),
        (b'{"exp":%d,"x":Infinity}' % EXP, "token_malformed"),
        (b'{"exp":%d,"x":-Infinity}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\\ud800"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\\udc00x"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\\ud800\\u0041"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\xc0\xaf"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\xed\xa0\x80"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"\xff"}' % EXP, "token_malformed"),
        (b'\xef\xbb\xbf{"exp":%d}' % EXP, "token_malformed"),
        (b'{"exp":%d}x' % EXP, "token_malformed"),
        (b'{"exp":%d}{}' % EXP, "token_malformed"),
        (b'{"exp":%d}\x00' % EXP, "token_malformed"),
        (b'{"exp":%d}\xc2\xa0' % EXP, "token_malformed"),
        (b'{\x0b"exp":%d}' % EXP, "token_malformed"),
        (b'{"exp":%d,"x":' % EXP + b"[" * 32 + b"]" * 32 + b"}", "token_malformed"),
        (b'{"exp":%d,"sub":"a\x00b"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"sub":"a\tb"}' % EXP, "token_malformed"),
        (b'[{"exp":%d}]' % EXP, "token_malformed"),
        (b'"exp"', "token_malformed"),
        (b"", "token_malformed"),
        (b"{'exp':%d}" % EXP, "token_malformed"),
        (b'{"exp":%d,}' % EXP, "token_malformed"),
        (b'{"exp":0%d}' % EXP, "token_malformed"),
        (b'{"exp":+%d}' % EXP, "token_malformed"),
        (b'{"exp":%d.}' % EXP, "token_malformed"),
        (b'{"exp":0x10}', "token_malformed"),
        (b'{"exp":%d,"b":True}' % EXP, "token_malformed"),
        (b'{"exp":%d/*c*/}' % EXP, "token_malformed"),
        (b'{"exp":%d,"s":"\\a"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"s":"\\U0041"}' % EXP, "token_malformed"),
        (b'{"exp":%d,"s":"\\u00"}' % EXP, "token_malformed"),
        # integers beyond what Python will parse from text (4300 digits) cannot be represented
        (b'{"exp":%d,"x":%s}' % (EXP, b"1" * 5000), "token_malformed"),
        (b'{"exp":' + b"1" * 5000 + b"}", "token_malformed"),
        # NumericDates that are not finite JSON numbers
        (b'{"exp":' + b"1" * 400 + b"}", "invalid_claim"),
        (b'{"exp":-' + b"1" * 400 + b"}", "invalid_claim"),
        (b'{"exp":"%d"}' % EXP, "invalid_claim"),
        (b'{"exp":true}', "invalid_claim"),
        (b'{"exp":false}', "invalid_claim"),
        (b'{"exp":null}', "invalid_claim"),
        (b'{"exp":[%d]}' % EXP, "invalid_claim"),
        (b'{"exp":{}}', "invalid_claim"),
        (b'{"exp":%d,"nbf":"0"}' % EXP, "invalid_claim"),
        (b'{"exp":%d,"iat":null}' % EXP, "invalid_claim"),
        (b'{"exp":-0.0}', "token_expired"),
        (b'{"exp":-0}', "token_expired"),
        (b"{}", "missing_claim"),
    ],
)
def test_payload_json_rejections(payload: bytes, expected: str) -> None:
    assert code_of(hs_verifier(), raw_payload_token(payload)) == expected


@pytest.mark.parametrize(
    ("payload", "accepted"),
    [
        (
            b'{"sub":"u","exp":%d,"__proto__":{"admin":true}}' % EXP,
            {"sub": "u", "exp": EXP, "__proto__": {"admin": True}},
        ),
        (b'{"exp":%d,"x":-0}' % EXP, {"exp": EXP, "x": 0}),
        (b'{"exp":1.8000006E9}', {"exp": 1800000600.0}),
        (b'{"exp":18000006e2}', {"exp": 1800000600.0}),
        (b'{"exp":9223372036854775808}', {"exp": 9223372036854775808}),
        (b'{"exp":1e308}', {"exp": 1e308}),
        (b'{"exp":%d,"n":123456789012345678901234567890}' % EXP, {"exp": EXP, "n": 123456789012345678901234567890}),
        (b' \t\r\n{ "exp" : %d , "sub" : "u" } \n' % EXP, {"exp": EXP, "sub": "u"}),
        (b'{"exp":%d,"sub":"\\ud83d\\ude00"}' % EXP, {"exp": EXP, "sub": "\U0001f600"}),
        (b'{"exp":%d,"sub":"\\u0000"}' % EXP, {"exp": EXP, "sub": "\x00"}),
        (b'{"exp":%d,"a\\/b":"\\u00e9\xc3\xa9"}' % EXP, {"exp": EXP, "a/b": "éé"}),
        (b'{"exp":%d,"s":"a\x7fb\xe2\x80\xa8\\uffff"}' % EXP, {"exp": EXP, "s": "a\x7fb\u2028\uffff"}),
        (b'{"exp":%d,"x":' % EXP + b"[" * 31 + b"]" * 31 + b"}", {"exp": EXP, "x": json.loads("[" * 31 + "]" * 31)}),
    ],
)
def test_payload_json_accepted(payload: bytes, accepted: dict[str, Any]) -> None:
    assert hs_verifier().verify(raw_payload_token(payload), now=NOW) == accepted


def test_nesting_ten_thousand_deep() -> None:
    payload = b'{"exp":%d,"x":' % EXP + b"[" * 10_000 + b"]" * 10_000 + b"}"
    token = raw_payload_token(payload)
    assert code_of(hs_verifier(), token) == "token_too_large"
    assert code_of(hs_verifier(max_token_bytes=len(token)), token) == "token_malformed"
    objects = b'{"exp":%d,"x":' % EXP + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}"
    token = raw_payload_token(objects)
    assert code_of(hs_verifier(max_token_bytes=len(token)), token) == "token_malformed"
    header = b64(b'{"alg":"HS256","kid":"k1","x":' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    token = make(header, claims(), SECRET, alg="HS256")
    assert code_of(hs_verifier(max_token_bytes=len(token)), token) == "token_malformed"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"sub":"a","sub":"b","exp":1900000000}',
        b'{"exp":1900000000,"exp":1900000001}',
        b'{"exp":1900000000,"x":{"a":1,"a":2}}',
        b'{"exp":1900000000,"sub":"a","\\u0073ub":"b"}',
    ],
)
def test_duplicate_members_in_the_payload(payload: bytes) -> None:
    assert code_of(hs_verifier(), hs_token(payload)) == "token_malformed"


def test_duplicate_members_in_the_header() -> None:
    header = b64(b'{"alg":"HS256","alg":"HS256","kid":"k1"}')
    token = make(header, claims(), SECRET)
    assert code_of(hs_verifier(), token) == "token_malformed"
    header = b64(b'{"alg":"none","alg":"HS256","kid":"k1"}')
    assert code_of(hs_verifier(), make(header, claims(), SECRET)) == "token_malformed"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "nan", "0x10", "01"])
def test_nan_and_other_non_json_numbers(number: str) -> None:
    payload = f'{{"sub":"u","exp":1900000000,"x":{number}}}'.encode()
    assert code_of(hs_verifier(), hs_token(payload)) == "token_malformed"
    exp = f'{{"sub":"u","exp":{number}}}'.encode()
    assert code_of(hs_verifier(), hs_token(exp)) == "token_malformed"


@pytest.mark.parametrize("depth", [33, 100, 3000])
def test_deep_nesting(depth: int) -> None:
    payload = ('{"exp":1900000000,"x":' + "[" * depth + "]" * depth + "}").encode()
    v = hs_verifier(max_token_bytes=1 << 20)
    assert code_of(v, hs_token(payload)) == "token_malformed"
    objects = ('{"exp":1900000000,"x":' + '{"a":' * depth + "1" + "}" * depth + "}").encode()
    assert code_of(v, hs_token(objects)) == "token_malformed"


def test_moderate_nesting_is_fine() -> None:
    payload = ('{"exp":1900000000,"x":' + "[" * 20 + "]" * 20 + "}").encode()
    assert hs_verifier().verify(hs_token(payload), now=NOW)["x"] == [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]


@pytest.mark.parametrize(
    "payload",
    [
        b'{"exp":1900000000,"s":"\xff"}',
        b'{"exp":1900000000,"s":"\xed\xa0\x80"}',  # UTF-8 encoded surrogate
        b'{"exp":1900000000,"s":"\\ud800"}',
        b'{"exp":1900000000,"s":"\\udc00x"}',
        b'{"exp":1900000000,"s":"a\x01b"}',
        b'\xef\xbb\xbf{"exp":1900000000}',  # BOM
        b"[]",
        b"123",
        b'"x"',
        b"null",
        b"",
        b'{"exp":1900000000}x',
        b"{'exp':1900000000}",
    ],
)
def test_invalid_json_text(payload: bytes) -> None:
    assert code_of(hs_verifier(), hs_token(payload)) == "token_malformed"


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_the_signer_and_the_verifier_share_one_depth_limit() -> None:
    key = bastion.Key.hmac(SECRET, kid="k1")
    signer = bastion.JWTSigner(key, "HS256")
    # the payload object is level 1: a claim may nest 31 more levels, as the verifier reads it
    deepest = signer.sign({"x": _nested(31)}, now=NOW)
    assert hs_verifier().verify(deepest, now=NOW)["x"] == _nested(31)
    with pytest.raises(bastion.ConfigurationError, match="nested too deeply"):
        signer.sign({"x": _nested(32)}, now=NOW)
    # a header member is one level down too
    header_deepest = signer.sign({}, {"x": _nested(31)}, now=NOW)
    assert hs_verifier().verify(header_deepest, now=NOW)["iat"] == NOW
    with pytest.raises(bastion.ConfigurationError, match="nested too deeply"):
        signer.sign({}, {"x": _nested(32)}, now=NOW)
    # scalars at the deepest level are fine
    assert hs_verifier().verify(signer.sign({"x": [[1] * 3] * 2}, now=NOW), now=NOW)["x"] == [[1, 1, 1]] * 2
