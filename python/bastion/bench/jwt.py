"""JWT cases for ``python -m bastion bench jwt`` (``benches/bench_jwt.py`` times the same cases with
pytest-benchmark): bastion and its peers verifying the same realistic access token, in one process.

The token: header ``{"alg", "typ": "JWT", "kid"}``; claims iss, sub, aud, exp, iat, nbf, jti, scope, role.
Every library is given pre-parsed keys and the same issuer/audience checks, and returns the claims dict.
Peers that are not installed are reported as missing. ryjwt needs Python >= 3.12 and is measured only when
it is importable (``make bench-312`` builds a 3.12 venv from the same abi3 wheel).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bastion
from bastion.bench import NOT_INSTALLED, Case

ALGS = ("HS256", "RS256", "ES256", "EdDSA")
ISSUER = "https://auth.example.com"
AUDIENCE = "api://reports"
KID = "key-2026-11"


@dataclass
class Fixture:
    """One algorithm's token and keys in every library's own form."""

    alg: str
    token: str
    claims: dict[str, Any]
    bastion_key: bastion.Key
    pem_or_secret: Any  # PyJWT / ryjwt key (secret bytes or cryptography public key)
    public_pem: bytes = b""
    secret: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)


def realistic_claims(now: int | None = None) -> dict[str, Any]:
    now = int(time.time()) if now is None else now
    return {
        "iss": ISSUER,
        "sub": "user_8c1f2b7e",
        "aud": AUDIENCE,
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "jti": "4f1c6a2e-8a4b-4f7e-9d3c-1b2a3c4d5e6f",
        "scope": "read:reports write:reports",
        "role": "analyst",
    }


def fixtures() -> dict[str, Fixture]:
    """Keys generated with ``cryptography``; tokens minted by PyJWT (a neutral party)."""
    import jwt as pyjwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    claims = realistic_claims()
    out: dict[str, Fixture] = {}
    secret = b"bench-secret-0123456789abcdef-0123456789"
    token = pyjwt.encode(claims, secret, algorithm="HS256", headers={"kid": KID, "typ": "JWT"})
    out["HS256"] = Fixture("HS256", token, claims, bastion.Key.hmac(secret, kid=KID), secret, secret=secret)
    privates: dict[str, Any] = {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }
    for alg, private in privates.items():
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        token = pyjwt.encode(claims, private, algorithm=alg, headers={"kid": KID, "typ": "JWT"})
        key = bastion.Key.from_pem(public_pem, kid=KID)
        out[alg] = Fixture(alg, token, claims, key, private.public_key(), public_pem=public_pem)
    return out


def bastion_verifier(fx: Fixture, *, cache_size: int = 0) -> bastion.JWTVerifier:
    return bastion.JWTVerifier(
        fx.bastion_key, algorithms=[fx.alg], issuer=ISSUER, audience=AUDIENCE, cache_size=cache_size
    )


def peer_calls(fx: Fixture) -> dict[str, tuple[Callable[[], object] | None, str]]:
    """name -> (call, why missing). Each call verifies ``fx.token`` and returns the claims."""
    calls: dict[str, tuple[Callable[[], object] | None, str]] = {}
    try:
        import jwt as pyjwt

        def pyjwt_call() -> object:
            return pyjwt.decode(fx.token, fx.pem_or_secret, algorithms=[fx.alg], audience=AUDIENCE, issuer=ISSUER)

        calls["PyJWT"] = (pyjwt_call, "")
    except ImportError:
        calls["PyJWT"] = (None, NOT_INSTALLED)
    try:
        from joserfc import jwt as jose_jwt
        from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

        jose_key: Any
        if fx.alg == "HS256":
            jose_key = OctKey.import_key(fx.secret)
        else:
            cls: Any = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}[fx.alg]
            jose_key = cls.import_key(fx.public_pem)
        registry = jose_jwt.JWTClaimsRegistry(iss={"essential": True, "value": ISSUER}, aud={"value": AUDIENCE})

        def joserfc_call() -> object:
            tok = jose_jwt.decode(fx.token, jose_key, algorithms=[fx.alg])
            registry.validate(tok.claims)
            return tok.claims

        calls["joserfc"] = (joserfc_call, "")
    except ImportError:
        calls["joserfc"] = (None, NOT_INSTALLED)
    try:
        import oxyjwt

        dk = {
            "HS256": lambda: oxyjwt.DecodingKey.from_secret(fx.secret),
            "RS256": lambda: oxyjwt.DecodingKey.from_rsa_pem(fx.public_pem),
            "ES256": lambda: oxyjwt.DecodingKey.from_ec_pem(fx.public_pem),
            "EdDSA": lambda: oxyjwt.DecodingKey.from_ed_pem(fx.public_pem),
        }[fx.alg]()

        def oxy_call() -> object:
            return oxyjwt.decode(fx.token, dk, algorithms=[fx.alg], audience=AUDIENCE, issuer=ISSUER)

        calls["oxyjwt"] = (oxy_call, "")
    except ImportError:
        calls["oxyjwt"] = (None, NOT_INSTALLED)
    try:
        import ryjwt  # type: ignore[import-not-found, unused-ignore]

        ry: Any
        if fx.alg == "HS256":
            ry = ryjwt.SecretKey(fx.secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
        else:
            ry = ryjwt.PublicKey(fx.public_pem, algorithms=[fx.alg], audience=AUDIENCE, issuer=ISSUER)

        def ry_call() -> object:
            return ry.decode(fx.token)

        calls["ryjwt"] = (ry_call, "")
    except ImportError:
        calls["ryjwt"] = (None, "needs Python >= 3.12: make bench-312")
    return calls


def _verify_call(verifier: bastion.JWTVerifier, token: str) -> Callable[[], object]:
    return lambda: verifier.verify(token)


THREAD_BATCH = 64


def threaded_batch(verifier: bastion.JWTVerifier, token: str, threads: int) -> Callable[[], object]:
    """Verify ``THREAD_BATCH`` tokens split over ``threads`` threads (a pool kept across calls): with the GIL
    released during RSA verification, two threads finish a batch in about half the time of one."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(threads)
    share = THREAD_BATCH // threads

    def work() -> int:
        for _ in range(share):
            verifier.verify(token)
        return share

    def batch() -> object:
        return sum(f.result() for f in [pool.submit(work) for _ in range(threads)])

    return batch


