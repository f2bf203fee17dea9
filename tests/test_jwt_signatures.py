"""JWT signature checks: ECDSA raw r||s with scalars in range (DER refused, high-s accepted), Ed25519
malleability, RSA signature lengths, and signatures over other bytes for every family.
"""

from __future__ import annotations

import base64
from typing import Any

import bastion
import bastion.dangerous
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.jwt_tokens import (
    ED25519_L,
    NOW,
    P256_N,
    P521_N,
    SECRET,
    b64,
    b64json,
    claims,
    code_of,
    ec_pair,
    ed_pair,
    make,
    rsa_pair,
    unb64,
    with_signature,
)

# -- ECDSA -------------------------------------------------------------------------------------------------------------


def _es_parts(curve: str, alg: str) -> tuple[bastion.JWTVerifier, str, int, int, int]:
    pair = ec_pair(curve)
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=[alg])
    token = make({"alg": alg}, claims(), pair.private)
    raw = unb64(token.split(".")[2])
    n = len(raw) // 2
    return v, token, int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"), n


def _rs(r: int, s: int, n: int) -> bytes:
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


@pytest.mark.parametrize(
    "case",
    [
        "r=0",
        "s=0",
        "r=s=0",
        "r=n",
        "s=n",
        "r=n+r",
        "s=n+s",
        "r=s=1",
        "r=s=n-1",
        "all ff",
        "der",
        "63",
        "65",
        "empty",
        "r only",
        "r||s||r",
    ],
)
def test_ecdsa_p256_bad_signatures(case: str) -> None:
    v, token, r, s, n = _es_parts("P-256", "ES256")
    assert v.verify(token, now=NOW) == claims()
    sigs = {
        "r=0": _rs(0, s, n),
        "s=0": _rs(r, 0, n),
        "r=s=0": bytes(2 * n),
        "r=n": _rs(P256_N, s, n),
        "s=n": _rs(r, P256_N, n),
        "r=n+r": (r + P256_N).to_bytes(n + 1, "big") + s.to_bytes(n, "big"),
        "s=n+s": r.to_bytes(n, "big") + (s + P256_N).to_bytes(n + 1, "big"),
        "r=s=1": _rs(1, 1, n),
        "r=s=n-1": _rs(P256_N - 1, P256_N - 1, n),
        "all ff": b"\xff" * 2 * n,
        "der": encode_dss_signature(r, s),
        "63": _rs(r, s, n)[:-1],
        "65": _rs(r, s, n) + b"\x00",
        "empty": b"",
        "r only": r.to_bytes(n, "big"),
        "r||s||r": _rs(r, s, n) + r.to_bytes(n, "big"),
    }
    assert code_of(v, with_signature(token, sigs[case])) == "invalid_signature"


def test_ecdsa_p521_scalar_bounds() -> None:
    v, token, r, s, n = _es_parts("P-521", "ES512")
    assert n == 66
    for sig in (_rs(r, P521_N, n), _rs(P521_N, s, n), _rs(r, 0, n), _rs(r, s, n)[:130], b"\x02" + _rs(r, s, n)[1:]):
        assert code_of(v, with_signature(token, sig)) == "invalid_signature"


@pytest.mark.parametrize(("curve", "alg", "order"), [("P-256", "ES256", P256_N), ("P-521", "ES512", P521_N)])
def test_ecdsa_high_s_is_accepted(curve: str, alg: str, order: int) -> None:
    """NOTE, not a defect: JOSE (RFC 7518 §3.4) does not require low-s, and aws-lc accepts (r, n-s). So every
    ECDSA token has a second valid spelling: never use the token text as a replay or revocation key."""
    v, token, r, s, n = _es_parts(curve, alg)
    twin = with_signature(token, _rs(r, order - s, n))
    assert twin != token
    assert v.verify(twin, now=NOW) == claims()


def test_ed25519_signature_malleability_is_refused() -> None:
    pair = ed_pair()
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["EdDSA"])
    token = make({"alg": "EdDSA"}, claims(), pair.private)
    raw = unb64(token.split(".")[2])
    s = int.from_bytes(raw[32:], "little")
    for sig in (raw[:32] + (s + ED25519_L).to_bytes(32, "little"), bytes(64), raw[:63], raw + b"\x00"):
        assert code_of(v, with_signature(token, sig)) == "invalid_signature"


# -- RSA ---------------------------------------------------------------------------------------------------------------


def test_rsa_signature_shapes() -> None:
    pair = rsa_pair()
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["RS256", "PS256"])
    token = make({"alg": "RS256"}, claims(), pair.private)
    sig = unb64(token.split(".")[2])
    n = pair.private.public_key().public_numbers().n
    assert len(sig) == 256
    for bad in (
        sig[1:],
        sig[:-1],
        b"\x00" + sig,
        sig + b"\x00",
        bytes(256),
        b"",
        (1).to_bytes(256, "big"),
        n.to_bytes(256, "big"),
        (n - 1).to_bytes(256, "big"),
        (int.from_bytes(sig, "big") + n).to_bytes(257, "big"),
    ):
        assert code_of(v, with_signature(token, bad)) == "invalid_signature"
    ps = make({"alg": "PS256"}, claims(), pair.private)
    assert code_of(v, with_signature(ps, unb64(ps.split(".")[2])[:-1])) == "invalid_signature"


