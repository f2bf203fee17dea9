"""``bastion.oauth``: your API as an OAuth 2.0 authorization server for machine clients.

- :class:`ClientRegistry` — clients in the token store's database, secrets only as keyed digests (two slots,
  for rotation without downtime); ``python -m bastion clients …`` from a shell.
- :class:`Provider` — ``POST /oauth/token`` (client_credentials, refresh_token with rotation and reuse
  detection), ``/oauth/introspect`` (RFC 7662), ``/oauth/revoke`` (RFC 7009), the RFC 8414 and RFC 9728
  metadata and the JWKS; ``provider.asgi()`` / ``provider.wsgi()`` mount them.
- :class:`KeyRing` — the signing keys of JWT access tokens and their rotation.

See docs/OAUTH.md.
"""

from __future__ import annotations

from bastion.oauth.clients import GRANT_TYPES, Client, ClientRegistry, NewSecret
from bastion.oauth.http import Request, Response
from bastion.oauth.keys import KeyRing
from bastion.oauth.provider import FAILURES_TIER, REQUESTS_TIER, Provider, default_limiter

__all__ = [
    "FAILURES_TIER",
    "GRANT_TYPES",
    "REQUESTS_TIER",
    "Client",
    "ClientRegistry",
    "KeyRing",
    "NewSecret",
    "Provider",
    "Request",
    "Response",
    "default_limiter",
]
