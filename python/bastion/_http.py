"""Every refusal bastion answers with, built in one place: status, headers and body for an ``AuthError``.

The middlewares and the framework integrations call :func:`render` and send what it returns as is, so the
DESIGN §4 table (code → status → RFC 6750 ``error``) is implemented once. Bodies carry only the error's
``code`` and its client-safe ``message``; header values are restricted to the characters their grammar allows,
so neither a realm nor a message can inject a header.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus

from bastion._core import Decision
from bastion.errors import AuthError, ConfigurationError, InsufficientScope

__all__ = ["Refusal", "asgi_headers", "asgi_ratelimit_headers", "check_realm", "ratelimit_headers", "render"]

#: Statuses that carry an RFC 6750 ``WWW-Authenticate: Bearer`` challenge.
CHALLENGE_STATUSES = frozenset({400, 401, 403})
#: ``Retry-After`` when the error does not say how long to wait (seconds).
DEFAULT_RETRY_AFTER = 1
# A day is the longest wait worth announcing; a larger (or infinite) value is a limiter misconfiguration.
_MAX_RETRY_AFTER = 86_400
# error_description is advice for a developer; a longer message is cut rather than bloat every refusal.
_MAX_DESCRIPTION = 256

# RFC 6750 §3: error-description = 1*( %x20-21 / %x23-5B / %x5D-7E ); scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_NOT_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# RFC 9110 quoted-string: qdtext (HTAB / SP / visible ASCII but '"' and '\'), plus quoted-pair for those two.
# obs-text is allowed by the grammar but refused here: a realm is configuration, and ASCII is portable.
_NOT_QDTEXT = re.compile(r"[^\t\x20-\x7e]")
# what check_realm accepts: quoted-string content that needs no quoted-pair
_REALM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A complete HTTP refusal, ready to send: ``status`` (the error's), ``body`` (JSON bytes), ``content_type``
    (``application/json`` or ``application/problem+json``) and ``headers``.

    ``headers`` is the whole header list (``Content-Type``, ``Content-Length``, ``Cache-Control``, and where they
    apply ``WWW-Authenticate``, ``Retry-After``, ``RateLimit-Policy``, ``RateLimit``), with str names and
    ASCII values; :meth:`asgi_headers` gives the same list as lowercase bytes for an ASGI ``http.response.start``.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    content_type: str

    @property
    def status_line(self) -> str:
        """The PEP 3333 status string, e.g. ``"401 Unauthorized"``."""
        return f"{self.status} {_phrase(self.status)}"

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as ASGI wants them: ``(lowercase name, value)`` byte pairs."""
        return asgi_headers(self.headers)


def render(
    error: AuthError,
    *,
    realm: str,
    problem_details: bool = False,
    decision: Decision | None = None,
    include_ratelimit_headers: bool = True,
) -> Refusal:
    """The response for ``error``: its status, a JSON body, and the headers DESIGN §4 names.

    - body: ``{"error": code, "message": message}`` as ``application/json``; with ``problem_details=True``
      (default False) an RFC 9457 ``application/problem+json`` object with ``type`` (``"about:blank"``),
      ``title`` (the status phrase), ``status`` and ``detail`` (the message) that keeps ``error`` and ``message``;
    - 400/401/403: ``WWW-Authenticate: Bearer realm="…"`` plus ``error`` (the RFC 6750 code) and
      ``error_description`` (the message, restricted to RFC 6750's characters) unless the error has no RFC 6750
      code (``missing_token``: realm only); ``insufficient_scope`` adds ``scope="<required scopes>"``;
    - 429 and 503: ``Retry-After`` in whole seconds, rounded up, at least 1 (``DEFAULT_RETRY_AFTER`` when
      neither the error nor a refusing ``decision`` says);
    - ``decision`` (default None): its ``RateLimit-Policy``/``RateLimit`` headers are added when
      ``include_ratelimit_headers`` (default True);
    - always ``Cache-Control: no-store``.

    ``realm`` is quoted safely whatever it holds; check it once with :func:`check_realm` at configuration time.
    """
    status = error.status
    headers: list[tuple[str, str]] = []
    if status in CHALLENGE_STATUSES:
        headers.append(("WWW-Authenticate", _challenge(error, realm)))
    if status in (429, 503):
        wait: float | None = getattr(error, "retry_after", None)
        if wait is None and decision is not None and not decision.allowed:
            wait = decision.retry_after
        headers.append(("Retry-After", str(_whole_seconds(wait))))
    if decision is not None and include_ratelimit_headers:
        headers.extend(ratelimit_headers(decision))
    body, content_type = _body(error, status, problem_details)
    headers.append(("Content-Type", content_type))
    headers.append(("Content-Length", str(len(body))))
    headers.append(("Cache-Control", "no-store"))
    return Refusal(status, headers, body, content_type)


