"""``bastion.TokenStore``: opaque ("database") tokens — issue, verify, revoke, rotate.

Only a keyed digest of a token is ever stored. ``verify`` runs in Rust against an in-memory index
(digest → record); a miss is looked up once in the backend and cached, unknown digests go to a bounded
negative cache, and usage counters are written in batches by a background thread (``worker``), off the
request path.

Each operation is written once, as a generator (a *flow*) that yields what it needs — a SQL operation of
:mod:`bastion.tokens.ops`, or a verified token — and receives the answer; ``_run`` drives a flow with
blocking calls and ``_arun`` with awaiting ones, so every sync/async pair is two one-line drivers. This file
holds the class and its flows, over 400 lines because each public method has a docstring and a sync and an
async driver; options, validation, records and threads live in the modules beside it.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Generator, Iterable, Mapping
from typing import Any, Literal, NamedTuple, TypeAlias, TypeVar

from bastion._core import OpaqueIndex, Principal, _Miss
from bastion.errors import AuthError, AuthUnavailable, BastionError, ConfigurationError, TokenRevoked, UnknownToken
from bastion.tokens import ops, worker
from bastion.tokens.backends import Backend, PostgresBackend, SQLiteBackend, backend_errors
from bastion.tokens.options import Options, read
from bastion.tokens.records import IssuedToken, TokenInfo
from bastion.tokens.validate import (
    DEFAULT_TTL,
    ID_RE,
    KINDS,
    MAX_TTL,
    exact_str,
    metadata_json,
    names,
    number,
    optional,
    plain,
)

__all__ = ["IssuedToken", "TokenInfo", "TokenStore"]

Kind = Literal["k", "a", "r", "c"]
#: how far ahead of this host's clock an imported creation time may be (another host's clock)
_CLOCK_SLACK = 300.0


def _reason(reason: object) -> str | None:
    reason = optional(reason, "reason")
    if reason == ops.ROTATED:
        raise ConfigurationError(f"the reason {ops.ROTATED!r} is reserved for rotated tokens in their grace period")
    return reason


def _unavailable(exc: BaseException) -> AuthUnavailable:
    # the driver's message may name hosts or SQL, never a token: still, keep it out of the client message
    return AuthUnavailable(f"the token store is unavailable ({type(exc).__name__})", retry_after=1.0)


class _Sql(NamedTuple):
    """A flow's step: run ``op`` (in a write transaction if ``write``); the flow receives its result."""

    op: ops.Op
    write: bool = False


class _Verify(NamedTuple):
    """A flow's step: verify ``token`` at ``now``; the flow receives the ``Principal`` (or the error raises)."""

    token: str | bytes
    now: float


