"""Every token, secret and key the tests mint, so the session can prove none of them reached a log record.

The minting helpers call :func:`remember`; the session fixture in ``conftest.py`` captures the text of every
log record and, at the end, asks :func:`leaks` which remembered secrets appear in it — whole, or as any
16-character window (a token cut short, or wrapped across a line, is still a leak).
"""

from __future__ import annotations

from collections.abc import Iterable

#: a leak shorter than this is indistinguishable from chance text
WINDOW = 16

_secrets: set[str] = set()


def remember(secret: str | bytes) -> None:
    """Record ``secret`` (a token, an HMAC secret, a pepper): it must never appear in a log record."""
    text = secret.decode("latin-1") if isinstance(secret, bytes) else secret
    if text:
        _secrets.add(text)


def leaks(texts: Iterable[tuple[str, str]]) -> list[str]:
    """A description of each hit in ``texts`` (text, where it was logged) — never the secret itself."""
    windows: dict[str, int] = {}
    whole: list[str] = []
    for i, secret in enumerate(sorted(_secrets)):
        if len(secret) < WINDOW:
            whole.append(secret)
            continue
        for start in range(len(secret) - WINDOW + 1):
            windows.setdefault(secret[start : start + WINDOW], i)
    found: list[str] = []
    for text, origin in texts:
        for secret in whole:
            if secret in text:
                found.append(f"{origin}: a {len(secret)}-character secret, whole")
        for start in range(len(text) - WINDOW + 1):
            hit = windows.get(text[start : start + WINDOW])
            if hit is not None:
                found.append(f"{origin}, at character {start}: {WINDOW} characters of remembered secret #{hit}")
                break
    return found
