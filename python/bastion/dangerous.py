"""Operations that switch checks off. Never use them to authorize a request.

- :func:`decode_unverified` reads a token's header and claims *without verifying the signature or any
  claim*: for debugging and for routing decisions that are re-checked by a real verifier.
- :func:`verify_jws` verifies a compact JWS signature and returns the raw payload *without checking any
  claim* (no exp, iss, aud…): for JWS test vectors and non-JWT payloads.

Both still apply bastion's structural rules (size cap, three canonical base64url segments, strict JSON),
and raise :class:`bastion.AuthError` subclasses for malformed input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bastion._core import Key, KeySet, _decode_unverified, _verify_jws

__all__ = ["decode_unverified", "verify_jws"]


def decode_unverified(token: str | bytes, *, max_token_bytes: int = 8192) -> dict[str, dict[str, Any]]:
    """Return ``{"header": {...}, "claims": {...}}`` of ``token`` WITHOUT verifying anything."""
    return _decode_unverified(token, max_token_bytes=max_token_bytes)


def verify_jws(
    token: str | bytes,
    keys: Key | KeySet | Sequence[Key],
    *,
    algorithms: Sequence[str] | str,
    max_token_bytes: int = 8192,
) -> bytes:
    """Verify the signature of a compact JWS and return its payload bytes, WITHOUT checking claims."""
    return _verify_jws(token, keys, algorithms=algorithms, max_token_bytes=max_token_bytes)
