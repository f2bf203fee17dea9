"""Fetching a key source's documents: the URL rules, redirects, the size cap, ``Cache-Control`` and discovery.

What to fetch and what to accept is written once, as generators (:func:`jwks_plan`, :func:`metadata_plan`) that
yield the URL of each GET and are sent its :class:`Response`; :func:`run` drives one with httpx blocking and
:func:`arun` awaits it, so the blocking and the asyncio paths can never accept different documents. Nothing here
logs or returns key material: errors name the URL and what was wrong.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin, urlsplit

from bastion import _core
from bastion.errors import ConfigurationError

if TYPE_CHECKING:
    import httpx

#: How many redirects (to the same scheme, host and port) a fetch follows.
MAX_REDIRECTS: Final = 3
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
#: Every algorithm a published key can serve (symmetric members are refused before this matters).
_ASYMMETRIC: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE: Final = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


class FetchError(Exception):
    """A fetch that gave no usable document: its message names the URL and the reason, never a key."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What every fetch of one client obeys."""

    allow_http: bool
    connect_timeout: float
    read_timeout: float
    max_bytes: int
    headers: Mapping[str, str]

    @property
    def deadline(self) -> float:
        """The longest a whole fetch may take (a server that drips bytes never holds a fetch longer)."""
        return self.connect_timeout + 2 * self.read_timeout


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    location: str | None
    cache_control: str | None
    body: bytes


def httpx_module() -> Any:
    """httpx, imported when a client is made: it is the ``jwks`` extra, not a dependency of bastion."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - the test environment has httpx
        raise ConfigurationError("JWKSClient needs httpx: pip install 'bastion[jwks]'") from None
    return httpx


def check_url(url: object, *, allow_http: bool, what: str = "url") -> str:
    """``url`` if it is an absolute https URL (or http with ``allow_http=True``) with a host and no fragment."""
    if type(url) is not str or not url or len(url) > 2048:
        raise ConfigurationError(f"{what} must be an absolute https:// URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise ConfigurationError(f"{what} is not a valid URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        hint = "" if allow_http else " (http:// only with allow_http=True)"
        raise ConfigurationError(f"{what} must be an absolute https:// URL{hint}")
    if not parts.hostname or parts.fragment or parts.username is not None or any(c.isspace() for c in url):
        raise ConfigurationError(f"{what} must be an absolute URL with a host, and no credentials or fragment")
    return url


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, parts.port or default


def max_age(cache_control: str | None, *, default: float, low: float, high: float) -> float:
    """The document's lifetime: ``Cache-Control: max-age`` clamped to [low, high]; ``no-store``/``no-cache``
    is the low bound (a provider that forbids caching is still not fetched per request); absent: ``default``."""
    if cache_control:
        if _NO_CACHE.search(cache_control):
            return low
        found = _MAX_AGE.search(cache_control)
        if found:
            return min(max(float(found.group(1)), low), high)
    return min(max(default, low), high)


Plan = Generator[str, Response, Any]


def get(url: str, limits: Limits) -> Generator[str, Response, Response]:
    """One GET that ends in a 200: redirects followed only within the same scheme, host and port."""
    for _ in range(MAX_REDIRECTS + 1):
        response = yield url
        if response.status in _REDIRECTS:
            if not response.location:
                raise FetchError(f"{url}: a redirect without a Location")
            target = urljoin(url, response.location)
            if _origin(target) != _origin(url):
                raise FetchError(f"{url}: a redirect to another host is not followed")
            check_url(target, allow_http=limits.allow_http)
            url = target
            continue
        if response.status != 200:
            raise FetchError(f"{url}: HTTP {response.status}")
        return response
    raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")


@dataclass(frozen=True, slots=True)
class Fetched:
    keys: _core.KeySet
    max_age: float


def jwks_plan(url: str, limits: Limits, *, default: float, low: float, high: float) -> Plan:
    """Fetch and check a JWK Set: every member passes the JWT core's key rules (``KeySet.from_jwks``, symmetric
    members refused), or the document is refused whole."""
    response = yield from get(url, limits)
    try:
        text = response.body.decode("utf-8")
        keys = _core.KeySet.from_jwks(text)
    except UnicodeDecodeError:
        raise FetchError(f"{url}: the document is not UTF-8") from None
    except ConfigurationError as exc:
        raise FetchError(f"{url}: {exc.message}") from None
    try:
        _core.JWTVerifier(keys, algorithms=_ASYMMETRIC)
    except ConfigurationError:
        # empty, or only members whose use/key_ops rule out verification: nothing to verify with
        raise FetchError(f"{url}: the JWK Set has no key that can verify a signature") from None
    return Fetched(keys, max_age(response.cache_control, default=default, low=low, high=high))


def discovery_urls(issuer: str, kind: str) -> list[str]:
    """Where an issuer's metadata is: OpenID Connect Discovery appends ``/.well-known/openid-configuration``
    to the issuer; RFC 8414 inserts ``/.well-known/oauth-authorization-server`` before the issuer's path."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    oidc = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    oauth = f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}"
    return {"openid": [oidc], "oauth": [oauth], "auto": [oidc, oauth]}[kind]


