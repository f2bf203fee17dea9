"""Eight threads verifying RS256 (GIL released) and HS256 (GIL held) tokens concurrently get correct results."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import bastion
import bastion.dangerous

from tests.jwt_tokens import (
    NOW,
    ROOT,
    SECRET,
    claims,
    make,
    rsa_pair,
)

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


def test_threads_mixing_keys_forgeries_and_the_header_memo() -> None:
    """Eight threads, no cache: RS256 and HS256 tokens under several kids (filling the header memo while
    forged tokens with the same headers arrive): each result belongs to its own token."""
    pair = rsa_pair()
    keys = bastion.KeySet(
        [
            bastion.Key.from_pem(pair.public_pem, kid="rsa"),
            bastion.Key.hmac(SECRET, kid="hs"),
            bastion.Key.hmac(SECRET[::-1], kid="hs2"),
        ]
    )
    v = bastion.JWTVerifier(keys, algorithms=["RS256", "HS256"])
    good: list[tuple[str, str]] = []
    bad: list[str] = []
    for i in range(12):
        sub = f"user_{i}"
        good.append((make({"alg": "RS256", "kid": "rsa"}, claims(sub=sub), pair.private), sub))
        good.append((make({"alg": "HS256", "kid": "hs"}, claims(sub=sub), SECRET), sub))
        good.append((make({"alg": "HS256", "kid": "hs2"}, claims(sub=sub), SECRET[::-1]), sub))
        bad.append(make({"alg": "HS256", "kid": "hs"}, claims(sub=sub), SECRET[::-1]))
        bad.append(make({"alg": "HS256", "kid": "rsa"}, claims(sub=sub), pair.public_pem))
    errors: list[str] = []

    def work(offset: int) -> None:
        for round_ in range(20):
            token, sub = good[(offset + round_) % len(good)]
            if v.verify(token, now=NOW)["sub"] != sub:
                errors.append(f"wrong claims for {sub}")
            forged = bad[(offset + round_) % len(bad)]
            try:
                v.verify(forged, now=NOW)
                errors.append("forged token verified")
            except (bastion.InvalidSignature, bastion.UnsupportedAlgorithm):
                pass

    threads = [threading.Thread(target=work, args=(i * 5,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


_HAMMER = """
import sys, threading, time
import bastion
sys.setswitchinterval(1e-6)
{setup}
key = bastion.Key.hmac(b"0123456789abcdef0123456789abcdef", kid="k1")
signer = bastion.JWTSigner(key, "HS256", ttl=None)
claims = {{"sub": "u", "exp": 1800000010, "nested": {{"a": [1, 2]}}}}
token = signer.sign(claims, headers={{"kid": "k1"}}, now=1800000000)
v = bastion.JWTVerifier(key, algorithms=["HS256"], cache_size=1)
v.verify(token, now=1800000000)
{arm}
stop = time.monotonic() + 5
def run():
    while time.monotonic() < stop:
        try:
            v.verify(token, now={now})
        except bastion.TokenExpired:
            pass
threads = [threading.Thread(target=run, daemon=True) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done")
"""


def _hammer(setup: str, arm: str, now: str) -> str:
    script = textwrap.dedent(_HAMMER).format(setup=setup, arm=arm, now=now)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=20, check=False
    )
    return result.stdout.strip() + result.stderr.strip()


def test_cache_hit_of_an_expired_token_from_two_threads_does_not_deadlock() -> None:
    assert _hammer("", "", "1800000020") == "done"


def test_cache_hit_with_gc_finalizers_from_two_threads_does_not_deadlock() -> None:
    setup = textwrap.dedent(
        """
        import gc
        class Bomb:
            def __init__(self):
                self.me = self
            def __del__(self):
                Bomb()
                time.sleep(0)
        """
    )
    assert _hammer(setup, "Bomb(); gc.set_threshold(1, 1, 1)", "1800000000") == "done"


def test_the_same_hammer_without_a_cache_finishes() -> None:
    """Control for the two deadlock tests: the harness itself finishes when the cache is off."""
    script = textwrap.dedent(_HAMMER).format(setup="", arm="", now="1800000020").replace("cache_size=1", "cache_size=0")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "done", result.stderr
