"""The SQL of the token stores, written once for SQLite and PostgreSQL.

Each operation is a generator that yields :class:`Query` objects and receives their rows back, so one body of
SQL serves the synchronous drivers (sqlite3, psycopg) and the asynchronous one (psycopg async) alike. Queries
use ``?`` placeholders; the PostgreSQL dialect rewrites them to ``%s``. Lookups are by digest only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias


class RecordRow(NamedTuple):
    """A record as the Rust index takes it (``bastion._core.OpaqueIndex``), which reads each field by name."""

    id: str
    kind: str
    subject: str
    client_id: str | None
    scopes: list[str]
    roles: list[str]
    tier: str | None
    created_at: float
    expires_at: float
    revoked_at: float | None
    #: the subject's cut-off: its tokens created at or before it are revoked
    subject_valid_after: float | None
    #: a JSON object, as text
    metadata: str | None


Candidate: TypeAlias = tuple[str, str | None, bytes]

# S608 is silenced on the queries below: the f-strings interpolate only constants of this module (column lists,
# the dialect's function name) and placeholder lists ("(?,?,?)"); every value goes through a parameter.

CHANNEL = "bastion_tokens"
#: the transaction-level advisory lock that orders revocation events (PostgreSQL); any constant but the migrations'
EVENTS_LOCK_KEY = 0x62617374696F6F


class _StoredRecord(NamedTuple):
    """A row of a record lookup (``RECORD_COLUMNS``), by name."""

    id: str
    kind: str
    subject: str
    client_id: str | None
    scopes: str
    roles: str
    tier: str | None
    created_at: float
    expires_at: float
    revoked_at: float | None
    valid_after: float | None
    metadata: str | None
    digest: bytes
    scheme: str
    pepper_id: str | None
    revoked_reason: str | None


#: the columns of a record lookup, one per ``_StoredRecord`` field (the subject's cut-off from bastion_subjects)
RECORD_COLUMNS = ", ".join(("s." if f == "valid_after" else "t.") + f for f in _StoredRecord._fields)
INFO_COLUMNS = (
    "id, kind, subject, client_id, scopes, roles, tier, name, metadata, created_at, expires_at, last_used_at, "
    "use_count, revoked_at, revoked_reason, family_id, parent_id, scheme, pepper_id"
)


class Query(NamedTuple):
    sql: str
    params: Sequence[Any] | Sequence[Sequence[Any]] = ()
    #: ``params`` is a list of parameter tuples (executemany)
    many: bool = False


Op: TypeAlias = Generator[Query, list[tuple[Any, ...]], Any]


@dataclass(frozen=True)
class Dialect:
    name: str

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def greatest(self) -> str:
        return "GREATEST" if self.postgres else "max"

    def least(self) -> str:
        return "LEAST" if self.postgres else "min"


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")


def _in(n: int) -> str:
    return "(" + ",".join("?" * n) + ")"


#: the revocation reason of a rotated token in its grace period; reserved
ROTATED = "rotated"


def _revoked_at(revoked_at: object, reason: object) -> float | None:
    """The revocation time the index compares with its clock. A rotation's grace period is a time (the old token
    works until then); any other revocation is final the moment it commits, so it is passed as -inf: a verifier
    whose clock is behind the revoking host's (NTP drift, a paused VM) must not accept the token meanwhile."""
    if revoked_at is None:
        return None
    return float(revoked_at) if reason == ROTATED else -math.inf  # type: ignore[arg-type]


def record_row(row: Sequence[Any]) -> RecordRow:
    r = _StoredRecord._make(row)
    return RecordRow(
        id=r.id,
        kind=r.kind,
        subject=r.subject,
        client_id=r.client_id,
        scopes=list(json.loads(r.scopes)),
        roles=list(json.loads(r.roles)),
        tier=r.tier,
        created_at=float(r.created_at),
        expires_at=float(r.expires_at),
        revoked_at=_revoked_at(r.revoked_at, r.revoked_reason),
        subject_valid_after=None if r.valid_after is None else float(r.valid_after),
        metadata=r.metadata,
    )


def _lock_events(d: Dialect) -> Op:
    """PostgreSQL: the lock every revocation takes *first*, held to the end of its transaction.

    Readers follow the events by sequence number, so numbers must become visible in order. PostgreSQL hands them
    out at INSERT, not at COMMIT: without this lock a slow transaction could take n, a fast one n + 1 and commit
    first, and a reader that saw n + 1 would never read n. Taken before any row is touched, it also orders the
    revocations themselves: one that updates several rows (an OAuth family, a client's tokens) never waits for a
    row another revocation holds while that one waits for the lock (a deadlock). Only revocations take it: no
    hot-path cost."""
    if d.postgres:
        yield Query("SELECT pg_advisory_xact_lock(?)", (EVENTS_LOCK_KEY,))


