"""Opaque-token cases for ``python -m bastion bench opaque``, and the index memory measurement.

``verify`` of a valid token (index hit) → Principal, against what an application does without bastion: a bare
``hashlib.sha256`` + dict lookup in Python (which checks nothing: no expiry, revocation or format), and the
usual way, a hashlib digest + an SQLite query per request. ``python -m bastion._bench_opaque memory [N]``
measures the resident memory of N records in the index.
"""

from __future__ import annotations

import gc
import hashlib
import os
import sqlite3
import sys
import tempfile
import time

from bastion._benchutil import Case
from bastion.tokens.ops import RecordRow

GROUP = "opaque verify, valid token → identity"
PEPPER = b"bench-pepper-" + b"x" * 32


def cases() -> list[Case]:
    from bastion import TokenStore

    store = TokenStore(None, pepper=PEPPER, background=False)
    issued = [
        store.issue(f"user_{i}", scopes=["read:reports"], roles=["user"], tier="third_party") for i in range(1000)
    ]
    token = issued[500].token
    verify = store.verify
    assert verify(token).subject == "user_500"

    table = {hashlib.sha256(t.token.encode()).digest(): ("user", t.id) for t in issued}
    sha256 = hashlib.sha256

    def dict_lookup() -> object:
        return table[sha256(token.encode()).digest()]

    tmp = tempfile.mkdtemp(prefix="bastion-bench-")
    conn = sqlite3.connect(os.path.join(tmp, "tokens.db"), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE tokens (digest BLOB PRIMARY KEY, subject TEXT, scopes TEXT, expires_at REAL, revoked_at REAL)"
    )
    conn.executemany(
        "INSERT INTO tokens VALUES (?, ?, 'read:reports', ?, NULL)",
        [(hashlib.sha256(t.token.encode()).digest(), t.subject, t.expires_at) for t in issued],
    )
    conn.commit()

    def sqlite_query() -> object:
        row = conn.execute(
            "SELECT subject, scopes, expires_at FROM tokens WHERE digest = ? AND revoked_at IS NULL",
            (sha256(token.encode()).digest(),),
        ).fetchone()
        if row is None or row[2] <= time.time():
            raise LookupError
        return row

    assert sqlite_query() == ("user_500", "read:reports", issued[500].expires_at)
    return [
        Case(GROUP, "bastion TokenStore.verify (index hit)", lambda: verify(token), is_bastion=True),
        Case(GROUP, "hashlib.sha256 + dict lookup (no checks)", dict_lookup),
        Case(GROUP, "hashlib.sha256 + SQLite query", sqlite_query),
    ]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_memory(n: int) -> dict[str, float]:
    """Resident bytes per record for ``n`` records in the index, then with every record's Principal cached."""
    from bastion import TokenStore

    store = TokenStore(None, pepper=PEPPER, background=False)
    now = time.time()
    tokens: list[str] = []
    gc.collect()
    base = rss_bytes()
    for i in range(n):
        token, digest = store._new_token("k")
        tokens.append(token)
        row = RecordRow(
            id=store._new_id(),
            kind="k",
            subject=f"user_{i:07d}",
            client_id=None,
            scopes=["read:reports"],
            roles=["user"],
            tier="third_party",
            created_at=now,
            expires_at=now + 86400,
            revoked_at=None,
            subject_valid_after=None,
            metadata=None,
        )
        store._insert(digest, row)
    gc.collect()
    # the token strings are the benchmark's, not the index's: measure them and take them out
    token_bytes = sum(sys.getsizeof(t) for t in tokens) + sys.getsizeof(tokens)
    indexed = rss_bytes() - base - token_bytes
    for t in tokens:
        store.verify(t)
    gc.collect()
    with_principals = rss_bytes() - base - token_bytes
    assert len(store) == n
    return {
        "records": n,
        "index_bytes_per_record": indexed / n,
        "with_cached_principal_per_record": with_principals / n,
    }


def compare_interleaved(rounds: int = 40, batch_s: float = 0.01) -> dict[str, tuple[float, float]]:
    """Time the cases in alternating short batches, so that a shared machine's changing load hits every case
    alike; returns ``{name: (median seconds per call, median ratio to bastion within a round)}``."""
    import statistics

    timed = [c for c in cases() if c.fn is not None]
    sizes = {}
    for c in timed:
        assert c.fn is not None
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                c.fn()
            if time.perf_counter() - t0 > batch_s:
                break
            n *= 2
        sizes[c.name] = n
    per_call: dict[str, list[float]] = {c.name: [] for c in timed}
    ratios: dict[str, list[float]] = {c.name: [] for c in timed}
    base = next(c.name for c in timed if c.is_bastion)
    for _ in range(rounds):
        this_round = {}
        for c in timed:
            assert c.fn is not None
            fn, n = c.fn, sizes[c.name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            this_round[c.name] = (time.perf_counter() - t0) / n
            per_call[c.name].append(this_round[c.name])
        for name, t in this_round.items():
            ratios[name].append(t / this_round[base])
    return {name: (statistics.median(per_call[name]), statistics.median(ratios[name])) for name in per_call}


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "memory":
        count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
        for key, value in measure_memory(count).items():
            print(f"{key}: {value:,.1f}")
    elif len(sys.argv) >= 2 and sys.argv[1] == "compare":
        for name, (t, ratio) in compare_interleaved().items():
            print(f"  {name:<44} {t * 1e9:8.0f} ns   {ratio:5.1f}x bastion")
    else:
        print("usage: python -m bastion._bench_opaque memory [N] | compare")
