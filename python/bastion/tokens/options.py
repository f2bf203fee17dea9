"""The options of ``TokenStore(url, **options)``, read and checked once.

``TokenStore.__init__``'s keyword signature is the one list of the options and their defaults (``help()`` and
type checkers read it); ``TokenStore.__new__`` gives :func:`read` the options filled in from it, because the
Rust index it creates needs some of them before ``__init__`` runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.errors import ConfigurationError
from bastion.tokens.validate import MAX_TTL, number, parse_url

__all__ = ["Options", "read"]


@dataclass(frozen=True)
class Options:
    """Checked options (the meaning of each is in ``TokenStore``'s docstring)."""

    #: "memory", "sqlite" or "postgresql"
    url_kind: str
    #: the SQLite path or PostgreSQL URL; None in memory
    location: str | None
    prefix: str
    #: pepper id -> pepper, and the current one's id
    peppers: dict[str, bytes]
    pepper_id: str
    foreign_tokens: bool
    negative_cache_size: int
    negative_ttl: float
    usage_interval: float
    poll_interval: float
    default_ttl: float
    pool_size: int
    #: seconds to wait for a PostgreSQL connection
    timeout: float
    background: bool


def read(url: str | None, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> Options:
    """Check ``given`` (the keyword options of one call) against ``defaults`` (every option's default)."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigurationError(f"unknown TokenStore option(s): {', '.join(unknown)}")
    o = {**defaults, **given}
    if not isinstance(o["background"], bool):
        raise ConfigurationError("background must be a bool")
    url_kind, location = parse_url(url)
    peppers, current = _peppers(location, o["pepper"], o["peppers"], o["pepper_id"])
    size = o["negative_cache_size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 10_000_000:
        raise ConfigurationError("negative_cache_size must be an int between 0 and 10,000,000")
    negative_ttl = number(o["negative_ttl"], "negative_ttl", low=0, high=3600)
    if not isinstance(o["foreign_tokens"], bool):
        raise ConfigurationError("foreign_tokens must be a bool")
    if not isinstance(o["prefix"], str):
        raise ConfigurationError("prefix must be a str")
    usage_interval = number(o["usage_interval"], "usage_interval", low=0.01, high=86400)
    poll_interval = number(o["poll_interval"], "poll_interval", low=0.01, high=60)
    default_ttl = number(o["default_ttl"], "default_ttl", low=1, high=MAX_TTL)
    pool_size = o["pool_size"]
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or not 1 <= pool_size <= 1000:
        raise ConfigurationError("pool_size must be an int between 1 and 1000")
    return Options(
        url_kind=url_kind,
        location=location,
        prefix=o["prefix"],
        peppers=peppers,
        pepper_id=current,
        foreign_tokens=o["foreign_tokens"],
        negative_cache_size=size,
        negative_ttl=negative_ttl,
        usage_interval=usage_interval,
        poll_interval=poll_interval,
        default_ttl=default_ttl,
        pool_size=pool_size,
        timeout=number(o["timeout"], "timeout", low=0.1, high=600),
        background=o["background"],
    )


def _peppers(location: str | None, pepper: object, peppers: object, pepper_id: object) -> tuple[dict[str, bytes], str]:
    if pepper is not None and peppers is not None:
        raise ConfigurationError("give pepper= or peppers=, not both")
    if pepper_id is not None and not isinstance(pepper_id, str):
        raise ConfigurationError("pepper_id must be a str")
    if peppers is not None:
        if not isinstance(peppers, Mapping) or not peppers:
            raise ConfigurationError("peppers must be a non-empty dict of id -> bytes")
        table = dict(peppers)
        if pepper_id is None:
            if len(table) != 1:
                raise ConfigurationError("pepper_id= must name the current pepper when several are given")
            pepper_id = next(iter(table))
        if pepper_id not in table:
            raise ConfigurationError("pepper_id is not among the configured peppers")
        return table, pepper_id  # type: ignore[return-value]  # the Rust index checks the types
    if pepper is None:
        if location is not None:
            raise ConfigurationError("a persistent token store needs a server-side pepper (pepper= or peppers=)")
        # in-memory store: its tokens die with the process, so a random pepper serves
        return {"memory": secrets.token_bytes(32)}, "memory"
    current = pepper_id if pepper_id is not None else "default"
    return {current: pepper}, current  # type: ignore[dict-item]  # the Rust index checks the pepper's type
