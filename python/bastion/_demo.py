"""The main job until the request-path demo exists: mint and verify tokens, print results and timings.

For each algorithm: generate a key, publish its public JWKS, mint an access token with ``JWTSigner``, verify
it with a ``JWTVerifier`` built from the published JWKS, and time the verification. Then show what bad
tokens get (the error code, HTTP status and RFC 6750 error a client would see) and the verified-token cache.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Callable
from functools import partial

import bastion

ISSUER = "https://auth.example.com"
AUDIENCE = "api://reports"
ALGORITHMS = ("HS256", "HS512", "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")


def _median_seconds(fn: Callable[[], object], *, seconds: float = 0.15) -> float:
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed > 0.01:
            break
        n *= 4
    per = max(1, int(n * (seconds / 5) / elapsed))
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(per):
            fn()
        samples.append((time.perf_counter() - t0) / per)
    return statistics.median(samples)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e9:,.0f} ns" if seconds < 1e-6 else f"{seconds * 1e6:,.2f} µs"


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def run_demo() -> int:
    print(f"bastion {bastion.__version__}: mint and verify access tokens\n")
    claims = {"sub": "user_8c1f2b7e", "scope": "read:reports write:reports", "role": "analyst"}
    print(f"{'alg':<7} {'token bytes':>11} {'sign':>11} {'verify → dict':>14}   claims checked")
    tokens: dict[str, tuple[str, bastion.JWTVerifier]] = {}
    published_keys: dict[str, bastion.Key | bastion.KeySet] = {}
    for alg in ALGORITHMS:
        key = bastion.Key.generate(alg, kid=f"{alg.lower()}-2026-11")
        signer = bastion.JWTSigner(key, alg, issuer=ISSUER, audience=AUDIENCE, ttl=900, typ="at+jwt")
        # asymmetric keys: verify from the published (public-only) JWKS, as a resource server would
        published = key if alg.startswith("HS") else bastion.KeySet.from_jwks(bastion.KeySet([key]).to_jwks())
        verifier = bastion.JWTVerifier(published, algorithms=[alg], issuer=ISSUER, audience=AUDIENCE, typ="at+jwt")
        token = signer.sign(claims)
        verified = verifier.verify(token)
        if verified["sub"] != claims["sub"] or verified["iss"] != ISSUER:
            raise RuntimeError("the demo token did not round-trip")
        sign_t = _median_seconds(partial(signer.sign, claims))
        verify_t = _median_seconds(partial(verifier.verify, token))
        checked = ", ".join(sorted(k for k in verified if k in ("iss", "aud", "exp", "iat", "jti")))
        print(f"{alg:<7} {len(token):>11} {_fmt(sign_t):>11} {_fmt(verify_t):>14}   {checked}")
        tokens[alg] = (token, verifier)
        published_keys[alg] = published

    token, verifier = tokens["HS256"]
    print("\nwhat a client gets for a bad token (code, HTTP status, WWW-Authenticate error):")
    header_none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    cases = {
        "valid": (token, None),
        "expired (clock moved 1 hour on)": (token, time.time() + 3600),
        "tampered claims": (_tamper(token), None),
        'alg "none"': (f"{header_none}.{token.split('.')[1]}.", None),
        "not a JWT": ("hello.world", None),
        "oversized": ("a" * 10_000, None),
    }
    for label, (candidate, now) in cases.items():
        try:
            out = verifier.verify(candidate, now=now)
            print(f"  {label:<32} ok: sub={out['sub']}")
        except bastion.AuthError as err:
            print(f"  {label:<32} {err.code:<22} {err.status}  {err.rfc6750_error}: {err.message}")
    others = {
        "meant for another API": bastion.JWTVerifier(
            published_keys["HS256"], algorithms=["HS256"], issuer=ISSUER, audience="api://billing"
        ),
        "signed by an unknown key": bastion.JWTVerifier(
            bastion.Key.generate("HS256", kid="other"), algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE
        ),
    }
    for label, other in others.items():
        try:
            other.verify(token)
        except bastion.AuthError as err:
            print(f"  {label:<32} {err.code:<22} {err.status}  {err.rfc6750_error}: {err.message}")

    print("\nrepeated tokens (cache_size=1024; every hit re-checks exp/nbf):")
    for alg in ("HS256", "RS256"):
        tok, plain = tokens[alg]
        cached = bastion.JWTVerifier(
            published_keys[alg], algorithms=[alg], issuer=ISSUER, audience=AUDIENCE, typ="at+jwt", cache_size=1024
        )
        uncached_t = _median_seconds(partial(plain.verify, tok))
        cached_t = _median_seconds(partial(cached.verify, tok))
        print(f"  {alg}: {_fmt(uncached_t)} uncached, {_fmt(cached_t)} cached")
    jwks = bastion.KeySet([bastion.Key.generate("ES256", kid="es256-next")]).to_jwks()
    print(f"\na published JWKS (public members only): {json.dumps(jwks)}")
    print("\nbenchmarks against PyJWT, joserfc and oxyjwt: python -m bastion bench jwt")
    return 0
