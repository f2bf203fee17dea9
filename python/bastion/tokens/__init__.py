"""Opaque ("database") tokens: :class:`TokenStore`, :class:`IssuedToken`, :class:`TokenInfo`, :class:`Principal`."""

from __future__ import annotations

from bastion._core import Principal
from bastion.tokens.store import IssuedToken, TokenInfo, TokenStore

__all__ = ["IssuedToken", "Principal", "TokenInfo", "TokenStore"]
