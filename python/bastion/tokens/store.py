"""``bastion.TokenStore``: opaque ("database") tokens — issue, verify, revoke, rotate.

Only a keyed digest of a token is ever stored. ``verify`` runs in Rust against an in-memory index
(digest → record); a miss is looked up once in the backend and cached, unknown digests go to a bounded
negative cache, and usage counters are written in batches by a background thread, off the request path.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import math
import re
import secrets
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from bastion._core import OpaqueIndex, Principal, _Miss
from bastion.errors import AuthUnavailable, BastionError, ConfigurationError, TokenRevoked, UnknownToken
from bastion.tokens import ops
from bastion.tokens.backends import Backend, PostgresBackend, SQLiteBackend

__all__ = ["IssuedToken", "TokenInfo", "TokenStore"]

Kind = Literal["k", "a", "r", "c"]
KINDS: tuple[str, ...] = ("k", "a", "r", "c")
#: default lifetime of an issued token: 30 days
DEFAULT_TTL = 30 * 86400.0
#: longest lifetime accepted: 10 years
MAX_TTL = 10 * 366 * 86400.0
#: how long revocation events are kept for other processes to catch up
EVENT_RETENTION = 86400.0
_ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")
_NAME_MAX = 256
#: control characters (C0, DEL, C1) are refused in every stored name
_PLAIN_RE = re.compile(r"^[^\x00-\x1f\x7f-\x9f]*$")
_META_DEPTH = 32
#: how far ahead of this host's clock an imported creation time may be (another host's clock)
_CLOCK_SLACK = 300.0
_META_MAX = 65_536


def _backend_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.Error]
    try:
        import psycopg
        import psycopg_pool

        errors += [psycopg.Error, psycopg_pool.PoolTimeout]
    except ImportError:  # pragma: no cover - psycopg is an optional dependency
        pass
    return tuple(errors)


_BACKEND_ERRORS = _backend_errors()
_log = logging.getLogger("bastion.tokens")
#: the keyword options of TokenStore(...)
_OPTIONS = frozenset(
    {
        "prefix",
        "pepper",
        "peppers",
        "pepper_id",
        "foreign_tokens",
        "negative_cache_size",
        "negative_ttl",
        "usage_interval",
        "poll_interval",
        "default_ttl",
        "pool_size",
        "timeout",
        "background",
    }
)
_WORKER_ERRORS: tuple[type[BaseException], ...] = (AuthUnavailable, *_BACKEND_ERRORS)


def _unavailable(exc: BaseException) -> AuthUnavailable:
    # the driver's message may name hosts or SQL, never a token: still, keep it out of the client message
    return AuthUnavailable(f"the token store is unavailable ({type(exc).__name__})", retry_after=1.0)


@dataclass(frozen=True)
class IssuedToken:
    """A newly issued token. ``token`` is the secret, shown this once and never stored; it is left out of the
    repr. ``id`` is public and safe to log."""

    token: str = field(repr=False)
    id: str
    subject: str
    kind: str
    expires_at: float
    created_at: float
    scopes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return repr(self)


@dataclass(frozen=True)
class TokenInfo:
    """What a store knows about a token: metadata and usage, never the secret or its digest."""

    id: str
    kind: str
    subject: str
    client_id: str | None
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    tier: str | None
    name: str | None
    metadata: Mapping[str, Any]
    created_at: float
    expires_at: float
    last_used_at: float | None
    use_count: int
    revoked_at: float | None
    revoked_reason: str | None
    family_id: str | None
    parent_id: str | None
    scheme: str
    pepper_id: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> TokenInfo:
        return cls(
            id=row[0],
            kind=row[1],
            subject=row[2],
            client_id=row[3],
            scopes=tuple(json.loads(row[4])),
            roles=tuple(json.loads(row[5])),
            tier=row[6],
            name=row[7],
            metadata=json.loads(row[8]) if row[8] else {},
            created_at=float(row[9]),
            expires_at=float(row[10]),
            last_used_at=None if row[11] is None else float(row[11]),
            use_count=int(row[12]),
            revoked_at=None if row[13] is None else float(row[13]),
            revoked_reason=row[14],
            family_id=row[15],
            parent_id=row[16],
            scheme=row[17],
            pepper_id=row[18],
        )

    def is_active(self, now: float | None = None) -> bool:
        t = time.time() if now is None else now
        return self.expires_at > t and (self.revoked_at is None or self.revoked_at > t)


def _config(message: str) -> ConfigurationError:
    return ConfigurationError(message)


def parse_url(url: str | None) -> tuple[str, str | None]:
    """``(kind, location)``: ``("memory", None)``, ``("sqlite", path)`` or ``("postgresql", url)``."""
    if url is None:
        return "memory", None
    if not isinstance(url, str):
        raise _config("the store URL must be a str or None")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path in ("", "/"):
            raise _config("a sqlite:/// URL needs a file path: sqlite:///relative.db or sqlite:////abs/path.db")
        if path == ":memory:":
            return "memory", None
        return "sqlite", path
    if url.startswith(("postgresql://", "postgres://")):
        _check_postgres_url(url)
        return "postgresql", url
    raise _config("unsupported store URL: use None, sqlite:///path.db, sqlite:////abs/path.db or postgresql://...")


def _text(value: object, what: str, *, limit: int = _NAME_MAX) -> str:
    """A non-empty str of at most ``limit`` characters that every backend stores as is: valid UTF-8 (no lone
    surrogates) and no control characters (PostgreSQL refuses NUL; the others have no place in a name)."""
    if not isinstance(value, str) or not value or len(value) > limit or not _PLAIN_RE.match(value):
        raise _config(f"{what} must be a non-empty str of at most {limit} characters, without control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _config(f"{what} must be valid Unicode (no lone surrogates)") from None
    return value


def _check_postgres_url(url: str) -> None:
    """Refuse a URL libpq cannot parse, or with a port that is not a number, before any connection attempt. The
    URL may hold a password: it never goes into the message, and the parser's exception (which quotes the URL) is
    not chained."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # pragma: no cover - psycopg is an optional dependency
        raise _config("PostgreSQL token stores need psycopg (pip install 'psycopg[binary]' psycopg-pool)") from None
    try:
        params = conninfo_to_dict(url)
    except Exception:
        raise _config("the PostgreSQL URL cannot be parsed") from None
    port = str(params.get("port", ""))
    # one port per host; an empty one means the default
    if port and not all(p == "" or (p.isdigit() and 0 < int(p) < 65536) for p in port.split(",")):
        raise _config("the PostgreSQL URL's port must be a number between 1 and 65535")


