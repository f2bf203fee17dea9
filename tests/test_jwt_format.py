"""The JWT token text before any decoding: the size cap (bytes and characters, without encoding a huge str),
segment counts, canonical base64url, token types and text tricks.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from typing import Any

import bastion
import bastion.dangerous
import pytest

from tests.jwt_tokens import (
    B64_ALPHABET,
    NOW,
    SECRET,
    claims,
    code_of,
    hs_token,
    hs_verifier,
    unb64,
)

# -- size cap ----------------------------------------------------------------------------------------------------------


def token_of_length(length: int) -> str:
    """A valid HS256 token of exactly ``length`` bytes (padding claims adjusted until it fits)."""
    base = len(hs_token(claims(pad="")))
    estimate = max(0, (length - base) * 3 // 4)
    for extra in ("", "y", "yy", "yyy"):
        for k in range(max(0, estimate - 6), estimate + 6):
            token = hs_token(claims(pad="x" * k), x=extra)
            if len(token) == length:
                return token
    raise AssertionError(f"no token of length {length}")


@pytest.mark.parametrize("cap", [300, 8192, 1 << 20])
def test_token_exactly_at_the_cap_verifies_and_one_more_byte_does_not(cap: int) -> None:
    v = hs_verifier(max_token_bytes=cap)
    at_cap = token_of_length(cap)
    assert v.verify(at_cap, now=NOW)["sub"] == "user_1"
    assert v.verify(at_cap.encode(), now=NOW)["sub"] == "user_1"
    over = token_of_length(cap + 1)
    assert code_of(v, over) == "token_too_large"
    assert code_of(hs_verifier(max_token_bytes=cap, cache_size=4), over) == "token_too_large"


@pytest.mark.parametrize("filler", ["a", ".", "\u00e9", "\x00"])
def test_one_megabyte_is_refused_before_decoding(filler: str) -> None:
    big = filler * (1 << 20)
    assert code_of(hs_verifier(), big) == "token_too_large"
    assert code_of(hs_verifier(cache_size=8), big.encode()) == "token_too_large"
    assert code_of(hs_verifier(max_token_bytes=1 << 20), big + "x") == "token_too_large"


class _ShortStr(str):
    """A str that lies about its length: the cap must look at the characters, not at __len__."""

    def __len__(self) -> int:
        return 0


def _text_entry_points(cap: int) -> dict[str, Callable[[str], object]]:
    key = bastion.Key.hmac(SECRET, kid="k1")
    plain = hs_verifier(max_token_bytes=cap)
    cached = hs_verifier(max_token_bytes=cap, cache_size=8)
    return {
        "verify": lambda t: plain.verify(t, now=NOW),
        "verify (cache)": lambda t: cached.verify(t, now=NOW),
        "decode_unverified": lambda t: bastion.dangerous.decode_unverified(t, max_token_bytes=cap),
        "verify_jws": lambda t: bastion.dangerous.verify_jws(t, key, algorithms=["HS256"], max_token_bytes=cap),
    }


ENTRY_POINTS = list(_text_entry_points(8192))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("char", ["\u00e9", "\u20ac", "\U0001f600", "\udc80"])
def test_huge_non_ascii_str_is_refused_without_being_encoded(entry: str, char: str) -> None:
    call = _text_entry_points(8192)[entry]
    for text in (char * (1 << 22), _ShortStr(char * (1 << 22)), hs_token() + char * 8192):
        size = sys.getsizeof(text)
        with pytest.raises(bastion.TokenTooLarge) as info:
            call(text)
        assert info.value.code == "token_too_large"
        assert str(info.value) == "the token is too large"
        assert sys.getsizeof(text) == size, "the str was encoded before the cap refused it"


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_str_under_the_cap_in_characters_but_over_it_in_bytes_is_refused(entry: str) -> None:
    cap = 301  # token_of_length(300) exists
    call = _text_entry_points(cap)[entry]
    under = "".join(["\u00e9"] * 200)  # 200 characters, 400 bytes of UTF-8; built at run time, not a shared constant
    size = sys.getsizeof(under)
    with pytest.raises(bastion.TokenTooLarge):
        call(under)
    # the probe above is not blind: this str was within the cap in characters, so it was encoded and measured
    assert sys.getsizeof(under) > size
    # at the boundary: cap characters (passes the first check) but cap + 1 bytes
    at_cap = token_of_length(cap - 1) + "\u00e9"
    assert len(at_cap) == cap
    with pytest.raises(bastion.TokenTooLarge):
        call(at_cap)
    # and cap characters of ASCII are cap bytes: past the size check (the stray "x" spoils the signature,
    # which decode_unverified does not look at)
    ascii_at_cap = token_of_length(cap - 1) + "x"
    if entry == "decode_unverified":
        decoded: Any = call(ascii_at_cap)
        assert decoded["claims"]["sub"] == "user_1"
    else:
        with pytest.raises(bastion.InvalidSignature):
            call(ascii_at_cap)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_lone_surrogates_within_the_cap_are_token_malformed(entry: str) -> None:
    call = _text_entry_points(8192)[entry]
    for text in ("\ud800" + hs_token(), hs_token() + "\udfff", _ShortStr("\udc80" + hs_token())):
        with pytest.raises(bastion.TokenMalformed) as info:
            call(text)
        assert info.value.code == "token_malformed"


# -- base64 tricks -----------------------------------------------------------------------------------------------------


def _set_trailing_bits(segment: str) -> str:
    assert len(segment) % 4 in (2, 3)
    last = B64_ALPHABET.index(segment[-1])
    return segment[:-1] + B64_ALPHABET[last | 1]


def _mangled() -> dict[str, str]:
    t = hs_token()
    h, p, s = t.split(".")
    return {
        "padding on header": f"{h}=.{p}.{s}",
        "padding on signature": f"{h}.{p}.{s}=",
        "padding everywhere": f"{h}==.{p}==.{s}==",
        "plus and slash": f"{h}.{p}.{s.replace('-', '+').replace('_', '/')}"
        if ("-" in s or "_" in s)
        else f"{h}.{p}.+{s[1:]}",
        "space inside": f"{h}.{p[:5]} {p[5:]}.{s}",
        "newline at end": f"{t}\n",
        "crlf inside": f"{h}.{p[:4]}\r\n{p[4:]}.{s}",
        "tab before signature": f"{h}.{p}.\t{s}",
        "leading space": f" {t}",
        "trailing bits in signature": f"{h}.{p}.{_set_trailing_bits(s)}",
        "truncated signature (1 char short)": f"{h}.{p}.{s[:-2]}",
        "one char segment": f"{h}.{p}.A",
        "standard alphabet header": f"{base64.b64encode(unb64(h)).decode()}.{p}.{s}",
    }


@pytest.mark.parametrize("name", list(_mangled()))
def test_non_canonical_base64url(name: str) -> None:
    assert code_of(hs_verifier(), _mangled()[name]) == "token_malformed"


def test_trailing_bits_in_header_and_payload() -> None:
    for sub in ("u", "uu", "uuu", "uuuu"):
        h, p, s = hs_token(claims(sub=sub)).split(".")
        if len(p) % 4 in (2, 3):
            assert code_of(hs_verifier(), f"{h}.{_set_trailing_bits(p)}.{s}") == "token_malformed"
    for kid in ("k1", "k1" * 2):
        h, p, s = hs_token(kid=kid).split(".")
        if len(h) % 4 in (2, 3):
            assert code_of(hs_verifier(), f"{_set_trailing_bits(h)}.{p}.{s}") == "token_malformed"


@pytest.mark.parametrize(
    "shape",
    [
        "",
        ".",
        "..",
        "...",
        "....",
        "h",
        "h.p",
        ".p.s",
        "h..s",
        "{t}.",
        ".{t}",
        "{t}.{s}",
        "{h}.{p}",
        "{h}\u3002{p}\u3002{s}",
    ],
)
def test_segment_counts(shape: str) -> None:
    t = hs_token()
    h, p, s = t.split(".")
    token = shape.format(t=t, h=h, p=p, s=s)
    assert code_of(hs_verifier(), token) == "token_malformed"


def test_empty_signature_segment_is_a_bad_signature() -> None:
    h, p, _ = hs_token().split(".")
    assert code_of(hs_verifier(), f"{h}.{p}.") == "invalid_signature"


# -- token types -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [None, 5, 1.5, ["a.b.c"], bytearray(b"a.b.c"), memoryview(b"a.b.c"), "", b"", "   ", "\ud800", "a.b.c\ud800"],
    ids=repr,
)
def test_token_of_the_wrong_type_or_text_is_malformed(token: Any) -> None:
    assert code_of(hs_verifier(), token) == "token_malformed"
    assert code_of(hs_verifier(cache_size=2), token) == "token_malformed"


@pytest.mark.parametrize("where", ["nul at end", "nul at start", "nul as dot", "non-ascii", "fullwidth"])
def test_token_text_tricks(where: str) -> None:
    t = hs_token()
    token = {
        "nul at end": t + "\x00",
        "nul at start": "\x00" + t,
        "nul as dot": t.replace(".", "\x00", 1),
        "non-ascii": "é" + t,
        "fullwidth": t.replace("e", "\uff45", 1),
    }[where]
    assert code_of(hs_verifier(), token) == "token_malformed"
    assert code_of(hs_verifier(), token.encode("utf-8", "surrogatepass")) == "token_malformed"


def test_str_and_bytes_give_the_same_claims() -> None:
    t = hs_token()
    assert hs_verifier().verify(t, now=NOW) == hs_verifier().verify(t.encode(), now=NOW) == claims()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "=",  # padding on the signature
        lambda t: t.replace(".", "=.", 1),  # padding on the header
        lambda t: t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t) else t[:-1] + "+",
        lambda t: t[:10] + " " + t[10:],
        lambda t: t[:10] + "\n" + t[10:],
        lambda t: t + "\t",
    ],
)
def test_non_canonical_base64url_rules(mangle: Any) -> None:
    assert code_of(hs_verifier(), mangle(hs_token())) == "token_malformed"


def test_non_zero_trailing_bits() -> None:
    token = hs_token()
    h, p, s = token.split(".")
    # 32-byte HMAC → 43 chars, the last one carries 2 unused bits; flip one of them
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(s[-1])
    assert last & 0b11 == 0
    bad = s[:-1] + alphabet[last | 1]
    assert code_of(hs_verifier(), f"{h}.{p}.{bad}") == "token_malformed"
    # the same in the header: {"alg":"HS256","kid":"k1"} is 26 bytes, so its last char has 4 unused bits
    last_h = alphabet.index(h[-1])
    assert len(h) % 4 == 3
    assert last_h & 0b11 == 0
    bad_h = h[:-1] + alphabet[last_h | 1]
    assert code_of(hs_verifier(), f"{bad_h}.{p}.{s}") == "token_malformed"


@pytest.mark.parametrize("token", ["", ".", "..", "a.b", "a.b.c.d", "...", "abc", "a..c", ".b.c"])
def test_exactly_three_segments(token: str) -> None:
    assert code_of(hs_verifier(), token) == "token_malformed"


def test_four_segments_of_a_real_token() -> None:
    assert code_of(hs_verifier(), hs_token() + ".e30") == "token_malformed"


def test_huge_tokens_are_refused_before_decoding() -> None:
    v = hs_verifier()
    big = hs_token(claims(pad="x" * 9000))
    assert code_of(v, big) == "token_too_large"
    assert code_of(v, "!" * 100_000) == "token_too_large"
    assert code_of(v, b"\xff" * 10_000) == "token_too_large"
    small = hs_verifier(max_token_bytes=100)
    assert code_of(small, hs_token()) == "token_too_large"
    assert hs_verifier(max_token_bytes=20_000).verify(big, now=NOW)["pad"] == "x" * 9000