def _event(
    d: Dialect, now: float, kind: str, token_id: str | None, subject: str | None, valid_after: float | None
) -> Op:
    """Record a revocation for every process's index; the transaction took :func:`_lock_events` first."""
    yield Query(
        "INSERT INTO bastion_events (at, kind, token_id, subject, valid_after) VALUES (?, ?, ?, ?, ?)",
        (now, kind, token_id, subject, valid_after),
    )
    if d.postgres:
        # delivered to every listener when the transaction commits
        yield Query(f"SELECT pg_notify('{CHANNEL}', ?)", (kind,))


def fetch(candidates: Sequence[Candidate], current: bytes, pepper_id: str) -> Op:
    """The record stored under any of ``candidates``; one found under an older scheme or pepper is re-keyed to
    ``current`` (lazy pepper rotation)."""
    by_digest = {bytes(c[2]): c for c in candidates}
    rows = yield Query(
        f"SELECT {RECORD_COLUMNS} FROM bastion_tokens t LEFT JOIN bastion_subjects s ON s.subject = t.subject "  # noqa: S608
        f"WHERE t.digest IN {_in(len(by_digest))}",
        list(by_digest),
    )
    for row in rows:
        stored = _StoredRecord._make(row)
        digest, scheme, row_pepper = bytes(stored.digest), stored.scheme, stored.pepper_id
        cand = by_digest.get(digest)
        if cand is None or cand[0] != scheme or cand[1] != row_pepper:
            continue  # same bytes under another scheme: not this token's record
        if digest != current:
            yield Query(
                "UPDATE bastion_tokens SET digest = ?, scheme = 'blake3', pepper_id = ? WHERE id = ? AND digest = ?",
                (current, pepper_id, stored.id, digest),
            )
        return record_row(row)
    return None


def find_id(candidates: Sequence[Candidate]) -> Op:
    digests = list({bytes(c[2]) for c in candidates})
    rows = yield Query(f"SELECT id FROM bastion_tokens WHERE digest IN {_in(len(digests))}", digests)  # noqa: S608
    return rows[0][0] if rows else None


def insert_token(values: dict[str, Any]) -> Op:
    """Insert a new token. If the subject was cut off (``revoke_subject``) at or after the token's ``created_at``
    (same clock tick, or a clock behind the revoking one), the token is stamped just after the cut: it is issued
    after that cut committed, so it must live. Its expiry stays where it was (now + ttl): a cut pushed ahead by a
    fast clock never lengthens a token's life. ``values["created_at"]`` is updated in place."""
    rows = yield Query("SELECT valid_after FROM bastion_subjects WHERE subject = ?", (values["subject"],))
    if rows:
        values["created_at"] = max(values["created_at"], math.nextafter(float(rows[0][0]), math.inf))
    yield from insert(values)


def insert(values: dict[str, Any]) -> Op:
    cols = ", ".join(values)
    yield Query(f"INSERT INTO bastion_tokens ({cols}) VALUES {_in(len(values))}", list(values.values()))  # noqa: S608


def revoke(d: Dialect, token_id: str, reason: str | None, now: float) -> Op:
    yield from _lock_events(d)
    rows = yield Query(
        "UPDATE bastion_tokens SET revoked_at = ?, revoked_reason = ? "
        "WHERE id = ? AND (revoked_at IS NULL OR revoked_at > ?) RETURNING id",
        (now, reason, token_id, now),
    )
    if not rows:
        return False
    yield from _event(d, now, "evict", token_id, None, None)
    return True


def revoke_subject(d: Dialect, subject: str, now: float) -> Op:
    """Cut ``subject`` off at ``now``, or at the newest ``created_at`` among its tokens if that is later (a token
    stamped by a clock ahead of this one, or in the same tick): every token that exists when this commits dies,
    whatever the clocks said. Never lowers an earlier cut."""
    yield from _lock_events(d)
    rows = yield Query(
        "INSERT INTO bastion_subjects (subject, valid_after) "  # noqa: S608
        f"VALUES (?, {d.greatest()}(?, COALESCE((SELECT max(created_at) FROM bastion_tokens WHERE subject = ?), ?))) "
        "ON CONFLICT (subject) DO UPDATE "
        f"SET valid_after = {d.greatest()}(bastion_subjects.valid_after, excluded.valid_after) RETURNING valid_after",
        (subject, now, subject, now),
    )
    valid_after = float(rows[0][0])
    yield from _event(d, now, "subject", None, subject, valid_after)
    return valid_after


