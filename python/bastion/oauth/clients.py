"""The client registry: OAuth clients in the token store's database, their secrets only as keyed digests.

A client secret is a token of the store's format (kind ``c``, so secret scanners know it) whose keyed digest —
under the store's pepper — is all that is kept. Each client has two secret slots: rotating moves the current
secret to the second slot, where it keeps working for a grace period while the new one is rolled out, so a
rotation needs no downtime. Every operation is a flow driven by the store's own drivers (``_run``/``_arun``).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion._core import KeySet
from bastion.errors import AuthError, BastionError, ConfigurationError
from bastion.oauth import events, sql
from bastion.tokens.store import Flow, TokenStore, _Sql
from bastion.tokens.validate import MAX_TTL, exact_str, names, number, optional

__all__ = ["GRANT_TYPES", "Client", "ClientRegistry", "NewSecret"]

#: the grant types a client may be allowed
GRANT_TYPES: tuple[str, ...] = ("client_credentials", "refresh_token")
#: client ids: unreserved URL characters (RFC 3986), so that Basic and form encodings carry them unchanged
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
#: the JWS algorithms a client's private_key_jwt assertion may use (asymmetric only: the server holds no secret)
ASSERTION_ALGORITHMS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "EdDSA",
)


@dataclass(frozen=True)
class Client:
    """A registered client, as the registry holds it: never a secret or its digest."""

    client_id: str
    name: str | None
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    tier: str | None
    #: the public keys of private_key_jwt (a JWK Set), if any
    jwks: Mapping[str, Any] | None
    #: may introspect tokens issued to other clients (a resource server)
    introspect_any: bool
    disabled: bool
    has_secret: bool
    #: until when the previous secret still works (after a rotation), if it does
    previous_secret_until: float | None
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: sql.ClientRow) -> Client:
        return cls(
            client_id=row.client_id,
            name=row.name,
            grant_types=tuple(json.loads(row.grant_types)),
            scopes=tuple(json.loads(row.scopes)),
            tier=row.tier,
            jwks=json.loads(row.jwks) if row.jwks else None,
            introspect_any=bool(row.introspect_any),
            disabled=bool(row.disabled),
            has_secret=row.secret_digest is not None,
            previous_secret_until=None if row.previous_expires_at is None else float(row.previous_expires_at),
            created_at=float(row.created_at),
            updated_at=float(row.updated_at),
        )


@dataclass(frozen=True)
class NewSecret:
    """A client with its new secret, which is shown this once and left out of the repr."""

    client: Client
    secret: str | None = field(repr=False)

    def __str__(self) -> str:
        return repr(self)


def check_client_id(value: object) -> str:
    text = exact_str(value)
    if text is None or not _CLIENT_ID_RE.match(text):
        raise ConfigurationError("a client id is 1 to 128 characters of A-Z a-z 0-9 . _ ~ -")
    return text


def _grant_types(value: object) -> list[str]:
    given = names(value, "grant_types")  # type: ignore[arg-type]
    unknown = [g for g in given if g not in GRANT_TYPES]
    if unknown or not given:
        raise ConfigurationError(f"grant_types must be some of {', '.join(GRANT_TYPES)}")
    return given


def _jwks(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping | str | bytes):
        raise ConfigurationError("jwks must be a JWK Set (a mapping, or its JSON text)")
    try:
        text = json.dumps(_plain_json(value)) if isinstance(value, Mapping) else value
    except Exception:  # a mapping whose own methods fail, or values JSON cannot hold
        raise ConfigurationError("jwks is not a JSON-serialisable JWK Set") from None
    try:
        keys = KeySet.from_jwks(text)
    except BastionError as exc:
        raise ConfigurationError(f"jwks is not a usable JWK Set ({exc.message})") from None
    if not len(keys):
        raise ConfigurationError("jwks holds no signature key")
    return json.dumps(keys.to_jwks(), separators=(",", ":"))


def _plain_json(value: object, depth: int = 0) -> object:
    """Mappings and sequences of any kind (a jwskate ``JwkSet``, say) as the dicts and lists JSON takes."""
    if depth > 8:
        raise ValueError("too deep")
    if isinstance(value, Mapping):
        return {str(k): _plain_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(v, depth + 1) for v in value]
    return value


def secret_matches(store: TokenStore, row: sql.ClientRow, secret: object, now: float) -> bool:
    """True if ``secret`` is the client's current secret, or its previous one within the grace period. Every
    slot is compared (in constant time), whichever matches."""
    try:
        candidates = store._lookup_keys(secret)
    except AuthError:
        return False
    slots = [(row.secret_digest, row.secret_pepper_id)]
    if row.previous_expires_at is not None and float(row.previous_expires_at) > now:
        slots.append((row.previous_digest, row.previous_pepper_id))
    found = False
    for scheme, pepper_id, digest in candidates:
        if scheme != "blake3":
            continue
        for stored, stored_pepper in slots:
            if stored is not None and stored_pepper == pepper_id:
                found |= hmac.compare_digest(bytes(digest), bytes(stored))
    return found


class ClientRegistry:
    """The OAuth clients of a :class:`bastion.TokenStore`'s database (SQLite or PostgreSQL)."""

    def __init__(self, store: TokenStore) -> None:
        if not isinstance(store, TokenStore):
            raise ConfigurationError("a ClientRegistry needs a bastion.TokenStore")
        self.store = store

    # --------------------------------------------------------------------------------------------- flows

    def _create(
        self,
        client_id: object,
        name: object,
        grant_types: object,
        scopes: object,
        tier: object,
        jwks: object,
        secret: object,
        introspect_any: object,
    ) -> Flow[NewSecret]:
        cid = secrets.token_urlsafe(16) if client_id is None else check_client_id(client_id)
        if not isinstance(secret, bool) or not isinstance(introspect_any, bool):
            raise ConfigurationError("secret and introspect_any are bools")
        jwks_text = _jwks(jwks)
        if not secret and jwks_text is None:
            raise ConfigurationError("a client needs a secret, public keys (jwks) or both to authenticate with")
        now = time.time()
        token, digest = self.store._new_token("c") if secret else (None, None)
        values: dict[str, Any] = {
            "client_id": cid,
            "name": optional(name, "name"),
            "secret_digest": digest,
            "secret_pepper_id": self.store.pepper_id if secret else None,
            "grant_types": json.dumps(_grant_types(grant_types)),
            "scopes": json.dumps(names(scopes, "scopes")),  # type: ignore[arg-type]
            "tier": optional(tier, "tier"),
            "jwks": jwks_text,
            "introspect_any": int(introspect_any),
            "created_at": now,
            "updated_at": now,
        }
        if not (yield _Sql(sql.insert_client(values), write=True)):
            raise ConfigurationError(f"a client with the id {cid!r} exists already")
        row = yield _Sql(sql.get_client(cid))
        return NewSecret(Client.from_row(row), token)

    def _get(self, client_id: object) -> Flow[Client | None]:
        text = exact_str(client_id)
        if text is None or not _CLIENT_ID_RE.match(text):
            return None
        row = yield _Sql(sql.get_client(text))
        return None if row is None else Client.from_row(row)

    def _list(self) -> Flow[list[Client]]:
        rows = yield _Sql(sql.list_clients())
        return [Client.from_row(r) for r in rows]

    def _rotate_secret(self, client_id: object, grace: object) -> Flow[NewSecret]:
        cid = check_client_id(client_id)
        grace_s = number(grace, "grace", low=0, high=MAX_TTL)
        now = time.time()
        token, digest = self.store._new_token("c")
        if not (yield _Sql(sql.rotate_secret(cid, digest, self.store.pepper_id, now + grace_s, now), write=True)):
            raise ConfigurationError(f"no client has the id {cid!r}")
        row = yield _Sql(sql.get_client(cid))
        events.emit("client_secret_rotated", client_id=cid, previous_valid_for=grace_s)
        return NewSecret(Client.from_row(row), token)

    def _update(self, client_id: object, changes: dict[str, Any]) -> Flow[Client]:
        cid = check_client_id(client_id)
        values: dict[str, Any] = {}
        if "grant_types" in changes:
            values["grant_types"] = json.dumps(_grant_types(changes["grant_types"]))
        if "scopes" in changes:
            values["scopes"] = json.dumps(names(changes["scopes"], "scopes"))
        if "tier" in changes:
            values["tier"] = optional(changes["tier"], "tier")
        if "jwks" in changes:
            values["jwks"] = _jwks(changes["jwks"])
        values["updated_at"] = time.time()
        if not (yield _Sql(sql.update_client(cid, values), write=True)):
            raise ConfigurationError(f"no client has the id {cid!r}")
        row = yield _Sql(sql.get_client(cid))
        return Client.from_row(row)

    def _disable(self, client_id: object) -> Flow[bool]:
        cid = check_client_id(client_id)
        killed = yield _Sql(sql.disable_client(self.store._dialect, cid, time.time()), write=True)
        if killed is None:
            return False
        apply_killed(self.store, killed)
        events.emit("client_disabled", client_id=cid, tokens_revoked=len(killed.ids) + len(killed.jtis))
        return True

    # ----------------------------------------------------------------------------------------- public API

    def create(
        self,
        client_id: str | None = None,
        *,
        name: str | None = None,
        grant_types: Iterable[str] = ("client_credentials",),
        scopes: Iterable[str] = (),
        tier: str | None = None,
        jwks: Mapping[str, Any] | str | None = None,
        secret: bool = True,
        introspect_any: bool = False,
    ) -> NewSecret:
        """Register a client (a random id unless ``client_id`` is given). The returned ``secret`` is shown this
        once; ``secret=False`` makes a client that authenticates by ``private_key_jwt`` only (``jwks`` needed)."""
        return self.store._run(self._create(client_id, name, grant_types, scopes, tier, jwks, secret, introspect_any))

    async def acreate(
        self,
        client_id: str | None = None,
        *,
        name: str | None = None,
        grant_types: Iterable[str] = ("client_credentials",),
        scopes: Iterable[str] = (),
        tier: str | None = None,
        jwks: Mapping[str, Any] | str | None = None,
        secret: bool = True,
        introspect_any: bool = False,
    ) -> NewSecret:
        """Async :meth:`create`."""
        flow = self._create(client_id, name, grant_types, scopes, tier, jwks, secret, introspect_any)
        return await self.store._arun(flow)

    def get(self, client_id: str) -> Client | None:
        """The client, or None."""
        return self.store._run(self._get(client_id))

    async def aget(self, client_id: str) -> Client | None:
        """Async :meth:`get`."""
        return await self.store._arun(self._get(client_id))

    def list(self) -> list[Client]:
        """Every client, by id."""
        return self.store._run(self._list())

    def rotate_secret(self, client_id: str, *, grace: float = 86400.0) -> NewSecret:
        """A new secret for the client, shown this once. The previous one keeps working ``grace`` seconds
        (default a day) so that it can be replaced everywhere first; a second rotation drops the oldest."""
        return self.store._run(self._rotate_secret(client_id, grace))

    async def arotate_secret(self, client_id: str, *, grace: float = 86400.0) -> NewSecret:
        """Async :meth:`rotate_secret`."""
        return await self.store._arun(self._rotate_secret(client_id, grace))

    def update(self, client_id: str, **changes: Any) -> Client:
        """Change ``grant_types``, ``scopes``, ``tier`` or ``jwks``; tokens already issued keep their scopes."""
        unknown = set(changes) - {"grant_types", "scopes", "tier", "jwks"}
        if unknown:
            raise ConfigurationError(f"update() takes grant_types, scopes, tier and jwks, not {sorted(unknown)}")
        return self.store._run(self._update(client_id, changes))

    def disable(self, client_id: str) -> bool:
        """Disable the client: it is refused at once, and every live token issued to it (opaque and JWT) is
        revoked. False if there is no such client."""
        return self.store._run(self._disable(client_id))

    async def adisable(self, client_id: str) -> bool:
        """Async :meth:`disable`."""
        return await self.store._arun(self._disable(client_id))


def apply_killed(store: TokenStore, killed: sql.Killed) -> None:
    """Make revocations that just committed take effect in this process at once (others follow the feed)."""
    for token_id in killed.ids:
        store._evict(token_id)
    for jti, exp in killed.jtis:
        store._deny_jti(jti, exp)
