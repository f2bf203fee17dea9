"""What a token store hands back: :class:`IssuedToken` (the secret, once) and :class:`TokenInfo` (never it)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IssuedToken", "TokenInfo"]


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