def metadata_plan(issuer: str, kind: str, limits: Limits) -> Plan:
    """The issuer's ``jwks_uri``, from the first discovery document that answers; its ``issuer`` must equal the
    configured one exactly (OIDC Discovery §4.3, RFC 8414 §3.3), or the document is refused."""
    failures: list[str] = []
    for url in discovery_urls(issuer, kind):
        try:
            response = yield from get(url, limits)
        except FetchError as exc:
            failures.append(str(exc))
            continue
        try:
            doc = _parse_object(response.body)
        except ValueError:
            raise FetchError(f"{url}: the metadata is not a JSON object") from None
        if doc.get("issuer") != issuer:
            raise FetchError(f"{url}: the metadata names another issuer")
        jwks_uri = doc.get("jwks_uri")
        try:
            return check_url(jwks_uri, allow_http=limits.allow_http, what="the metadata's jwks_uri")
        except ConfigurationError as exc:
            raise FetchError(f"{url}: {exc.message}") from None
    raise FetchError("; ".join(failures))


def _parse_object(body: bytes) -> dict[str, Any]:
    doc = json.loads(body.decode("utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    return doc


def _timeout(limits: Limits) -> Any:
    httpx = httpx_module()
    return httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout)


def _headers_of(r: httpx.Response) -> tuple[str | None, str | None, int | None]:
    length = r.headers.get("content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    return r.headers.get("location"), r.headers.get("cache-control"), declared


def _too_big(url: str, limits: Limits) -> FetchError:
    return FetchError(f"{url}: the document is over {limits.max_bytes} bytes")


def run(plan: Plan, limits: Limits) -> Any:
    """Drive ``plan`` with blocking httpx: every GET with the client's timeouts, cap and headers."""
    httpx = httpx_module()
    started = time.monotonic()
    with httpx.Client(timeout=_timeout(limits), follow_redirects=False, headers=dict(limits.headers)) as http:
        response: Response | None = None
        while True:
            try:
                url = plan.send(response)  # type: ignore[arg-type]  # the first send is None
            except StopIteration as stop:
                return stop.value
            try:
                with http.stream("GET", url) as r:
                    location, cache_control, declared = _headers_of(r)
                    body = bytearray()
                    if r.status_code == 200:
                        if declared is not None and declared > limits.max_bytes:
                            raise _too_big(url, limits)
                        for chunk in r.iter_bytes():
                            body += chunk
                            if len(body) > limits.max_bytes:
                                raise _too_big(url, limits)
                            if time.monotonic() - started > limits.deadline:
                                raise FetchError(f"{url}: the fetch took longer than {limits.deadline:g} s")
                    response = Response(r.status_code, location, cache_control, bytes(body))
            except httpx.HTTPError as exc:
                raise FetchError(f"{url}: {type(exc).__name__}") from None


async def arun(plan: Plan, limits: Limits) -> Any:
    """:func:`run` for asyncio: the same plan, every GET awaited (the event loop is never blocked)."""
    import asyncio

    try:
        return await asyncio.wait_for(_arun(plan, limits), limits.deadline)
    except TimeoutError:
        raise FetchError(f"the fetch took longer than {limits.deadline:g} s") from None


async def _arun(plan: Plan, limits: Limits) -> Any:
    httpx = httpx_module()
    async with httpx.AsyncClient(
        timeout=_timeout(limits), follow_redirects=False, headers=dict(limits.headers)
    ) as http:
        response: Response | None = None
        while True:
            try:
                url = plan.send(response)  # type: ignore[arg-type]  # the first send is None
            except StopIteration as stop:
                return stop.value
            try:
                async with http.stream("GET", url) as r:
                    location, cache_control, declared = _headers_of(r)
                    body = bytearray()
                    if r.status_code == 200:
                        if declared is not None and declared > limits.max_bytes:
                            raise _too_big(url, limits)
                        async for chunk in r.aiter_bytes():
                            body += chunk
                            if len(body) > limits.max_bytes:
                                raise _too_big(url, limits)
                    response = Response(r.status_code, location, cache_control, bytes(body))
            except httpx.HTTPError as exc:
                raise FetchError(f"{url}: {type(exc).__name__}") from None
