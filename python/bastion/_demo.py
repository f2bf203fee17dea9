"""The main job until the request-path demo exists: tokens, checks and limits on the embedded defaults.

Three parts, each printing results and timings. JWTs: for each algorithm generate a key, publish its public
JWKS, mint an access token with ``JWTSigner``, verify it with a ``JWTVerifier`` built from the published JWKS,
and time the verification. Then show what bad
tokens get (the error code, HTTP status and RFC 6750 error a client would see) and the verified-token cache.
Opaque tokens: a SQLite store (the embedded default) in a temporary directory: issue, verify, rotate, revoke.
Rate limits: the in-process limiter with three tiers, its decisions and response headers.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from functools import partial

import bastion
from bastion.bench import measure

ISSUER = "https://auth.example.com"
AUDIENCE = "api://reports"
ALGORITHMS = ("HS256", "HS512", "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")


def _median_seconds(fn: Callable[[], object], *, seconds: float = 0.15) -> float:
    return measure(fn, target_s=seconds, repeats=5)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e9:,.0f} ns" if seconds < 1e-6 else f"{seconds * 1e6:,.2f} µs"


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def run_demo() -> int:
    _demo_jwt()
    _demo_opaque()
    _demo_ratelimit()
    return 0


def _demo_jwt() -> None:
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


def _show_error(label: str, fn: Callable[[], object]) -> None:
    try:
        fn()
    except bastion.AuthError as err:
        print(f"  {label:<32} {err.code:<22} {err.status}  {err.message}")
    else:
        raise RuntimeError(f"the demo expected {label!r} to be refused")


def _demo_opaque() -> None:
    print("\n\nopaque (database) tokens on SQLite, the embedded default: only a keyed digest is stored\n")
    with tempfile.TemporaryDirectory(prefix="bastion-demo-") as tmp:
        url = "sqlite:///" + os.path.join(tmp, "tokens.db")
        store = bastion.TokenStore(url, pepper=secrets.token_bytes(32))
        try:
            issued = store.issue(
                "user_8c1f2b7e", scopes=["read:reports"], roles=["user"], tier="third_party", ttl=86400
            )
            print(f"  issued   {issued!r}")
            principal = store.verify(issued.token)
            print(f"  verified {principal!r}")
            verify_t = _median_seconds(partial(store.verify, issued.token))
            print(f"  verify (index hit) → Principal: {_fmt(verify_t)}")
            rotated = store.rotate(issued.token, grace=0)
            print(f"  rotated to id={rotated.id}; the new token verifies: {store.verify(rotated.token).subject}")
            print("\n  what a client gets:")
            _show_error("the rotated-out token", partial(store.verify, issued.token))
            _show_error("one character changed", partial(store.verify, rotated.token[:-1] + "x"))
            _show_error("garbage", partial(store.verify, "not-a-token"))
            stranger = bastion.TokenStore(None)  # another store (its own pepper): well formed, unknown here
            _show_error("a well-formed unknown token", partial(store.verify, stranger.issue("x", ttl=60).token))
            stranger.close()
            short = store.issue("user_8c1f2b7e", ttl=60)
            _show_error("expired (clock moved 2 min on)", partial(store.verify, short.token, now=time.time() + 120))
            store.revoke_id(rotated.id, reason="laptop lost")
            _show_error("revoked by id", partial(store.verify, rotated.token))
            with open(os.path.join(tmp, "tokens.db"), "rb") as f:
                at_rest = f.read()
            print(f"\n  the database file holds the token: {rotated.token.encode() in at_rest}")
        finally:
            store.close()
    print("  benchmarks against hashlib + dict and hashlib + SQLite: python -m bastion bench opaque")


def _demo_ratelimit() -> None:
    print("\n\nrate limits by identity and tier, in process (lock-free GCRA)\n")
    limiter = bastion.RateLimiter(
        {
            "third_party": bastion.Rate(100, per=60, burst=5),
            "internal": bastion.Rate(10_000, per=60),
            "admin": None,
        },
        default="third_party",
    )
    for i in range(7):
        d = limiter.check("app_42", tier="third_party")
        verdict = "allowed" if d.allowed else f"refused, retry after {d.retry_after:.2f} s"
        print(f"  third_party request {i + 1}: {verdict:<30} {dict(d.headers())}")
    print(f"  internal: {limiter.check('svc_reports', tier='internal').remaining} left of 10000")
    print(f"  admin (unlimited): {all(limiter.allow('root', tier='admin') for _ in range(1000))} for 1000 calls")
    allow_t = _median_seconds(partial(limiter.allow, "svc_reports", tier="internal"))
    check_t = _median_seconds(partial(limiter.check, "svc_reports", tier="internal"))
    print(f"  allow: {_fmt(allow_t)}, check → Decision: {_fmt(check_t)} (hot key)")
    print("  benchmarks against limits, a pure-Python bucket and rust-py-rate-limit: python -m bastion bench ratelimit")