# -- signatures --------------------------------------------------------------------------------------------------------


def _es256(signature: bytes) -> tuple[bastion.JWTVerifier, str]:
    pair = ec_pair("P-256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["ES256"])
    h, p = b64json({"alg": "ES256"}), b64json(claims())
    return v, f"{h}.{p}.{b64(signature)}"


def test_ecdsa_good_signature_verifies() -> None:
    pair = ec_pair("P-256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["ES256"])
    assert v.verify(make({"alg": "ES256"}, claims(), pair.private), now=NOW)["sub"] == "user_1"


@pytest.mark.parametrize(
    "signature",
    [
        bytes(64),  # r = s = 0
        bytes(32) + (1).to_bytes(32, "big"),  # r = 0
        (1).to_bytes(32, "big") + bytes(32),  # s = 0
        P256_N.to_bytes(32, "big") * 2,  # r = s = n
        (P256_N + 1).to_bytes(32, "big") + (1).to_bytes(32, "big"),  # r > n
        b"\xff" * 64,  # r, s = 2^256 - 1
        b"",
        bytes(63),
        bytes(65),
    ],
)
def test_ecdsa_scalars_out_of_range_and_wrong_lengths(signature: bytes) -> None:
    v, token = _es256(signature)
    assert code_of(v, token) == "invalid_signature"


def test_ecdsa_s_or_r_at_n_with_a_real_other_half() -> None:
    pair = ec_pair("P-256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["ES256"])
    good = make({"alg": "ES256"}, claims(), pair.private)
    raw = base64.urlsafe_b64decode(good.split(".")[2] + "==")
    h, p, _ = good.split(".")
    for bad in (raw[:32] + P256_N.to_bytes(32, "big"), P256_N.to_bytes(32, "big") + raw[32:]):
        assert code_of(v, f"{h}.{p}.{b64(bad)}") == "invalid_signature"
    # r + n overflows 32 bytes for most r; a signature with s replaced by s + n (when it fits) must fail too
    s = int.from_bytes(raw[32:], "big")
    if s + P256_N < 2**256:
        assert code_of(v, f"{h}.{p}.{b64(raw[:32] + (s + P256_N).to_bytes(32, 'big'))}") == "invalid_signature"


def test_ecdsa_der_signature_is_refused() -> None:
    pair = ec_pair("P-256")
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["ES256"])
    der = make({"alg": "ES256"}, claims(), pair.private, der=True)
    assert code_of(v, der) == "invalid_signature"
    # a DER encoding of a valid raw signature is refused as well
    raw_token = make({"alg": "ES256"}, claims(), pair.private)
    h, p, s = raw_token.split(".")
    raw = base64.urlsafe_b64decode(s + "==")
    der_sig = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert code_of(v, f"{h}.{p}.{b64(der_sig)}") == "invalid_signature"


def test_rsa_signature_must_be_exactly_the_modulus_length() -> None:
    pair = rsa_pair()
    v = bastion.JWTVerifier(bastion.Key.from_pem(pair.public_pem), algorithms=["RS256"])
    good = make({"alg": "RS256"}, claims(), pair.private)
    assert v.verify(good, now=NOW)["sub"] == "user_1"
    h, p, s = good.split(".")
    raw = base64.urlsafe_b64decode(s + "==")
    assert len(raw) == 256
    for bad in (b"\x00" + raw, raw[:-1], raw + b"\x00", raw[:128], b""):
        assert code_of(v, f"{h}.{p}.{b64(bad)}") == "invalid_signature"


def test_signature_over_other_bytes_fails_for_every_family() -> None:
    cases: list[tuple[str, Any, bastion.Key]] = [
        ("HS256", SECRET, bastion.Key.hmac(SECRET)),
        ("RS256", rsa_pair().private, bastion.Key.from_pem(rsa_pair().public_pem)),
        ("PS256", rsa_pair().private, bastion.Key.from_pem(rsa_pair().public_pem)),
        ("ES256", ec_pair().private, bastion.Key.from_pem(ec_pair().public_pem)),
        ("EdDSA", ed_pair().private, bastion.Key.from_pem(ed_pair().public_pem)),
    ]
    for alg, private, public in cases:
        v = bastion.JWTVerifier(public, algorithms=[alg])
        good = make({"alg": alg}, claims(), private)
        assert v.verify(good, now=NOW)["sub"] == "user_1"
        h, _, s = good.split(".")
        other = b64json(claims(sub="admin"))
        assert code_of(v, f"{h}.{other}.{s}") == "invalid_signature", alg
