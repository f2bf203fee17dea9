"""Type stubs for the Rust extension ``bastion._core`` (hand-written; checked by ``mypy.stubtest``)."""

__version__: str
#: Every error code the core can raise, in table order (see ``bastion.errors.ERRORS_BY_CODE``).
ERROR_CODES: list[str]
__all__ = ["ERROR_CODES", "__version__"]

# -- jwt (issue 2) --

# -- opaque (issue 3) --
from collections.abc import Mapping  # noqa: E402 - imports of this domain's section
from types import MappingProxyType  # noqa: E402
from typing import Any, Self, final  # noqa: E402

from typing_extensions import disjoint_base  # noqa: E402

__all__ += ["OpaqueIndex", "Principal", "_Miss", "_restore_principal"]

@final
class Principal:
    """An authenticated identity, immutable and built by bastion (never by the caller).

    Starlette's ``BaseUser`` duck type: ``is_authenticated``, ``display_name``, ``identity``. The repr names the
    subject, token id, scopes, roles and tier, never a token.
    """

    @property
    def subject(self) -> str:
        """The subject (user or client id)."""
    @property
    def client_id(self) -> str | None:
        """The OAuth client the token was issued to, if any."""
    @property
    def scopes(self) -> frozenset[str]:
        """The token's scopes."""
    @property
    def roles(self) -> frozenset[str]:
        """The token's roles."""
    @property
    def tier(self) -> str | None:
        """The rate-limit tier, if any."""
    @property
    def token_type(self) -> str:
        """``"jwt"`` or ``"opaque"``."""
    @property
    def token_id(self) -> str | None:
        """The jti or opaque record id: public, safe to log, never the secret."""
    @property
    def issuer(self) -> str | None:
        """The issuer (``iss``), if any."""
    @property
    def expires_at(self) -> float | None:
        """Expiry, epoch seconds."""
    @property
    def claims(self) -> MappingProxyType[str, Any]:
        """The verified claims (JWT) or the token's metadata (opaque), read-only all the way down: nested arrays are
        tuples, nested objects read-only mappings (the object is shared by every request with the same token)."""
    @property
    def rate_limit_key(self) -> str:
        """The client id for machine clients, else the subject. Never the token."""
    @property
    def is_authenticated(self) -> bool:
        """Always True."""
    @property
    def display_name(self) -> str:
        """The subject."""
    @property
    def identity(self) -> str:
        """The subject."""
    def has_scopes(self, *scopes: str) -> bool:
        """True when the token carries every one of ``scopes``."""
    def has_role(self, role: str) -> bool:
        """True when the token carries ``role``."""
    def __copy__(self) -> Self:
        """Immutable: the object itself."""
    def __deepcopy__(self, memo: Any, /) -> Self:
        """Immutable: the object itself."""
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickles by value (never a token); the unpickled Principal is detached from any store."""

def _restore_principal(state: tuple[Any, ...]) -> Principal: ...

@final
class _Miss:
    """An index miss, settled by ``OpaqueIndex._settle`` after the backend lookup."""

    @property
    def candidates(self) -> list[tuple[str, str | None, bytes]]: ...
    @property
    def digest(self) -> bytes: ...

@disjoint_base
class OpaqueIndex:
    """The Rust index behind :class:`bastion.TokenStore`: token format, keyed digests, lookups and checks."""

    def __new__(
        cls,
        prefix: str,
        peppers: Mapping[str, bytes],
        pepper_id: str,
        *,
        foreign_tokens: bool = False,
        negative_capacity: int = 65536,
        negative_ttl: float = 5.0,
    ) -> Self: ...
    def verify(self, token: str | bytes, *, now: float | None = None) -> Principal:
        """Verify a token and return its :class:`Principal` (constant-time digest comparison).

        Raises ``TokenMalformed`` (format, prefix, type letter or checksum; before any lookup), ``UnknownToken``,
        ``TokenRevoked``, ``TokenExpired``, or ``AuthUnavailable`` when the backend cannot be reached.
        """
    def _probe(self, token: str | bytes, now: float | None = None) -> Principal | _Miss: ...
    def _settle(self, miss: _Miss, row: Any, now: float | None = None) -> Principal | None: ...
    def _new_token(self, kind: str) -> tuple[str, bytes]: ...
    def _new_id(self) -> str: ...
    def _lookup_keys(self, token: object) -> list[tuple[str, str | None, bytes]]: ...
    def _insert(self, digest: bytes, row: Any) -> None: ...
    def _evict(self, id: str) -> bool: ...
    def _subject_cutoff(self, subject: str, valid_after: float) -> None: ...
    def subject_valid_after(self, subject: str) -> float | None:
        """The subject's "valid after" time (epoch seconds) set by ``revoke_subject``, if any (None for anything that
        is not a known subject, a non-str included): every token of the subject issued at or before it, opaque or JWT,
        is revoked. For a JWT compare its ``iat`` (``iat <= valid_after`` is revoked); ``iat`` is whole seconds, so a
        JWT minted later within the same second as the cut is rejected too (the safe side)."""
    def _clear(self) -> None: ...
    def _sweep(self, now: float) -> int: ...
    def _drain_usage(self) -> list[tuple[str, int, float]]: ...
    @property
    def prefix(self) -> str:
        """The token prefix."""
    @property
    def pepper_id(self) -> str:
        """The current pepper id."""
    @property
    def pepper_ids(self) -> list[str]:
        """Every configured pepper id, the current one first."""
    def __len__(self) -> int:
        """Records held in memory."""

# -- ratelimit (issue 4) --
