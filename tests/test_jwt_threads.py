"""Eight threads verifying RS256 (GIL released) and HS256 (GIL held) tokens concurrently get correct results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import bastion

from tests.jwt_tokens import NOW, SECRET, claims, make, rsa_pair

THREADS = 8
ROUNDS = 150


def test_eight_threads_rs256_and_hs256() -> None:
    pair = rsa_pair()
    keys = bastion.KeySet([bastion.Key.from_pem(pair.public_pem, kid="rsa"), bastion.Key.hmac(SECRET, kid="hs")])
    plain = bastion.JWTVerifier(keys, algorithms=["RS256", "HS256"])
    cached = bastion.JWTVerifier(keys, algorithms=["RS256", "HS256"], cache_size=16)
    tokens = []
    for i in range(THREADS * 4):
        alg, kid, key = ("RS256", "rsa", pair.private) if i % 2 else ("HS256", "hs", SECRET)
        tokens.append((f"user_{i}", make({"alg": alg, "kid": kid}, claims(sub=f"user_{i}", n=i), key)))
    forged = make({"alg": "HS256", "kid": "hs"}, claims(sub="mallory"), b"not the secret, but 32 bytes long")
    start = threading.Barrier(THREADS)

    def work(t: int) -> int:
        start.wait()
        ok = 0
        for r in range(ROUNDS):
            sub, token = tokens[(t * 7 + r) % len(tokens)]
            verifier = cached if r % 3 == 0 else plain
            out = verifier.verify(token, now=NOW)
            assert out["sub"] == sub
            assert out["n"] == int(sub.split("_")[1])
            out["sub"] = "mutated by the caller"  # never visible to another thread or call
            try:
                verifier.verify(forged, now=NOW)
            except bastion.InvalidSignature:
                ok += 1
        return ok

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    assert results == [ROUNDS] * THREADS
    for sub, token in tokens:
        assert cached.verify(token, now=NOW)["sub"] == sub
