"""Building JWTs by hand with ``cryptography`` for the JWT tests: keys, and tokens with any header, payload
bytes and signature bytes, so each rejection test controls exactly what is wrong."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import bastion
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as chmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

NOW = 1_800_000_000
SECRET = b"0123456789abcdef0123456789abcdef"  # 32 bytes: the HS256 minimum


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def claims(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "user_1", "exp": NOW + 600, "iat": NOW - 10}
    base.update(extra)
    return base


@dataclass(frozen=True)
class KeyPair:
    private: Any
    private_pem: bytes
    public_pem: bytes


@cache
def rsa_pair(bits: int = 2048, e: int = 65537) -> KeyPair:
    k = rsa.generate_private_key(public_exponent=e, key_size=bits)
    return _pair(k)


@cache
def ec_pair(curve: str = "P-256") -> KeyPair:
    c = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[curve]
    return _pair(ec.generate_private_key(c))


@cache
def ed_pair() -> KeyPair:
    return _pair(ed25519.Ed25519PrivateKey.generate())


def _pair(k: Any) -> KeyPair:
    private_pem = k.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = k.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(k, private_pem, public_pem)


_HASH: dict[str, type[hashes.SHA256] | type[hashes.SHA384] | type[hashes.SHA512]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVE_LEN = {"ES256": 32, "ES384": 48, "ES512": 66}


def sign(alg: str, key: Any, signing_input: bytes, *, der: bool = False) -> bytes:
    """A signature made by ``cryptography``; ECDSA in JOSE's raw r||s form unless ``der``."""
    if alg.startswith("HS"):
        h = chmac.HMAC(key, _HASH[alg[2:]]())
        h.update(signing_input)
        return h.finalize()
    if alg.startswith("RS"):
        return bytes(key.sign(signing_input, padding.PKCS1v15(), _HASH[alg[2:]]()))
    if alg.startswith("PS"):
        hash_alg = _HASH[alg[2:]]()
        pss = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
        return bytes(key.sign(signing_input, pss, hash_alg))
    if alg.startswith("ES"):
        sig = key.sign(signing_input, ec.ECDSA(_HASH[{"ES256": "256", "ES384": "384", "ES512": "512"}[alg]]()))
        if der:
            return bytes(sig)
        r, s = decode_dss_signature(sig)
        n = _CURVE_LEN[alg]
        return r.to_bytes(n, "big") + s.to_bytes(n, "big")
    if alg in ("EdDSA", "Ed25519"):
        return bytes(key.sign(signing_input))
    raise ValueError(alg)


def make(
    header: dict[str, Any] | str,
    payload: dict[str, Any] | bytes | str,
    key: Any,
    *,
    alg: str | None = None,
    der: bool = False,
) -> str:
    """A compact JWS: ``header``/``payload`` as objects (JSON-encoded), raw bytes, or already-encoded text."""
    h = header if isinstance(header, str) else b64json(header)
    if isinstance(payload, dict):
        p = b64json(payload)
    elif isinstance(payload, bytes):
        p = b64(payload)
    else:
        p = payload
    signing_input = f"{h}.{p}".encode()
    algorithm = alg if alg is not None else (header["alg"] if isinstance(header, dict) else "HS256")
    return f"{h}.{p}.{b64(sign(algorithm, key, signing_input, der=der))}"


def hs_verifier(**kw: Any) -> bastion.JWTVerifier:
    kw.setdefault("algorithms", ["HS256"])
    return bastion.JWTVerifier(bastion.Key.hmac(SECRET, kid="k1"), **kw)


def hs_token(payload: dict[str, Any] | bytes | str | None = None, **header: Any) -> str:
    h = {k: v for k, v in {"alg": "HS256", "kid": "k1", **header}.items() if v is not None}
    return make(h, claims() if payload is None else payload, SECRET, alg="HS256")


ROOT = Path(__file__).resolve().parent.parent


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


P521_N = int(
    "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA" + "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16
)


ED25519_L = 2**252 + 27742317777372353535851937790883648493


B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def code_of(verifier: bastion.JWTVerifier, token: Any, now: Any = NOW) -> str:
    with pytest.raises(bastion.AuthError) as info:
        verifier.verify(token, now=now)
    return info.value.code


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def with_signature(token: str, signature: bytes) -> str:
    h, p, _ = token.split(".")
    return f"{h}.{p}.{b64(signature)}"


def raw_payload_token(payload: bytes, **header: Any) -> str:
    return hs_token(payload, **header)
