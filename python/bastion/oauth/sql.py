"""The provider's SQL, written once for SQLite and PostgreSQL as operations of the token store's kind.

Each function is a generator of :class:`bastion.tokens.ops.Query` (see that module): the store's drivers run
it in one transaction, blocking or awaited. Revocations go through the store's own operations
(``ops.revoke``, ``ops.revoke_jti``), so every process following the store's change feed hears them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from bastion.tokens import ops
from bastion.tokens.ops import Dialect, Op, Query

#: the revocation reason of a refresh token that was exchanged (a second use is a reuse)
REFRESHED = "refreshed"

CLIENT_COLUMNS = (
    "client_id, name, secret_digest, secret_pepper_id, previous_digest, previous_pepper_id, previous_expires_at, "
    "grant_types, scopes, tier, jwks, introspect_any, disabled, created_at, updated_at"
)


class ClientRow(NamedTuple):
    client_id: str
    name: str | None
    secret_digest: bytes | None
    secret_pepper_id: str | None
    previous_digest: bytes | None
    previous_pepper_id: str | None
    previous_expires_at: float | None
    grant_types: str
    scopes: str
    tier: str | None
    jwks: str | None
    introspect_any: int
    disabled: int
    created_at: float
    updated_at: float


class Killed(NamedTuple):
    """What a revocation killed: opaque record ids (to evict here at once) and JWT ``(jti, exp)`` pairs."""

    ids: list[str]
    jtis: list[tuple[str, float]]


def insert_client(values: dict[str, Any]) -> Op:
    cols = ", ".join(values)
    rows = yield Query(
        f"INSERT INTO bastion_oauth_clients ({cols}) VALUES ({','.join('?' * len(values))}) "  # noqa: S608
        "ON CONFLICT (client_id) DO NOTHING RETURNING client_id",
        list(values.values()),
    )
    return bool(rows)


def get_client(client_id: str) -> Op:
    rows = yield Query(f"SELECT {CLIENT_COLUMNS} FROM bastion_oauth_clients WHERE client_id = ?", (client_id,))  # noqa: S608
    return ClientRow._make(rows[0]) if rows else None


def list_clients() -> Op:
    rows = yield Query(f"SELECT {CLIENT_COLUMNS} FROM bastion_oauth_clients ORDER BY client_id")  # noqa: S608
    return [ClientRow._make(r) for r in rows]


def rotate_secret(client_id: str, digest: bytes, pepper_id: str, previous_until: float, now: float) -> Op:
    """Move the current secret to the previous slot (valid until ``previous_until``) and store the new one."""
    rows = yield Query(
        "UPDATE bastion_oauth_clients SET previous_digest = secret_digest, previous_pepper_id = secret_pepper_id, "
        "previous_expires_at = CASE WHEN secret_digest IS NULL THEN NULL ELSE ? END, "
        "secret_digest = ?, secret_pepper_id = ?, updated_at = ? WHERE client_id = ? RETURNING client_id",
        (previous_until, digest, pepper_id, now, client_id),
    )
    return bool(rows)


def update_client(client_id: str, values: dict[str, Any]) -> Op:
    sets = ", ".join(f"{c} = ?" for c in values)
    rows = yield Query(
        f"UPDATE bastion_oauth_clients SET {sets} WHERE client_id = ? RETURNING client_id",  # noqa: S608
        [*values.values(), client_id],
    )
    return bool(rows)


def record_jwt(jti: str, client_id: str, family_id: str | None, expires_at: float, now: float) -> Op:
    """Remember an issued JWT access token by its jti (and forget the ones already expired)."""
    yield Query("DELETE FROM bastion_oauth_jwts WHERE expires_at < ?", (now,))
    yield Query(
        "INSERT INTO bastion_oauth_jwts (jti, client_id, family_id, expires_at) VALUES (?, ?, ?, ?)",
        (jti, client_id, family_id, expires_at),
    )


def seen_assertion(client_id: str, jti: str, expires_at: float, now: float) -> Op:
    """True if this client's assertion ``jti`` was seen before (a replay); otherwise remember it until it
    expires."""
    yield Query("DELETE FROM bastion_oauth_assertions WHERE expires_at < ?", (now,))
    rows = yield Query(
        "INSERT INTO bastion_oauth_assertions (client_id, jti, expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT (client_id, jti) DO NOTHING RETURNING jti",
        (client_id, jti, expires_at),
    )
    return not rows


def _serialized(d: Dialect) -> Op:
    """PostgreSQL: take, first, the lock every revocation takes first (``ops.EVENTS_LOCK_KEY``, held to the end of
    the transaction). A transaction that revokes several rows — a family, a client's tokens — or that reads a
    refresh token before spending it then never holds a row another such transaction waits for while waiting
    for that lock itself (a deadlock); and the read that follows sees every exchange committed before it."""
    if d.postgres:
        yield Query("SELECT pg_advisory_xact_lock(?)", (ops.EVENTS_LOCK_KEY,))


def serialized(d: Dialect, op: Op) -> Op:
    """``op`` (one of the store's revocations) after :func:`_serialized`'s lock."""
    yield from _serialized(d)
    return (yield from op)


def _kill(d: Dialect, where: str, params: Sequence[Any], reason: str, now: float) -> Op:
    """Revoke every live opaque token and live JWT matching ``where`` (a condition on ``client_id`` or
    ``family_id``, the same column in both tables)."""
    rows = yield Query(
        f"SELECT id FROM bastion_tokens WHERE {where} AND (revoked_at IS NULL OR revoked_at > ?) "  # noqa: S608
        "AND expires_at > ?",
        (*params, now, now),
    )
    ids = [r[0] for r in rows]
    for token_id in ids:
        yield from ops.revoke(d, token_id, reason, now)
    rows = yield Query(
        f"SELECT jti, expires_at FROM bastion_oauth_jwts WHERE {where} AND expires_at > ?",  # noqa: S608
        (*params, now),
    )
    jtis = [(r[0], float(r[1])) for r in rows]
    for jti, exp in jtis:
        yield from ops.revoke_jti(d, jti, exp, now)
    return Killed(ids, jtis)


def revoke_family(d: Dialect, family_id: str, reason: str, now: float) -> Op:
    yield from _serialized(d)
    return (yield from _kill(d, "family_id = ?", (family_id,), reason, now))


def disable_client(d: Dialect, client_id: str, now: float) -> Op:
    yield from _serialized(d)
    rows = yield Query(
        "UPDATE bastion_oauth_clients SET disabled = 1, updated_at = ? WHERE client_id = ? RETURNING client_id",
        (now, client_id),
    )
    if not rows:
        return None
    return (yield from _kill(d, "client_id = ?", (client_id,), "client_disabled", now))


class Refreshed(NamedTuple):
    """The outcome of presenting a refresh token: ``state`` is ``"ok"`` (``row`` its record), ``"invalid"``
    (unknown to this client, expired, revoked) or ``"reuse"`` (``row``, and what was ``killed``)."""

    state: str
    row: TokenRow | None = None
    killed: Killed | None = None


class TokenRow(NamedTuple):
    """The columns of a token record that issuing, refreshing and revoking read (``TOKEN_COLUMNS``)."""

    id: str
    kind: str
    client_id: str | None
    subject: str
    scopes: str
    expires_at: float
    revoked_at: float | None
    revoked_reason: str | None
    family_id: str | None
    created_at: float
    #: the subject's cut-off (revoke_subject), from bastion_subjects
    valid_after: float | None

    @property
    def family(self) -> str:
        """The family this token belongs to: the first token of the chain names it."""
        return self.family_id or self.id


TOKEN_COLUMNS = ", ".join(("s." if f == "valid_after" else "t.") + f for f in TokenRow._fields)


def use_refresh(d: Dialect, token_id: str, client_id: str, now: float, mint: Callable[[TokenRow], Op]) -> Op:
    """Exchange the refresh token ``token_id`` once, in one transaction: mark it used, then run ``mint`` (which
    inserts its successors). A token already exchanged is a reuse (RFC 9700 §4.14): its whole family dies."""
    yield from _serialized(d)
    rows = yield Query(
        f"SELECT {TOKEN_COLUMNS} FROM bastion_tokens t LEFT JOIN bastion_subjects s "  # noqa: S608
        "ON s.subject = t.subject WHERE t.id = ?",
        (token_id,),
    )
    if not rows:
        return Refreshed("invalid")
    row = TokenRow._make(rows[0])
    if row.kind != "r" or row.client_id != client_id:
        return Refreshed("invalid")
    if row.revoked_reason == REFRESHED:
        return Refreshed("reuse", row, (yield from revoke_family(d, row.family, "refresh_reuse", now)))
    if row.revoked_at is not None or float(row.expires_at) <= now:
        return Refreshed("invalid")
    if row.valid_after is not None and float(row.valid_after) >= float(row.created_at):
        return Refreshed("invalid")  # the subject was cut off (revoke_subject)
    # the store's own revocation: the row and the event other processes evict it by, in this transaction
    if not (yield from ops.revoke(d, token_id, REFRESHED, now)):
        # another request exchanged it between the read and the write: two uses of one token
        return Refreshed("reuse", row, (yield from revoke_family(d, row.family, "refresh_reuse", now)))
    yield from mint(row)
    return Refreshed("ok", row)


def find_record(candidates: Sequence[ops.Candidate]) -> Op:
    """The :class:`TokenRow` of the record stored under any of ``candidates``, or None."""
    digests = list({bytes(c[2]) for c in candidates})
    rows = yield Query(
        f"SELECT {TOKEN_COLUMNS} FROM bastion_tokens t LEFT JOIN bastion_subjects s "  # noqa: S608
        f"ON s.subject = t.subject WHERE t.digest IN ({','.join('?' * len(digests))})",
        digests,
    )
    return TokenRow._make(rows[0]) if rows else None


def scopes_of(text: str) -> list[str]:
    return list(json.loads(text))
