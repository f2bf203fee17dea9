"""Versioned, idempotent schema migrations for the token stores (SQLite and PostgreSQL).

``bastion_schema`` records the versions applied. Each store applies the missing ones when it opens, under a
lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level advisory lock), so several processes can
open the same database at once. Migrations are append-only: never edit a released one, add the next.

No column can hold a token: the only secret-derived column, ``digest``, is constrained to exactly 32 bytes
of binary (a digest), and a token is 54+ characters of text.
"""

from __future__ import annotations

from typing import Final

#: (version, SQLite statements, PostgreSQL statements)
MIGRATIONS: Final[list[tuple[int, tuple[str, ...], tuple[str, ...]]]] = [
    (
        1,
        (
            """CREATE TABLE IF NOT EXISTS bastion_tokens (
                id TEXT PRIMARY KEY,
                digest BLOB NOT NULL UNIQUE CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
                scheme TEXT NOT NULL CHECK (scheme IN ('blake3', 'hmac-sha256', 'sha256', 'sha256-b64url')),
                pepper_id TEXT,
                kind TEXT NOT NULL CHECK (kind IN ('k', 'a', 'r', 'c')),
                subject TEXT NOT NULL,
                client_id TEXT,
                scopes TEXT NOT NULL DEFAULT '[]',
                roles TEXT NOT NULL DEFAULT '[]',
                tier TEXT,
                name TEXT,
                metadata TEXT,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                last_used_at REAL,
                use_count INTEGER NOT NULL DEFAULT 0,
                revoked_at REAL,
                revoked_reason TEXT,
                family_id TEXT,
                parent_id TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS bastion_tokens_subject ON bastion_tokens (subject)",
            "CREATE INDEX IF NOT EXISTS bastion_tokens_pepper ON bastion_tokens (pepper_id)",
            """CREATE TABLE IF NOT EXISTS bastion_subjects (
                subject TEXT PRIMARY KEY,
                valid_after REAL NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS bastion_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                at REAL NOT NULL,
                kind TEXT NOT NULL,
                token_id TEXT,
                subject TEXT,
                valid_after REAL
            )""",
        ),
        (
            """CREATE TABLE IF NOT EXISTS bastion_tokens (
                id TEXT PRIMARY KEY,
                digest BYTEA NOT NULL UNIQUE CHECK (octet_length(digest) = 32),
                scheme TEXT NOT NULL CHECK (scheme IN ('blake3', 'hmac-sha256', 'sha256', 'sha256-b64url')),
                pepper_id TEXT,
                kind TEXT NOT NULL CHECK (kind IN ('k', 'a', 'r', 'c')),
                subject TEXT NOT NULL,
                client_id TEXT,
                scopes TEXT NOT NULL DEFAULT '[]',
                roles TEXT NOT NULL DEFAULT '[]',
                tier TEXT,
                name TEXT,
                metadata TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                last_used_at DOUBLE PRECISION,
                use_count BIGINT NOT NULL DEFAULT 0,
                revoked_at DOUBLE PRECISION,
                revoked_reason TEXT,
                family_id TEXT,
                parent_id TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS bastion_tokens_subject ON bastion_tokens (subject)",
            "CREATE INDEX IF NOT EXISTS bastion_tokens_pepper ON bastion_tokens (pepper_id)",
            """CREATE TABLE IF NOT EXISTS bastion_subjects (
                subject TEXT PRIMARY KEY,
                valid_after DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS bastion_events (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                at DOUBLE PRECISION NOT NULL,
                kind TEXT NOT NULL,
                token_id TEXT,
                subject TEXT,
                valid_after DOUBLE PRECISION
            )""",
        ),
    ),
    (
        # revoke_subject reads the newest created_at of the subject's tokens: one index probe, not a scan of them
        2,
        ("CREATE INDEX IF NOT EXISTS bastion_tokens_subject_created ON bastion_tokens (subject, created_at)",),
        ("CREATE INDEX IF NOT EXISTS bastion_tokens_subject_created ON bastion_tokens (subject, created_at)",),
    ),
    (
        # single JWTs revoked before their expiry (revoke_jti): each jti is refused until its token's exp
        3,
        (
            """CREATE TABLE IF NOT EXISTS bastion_revoked_jtis (
                jti TEXT PRIMARY KEY,
                expires_at REAL NOT NULL
            )""",
        ),
        (
            """CREATE TABLE IF NOT EXISTS bastion_revoked_jtis (
                jti TEXT PRIMARY KEY,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    (
        # the OAuth provider (bastion.oauth): its clients, the JWT access tokens it issued (so that a refresh
        # family or a disabled client can revoke them by jti) and the private_key_jwt assertions already seen
        4,
        (
            """CREATE TABLE IF NOT EXISTS bastion_oauth_clients (
                client_id TEXT PRIMARY KEY,
                name TEXT,
                secret_digest BLOB CHECK (secret_digest IS NULL
                    OR (typeof(secret_digest) = 'blob' AND length(secret_digest) = 32)),
                secret_pepper_id TEXT,
                previous_digest BLOB CHECK (previous_digest IS NULL
                    OR (typeof(previous_digest) = 'blob' AND length(previous_digest) = 32)),
                previous_pepper_id TEXT,
                previous_expires_at REAL,
                grant_types TEXT NOT NULL DEFAULT '[]',
                scopes TEXT NOT NULL DEFAULT '[]',
                tier TEXT,
                jwks TEXT,
                introspect_any INTEGER NOT NULL DEFAULT 0,
                disabled INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS bastion_oauth_jwts (
                jti TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                family_id TEXT,
                expires_at REAL NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS bastion_oauth_jwts_client ON bastion_oauth_jwts (client_id)",
            "CREATE INDEX IF NOT EXISTS bastion_oauth_jwts_family ON bastion_oauth_jwts (family_id)",
            # expired rows are pruned as new ones are written: one range of the index, not a scan
            "CREATE INDEX IF NOT EXISTS bastion_oauth_jwts_expires ON bastion_oauth_jwts (expires_at)",
            """CREATE TABLE IF NOT EXISTS bastion_oauth_assertions (
                client_id TEXT NOT NULL,
                jti TEXT NOT NULL,
                expires_at REAL NOT NULL,
                PRIMARY KEY (client_id, jti)
            )""",
            "CREATE INDEX IF NOT EXISTS bastion_oauth_assertions_expires ON bastion_oauth_assertions (expires_at)",
            "CREATE INDEX IF NOT EXISTS bastion_tokens_family ON bastion_tokens (family_id)",
            "CREATE INDEX IF NOT EXISTS bastion_tokens_client ON bastion_tokens (client_id)",
        ),
        (
            """CREATE TABLE IF NOT EXISTS bastion_oauth_clients (
                client_id TEXT PRIMARY KEY,
                name TEXT,
                secret_digest BYTEA CHECK (secret_digest IS NULL OR octet_length(secret_digest) = 32),
                secret_pepper_id TEXT,
                previous_digest BYTEA CHECK (previous_digest IS NULL OR octet_length(previous_digest) = 32),
                previous_pepper_id TEXT,
                previous_expires_at DOUBLE PRECISION,
                grant_types TEXT NOT NULL DEFAULT '[]',
                scopes TEXT NOT NULL DEFAULT '[]',
                tier TEXT,
                jwks TEXT,
                introspect_any INTEGER NOT NULL DEFAULT 0,
                disabled INTEGER NOT NULL DEFAULT 0,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS bastion_oauth_jwts (
                jti TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                family_id TEXT,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS bastion_oauth_jwts_client ON bastion_oauth_jwts (client_id)",
            "CREATE INDEX IF NOT EXISTS bastion_oauth_jwts_family ON bastion_oauth_jwts (family_id)",
            # expired rows are pruned as new ones are written: one range of the index, not a scan
            "CREATE INDEX IF NOT EXISTS bastion_oauth_jwts_expires ON bastion_oauth_jwts (expires_at)",
            """CREATE TABLE IF NOT EXISTS bastion_oauth_assertions (
                client_id TEXT NOT NULL,
                jti TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (client_id, jti)
            )""",
            "CREATE INDEX IF NOT EXISTS bastion_oauth_assertions_expires ON bastion_oauth_assertions (expires_at)",
            "CREATE INDEX IF NOT EXISTS bastion_tokens_family ON bastion_tokens (family_id)",
            "CREATE INDEX IF NOT EXISTS bastion_tokens_client ON bastion_tokens (client_id)",
        ),
    ),
]

SCHEMA_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS bastion_schema (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
)
#: the advisory lock key PostgreSQL migrations take (any constant; "bastion" in ASCII)
PG_LOCK_KEY: Final = 0x62617374696F6E

LATEST: Final = MIGRATIONS[-1][0]
