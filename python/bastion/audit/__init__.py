"""Audit: one structured record per request on the ``bastion.audit`` logger, written off the request path.

:class:`AuditRecord` holds the values DESIGN §3 names, under their OpenTelemetry names where OpenTelemetry has
one. It is built on every request, so building it only stores references; sorting, naming and JSON happen
later on :class:`~bastion.audit.writer.AuditLog`'s background thread.

The never-a-token rule: a record takes only the fields below — never a header, so never the Authorization
header, a cookie, a token or any part of one, a secret or an unverified claim. ``token_id`` is the jti or the
opaque record id, which is public. :meth:`AuditRecord.set_principal` copies the subject, roles, scopes, token
type and token id of a verified :class:`~bastion.Principal` and nothing else (no claims).
"""

from __future__ import annotations

from operator import attrgetter
from time import time as _now
from typing import TYPE_CHECKING

from bastion import _core

if TYPE_CHECKING:
    from bastion._core import Decision, Outcome, Principal
    from bastion.rules import Rule

__all__ = [
    "FIELDS",
    "AuditContextFilter",
    "AuditLog",
    "AuditRecord",
    "JSONFormatter",
    "bind",
    "current",
    "reset",
]

# the attribute of each field, in output order; the output names are the core's (``bastion._core``), which
# writes the JSON lines
_ATTRS = (
    "request_id",
    "method",
    "path",
    "route",
    "status",
    "client_address",
    "enduser_id",
    "roles",
    "scopes",
    "token_type",
    "token_id",
    "reason",
    "error_type",
    "tier",
    "remaining",
    "duration_ms",
)
#: ``(attribute, name in the output)`` for every field of an :class:`AuditRecord`, in output order.
FIELDS: tuple[tuple[str, str], ...] = tuple(zip(_ATTRS, _core.AUDIT_FIELD_NAMES, strict=True))
# names holding a set of strings: written as a sorted list
_SETS = frozenset({"roles", "scopes"})
_SET_NAMES = frozenset(name for attr, name in FIELDS if attr in _SETS)
_NAMES = tuple(name for _, name in FIELDS)
# every field in one C call: as_dict runs for every record the writer formats
_values = attrgetter(*(attr for attr, _ in FIELDS))


