"""The client address and the request id of a request: forwarding headers count only from trusted proxies.

By default no proxy is trusted, so the peer address is the client and ``Forwarded``/``X-Forwarded-For`` are
ignored: a client cannot choose the address it is audited (or throttled) under. With trusted proxies, the
chain is walked right to left from the peer, skipping trusted hops; the first untrusted address is the client.
A hop that is ``unknown``, obfuscated or malformed ends the walk at the last address that was valid.

Headers come as ``(name, value)`` pairs of ``str`` or ``bytes`` (ASGI: lowercase bytes names) or as a WSGI
``environ`` mapping (``HTTP_FORWARDED``, ``HTTP_X_FORWARDED_FOR``, …). No header is read at all when the peer
is not trusted, which is the common case.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Literal, TypeAlias

from bastion import _core
from bastion.errors import ConfigurationError

__all__ = ["ClientResolver", "Headers", "new_request_id"]

#: Request headers: ``(name, value)`` pairs of str or bytes, or a WSGI environ.
Headers: TypeAlias = Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, Any]
_Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A longer chain of trusted hops is not a real deployment; the walk stops there (at the last valid hop).
MAX_HOPS = 32
# a request id taken from a proxy: short, and nothing a log line or a header could trip on
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# one Forwarded pair: name = token / quoted-string, then ';' (next pair) or ',' (next element) or the end.
# Unquoted values are read leniently (proxies send for=1.2.3.4:80 and for=[::1] unquoted).
_PAIR = re.compile(r'[ \t]*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^;,"\s]*)[ \t]*([;,]|$)')
_ESCAPE = re.compile(r"\\(.)")

#: A fresh request id: 32 hex digits (128 bits, the size of a uuid4), from the core: unique within the process,
#: keyed per process (a forked child draws new keys, so that it never repeats its parent's ids).
new_request_id = _core.new_request_id
os.register_at_fork(after_in_child=_core._reseed_request_ids)


class ClientResolver:
    """Finds the client address and the request id, trusting forwarding headers only from ``trusted_proxies``.

    ``trusted_proxies`` (default ``()``: trust none) holds addresses or CIDR networks (``"10.0.0.0/8"``,
    ``"::1"``), or one comma-separated string; a network with host bits set or anything else that is not an
    address is a ``ConfigurationError``. ``forwarded`` (default ``"auto"``) picks the header: ``"auto"`` reads
    ``Forwarded`` when the request has one and ``X-Forwarded-For`` otherwise; ``"forwarded"`` or
    ``"x-forwarded-for"`` read only that one — choose the one your proxy writes, so that a client cannot add the
    other.
    """

    __slots__ = ("_exact", "_forwarded", "_networks", "_trusts", "trusted_proxies")

    def __init__(
        self,
        trusted_proxies: Iterable[str] = (),
        *,
        forwarded: Literal["auto", "forwarded", "x-forwarded-for"] = "auto",
    ) -> None:
        if forwarded not in ("auto", "forwarded", "x-forwarded-for"):
            raise ConfigurationError('forwarded must be "auto", "forwarded" or "x-forwarded-for"')
        entries = trusted_proxies.split(",") if isinstance(trusted_proxies, str) else trusted_proxies
        networks: list[_Network] = []
        try:
            items = list(entries)
        except Exception:  # not iterable, or an iterable whose own iteration fails
            raise ConfigurationError("trusted_proxies must be an iterable of addresses or CIDR networks") from None
        for item in items:
            if not isinstance(item, str):
                raise ConfigurationError("trusted_proxies must hold strings (addresses or CIDR networks)")
            try:
                networks.append(ipaddress.ip_network(item.strip()))
            except ValueError:
                raise ConfigurationError(
                    f"trusted_proxies: {item.strip()[:64]!r} is not an address or a CIDR network without host bits"
                ) from None
        #: The trusted networks, as given (single addresses become /32 or /128 networks).
        self.trusted_proxies: tuple[_Network, ...] = tuple(networks)
        self._forwarded = forwarded
        self._exact = frozenset(n.network_address for n in networks if n.num_addresses == 1)
        self._networks = tuple(n for n in networks if n.num_addresses > 1)
        # peers repeat (they are the proxies): the parse and the membership test are cached per address
        self._trusts = lru_cache(maxsize=1024)(self._check)

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` (an IP address, IPv4-mapped IPv6 included) is a trusted proxy; False for None or
        anything that is not an address."""
        if not self.trusted_proxies or not address:
            return False
        return self._trusts(address)

    def client_address(self, peer: str | None, headers: Headers) -> str | None:
        """The client's address: ``peer`` itself unless it is a trusted proxy, else the first untrusted hop of
        the forwarding header (normalised, port stripped), or the last valid hop when the chain ends (all
        trusted, ``unknown``, obfuscated or malformed). Never raises for any header value."""
        if not self.trusted_proxies or not peer or not self._trusts(peer):
            return peer
        forwarded, xff, _ = _read(headers, None)
        return self._walk(peer, forwarded, xff)

    def request_id(self, peer: str | None, headers: Headers, header_name: str = "X-Request-ID") -> str:
        """The request id: the ``header_name`` header (default ``X-Request-ID``) when a trusted proxy sent exactly
        one and it is a sane token (1-128 characters of ``[A-Za-z0-9._:-]``), else :func:`new_request_id`."""
        if not self.trusted_proxies or not peer or not self._trusts(peer):
            return new_request_id()
        return _sane_id(_read(headers, header_name)[2])

    def resolve(self, peer: str | None, headers: Headers, header_name: str = "X-Request-ID") -> tuple[str | None, str]:
        """``(client_address(...), request_id(...))`` with one pass over the headers: what a middleware calls."""
        if not self.trusted_proxies or not peer or not self._trusts(peer):
            return peer, new_request_id()
        forwarded, xff, ids = _read(headers, header_name)
        return self._walk(peer, forwarded, xff), _sane_id(ids)

    # ----------------------------------------------------------------------------------------------

    def _check(self, address: str) -> bool:
        parsed = _parse_address(address)
        if parsed is None:
            return False
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        if parsed in self._exact:
            return True
        return any(parsed in network for network in self._networks)

    def _walk(self, peer: str, forwarded: list[str], xff: list[str]) -> str:
        if forwarded and self._forwarded != "x-forwarded-for":
            hops = _forwarded_for(",".join(forwarded))
        elif xff and self._forwarded != "forwarded":
            hops = [_node(h) for h in ",".join(xff).split(",") if h.strip()]  # empty list elements are ignored
        else:
            return peer
        client = peer
        for hop in reversed(hops[-MAX_HOPS:]):
            if hop is None:
                return client
            client = hop
            if not self._trusts(hop):
                return hop
        return client