T = TypeVar("T")
#: one whole operation: yields the steps it needs and returns its result
Flow: TypeAlias = Generator[_Sql | _Verify, Any, T]
#: what rotation needs between checking the old token and committing: old id, new row, new token, digest,
#: end of the grace period
Rotation: TypeAlias = tuple[str, dict[str, Any], str, bytes, float]


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

    _options: Options

    def __new__(cls, url: str | None = None, **options: Any) -> TokenStore:
        o = read(url, options, _DEFAULTS)
        self = super().__new__(
            cls,
            o.prefix,
            o.peppers,
            o.pepper_id,
            foreign_tokens=o.foreign_tokens,
            negative_capacity=o.negative_cache_size,
            negative_ttl=o.negative_ttl,
        )
        self._options = o
        return self

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
        # the options were read by __new__ (this signature is their one list, with the defaults)
        o = self._options
        self.url_kind = o.url_kind
        self.usage_interval = o.usage_interval
        self.poll_interval = o.poll_interval
        self.default_ttl = o.default_ttl
        try:
            if o.url_kind == "postgresql":
                assert o.location is not None
                self._backend: Backend = PostgresBackend(o.location, pool_size=o.pool_size, connect_timeout=o.timeout)
            else:
                self._backend = SQLiteBackend(o.location)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", "") in ("SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_READONLY"):
                raise ConfigurationError(f"cannot open the SQLite token store ({exc.sqlite_errorname})") from exc
            raise _unavailable(exc) from exc
        except backend_errors() as exc:
            raise _unavailable(exc) from exc
        self._dialect = self._backend.dialect
        self._closed = False
        try:
            in_use = self._backend.run(ops.pepper_ids_in_use())
            missing = sorted(set(in_use) - set(self.pepper_ids))
            if missing:
                self._backend.close()
                raise ConfigurationError(
                    f"records in this store use pepper id(s) {', '.join(map(repr, missing))} that are not configured; "
                    "pass peppers={id: bytes, ...} with every id still in use"
                )
            if o.background:
                self._backend.listen()
            self._seq: int = self._backend.run(ops.last_seq())
            # subjects revoked before this process started (the table holds only revoked subjects): their cut-offs
            # apply to JWTs too, which never pass through the record lookup
            for subject, valid_after in self._backend.run(ops.subject_cutoffs()):
                self._subject_cutoff(subject, valid_after)
            for jti, until in self._backend.run(ops.revoked_jtis(time.time())):
                self._deny_jti(jti, until)
        except backend_errors() as exc:
            self._backend.close()
            raise _unavailable(exc) from exc
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        #: when the change feed was last read in full (monotonic); the watchdog drops the index when it gets old
        self._fed_at = time.monotonic()
        self._stale_after = max(1.0, 10 * self.poll_interval)
        if o.background:
            self._worker, self._watchdog = worker.start(self, self._backend, self._stop)

    # ------------------------------------------------------------------------------------------- drivers

    def _run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` with blocking calls."""
        self._serving()
        try:
            step = next(flow)
            while True:
                if isinstance(step, _Verify):
                    step = flow.send(self.verify(step.token, now=step.now))
                else:
                    step = flow.send(self._sql(step.op, write=step.write))
        except StopIteration as done:
            result: T = done.value
            return result

    async def _arun(self, flow: Flow[T]) -> T:
        """Drive ``flow`` with awaiting calls."""
        self._serving()
        try:
            step = next(flow)
            while True:
                if isinstance(step, _Verify):
                    step = flow.send(await self.averify(step.token, now=step.now))
                else:
                    step = flow.send(await self._asql(step.op, write=step.write))
        except StopIteration as done:
            result: T = done.value
            return result

    def _serving(self) -> None:
        """Refuse when closed: a closed store serves nothing, from memory or from its backend (which would
        reopen a connection, and read records whose revocations it no longer hears)."""
        if self._closed:
            raise AuthUnavailable("the token store is closed", retry_after=1.0)

    def _sql(self, op: ops.Op, *, write: bool = False) -> Any:
        self._serving()
        try:
            return self._backend.run(op, write=write)
        except backend_errors() as exc:
            raise _unavailable(exc) from exc

    async def _asql(self, op: ops.Op, *, write: bool = False) -> Any:
        self._serving()  # the async pool opens lazily: a closed store must not open a new one
        try:
            return await self._backend.arun(op, write=write)
        except backend_errors() as exc:
            raise _unavailable(exc) from exc

    def _fetch(self, candidates: builtins.list[ops.Candidate], digest: bytes) -> ops.RecordRow | None:
        """Called by the Rust ``verify`` on an index miss."""
        self._serving()
        try:
            row: ops.RecordRow | None = self._backend.run(ops.fetch(candidates, digest, self.pepper_id))
            return row
        except BastionError:
            raise
        except Exception as exc:
            # whatever the driver or pool raised, a request fails closed with a 503, never a 500
            raise _unavailable(exc) from exc

    def _fetch_row(self, miss: _Miss) -> ops.RecordRow | None:
        """The record behind an index miss of the request path (``bastion.Authenticator``), blocking."""
        return self._fetch(miss.candidates, miss.digest)

    async def _afetch_row(self, miss: _Miss) -> ops.RecordRow | None:
        """The record behind an index miss of the request path, awaited."""
        row: ops.RecordRow | None = await self._asql(ops.fetch(miss.candidates, miss.digest, self.pepper_id))
        return row

    # --------------------------------------------------------------------------------------------- flows

    def _issue(
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
    ) -> Flow[IssuedToken]:
        life = self.default_ttl if ttl is None else number(ttl, "ttl", low=1, high=MAX_TTL)
        values, token, digest = self._prepare(
            subject, scopes, roles, tier, life, name, metadata, kind, client_id, time.time()
        )
        yield _Sql(ops.insert_token(values), write=True)
        return self._issued(values, token, digest)

    def _verified(self, token: str | bytes, now: float | None, probed: Principal | _Miss) -> Flow[Principal]:
        """The Rust ``verify`` as a flow, from a first ``_probe``: a miss yields the backend lookup."""
        for attempt in range(8):
            if attempt:
                probed = self._probe(token, now)
            if not isinstance(probed, _Miss):
                return probed
            row = yield _Sql(ops.fetch(probed.candidates, probed.digest, self.pepper_id))
            settled = self._settle(probed, row, now)
            if settled is not None:
                return settled
        raise AuthUnavailable("the token kept changing while it was being read", retry_after=1.0)

    def _revoke(self, token: object, reason: object) -> Flow[bool]:
        reason = _reason(reason)
        try:
            keys = self._lookup_keys(token)
        except AuthError:
            if isinstance(token, str) and ID_RE.match(token):
                # not a token of this store's format, so it cannot be one: a record id, as revoke() took before
                # revoke_id() existed (a store with foreign_tokens=True takes such a string as a token)
                warnings.warn(
                    "revoke() takes a token: revoke a record by its id with revoke_id()",
                    DeprecationWarning,
                    stacklevel=4,
                )
                return (yield from self._revoked(token, reason))
            raise
        token_id = yield _Sql(ops.find_id(keys))
        if token_id is None:
            return False
        return (yield from self._revoked(token_id, reason))

    def _revoke_id(self, token_id: object, reason: object) -> Flow[bool]:
        reason = _reason(reason)
        text = exact_str(token_id)
        if text is None:
            raise ConfigurationError("a token id is a str")
        if not ID_RE.match(text):
            return False  # no record has such an id
        return (yield from self._revoked(text, reason))

    def _revoked(self, token_id: str, reason: str | None) -> Flow[bool]:
        done: bool = yield _Sql(ops.revoke(self._dialect, token_id, reason, time.time()), write=True)
        self._evict(token_id)
        return done

    def _revoke_subject(self, subject: object) -> Flow[float]:
        subject = plain(subject, "subject")
        cut: float = yield _Sql(ops.revoke_subject(self._dialect, subject, time.time()), write=True)
        self._subject_cutoff(subject, cut)
        return cut

    def _revoke_jti(self, jti: object, expires_at: object) -> Flow[float]:
        jti = plain(jti, "jti")
        until = number(expires_at, "expires_at", low=0, high=time.time() + MAX_TTL)
        stored: float = yield _Sql(ops.revoke_jti(self._dialect, jti, until, time.time()), write=True)
        self._deny_jti(jti, stored)
        return stored

    def _rotate(self, token: str | bytes, grace: object) -> Flow[IssuedToken]:
        old = yield _Verify(token, time.time())  # the clock revoke and issue use
        old_id, values, new_token, digest, until = yield from self._rotation(grace, old)
        if not (yield _Sql(ops.rotate(self._dialect, old_id, values, until, time.time()), write=True)):
            # the old token stopped being valid between the check and the commit: raise why (revoked, cut off
            # or expired), from a fresh read
            self._evict(old_id)
            yield _Verify(token, time.time())
            raise TokenRevoked()
        self._evict(old_id)
        return self._issued(values, new_token, digest)

    def _rotation(self, grace: object, old: Principal) -> Flow[Rotation]:
        """The new token's row, from the old token's record (read after the old token was checked)."""
        grace_s = number(grace, "grace", low=0, high=MAX_TTL)
        now = time.time()
        assert old.token_id is not None
        info = yield from self._get(old.token_id)
        if info is None:
            raise UnknownToken()
        # the old token's lifetime, whatever it is: an imported token may live longer than issue() allows
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

    def _get(self, token_id: object) -> Flow[TokenInfo | None]:
        text = exact_str(token_id)
        if text is None or not ID_RE.match(text):
            return None
        row = yield _Sql(ops.info(text))
        return None if row is None else TokenInfo.from_row(row)

    def _list(self, subject: object) -> Flow[builtins.list[TokenInfo]]:
        subject = plain(subject, "subject")
        rows = yield _Sql(ops.list_subject(subject))
        return [TokenInfo.from_row(r) for r in rows]

    def _flushed(self) -> Flow[int]:
        """Write the usage counted since the last flush."""
        usage = self._drain_usage()
        if not usage:
            return 0
        n: int = yield _Sql(ops.flush_usage(usage), write=True)
        return n

    # ------------------------------------------------------------------------------------------- internals

    def _apply_events(self) -> None:
        """Apply revocations made by any process (this one included) since the last sequence number."""
        while True:
            rows = self._sql(ops.events_since(self._seq))
            for seq, kind, token_id, subject, valid_after in rows:
                if kind == "evict" and token_id is not None:
                    self._evict(token_id)
                elif kind == "subject" and subject is not None and valid_after is not None:
                    self._subject_cutoff(subject, float(valid_after))
                elif kind == "jti" and token_id is not None and valid_after is not None:
                    self._deny_jti(token_id, float(valid_after))
                self._seq = max(self._seq, int(seq))
            if len(rows) < 10_000:
                return

    def _flush_usage(self) -> int:
        return self._run(self._flushed())

    def _prepare(
        self,
        subject: object,
        scopes: Iterable[str] | str | None,
        roles: Iterable[str] | str | None,
        tier: object,
        life: float,
        name: object,
        metadata: object,
        kind: object,
        client_id: object,
        now: float,
    ) -> tuple[dict[str, Any], str, bytes]:
        subject = plain(subject, "subject")
        kind = exact_str(kind)
        if kind not in KINDS:
            raise ConfigurationError(
                "kind must be one of 'k' (API key), 'a' (access), 'r' (refresh), 'c' (client secret)"
            )
        meta = metadata_json(metadata)
        token, digest = self._new_token(kind)
        values: dict[str, Any] = {
            "id": self._new_id(),
            "digest": digest,
            "scheme": "blake3",
            "pepper_id": self.pepper_id,
            "kind": kind,
            "subject": subject,
            "client_id": optional(client_id, "client_id"),
            "scopes": json.dumps(names(scopes, "scopes")),
            "roles": json.dumps(names(roles, "roles")),
            "tier": optional(tier, "tier"),
            "name": optional(name, "name"),
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
        return self._run(self._issue(subject, scopes, roles, tier, ttl, name, metadata, kind, client_id))

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
        return await self._arun(self._issue(subject, scopes, roles, tier, ttl, name, metadata, kind, client_id))

    async def averify(self, token: str | bytes, *, now: float | None = None) -> Principal:
        """Async :meth:`verify`: an index hit returns at once; a miss awaits the backend."""
        probed = self._probe(token, now)
        if not isinstance(probed, _Miss):
            return probed  # an index hit, without a flow
        return await self._arun(self._verified(token, now, probed))

    def revoke(self, token: str | bytes, *, reason: str | None = None) -> bool:
        """Revoke a token, given itself (revoke a record by its public id with :meth:`revoke_id`). True if this
        call revoked it; False if it was unknown or already revoked. Once this returns, no verify of the token
        succeeds in this process, and other processes follow within ``poll_interval`` (SQLite) or at once
        (PostgreSQL). Deprecated: a record id, which cannot be a token of this store's format, is still revoked
        by id, with a ``DeprecationWarning`` (with ``foreign_tokens=True`` every string is taken as a token)."""
        return self._run(self._revoke(token, reason))

    async def arevoke(self, token: str | bytes, *, reason: str | None = None) -> bool:
        """Async :meth:`revoke`."""
        return await self._arun(self._revoke(token, reason))

    def revoke_id(self, token_id: str, *, reason: str | None = None) -> bool:
        """Revoke a token by its public record id (``IssuedToken.id``, ``TokenInfo.id``); as :meth:`revoke`."""
        return self._run(self._revoke_id(token_id, reason))

    async def arevoke_id(self, token_id: str, *, reason: str | None = None) -> bool:
        """Async :meth:`revoke_id`."""
        return await self._arun(self._revoke_id(token_id, reason))

    def revoke_subject(self, subject: str) -> float:
        """Revoke every token of ``subject`` issued until now (in O(1): a per-subject "valid after" time);
        tokens issued afterwards work. Returns the cut-off time."""
        return self._run(self._revoke_subject(subject))

    async def arevoke_subject(self, subject: str) -> float:
        """Async :meth:`revoke_subject`."""
        return await self._arun(self._revoke_subject(subject))

    def revoke_jti(self, jti: str, expires_at: float) -> float:
        """Revoke one JWT by its ``jti`` until ``expires_at`` (its ``exp``, epoch seconds): every
        ``bastion.Authenticator`` using this store refuses it as ``token_revoked`` — in this process at once,
        in others within ``poll_interval`` (SQLite) or at once (PostgreSQL). After ``expires_at`` the entry is
        forgotten (the token has expired). Returns the time until which the jti is refused."""
        return self._run(self._revoke_jti(jti, expires_at))

    async def arevoke_jti(self, jti: str, expires_at: float) -> float:
        """Async :meth:`revoke_jti`."""
        return await self._arun(self._revoke_jti(jti, expires_at))

    def rotate(self, token: str | bytes, *, grace: float = 60.0) -> IssuedToken:
        """Replace a valid token by a new one with the same subject, scopes, roles, tier, kind and lifetime. The
        old token keeps working for ``grace`` seconds, then fails as ``token_revoked``."""
        return self._run(self._rotate(token, grace))

    async def arotate(self, token: str | bytes, *, grace: float = 60.0) -> IssuedToken:
        """Async :meth:`rotate`."""
        return await self._arun(self._rotate(token, grace))

    def get(self, token_id: str) -> TokenInfo | None:
        """A token's metadata and usage by its public id (never the secret), or None."""
        return self._run(self._get(token_id))

    async def aget(self, token_id: str) -> TokenInfo | None:
        """Async :meth:`get`."""
        return await self._arun(self._get(token_id))

    def list(self, subject: str) -> builtins.list[TokenInfo]:
        """Every token of ``subject`` (active, expired and revoked), oldest first."""
        return self._run(self._list(subject))

    async def alist(self, subject: str) -> builtins.list[TokenInfo]:
        """Async :meth:`list`."""
        return await self._arun(self._list(subject))

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
        scheme = exact_str(scheme)  # type: ignore[assignment]
        if scheme not in ("sha256-b64url", "sha256", "hmac-sha256"):
            raise ConfigurationError("scheme must be 'sha256-b64url', 'sha256' or 'hmac-sha256'")
        if not isinstance(rows, Iterable) or isinstance(rows, str | bytes | Mapping):
            raise ConfigurationError("rows must be an iterable of mappings")
        try:
            given = builtins.list(rows)
        except Exception as exc:  # an iterable whose own iteration fails
            raise ConfigurationError(f"rows could not be read ({type(exc).__name__})") from None
        now = time.time()
        prepared: builtins.list[dict[str, Any]] = []
        for row in given:
            if not isinstance(row, Mapping):
                raise ConfigurationError("each imported row must be a mapping")
            digest = row.get("digest")
            if not isinstance(digest, bytes | bytearray | memoryview) or len(bytes(digest)) != 32:
                raise ConfigurationError("each imported row needs a 32-byte digest")
            pepper_id = row.get("pepper_id") if scheme == "hmac-sha256" else None
            if scheme == "hmac-sha256" and (not isinstance(pepper_id, str) or pepper_id not in self.pepper_ids):
                raise ConfigurationError("hmac-sha256 rows need the pepper_id of a configured pepper")
            kind = row.get("kind", "k")
            if not isinstance(kind, str) or kind not in KINDS:
                raise ConfigurationError("kind must be one of 'k', 'a', 'r', 'c'")
            subject = plain(row.get("subject"), "each imported row's subject")
            # an existing token was created in the past: a future stamp would survive revoke_subject cut-offs
            created = number(row.get("created_at", now), "created_at", low=0, high=now + _CLOCK_SLACK)
            prepared.append(
                {
                    "id": self._new_id(),
                    "digest": bytes(digest),
                    "scheme": scheme,
                    "pepper_id": pepper_id,
                    "kind": kind,
                    "subject": subject,
                    "client_id": optional(row.get("client_id"), "client_id"),
                    "scopes": json.dumps(names(row.get("scopes"), "scopes")),
                    "roles": json.dumps(names(row.get("roles"), "roles")),
                    "tier": optional(row.get("tier"), "tier"),
                    "name": optional(row.get("name"), "name"),
                    "metadata": None,
                    "created_at": created,
                    "expires_at": number(row.get("expires_at"), "expires_at", low=0, high=1e11),
                }
            )
        n: int = self._sql(ops.import_rows(prepared), write=True)
        # a token tried before its import finished must not wait for the negative TTL here
        self._clear()
        return n

    def close(self) -> None:
        """Flush usage, stop the background thread and close the backend."""
        if self._closed:
            return
        self._stop_worker()
        try:
            self._run(self._flushed())  # before _closed is set: _sql refuses a closed store
        except AuthUnavailable:
            pass
        finally:
            # no more revocations reach a closed store: it serves nothing, from memory or not (fail closed)
            self._closed = True
            self._mark_closed()
            self._backend.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self._closed:
            return
        await asyncio.to_thread(self._stop_worker)
        try:
            await self._arun(self._flushed())  # before _closed is set: _asql refuses a closed store
        except AuthUnavailable:
            pass
        finally:
            self._closed = True
            self._mark_closed()
            await self._backend.aclose()

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


#: every keyword option of TokenStore(...) with its default, as ``__init__`` declares them
_DEFAULTS: dict[str, Any] = {
    name: p.default
    for name, p in inspect.signature(TokenStore.__init__).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}
#: the keyword options of TokenStore(...)
_OPTIONS = frozenset(_DEFAULTS)