class AuditRecord:
    """What happened to one request, built when it arrives and filled in as it goes (plain attributes).

    The constructor takes what is known first (``client_address`` and ``timestamp`` default to None and now);
    every other field starts as None and is assigned, or copied by :meth:`set_principal`/:meth:`set_decision`:

    - ``request_id`` (``request.id``), ``method`` (``http.request.method``), ``path`` (``url.path``, without
      the query string: a query can carry a token);
    - ``route`` (``http.route``): the matched rule's pattern; ``status`` (``http.response.status_code``);
    - ``client_address`` (``client.address``): as ``bastion._client.ClientResolver`` found it;
    - ``enduser_id`` (``enduser.id``): the principal's subject; ``roles`` (``user.roles``) and ``scopes``
      (``bastion.auth.scopes``): string collections; ``token_type`` (``"jwt"``/``"opaque"``) and ``token_id``;
    - ``reason`` (``bastion.auth.reason``): how the auth layer concluded, a short code — the refusal's error
      code, or e.g. ``"authenticated"``, ``"anonymous"``, ``"exempt"``, ``"preflight"``; never a message;
    - ``error_type`` (``error.type``): the error code of a refusal (an app's exception shows only as status 500);
    - ``tier`` and ``remaining`` (``bastion.ratelimit.*``): from the rate decision;
    - ``duration_ms``: from the first byte of the request to the end of the response;
    - ``timestamp``: epoch seconds, default now (taken here, so that the delayed write keeps the real time).
    """

    __slots__ = (
        "client_address",
        "duration_ms",
        "enduser_id",
        "error_type",
        "method",
        "path",
        "reason",
        "remaining",
        "request_id",
        "roles",
        "route",
        "scopes",
        "status",
        "tier",
        "timestamp",
        "token_id",
        "token_type",
    )

    def __init__(
        self,
        request_id: str | None,
        method: str | None,
        path: str | None,
        client_address: str | None = None,
        *,
        timestamp: float | None = None,
    ) -> None:
        self.request_id = request_id
        self.method = method
        self.path = path
        self.client_address = client_address
        # the rest is learnt as the request goes on; one chained store is the cheapest way to start them at None
        self.route: str | None
        self.status: int | None
        self.enduser_id: str | None
        self.roles: frozenset[str] | tuple[str, ...] | None
        self.scopes: frozenset[str] | tuple[str, ...] | None
        self.token_type: str | None
        self.token_id: str | None
        self.reason: str | None
        self.error_type: str | None
        self.tier: str | None
        self.remaining: int | None
        self.duration_ms: float | None
        self.route = self.status = self.enduser_id = self.roles = self.scopes = self.token_type = None
        self.token_id = self.reason = self.error_type = self.tier = self.remaining = self.duration_ms = None
        self.timestamp: float = _now() if timestamp is None else timestamp

    @classmethod
    def of_request(
        cls,
        outcome: Outcome | None,
        rule: Rule | None,
        method: str,
        path: str,
        status: int,
        request_id: str,
        client_address: str | None,
        duration_ms: float,
        timestamp: float,
        reason: str | None = None,
    ) -> AuditRecord:
        """The record of one request as the middleware saw it: its ``outcome`` (None: a CORS preflight bastion
        let through undecided), the ``rule`` that applied (None: the default), the response ``status``; ``reason``:
        the code of a refusal made after bastion admitted the request (an endpoint's own check), which becomes
        the record's reason and error type. The fields are derived by the core (``bastion._core.audit_values``)."""
        request = (outcome, rule, method, path, status, request_id, client_address, duration_ms, timestamp, reason)
        record = cls(None, None, None, timestamp=timestamp)
        for attr, value in zip(_ATTRS, _core.audit_values(request), strict=True):
            setattr(record, attr, value)
        return record

    @classmethod
    def _of_line_item(cls, item: tuple[object, ...]) -> AuditRecord:
        """The record of ``(timestamp, *values)``, the inverse of :meth:`_line_item` (how the audit queue hands
        over a request's record)."""
        record = cls(None, None, None, timestamp=item[0])  # type: ignore[arg-type]
        for attr, value in zip(_ATTRS, item[1:], strict=True):
            setattr(record, attr, value)
        return record

    def set_principal(self, principal: Principal) -> None:
        """Copy the identity fields of a verified principal: subject, roles, scopes, token type and id."""
        self.enduser_id = principal.subject
        self.roles = principal.roles
        self.scopes = principal.scopes
        self.token_type = principal.token_type
        self.token_id = principal.token_id

    def set_decision(self, decision: Decision) -> None:
        """Copy the rate decision's tier and remaining requests (none for an unlimited tier: it has no quota)."""
        self.tier = decision.tier
        self.remaining = decision.remaining if decision.limit else None

    def as_dict(self) -> dict[str, object]:
        """The fields under their output names, None ones left out; roles and scopes as sorted lists."""
        return {
            name: sorted(value) if name in _SET_NAMES else value
            for name, value in zip(_NAMES, _values(self), strict=True)
            if value is not None
        }

    def _line_item(self) -> tuple[object, ...]:
        """``(timestamp, *values)``: the shape ``bastion._core.audit_lines`` writes a hand-built record from."""
        return (self.timestamp, *_values(self))

    def summary(self) -> str:
        """A short human line for plain-text handlers: ``"GET /api/v1/reports 403 insufficient_scope"``."""
        parts = [str(self.method), str(self.path), str(self.status if self.status is not None else "-")]
        if self.error_type is not None:
            parts.append(self.error_type)
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"AuditRecord({self.as_dict()!r})"


# The writer and the context filter use AuditRecord, so they are imported once it exists.
from bastion.audit.context import AuditContextFilter, bind, current, reset  # noqa: E402
from bastion.audit.writer import AuditLog, JSONFormatter  # noqa: E402
