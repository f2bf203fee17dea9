"""The provider's audit events on the ``bastion.audit`` logger: one record per event, never a token or secret.

Each record's message is ``oauth.<event>`` followed by its fields as ``key=value``; the same fields are on the
record as ``oauth_event`` (a dict), for handlers that format records themselves. Only public values are
passed here: client ids, subjects, record ids and jtis, scopes, grant types, counts.
"""

from __future__ import annotations

import logging

__all__ = ["LOGGER", "emit"]

LOGGER = logging.getLogger("bastion.audit")

#: events that call for attention
_ERRORS = frozenset({"refresh_reuse_detected"})


def emit(event: str, **fields: object) -> None:
    """Log ``event`` (``token_issued``, ``token_refreshed``, ``refresh_reuse_detected``, ``token_revoked``,
    ``client_secret_rotated``, ``client_disabled``) with public ``fields``."""
    level = logging.ERROR if event in _ERRORS else logging.INFO
    if not LOGGER.isEnabledFor(level):
        return
    shown = {
        k: (" ".join(sorted(v)) if isinstance(v, list | tuple | set | frozenset) else v) for k, v in fields.items()
    }
    text = " ".join(f"{k}={v}" for k, v in shown.items() if v is not None)
    LOGGER.log(level, "oauth.%s %s", event, text, extra={"oauth_event": {"event": event, **shown}})
