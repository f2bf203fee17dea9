"""Opaque ("database") tokens: :class:`TokenStore`, :class:`IssuedToken`, :class:`TokenInfo`."""

from __future__ import annotations

from bastion.tokens.store import IssuedToken, TokenInfo, TokenStore

__all__ = ["IssuedToken", "TokenInfo", "TokenStore"]
