"""The checks every value bound for a token store passes first: names, numbers, metadata, the store URL.

Each refuses bad input with a :class:`~bastion.ConfigurationError` that names the argument, before any
backend sees it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence

from bastion.errors import ConfigurationError

__all__ = [
    "DEFAULT_TTL",
    "ID_RE",
    "KINDS",
    "MAX_TTL",
    "exact_str",
    "metadata_json",
    "names",
    "number",
    "optional",
    "parse_url",
    "plain",
]

#: the token kinds: API key, access, refresh, client secret
KINDS: tuple[str, ...] = ("k", "a", "r", "c")
#: default lifetime of an issued token: 30 days
DEFAULT_TTL = 30 * 86400.0
#: longest lifetime accepted: 10 years
MAX_TTL = 10 * 366 * 86400.0
#: a token's public id
ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")
_NAME_MAX = 256
#: control characters (C0, DEL, C1) are refused in every stored name
_PLAIN_RE = re.compile(r"^[^\x00-\x1f\x7f-\x9f]*$")
_META_DEPTH = 32
_META_MAX = 65_536


def parse_url(url: str | None) -> tuple[str, str | None]:
    """``(kind, location)``: ``("memory", None)``, ``("sqlite", path)`` or ``("postgresql", url)``."""
    if url is None:
        return "memory", None
    if not isinstance(url, str):
        raise ConfigurationError("the store URL must be a str or None")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path in ("", "/"):
            raise ConfigurationError(
                "a sqlite:/// URL needs a file path: sqlite:///relative.db or sqlite:////abs/path.db"
            )
        if path == ":memory:":
            return "memory", None
        return "sqlite", path
    if url.startswith(("postgresql://", "postgres://")):
        _check_postgres_url(url)
        return "postgresql", url
    raise ConfigurationError(
        "unsupported store URL: use None, sqlite:///path.db, sqlite:////abs/path.db or postgresql://..."
    )


def plain(value: object, what: str, *, limit: int = _NAME_MAX) -> str:
    """A non-empty str of at most ``limit`` characters that every backend stores as is: valid UTF-8 (no lone
    surrogates) and no control characters (PostgreSQL refuses NUL; the others have no place in a name)."""
    text = exact_str(value)  # a str subclass's own methods (encode, __eq__, __hash__) are never called
    if text is None or not text or len(text) > limit or not _PLAIN_RE.match(text):
        raise ConfigurationError(
            f"{what} must be a non-empty str of at most {limit} characters, without control characters"
        )
    try:
        str.encode(text, "utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{what} must be valid Unicode (no lone surrogates)") from None
    return text


def _check_postgres_url(url: str) -> None:
    """Refuse a URL libpq cannot parse, or with a port that is not a number, before any connection attempt. The
    URL may hold a password: it never goes into the message, and the parser's exception (which quotes the URL) is
    not chained."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # pragma: no cover - psycopg is an optional dependency
        raise ConfigurationError(
            "PostgreSQL token stores need psycopg (pip install 'psycopg[binary]' psycopg-pool)"
        ) from None
    try:
        params = conninfo_to_dict(url)
    except Exception:
        raise ConfigurationError("the PostgreSQL URL cannot be parsed") from None
    port = str(params.get("port", ""))
    # one port per host; an empty one means the default
    if port and not all(p == "" or (p.isdigit() and 0 < int(p) < 65536) for p in port.split(",")):
        raise ConfigurationError("the PostgreSQL URL's port must be a number between 1 and 65535")


def names(values: Iterable[str] | str | None, what: str) -> list[str]:
    if values is None:
        return []
    text = exact_str(values)
    if text is not None:
        values = str.split(text)
    if not isinstance(values, Iterable) or isinstance(values, bytes | bytearray | memoryview | Mapping):
        raise ConfigurationError(f"{what} must be a list of str or a space-separated str")
    out: list[str] = []
    try:
        items = list(values)
    except Exception as exc:  # an iterable whose own iteration fails
        raise ConfigurationError(f"{what} could not be read ({type(exc).__name__})") from None
    for v in items:
        name = exact_str(v)
        if name is None or any(c.isspace() for c in name):
            raise ConfigurationError(f"each of {what} must be a non-empty str without spaces")
        out.append(plain(name, f"each of {what}"))
    return sorted(set(out))


def optional(value: object, what: str) -> str | None:
    return None if value is None else plain(value, what)


def number(value: object, what: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{what} must be a finite number")
    try:
        # the built-in conversions: a subclass's own __float__ or __index__ is never called
        number = float.__float__(value) if isinstance(value, float) else float(int.__int__(value))
    except OverflowError:  # an int beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise ConfigurationError(f"{what} must be a finite number")
    if not low <= number <= high:
        raise ConfigurationError(f"{what} must be between {low:g} and {high:g}")
    return number


def exact_str(value: object) -> str | None:
    """``value`` as a plain ``str`` if it is one (a subclass's overridden methods are never called), else None."""
    return str.__str__(value) if isinstance(value, str) else None


def _json_value(value: object, depth: int) -> object:
    """``value`` as plain JSON the Rust side reads back exactly (dicts, lists, exact str/int/float): str keys,
    finite floats, 64-bit integers, valid Unicode, bounded depth. Any ``Mapping`` or ``Sequence`` is taken (a
    ``Principal``'s read-only claims, a tuple)."""
    if depth > _META_DEPTH:
        raise ConfigurationError(f"metadata may nest at most {_META_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        number = int.__int__(value)
        if not -(2**63) <= number < 2**64:
            raise ConfigurationError("metadata integers must fit in 64 bits")
        return number
    if isinstance(value, float):
        real = float.__float__(value)
        if not math.isfinite(real):
            raise ConfigurationError("metadata numbers must be finite")
        return real
    text = exact_str(value)
    if text is not None:
        try:
            str.encode(text, "utf-8")
        except UnicodeEncodeError:
            raise ConfigurationError("metadata strings must be valid Unicode (no lone surrogates)") from None
        return text
    try:
        if isinstance(value, Mapping):
            out: dict[str, object] = {}
            for k, v in value.items():
                key = exact_str(k)
                if key is None:
                    raise ConfigurationError("metadata keys must be str")
                out[str(_json_value(key, depth + 1))] = _json_value(v, depth + 1)
            return out
        if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
            return [_json_value(v, depth + 1) for v in value]
    except ConfigurationError:
        raise
    except Exception as exc:  # a Mapping or Sequence whose own methods fail
        raise ConfigurationError(f"metadata could not be read ({type(exc).__name__})") from None
    raise ConfigurationError(
        "metadata must hold only JSON values (str, int, float, bool, None, sequences and str-keyed mappings)"
    )


def metadata_json(metadata: object) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise ConfigurationError("metadata must be a mapping")
    plain_json = _json_value(metadata, 0)
    if not plain_json:
        return None
    text = json.dumps(plain_json, separators=(",", ":"), allow_nan=False)
    if len(text) > _META_MAX:
        raise ConfigurationError(f"metadata must serialise to at most {_META_MAX} characters of JSON")
    return text