def _read(headers: Headers, id_name: str | None) -> tuple[list[str], list[str], list[str]]:
    """The values of Forwarded, X-Forwarded-For and the request-id header, in order, as str."""
    forwarded: list[str] = []
    xff: list[str] = []
    ids: list[str] = []
    try:
        if isinstance(headers, Mapping):
            for key, into in (("HTTP_FORWARDED", forwarded), ("HTTP_X_FORWARDED_FOR", xff)):
                value = headers.get(key)
                if isinstance(value, str):
                    into.append(value)
            if id_name is not None:
                value = headers.get("HTTP_" + id_name.upper().replace("-", "_"))
                if isinstance(value, str):
                    ids.append(value)
            return forwarded, xff, ids
        wanted = id_name.lower() if id_name is not None else None
        for name, value in headers:
            key = (name.decode("latin-1") if isinstance(name, bytes) else name).lower()
            if key == "forwarded":
                into = forwarded
            elif key == "x-forwarded-for":
                into = xff
            elif key == wanted:
                into = ids
            else:
                continue
            into.append(value.decode("latin-1") if isinstance(value, bytes) else value)
    except (TypeError, ValueError, AttributeError):
        # headers that are not pairs of str/bytes: read as no forwarding information at all
        return [], [], []
    return forwarded, xff, ids


def _sane_id(values: list[str]) -> str:
    if len(values) == 1 and _SANE_ID.fullmatch(values[0].strip()):
        return values[0].strip()
    return new_request_id()


def _forwarded_for(value: str) -> list[str | None]:
    """The ``for=`` node of each RFC 7239 element, normalised; None for an element without a usable one."""
    nodes: list[str | None] = []
    pos, end = 0, len(value)
    node: str | None = None
    seen_for, ok, start = False, True, True
    while pos < end:
        if start and value[pos] in " \t,":
            pos += 1  # empty list elements and leading whitespace
            continue
        m = _PAIR.match(value, pos)
        if m is None:
            # garbage: this element is unusable; resume after the next comma
            comma = value.find(",", pos)
            nodes.append(None)
            node, seen_for, ok, start = None, False, True, True
            if comma < 0:
                return nodes
            pos = comma + 1
            continue
        name, raw, sep = m.groups()
        if name.lower() == "for":
            if seen_for:
                ok = False  # a repeated parameter makes the element ambiguous
            seen_for = True
            node = _node(_ESCAPE.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw)
        pos = m.end()
        start = False
        if sep != ";":
            nodes.append(node if ok else None)
            node, seen_for, ok, start = None, False, True, True
    if not start:
        nodes.append(node if ok else None)
    return nodes


@lru_cache(maxsize=4096)  # clients and proxies repeat; parsing an address is the slow part of the walk
def _node(text: str) -> str | None:
    """An address from a node (``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:443``, bare IPv6), normalised; None
    for ``unknown``, an obfuscated ``_name`` or anything else."""
    text = text.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or (close + 1 < len(text) and text[close + 1] != ":"):
            return None
        host = text[1:close]
        parsed = _parse_address(host)
        return str(parsed) if isinstance(parsed, ipaddress.IPv6Address) else None
    if text.count(":") == 1:
        text = text.split(":", 1)[0]  # IPv4 with a port
    parsed = _parse_address(text)
    return str(parsed) if parsed is not None else None


def _parse_address(text: str) -> _Address | None:
    if not text or len(text) > 64:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
