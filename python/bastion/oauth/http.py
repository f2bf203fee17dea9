"""The framework-neutral request and response the endpoints are written over, and their encodings.

The ASGI and WSGI adapters (:mod:`bastion.oauth.apps`) turn a server's request into a :class:`Request` and a
:class:`Response` back into the server's answer; everything between is plain Python.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["MAX_BODY", "OAuthError", "Request", "Response", "basic_credentials", "form", "json_response"]

#: the largest request body read (a token request is a few hundred bytes; an assertion a few kilobytes)
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Request:
    """An HTTP request: ``headers`` with lowercase names (the last value of a repeated header wins, except
    that a repeated ``authorization`` is refused by the endpoints), ``client`` the peer address."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    client: str | None = None
    #: the same header given twice (e.g. two Authorization headers), which the endpoints refuse
    repeated: frozenset[str] = frozenset()

    @classmethod
    def from_pairs(
        cls, method: str, path: str, pairs: Sequence[tuple[str, str]], body: bytes, client: str | None
    ) -> Request:
        headers: dict[str, str] = {}
        repeated: set[str] = set()
        for name, value in pairs:
            key = name.lower()
            if key in headers:
                repeated.add(key)
            headers[key] = value
        return cls(method.upper(), path, headers, body, client, frozenset(repeated))


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer: ``error`` code, a description safe to show, and the HTTP status."""

    def __init__(
        self, error: str, description: str, status: int = 400, *, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = list(headers)

    def response(self) -> Response:
        return json_response(
            {"error": self.error, "error_description": self.description}, self.status, extra=self.headers
        )


def json_response(
    doc: Mapping[str, Any], status: int = 200, *, extra: Sequence[tuple[str, str]] = (), cache: str = "no-store"
) -> Response:
    headers = [("content-type", "application/json"), ("cache-control", cache)]
    if cache == "no-store":
        headers.append(("pragma", "no-cache"))
    headers.extend(extra)
    return Response(status, headers, json.dumps(doc, separators=(",", ":")).encode())


def form(request: Request) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body as a dict. A parameter sent twice is refused (RFC 6749
    §3.2), as is any other content type or a body that is not UTF-8."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a valid form") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise OAuthError("invalid_request", f"the parameter {name} is repeated")
        if value:  # RFC 6749 §3.1: a parameter sent without a value is treated as omitted
            params[name] = value
    return params


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The ``(client_id, client_secret)`` of an ``Authorization: Basic`` header (RFC 6749 §2.3.1: each part
    form-urlencoded before the base64), None without one; a malformed one is an ``invalid_client``."""
    value = request.headers.get("authorization")
    if value is None:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_client", "the Basic credentials are malformed", 401) from None
    user, sep, password = raw.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "the Basic credentials are malformed", 401)
    return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))