def _names(values: Iterable[str] | str | None, what: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = values.split()
    if not isinstance(values, Iterable) or isinstance(values, bytes | bytearray | Mapping):
        raise _config(f"{what} must be a list of str or a space-separated str")
    out: list[str] = []
    for v in values:
        if not isinstance(v, str) or any(c.isspace() for c in v):
            raise _config(f"each of {what} must be a non-empty str without spaces")
        out.append(_text(v, f"each of {what}"))
    return sorted(set(out))


def _opt_str(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _number(value: object, what: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _config(f"{what} must be a finite number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise _config(f"{what} must be a finite number")
    if not low <= number <= high:
        raise _config(f"{what} must be between {low:g} and {high:g}")
    return number


def _json_value(value: object, depth: int) -> None:
    """Check that ``value`` is plain JSON the Rust side reads back exactly: str keys, finite floats, 64-bit
    integers, valid Unicode, bounded depth."""
    if depth > _META_DEPTH:
        raise _config(f"metadata may nest at most {_META_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise _config("metadata integers must fit in 64 bits")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _config("metadata numbers must be finite")
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _config("metadata strings must be valid Unicode (no lone surrogates)") from None
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _config("metadata keys must be str")
            _json_value(k, depth + 1)
            _json_value(v, depth + 1)
        return
    if isinstance(value, list | tuple):
        for v in value:
            _json_value(v, depth + 1)
        return
    raise _config("metadata must hold only JSON values (str, int, float, bool, None, lists and str-keyed dicts)")


def _metadata(metadata: object) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise _config("metadata must be a mapping")
    if not metadata:
        return None
    _json_value(metadata, 0)
    text = json.dumps(dict(metadata), separators=(",", ":"), allow_nan=False)
    if len(text) > _META_MAX:
        raise _config(f"metadata must serialise to at most {_META_MAX} characters of JSON")
    return text


def _resolve_peppers(
    location: str | None, pepper: object, peppers: object, pepper_id: object
) -> tuple[dict[str, bytes], str]:
    if pepper is not None and peppers is not None:
        raise _config("give pepper= or peppers=, not both")
    if pepper_id is not None and not isinstance(pepper_id, str):
        raise _config("pepper_id must be a str")
    if peppers is not None:
        if not isinstance(peppers, Mapping) or not peppers:
            raise _config("peppers must be a non-empty dict of id -> bytes")
        table = dict(peppers)
        if pepper_id is None:
            if len(table) != 1:
                raise _config("pepper_id= must name the current pepper when several are given")
            pepper_id = next(iter(table))
        if pepper_id not in table:
            raise _config("pepper_id is not among the configured peppers")
        return table, pepper_id  # type: ignore[return-value]  # the Rust index checks the types
    if pepper is None:
        if location is not None:
            raise _config("a persistent token store needs a server-side pepper (pepper= or peppers=)")
        # in-memory store: its tokens die with the process, so a random pepper serves
        return {"memory": secrets.token_bytes(32)}, "memory"
    current = pepper_id if pepper_id is not None else "default"
    return {current: pepper}, current  # type: ignore[dict-item]  # the Rust index checks the pepper's type


class TokenStore(OpaqueIndex):
    """Opaque tokens backed by memory (``None``), SQLite (``sqlite:///file.db``) or PostgreSQL
    (``postgresql://…``).

    ``pepper`` (or ``peppers={id: bytes}`` with ``pepper_id=`` naming the current one) keys the digests; at least
    32 bytes, kept out of the database. Records stored under an older pepper still verify and are re-keyed to the
    current one on first use. ``foreign_tokens=True`` accepts tokens outside bastion's format (imported stores).
    Unknown digests are remembered ``negative_ttl`` seconds (default 5) in a cache of ``negative_cache_size``
    entries: a token that appears in the backend by another path (an import) is found at most that late. Usage
    counters are written every ``usage_interval`` seconds (default 10); other processes' revocations are
    applied within ``poll_interval`` (SQLite, default 0.5 s) or at once (PostgreSQL, LISTEN/NOTIFY). PostgreSQL
    stores keep a pool of ``pool_size`` connections and wait at most ``timeout`` seconds for one; past that, the
    call fails with ``auth_unavailable``.
    """

    def __new__(cls, url: str | None = None, **options: Any) -> TokenStore:
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise _config(f"unknown TokenStore option(s): {', '.join(unknown)}")
        if not isinstance(options.get("background", True), bool):
            raise _config("background must be a bool")
        _kind, location = parse_url(url)
        peppers, current = _resolve_peppers(
            location, options.get("pepper"), options.get("peppers"), options.get("pepper_id")
        )
        size = options.get("negative_cache_size", 65_536)
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 10_000_000:
            raise _config("negative_cache_size must be an int between 0 and 10,000,000")
        ttl = _number(options.get("negative_ttl", 5.0), "negative_ttl", low=0, high=3600)
        foreign = options.get("foreign_tokens", False)
        if not isinstance(foreign, bool):
            raise _config("foreign_tokens must be a bool")
        prefix = options.get("prefix", "bst")
        if not isinstance(prefix, str):
            raise _config("prefix must be a str")
        return super().__new__(
            cls, prefix, peppers, current, foreign_tokens=foreign, negative_capacity=size, negative_ttl=ttl
        )

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "bst",
        pepper: bytes | None = None,
        peppers: Mapping[str, bytes] | None = None,
        pepper_id: str | None = None,
        foreign_tokens: bool = False,
        negative_cache_size: int = 65_536,
        negative_ttl: float = 5.0,
        usage_interval: float = 10.0,
        poll_interval: float = 0.5,
        default_ttl: float = DEFAULT_TTL,
        pool_size: int = 8,
        timeout: float = 5.0,
        background: bool = True,
    ) -> None:
        self.url_kind, location = parse_url(url)
        self.usage_interval = _number(usage_interval, "usage_interval", low=0.01, high=86400)
        self.poll_interval = _number(poll_interval, "poll_interval", low=0.01, high=60)
        self.default_ttl = _number(default_ttl, "default_ttl", low=1, high=MAX_TTL)
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or not 1 <= pool_size <= 1000:
            raise _config("pool_size must be an int between 1 and 1000")
        connect_timeout = _number(timeout, "timeout", low=0.1, high=600)
        try:
            if self.url_kind == "postgresql":
                assert location is not None
                self._backend: Backend = PostgresBackend(location, pool_size=pool_size, connect_timeout=connect_timeout)
            else:
                self._backend = SQLiteBackend(location)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_READONLY"):
                raise _config(f"cannot open the SQLite token store ({exc.sqlite_errorname})") from exc
            raise _unavailable(exc) from exc
        except _BACKEND_ERRORS as exc:
            raise _unavailable(exc) from exc
        self._dialect = self._backend.dialect
        self._closed = False
        try:
            in_use = self._backend.run(ops.pepper_ids_in_use())
            missing = sorted(set(in_use) - set(self.pepper_ids))
            if missing:
                self._backend.close()
                raise _config(
                    f"records in this store use pepper id(s) {', '.join(map(repr, missing))} that are not configured; "
                    "pass peppers={id: bytes, ...} with every id still in use"
                )
            if background:
                self._backend.listen()
            self._seq: int = self._backend.run(ops.last_seq())
            # subjects revoked before this process started (the table holds only revoked subjects): their cut-offs
            # apply to JWTs too, which never pass through the record lookup
            for subject, valid_after in self._backend.run(ops.subject_cutoffs()):
                self._subject_cutoff(subject, valid_after)
        except _BACKEND_ERRORS as exc:
            self._backend.close()
            raise _unavailable(exc) from exc
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        #: when the change feed was last read in full (monotonic); the watchdog drops the index when it gets old
        self._fed_at = time.monotonic()
        self._stale_after = max(1.0, 10 * self.poll_interval)
        if background:
            ref = weakref.ref(self)
            self._worker = threading.Thread(
                target=_work, args=(ref, self._backend, self._stop), name="bastion-tokens", daemon=True
            )
            self._watchdog = threading.Thread(
                target=_watch, args=(ref, self._stop), name="bastion-tokens-watchdog", daemon=True
            )
            self._worker.start()
            self._watchdog.start()

    # ------------------------------------------------------------------------------------------- internals

    def _fetch(self, candidates: builtins.list[ops.Candidate], digest: bytes) -> ops.RecordRow | None:
        """Called by the Rust ``verify`` on an index miss."""
        try:
            row: ops.RecordRow | None = self._backend.run(ops.fetch(candidates, digest, self.pepper_id))
            return row
        except BastionError:
            raise
        except Exception as exc:
            # whatever the driver or pool raised, a request fails closed with a 503, never a 500
            raise _unavailable(exc) from exc

    def _run(self, op: ops.Op, *, write: bool = False) -> Any:
        try:
            return self._backend.run(op, write=write)
        except _BACKEND_ERRORS as exc:
            raise _unavailable(exc) from exc

    async def _arun(self, op: ops.Op, *, write: bool = False) -> Any:
        if self._closed:
            # the async pool opens lazily: a closed store must not open a new one
            raise AuthUnavailable("the token store is closed", retry_after=1.0)
        try:
            return await self._backend.arun(op, write=write)
        except _BACKEND_ERRORS as exc:
            raise _unavailable(exc) from exc

    def _apply_events(self) -> None:
        """Apply revocations made by any process (this one included) since the last sequence number."""
        while True:
            rows = self._run(ops.events_since(self._seq))
            for seq, kind, token_id, subject, valid_after in rows:
                if kind == "evict" and token_id is not None:
                    self._evict(token_id)
                elif kind == "subject" and subject is not None and valid_after is not None:
                    self._subject_cutoff(subject, float(valid_after))
                self._seq = max(self._seq, int(seq))
            if len(rows) < 10_000:
                return

    def _flush_usage(self) -> int:
        usage = self._drain_usage()
        if not usage:
            return 0
        n: int = self._run(ops.flush_usage(usage), write=True)
        return n

    def _prepare(
        self,
        subject: object,
        scopes: Iterable[str] | str | None,
        roles: Iterable[str] | str | None,
        tier: object,
        ttl: object,
        name: object,
        metadata: object,
        kind: object,
        client_id: object,
        now: float,
    ) -> tuple[dict[str, Any], str, bytes]:
        subject = _text(subject, "subject")
        if not isinstance(kind, str) or kind not in KINDS:
            raise _config("kind must be one of 'k' (API key), 'a' (access), 'r' (refresh), 'c' (client secret)")
        life = self.default_ttl if ttl is None else _number(ttl, "ttl", low=1, high=MAX_TTL)
        meta = _metadata(metadata)
        token, digest = self._new_token(str(kind))
        values: dict[str, Any] = {
            "id": self._new_id(),
            "digest": digest,
            "scheme": "blake3",
            "pepper_id": self.pepper_id,
            "kind": kind,
            "subject": subject,
            "client_id": _opt_str(client_id, "client_id"),
            "scopes": json.dumps(_names(scopes, "scopes")),
            "roles": json.dumps(_names(roles, "roles")),
            "tier": _opt_str(tier, "tier"),
            "name": _opt_str(name, "name"),
            "metadata": meta,
            "created_at": now,
            "expires_at": now + life,
        }
        return values, token, digest

    def _issued(self, values: dict[str, Any], token: str, digest: bytes) -> IssuedToken:
        self._insert(
            digest,
            ops.RecordRow(
                id=values["id"],
                kind=values["kind"],
                subject=values["subject"],
                client_id=values["client_id"],
                scopes=json.loads(values["scopes"]),
                roles=json.loads(values["roles"]),
                tier=values["tier"],
                created_at=values["created_at"],
                expires_at=values["expires_at"],
                revoked_at=None,
                subject_valid_after=None,
                metadata=values["metadata"],
            ),
        )
        return IssuedToken(
            token=token,
            id=values["id"],
            subject=values["subject"],
            kind=values["kind"],
            expires_at=values["expires_at"],
            created_at=values["created_at"],
            scopes=tuple(json.loads(values["scopes"])),
        )

    def _token_id(self, token_or_id: object) -> ops.Op | str:
        """An id as is, or the lookup of a token's id (format checked first)."""
        if isinstance(token_or_id, str) and _ID_RE.match(token_or_id):
            return token_or_id
        return ops.find_id(self._lookup_keys(token_or_id))

    # ----------------------------------------------------------------------------------------- public API

    def issue(
        self,
        subject: str,
        *,
        scopes: Iterable[str] | str | None = None,
        roles: Iterable[str] | str | None = None,
        tier: str | None = None,
        ttl: float | None = None,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        kind: Kind = "k",
        client_id: str | None = None,
    ) -> IssuedToken:
        """Issue a token; the returned ``token`` is shown once and never stored."""
        values, token, digest = self._prepare(
            subject, scopes, roles, tier, ttl, name, metadata, kind, client_id, time.time()
        )
        self._run(ops.insert_token(values), write=True)
        return self._issued(values, token, digest)

    async def aissue(
        self,
        subject: str,
        *,
        scopes: Iterable[str] | str | None = None,
        roles: Iterable[str] | str | None = None,
        tier: str | None = None,
        ttl: float | None = None,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        kind: Kind = "k",
        client_id: str | None = None,
    ) -> IssuedToken:
        """Async :meth:`issue`."""
        values, token, digest = self._prepare(
            subject, scopes, roles, tier, ttl, name, metadata, kind, client_id, time.time()
        )
        await self._arun(ops.insert_token(values), write=True)
        return self._issued(values, token, digest)

    async def averify(self, token: str | bytes, *, now: float | None = None) -> Principal:
        """Async :meth:`verify`: an index hit returns at once; a miss awaits the backend."""
        for _ in range(8):
            probed = self._probe(token, now)
            if not isinstance(probed, _Miss):
                return probed
            row = await self._arun(ops.fetch(probed.candidates, probed.digest, self.pepper_id))
            settled = self._settle(probed, row, now)
            if settled is not None:
                return settled
        raise AuthUnavailable("the token kept changing while it was being read", retry_after=1.0)

    def revoke(self, token_or_id: str | bytes, *, reason: str | None = None) -> bool:
        """Revoke a token (given itself or its id). True if this call revoked it; False if it was unknown or
        already revoked. Once this returns, no verify of the token succeeds in this process, and other
        processes follow within ``poll_interval`` (SQLite) or at once (PostgreSQL)."""
        reason = _opt_str(reason, "reason")
        if reason == ops.ROTATED:
            raise _config(f"the reason {ops.ROTATED!r} is reserved for rotated tokens in their grace period")
        target = self._token_id(token_or_id)
        token_id = target if isinstance(target, str) else self._run(target)
        if token_id is None:
            return False
        done: bool = self._run(ops.revoke(self._dialect, token_id, reason, time.time()), write=True)
        self._evict(token_id)
        return done

    async def arevoke(self, token_or_id: str | bytes, *, reason: str | None = None) -> bool:
        """Async :meth:`revoke`."""
        reason = _opt_str(reason, "reason")
        if reason == ops.ROTATED:
            raise _config(f"the reason {ops.ROTATED!r} is reserved for rotated tokens in their grace period")
        target = self._token_id(token_or_id)
        token_id = target if isinstance(target, str) else await self._arun(target)
        if token_id is None:
            return False
        done: bool = await self._arun(ops.revoke(self._dialect, token_id, reason, time.time()), write=True)
        self._evict(token_id)
        return done

    def revoke_subject(self, subject: str) -> float:
        """Revoke every token of ``subject`` issued until now (in O(1): a per-subject "valid after" time);
        tokens issued afterwards work. Returns the cut-off time."""
        subject = _text(subject, "subject")
        cut: float = self._run(ops.revoke_subject(self._dialect, subject, time.time()), write=True)
        self._subject_cutoff(subject, cut)
        return cut

    async def arevoke_subject(self, subject: str) -> float:
        """Async :meth:`revoke_subject`."""
        subject = _text(subject, "subject")
        cut: float = await self._arun(ops.revoke_subject(self._dialect, subject, time.time()), write=True)
        self._subject_cutoff(subject, cut)
        return cut

    def _rotation(self, grace: object, old: Principal) -> tuple[str, dict[str, Any], str, bytes, float]:
        grace_s = _number(grace, "grace", low=0, high=MAX_TTL)
        now = time.time()
        info = self._info_or_raise(old)
        life = max(1.0, info.expires_at - info.created_at)
        values, new_token, digest = self._prepare(
            info.subject,
            info.scopes,
            info.roles,
            info.tier,
            life,
            info.name,
            info.metadata,
            info.kind,
            info.client_id,
            now,
        )
        values["family_id"] = info.family_id or info.id
        values["parent_id"] = info.id
        return info.id, values, new_token, digest, now + grace_s

    def _info_or_raise(self, old: Principal) -> TokenInfo:
        assert old.token_id is not None
        info = self.get(old.token_id)
        if info is None:
            raise UnknownToken()
        return info

    def rotate(self, token: str | bytes, *, grace: float = 60.0) -> IssuedToken:
        """Replace a valid token by a new one with the same subject, scopes, roles, tier, kind and lifetime. The
        old token keeps working for ``grace`` seconds, then fails as ``token_revoked``."""
        old = self.verify(token, now=time.time())  # the clock revoke and issue use
        old_id, values, new_token, digest, until = self._rotation(grace, old)
        if not self._run(ops.rotate(self._dialect, old_id, values, until, time.time()), write=True):
            self._lost_rotation(token, old_id)
        self._evict(old_id)
        return self._issued(values, new_token, digest)

    def _lost_rotation(self, token: str | bytes, old_id: str) -> NoReturn:
        """The old token stopped being valid between the check and the commit: raise why (revoked, cut off or
        expired), from a fresh read."""
        self._evict(old_id)
        self.verify(token, now=time.time())
        raise TokenRevoked()

    async def arotate(self, token: str | bytes, *, grace: float = 60.0) -> IssuedToken:
        """Async :meth:`rotate`."""
        old = await self.averify(token, now=time.time())
        old_id, values, new_token, digest, until = await asyncio.to_thread(self._rotation, grace, old)
        if not await self._arun(ops.rotate(self._dialect, old_id, values, until, time.time()), write=True):
            self._evict(old_id)
            await self.averify(token, now=time.time())
            raise TokenRevoked()
        self._evict(old_id)
        return self._issued(values, new_token, digest)

    def get(self, token_id: str) -> TokenInfo | None:
        """A token's metadata and usage by its public id (never the secret), or None."""
        if not isinstance(token_id, str) or not _ID_RE.match(token_id):
            return None
        row = self._run(ops.info(token_id))
        return None if row is None else TokenInfo.from_row(row)

    async def aget(self, token_id: str) -> TokenInfo | None:
        """Async :meth:`get`."""
        if not isinstance(token_id, str) or not _ID_RE.match(token_id):
            return None
        row = await self._arun(ops.info(token_id))
        return None if row is None else TokenInfo.from_row(row)

    def list(self, subject: str) -> builtins.list[TokenInfo]:
        """Every token of ``subject`` (active, expired and revoked), oldest first."""
        subject = _text(subject, "subject")
        rows = self._run(ops.list_subject(subject))
        return [TokenInfo.from_row(r) for r in rows]

    async def alist(self, subject: str) -> builtins.list[TokenInfo]:
        """Async :meth:`list`."""
        subject = _text(subject, "subject")
        rows = await self._arun(ops.list_subject(subject))
        return [TokenInfo.from_row(r) for r in rows]

    def flush(self) -> int:
        """Write the usage counted so far (the background thread does this every ``usage_interval``)."""
        return self._flush_usage()

    def refresh(self) -> None:
        """Apply other processes' revocations now (the background thread does this continuously)."""
        self._apply_events()

    def import_hashed(self, rows: Iterable[Mapping[str, Any]], *, scheme: str = "sha256-b64url") -> int:
        """Import tokens from another store by their digest, so they keep working without re-issuing.

        Each row: ``digest`` (32 bytes), ``subject``, ``expires_at``; optional ``created_at``, ``scopes``,
        ``roles``, ``tier``, ``name``, ``client_id``, ``kind``. ``scheme`` says how the digests were made:
        ``"sha256-b64url"`` (Phoenix ``phx.gen.auth``: SHA-256 of the raw bytes sent as unpadded base64url),
        ``"sha256"`` (SHA-256 of the token text) or ``"hmac-sha256"`` (keyed by one of this store's peppers,
        named by ``pepper_id`` in each row). Imported tokens outside bastion's format verify only with
        ``foreign_tokens=True``; each is re-keyed to the current pepper on first use. Rows whose digest is
        already stored are skipped. Returns the number of rows given.
        """
        if not isinstance(scheme, str) or scheme not in ("sha256-b64url", "sha256", "hmac-sha256"):
            raise _config("scheme must be 'sha256-b64url', 'sha256' or 'hmac-sha256'")
        if not isinstance(rows, Iterable) or isinstance(rows, str | bytes | Mapping):
            raise _config("rows must be an iterable of mappings")
        now = time.time()
        prepared: builtins.list[dict[str, Any]] = []
        for row in rows:
            if not isinstance(row, Mapping):
                raise _config("each imported row must be a mapping")
            digest = row.get("digest")
            if not isinstance(digest, bytes | bytearray | memoryview) or len(bytes(digest)) != 32:
                raise _config("each imported row needs a 32-byte digest")
            pepper_id = row.get("pepper_id") if scheme == "hmac-sha256" else None
            if scheme == "hmac-sha256" and (not isinstance(pepper_id, str) or pepper_id not in self.pepper_ids):
                raise _config("hmac-sha256 rows need the pepper_id of a configured pepper")
            kind = row.get("kind", "k")
            if not isinstance(kind, str) or kind not in KINDS:
                raise _config("kind must be one of 'k', 'a', 'r', 'c'")
            subject = _text(row.get("subject"), "each imported row's subject")
            # an existing token was created in the past: a future stamp would survive revoke_subject cut-offs
            created = _number(row.get("created_at", now), "created_at", low=0, high=now + _CLOCK_SLACK)
            prepared.append(
                {
                    "id": self._new_id(),
                    "digest": bytes(digest),
                    "scheme": scheme,
                    "pepper_id": pepper_id,
                    "kind": kind,
                    "subject": subject,
                    "client_id": _opt_str(row.get("client_id"), "client_id"),
                    "scopes": json.dumps(_names(row.get("scopes"), "scopes")),
                    "roles": json.dumps(_names(row.get("roles"), "roles")),
                    "tier": _opt_str(row.get("tier"), "tier"),
                    "name": _opt_str(row.get("name"), "name"),
                    "metadata": None,
                    "created_at": created,
                    "expires_at": _number(row.get("expires_at"), "expires_at", low=0, high=1e11),
                }
            )
        n: int = self._run(ops.import_rows(prepared), write=True)
        # a token tried before its import finished must not wait for the negative TTL here
        self._clear()
        return n

    def close(self) -> None:
        """Flush usage, stop the background thread and close the backend."""
        if self._closed:
            return
        self._closed = True
        self._stop_worker()
        try:
            self._flush_usage()
        except AuthUnavailable:
            pass
        finally:
            self._backend.close()
            # no more revocations reach a closed store: it serves nothing from memory (fail closed)
            self._clear()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self._closed:
            return
        await asyncio.to_thread(self._stop_worker)
        try:
            usage = self._drain_usage()
            if usage:
                await self._arun(ops.flush_usage(usage), write=True)
        except AuthUnavailable:
            pass
        finally:
            self._closed = True
            await self._backend.aclose()
            self._clear()

    def _stop_worker(self) -> None:
        self._stop.set()
        for thread in (self._worker, self._watchdog):
            if thread is not None:
                thread.join(timeout=5)

    def __enter__(self) -> TokenStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> TokenStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"TokenStore(kind={self.url_kind!r}, prefix={self.prefix!r}, pepper_id={self.pepper_id!r}, "
            f"indexed={len(self)})"
        )


def _work(ref: weakref.ref[TokenStore], backend: Backend, stop: threading.Event) -> None:
    """The background thread: other processes' revocations, usage flushes, index sweeps, event pruning."""
    store = ref()
    if store is None:
        return
    next_flush = time.monotonic() + store.usage_interval
    next_sweep = time.monotonic() + 60.0
    del store
    while not stop.is_set():
        store = ref()
        if store is None:
            return
        try:
            store._apply_events()
            store._fed_at = now = time.monotonic()
            if now >= next_flush:
                store._flush_usage()
                next_flush = now + store.usage_interval
            if now >= next_sweep:
                store._sweep(time.time())
                store._run(ops.prune_events(time.time() - EVENT_RETENTION), write=True)
                next_sweep = now + 60.0
            timeout = max(0.0, min(store.poll_interval, next_flush - now))
        except Exception as exc:  # this thread must outlive any failure
            # the change feed could not be read: revocations made elsewhere are unknown, so serve nothing from
            # memory (fail closed) until it reads again
            store._clear()
            timeout = 1.0
            if not isinstance(exc, _WORKER_ERRORS):
                _log.warning("bastion token store: background thread error (%s); retrying", type(exc).__name__)
        del store
        if not backend.wait(timeout, stop):
            store = ref()
            if store is not None:
                store._clear()
            del store


def _watch(ref: weakref.ref[TokenStore], stop: threading.Event) -> None:
    """The watchdog: if the background thread has not read the change feed for ``10 × poll_interval`` (at least
    1 s) — it hangs on a database that stopped answering, say, behind a network partition while other hosts can
    still revoke — drop the index, so that nothing is served from memory that might have been revoked meanwhile."""
    while True:
        store = ref()
        if store is None:
            return
        period = min(1.0, store._stale_after / 4)
        if time.monotonic() - store._fed_at > store._stale_after:
            store._clear()
        del store
        if stop.wait(period):
            return