def rotate(d: Dialect, old_id: str, values: dict[str, Any], grace_until: float, now: float) -> Op:
    yield from _lock_events(d)
    # a second rotation of the same token during its grace period never extends that period. The old token must
    # still be valid when this commits, not only when rotate() verified it: not revoked, not expired, and not cut
    # off by a revoke_subject that committed in between (else the rotation would mint a live token for a subject
    # whose tokens were all just revoked)
    rows = yield Query(
        f"UPDATE bastion_tokens SET revoked_at = {d.least()}(COALESCE(revoked_at, ?), ?), "  # noqa: S608
        f"revoked_reason = COALESCE(revoked_reason, '{ROTATED}') "
        "WHERE id = ? AND (revoked_at IS NULL OR revoked_at > ?) AND expires_at > ? AND NOT EXISTS ("
        "SELECT 1 FROM bastion_subjects s WHERE s.subject = bastion_tokens.subject "
        "AND s.valid_after >= bastion_tokens.created_at) RETURNING created_at",
        (grace_until, grace_until, old_id, now, now),
    )
    if not rows:
        return False
    # PostgreSQL (READ COMMITTED): a revoke_subject that committed while the UPDATE ran is visible now; the old
    # token is then cut off, and no new token may come out of it (the UPDATE above changed nothing that matters)
    cut = yield Query("SELECT valid_after FROM bastion_subjects WHERE subject = ?", (values["subject"],))
    if cut and float(cut[0][0]) >= float(rows[0][0]):
        return False
    yield from insert_token(values)
    yield from _event(d, now, "evict", old_id, None, None)
    return True


def info(token_id: str) -> Op:
    rows = yield Query(f"SELECT {INFO_COLUMNS} FROM bastion_tokens WHERE id = ?", (token_id,))  # noqa: S608
    return rows[0] if rows else None


def list_subject(subject: str) -> Op:
    rows = yield Query(
        f"SELECT {INFO_COLUMNS} FROM bastion_tokens WHERE subject = ? ORDER BY created_at, id",  # noqa: S608
        (subject,),
    )
    return rows


def flush_usage(usage: Sequence[tuple[str, int, float]]) -> Op:
    """Add counted uses and move ``last_used_at`` forward, one row per token (executemany)."""
    if usage:
        yield Query(
            "UPDATE bastion_tokens SET use_count = use_count + ?, last_used_at = CASE "
            "WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END WHERE id = ?",
            [(n, t, t, token_id) for token_id, n, t in usage],
            many=True,
        )
    return len(usage)


def events_since(seq: int) -> Op:
    rows = yield Query(
        "SELECT seq, kind, token_id, subject, valid_after FROM bastion_events WHERE seq > ? ORDER BY seq LIMIT 10000",
        (seq,),
    )
    return rows


def revoke_jti(d: Dialect, jti: str, until: float, now: float) -> Op:
    """Refuse the JWT ``jti`` until ``until`` (its ``exp``); a second revocation never shortens the first."""
    yield from _lock_events(d)
    rows = yield Query(
        "INSERT INTO bastion_revoked_jtis (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO UPDATE "  # noqa: S608
        f"SET expires_at = {d.greatest()}(bastion_revoked_jtis.expires_at, excluded.expires_at) RETURNING expires_at",
        (jti, until),
    )
    until = float(rows[0][0])
    yield from _event(d, now, "jti", jti, None, until)
    return until


def revoked_jtis(now: float) -> Op:
    rows = yield Query("SELECT jti, expires_at FROM bastion_revoked_jtis WHERE expires_at >= ?", (now,))
    return [(r[0], float(r[1])) for r in rows]


def subject_cutoffs() -> Op:
    rows = yield Query("SELECT subject, valid_after FROM bastion_subjects")
    return [(r[0], float(r[1])) for r in rows]


def last_seq() -> Op:
    rows = yield Query("SELECT coalesce(max(seq), 0) FROM bastion_events")
    return int(rows[0][0])


def prune_events(before: float) -> Op:
    yield Query("DELETE FROM bastion_events WHERE at < ?", (before,))
    # a revoked JWT past its own expiry is refused as expired anyway
    yield Query("DELETE FROM bastion_revoked_jtis WHERE expires_at < ?", (before,))


def pepper_ids_in_use() -> Op:
    rows = yield Query("SELECT DISTINCT pepper_id FROM bastion_tokens WHERE pepper_id IS NOT NULL")
    return {r[0] for r in rows}


def import_rows(rows: Sequence[dict[str, Any]]) -> Op:
    if not rows:
        return 0
    cols = list(rows[0])
    conflict = " ON CONFLICT (digest) DO NOTHING"
    yield Query(
        f"INSERT INTO bastion_tokens ({', '.join(cols)}) VALUES {_in(len(cols))}{conflict}",  # noqa: S608
        [tuple(r[c] for c in cols) for r in rows],
        many=True,
    )
    return len(rows)
