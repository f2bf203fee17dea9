"""Opaque-token cases for ``python -m bastion bench opaque``, and the index memory measurement.

``verify`` of a valid token (index hit) → Principal, against what an application does without bastion: a bare
``hashlib.sha256`` + dict lookup in Python (which checks nothing: no expiry, revocation or format), and the
usual way, a hashlib digest + an SQLite query per request. ``figures()`` measures the resident memory of
records in the index, in a fresh interpreter (earlier work in this one would free memory and skew it).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

from bastion.bench import Case, Figure
from bastion.tokens.ops import RecordRow

GROUP = "opaque verify, valid token → identity"
PEPPER = b"bench-pepper-" + b"x" * 32
#: records in the index for the memory figure (``--quick``: the smaller one)
MEMORY_RECORDS, MEMORY_RECORDS_QUICK = 1_000_000, 20_000


def cases(quick: bool = False) -> list[Case]:
    """The same cases whatever ``quick`` says: 1,000 tokens in the store take well under a second."""
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
        Case(
            GROUP,
            "bastion TokenStore.verify (index hit)",
            lambda: verify(token),
            is_bastion=True,
            ok=lambda p: p.subject == "user_500",
        ),
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


def figures(quick: bool = False) -> list[Figure]:
    """Resident bytes per record in the index, and with each record's Principal cached too."""
    n = MEMORY_RECORDS_QUICK if quick else MEMORY_RECORDS
    code = f"import json; from bastion.bench.opaque import measure_memory; print(json.dumps(measure_memory({n})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    names = {
        "index_bytes_per_record": f"index, {n:,} records: RSS per record",
        "with_cached_principal_per_record": f"index + cached Principal, {n:,} records: RSS per record",
    }
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return [Figure(name, None, "bytes", missing=why) for name in names.values()]
    measured = json.loads(proc.stdout)
    return [Figure(name, float(measured[key]), "bytes") for key, name in names.items()]
