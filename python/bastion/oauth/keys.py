"""Signing keys of the provider's JWT access tokens, and their rotation without a failed verification.

The ring holds up to three keys: ``current`` signs; ``next`` is published before it signs, so that every
verifier has it by the time it does; ``previous`` stays published after it stopped signing, until the last
token it signed has expired. The procedure (docs/OAUTH.md): :meth:`KeyRing.generate_next` → wait at least the
verifiers' JWKS cache lifetime → :meth:`KeyRing.switch` → wait at least the access-token lifetime →
:meth:`KeyRing.retire`.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from bastion._core import JWTSigner, Key, KeySet
from bastion.errors import ConfigurationError

__all__ = ["KeyRing"]


def _checked(key: object, what: str) -> Key:
    if not isinstance(key, Key) or not key.is_private or key.kty == "oct":
        raise ConfigurationError(f"{what} must be an asymmetric private bastion.Key (its public half is published)")
    if not key.kid or not key.alg:
        raise ConfigurationError(f"{what} needs a kid and an alg (Key.generate(alg, kid=...) sets both)")
    return key


class KeyRing:
    """The current signing key, and the next and previous ones that are published beside it."""

    def __init__(self, current: Key, *, next: Key | None = None, previous: Key | None = None) -> None:
        self._lock = threading.Lock()
        self._current = _checked(current, "current")
        self._next = None if next is None else _checked(next, "next")
        self._previous = None if previous is None else _checked(previous, "previous")
        kids = [k.kid for k in self._keys()]
        if len(set(kids)) != len(kids):
            raise ConfigurationError("the keys of a KeyRing need distinct kids")

    @classmethod
    def generate(cls, alg: str = "ES256") -> KeyRing:
        """A ring with one new key of ``alg``."""
        return cls(_new_key(alg))

    @property
    def current(self) -> Key:
        return self._current

    @property
    def next(self) -> Key | None:
        return self._next

    @property
    def previous(self) -> Key | None:
        return self._previous

    def _keys(self) -> list[Key]:
        return [k for k in (self._current, self._next, self._previous) if k is not None]

    def algorithms(self) -> list[str]:
        """The algorithms of the published keys."""
        return sorted({k.alg for k in self._keys() if k.alg})

    def keyset(self) -> KeySet:
        """Every published key (current, next, previous), for verifying."""
        return KeySet(self._keys())

    def jwks(self) -> dict[str, Any]:
        """The published JWK Set: public members only."""
        return self.keyset().to_jwks()

    def generate_next(self, alg: str | None = None) -> Key:
        """Make a new next key (of the current key's algorithm unless ``alg`` is given) and publish it."""
        key = _new_key(alg or self._current.alg or "ES256")
        with self._lock:
            self._next = key
        return key

    def switch(self) -> Key:
        """Sign with the next key from now on; the current one becomes previous (still published)."""
        with self._lock:
            if self._next is None:
                raise ConfigurationError("there is no next key to switch to: generate_next() first")
            self._previous, self._current, self._next = self._current, self._next, None
            return self._current

    def retire(self) -> Key | None:
        """Stop publishing the previous key (once every token it signed has expired); returns it."""
        with self._lock:
            old, self._previous = self._previous, None
            return old

    def signer(self, *, issuer: str, audience: str | list[str], ttl: int) -> JWTSigner:
        """A signer of RFC 9068 access tokens with the current key."""
        return JWTSigner(self._current, issuer=issuer, audience=audience, ttl=ttl, typ="at+jwt")


def _new_key(alg: str) -> Key:
    if not isinstance(alg, str) or alg.startswith("HS"):
        raise ConfigurationError("the signing key is asymmetric: RS256, PS256, ES256, ES384, EdDSA, ...")
    return Key.generate(alg, kid=secrets.token_urlsafe(12))