def ratelimit_headers(decision: Decision) -> list[tuple[str, str]]:
    """``RateLimit-Policy`` and ``RateLimit`` for ``decision`` (none for an unlimited tier), without ``Retry-After``
    (a refusal adds its own): what a successful response carries."""
    return decision._success_headers()


def asgi_ratelimit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """:func:`ratelimit_headers` as ASGI byte pairs, built by the core (every admitted ASGI request sends them)."""
    return decision._asgi_success_headers()


def asgi_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """``(name, value)`` str pairs as ASGI byte pairs, names lowercased (values must be Latin-1, as bastion's are)."""
    return [(_asgi_name(name), value.encode("latin-1")) for name, value in headers]


@lru_cache(maxsize=64)  # a handful of names, each sent on every response
def _asgi_name(name: str) -> bytes:
    return name.lower().encode("latin-1")


def check_realm(realm: object) -> str:
    r"""``realm`` if it is a non-empty string of printable ASCII (spaces allowed) without ``"`` or ``\``, else
    ``ConfigurationError``. Call it where the realm is configured, so that a bad one fails at start-up."""
    if not isinstance(realm, str) or not _REALM.fullmatch(realm):
        raise ConfigurationError('realm must be a non-empty string of printable ASCII characters without " or \\')
    return realm


# --------------------------------------------------------------------------------------------------


def _challenge(error: AuthError, realm: str) -> str:
    parts = [f"Bearer realm={_quoted(realm)}"]
    if error.rfc6750_error is not None:
        parts.append(f'error="{error.rfc6750_error}"')
        description = _description(error.message)
        if description:
            parts.append(f'error_description="{description}"')
        if isinstance(error, InsufficientScope):
            scopes = " ".join(s for s in error.required_scopes if _SCOPE_TOKEN.fullmatch(s))
            if scopes:
                parts.append(f'scope="{scopes}"')
    return ", ".join(parts)


@lru_cache(maxsize=64)
def _quoted(realm: str) -> str:
    # CR, LF and every other control or non-ASCII character go; '"' and '\' become quoted-pairs.
    clean = _NOT_QDTEXT.sub("", realm).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{clean}"'


@lru_cache(maxsize=256)
def _description(message: str) -> str:
    # error_description allows no quoted-pair: a '"' becomes "'", a '\' a '/', whitespace a space, the rest goes.
    text = message.replace('"', "'").replace("\\", "/").replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return _NOT_DESCRIPTION.sub("", text).strip()[:_MAX_DESCRIPTION].rstrip()


def _whole_seconds(seconds: float | None) -> int:
    if seconds is None or math.isnan(seconds):
        return DEFAULT_RETRY_AFTER
    if seconds >= _MAX_RETRY_AFTER:
        return _MAX_RETRY_AFTER
    return max(1, math.ceil(seconds))


def _body(error: AuthError, status: int, problem_details: bool) -> tuple[bytes, str]:
    if problem_details:
        doc: dict[str, object] = {
            "type": "about:blank",
            "title": _phrase(status),
            "status": status,
            "detail": error.message,
            "error": error.code,
            "message": error.message,
        }
        return json.dumps(doc, separators=(",", ":")).encode(), "application/problem+json"
    return json.dumps(error.to_dict(), separators=(",", ":")).encode(), "application/json"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