def _claims_of(fx: Fixture) -> Callable[[Any], bool]:
    """Whether a verify call returned the token's claims (every library here returns them as a dict)."""
    return lambda result: {k: result[k] for k in fx.claims} == fx.claims


def _whole_batch(verified: int) -> bool:
    return verified == THREAD_BATCH


def cases(quick: bool = False) -> list[Case]:
    """The same cases whatever ``quick`` says: each is one call, and the fixtures take well under a second."""
    out: list[Case] = []
    fx = fixtures()
    for alg in ALGS:
        f = fx[alg]
        verifier = bastion_verifier(f)
        assert verifier.verify(f.token) == f.claims
        group = f"{alg} verify -> dict"
        ok = _claims_of(f)
        out.append(Case(group, "bastion", _verify_call(verifier, f.token), is_bastion=True, ok=ok))
        for name, (call, why) in peer_calls(f).items():
            if call is not None:
                assert ok(call())  # fail loudly here rather than inside the timing loop
            out.append(Case(group, name, call, missing=why, ok=ok))
    for alg in ("HS256", "RS256"):
        f = fx[alg]
        cached = bastion_verifier(f, cache_size=1024)
        cached.verify(f.token)
        group = f"{alg} repeated token (cache hit)"
        ok = _claims_of(f)
        out.append(Case(group, "bastion cache_size=1024", _verify_call(cached, f.token), is_bastion=True, ok=ok))
        out.append(Case(group, "bastion, no cache", _verify_call(bastion_verifier(f), f.token), ok=ok))
    rs = fx["RS256"]
    group = f"RS256 verify, {THREAD_BATCH} tokens per batch (GIL released)"
    shared = bastion_verifier(rs)
    out.append(Case(group, "bastion, 2 threads", threaded_batch(shared, rs.token, 2), is_bastion=True, ok=_whole_batch))
    out.append(Case(group, "bastion, 1 thread", threaded_batch(shared, rs.token, 1), ok=_whole_batch))
    return out
