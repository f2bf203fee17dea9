"""Every public constructor and method of bastion, given hostile values in every argument position: only
bastion errors (``BastionError`` subclasses) come out, or success; never a TypeError, ValueError,
OverflowError, SystemError, a panic or the hostile object's own exception."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

import bastion
from bastion import dangerous
from bastion.errors import BastionError


class Mischief(Exception):
    """What the hostile objects raise: it must never come out of bastion."""


class EvilStr(str):
    """A str whose own methods misbehave."""

    def encode(self, *a: Any, **k: Any) -> bytes:
        raise Mischief("encode")

    def __eq__(self, other: object) -> bool:
        raise Mischief("eq")

    def __hash__(self) -> int:
        raise Mischief("hash")

    def __str__(self) -> str:
        raise Mischief("str")


class EvilInt(int):
    """An int whose own conversions misbehave."""

    def __index__(self) -> int:
        raise Mischief("index")

    def __float__(self) -> float:
        raise Mischief("float")


class EvilFloat(float):
    def __float__(self) -> float:
        raise Mischief("float")


class BadIndex:
    def __index__(self) -> int:
        raise Mischief("index")

    def __int__(self) -> int:
        raise Mischief("int")


class BadFloat:
    def __float__(self) -> float:
        raise Mischief("float")


class BadIter:
    def __iter__(self) -> Iterator[Any]:
        raise Mischief("iter")


class BadLen(list[str]):
    def __len__(self) -> int:
        raise Mischief("len")


HOSTILE: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    10**400,
    -(10**400),
    -1,
    2**64,
    2**63,
    -(2**63) - 1,
    -0.0,
    EvilInt(5),
    EvilFloat(0.5),
    True,
    False,
    None,
    {"a": {"b": [1, {"c": math.nan}]}},
    MappingProxyType({"k": BadIndex()}),
    EvilStr("k"),
    EvilStr("HS256"),
    bytearray(b"k"),
    memoryview(b"k"),
    b"\xff\xfe",
    "",
    "\x00",
    "\ud800",
    BadIndex(),
    BadFloat(),
    BadIter(),
    BadLen(["a"]),
    [BadIndex()],
    [EvilStr("a")],
    object(),
]

SECRET = b"s" * 64
KEY = bastion.Key.hmac(SECRET, kid="k1")
EC = bastion.Key.generate("ES256", kid="e1")
SIGNER = bastion.JWTSigner(KEY, "HS256", issuer="iss")
VERIFIER = bastion.JWTVerifier(KEY, algorithms=["HS256"], issuer="iss")
JWKS = bastion.JWKSClient("https://idp.example/jwks", background=False)
TOKEN = SIGNER.sign({"sub": "u"})
STORE = bastion.TokenStore(None, pepper=b"p" * 32, background=False)
ISSUED = STORE.issue("u", ttl=3600)
RATE = bastion.Rate(10, per=1)
LIMITER = bastion.RateLimiter({"t": RATE})
AUTH = bastion.Authenticator(jwt=VERIFIER, tokens=STORE, limiter=LIMITER)
PRINCIPAL = STORE.verify(ISSUED.token)


def _app(*a: Any) -> None:
    return None


#: (what, callable, positional args, keyword args): valid calls, each argument of which is replaced in turn
CALLS: list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    ("Key.hmac", bastion.Key.hmac, (SECRET,), {"kid": "k", "alg": "HS256"}),
    ("Key.generate", bastion.Key.generate, ("ES256",), {"kid": "k"}),
    ("Key.from_pem", bastion.Key.from_pem, ("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----",), {"kid": "k"}),
    ("Key.from_jwk", bastion.Key.from_jwk, (EC.public_jwk(),), {}),
    ("KeySet", bastion.KeySet, ([KEY, EC],), {}),
    ("KeySet.from_jwks", bastion.KeySet.from_jwks, ({"keys": [EC.public_jwk()]},), {"allow_symmetric": False}),
    (
        "JWTVerifier",
        bastion.JWTVerifier,
        (KEY,),
        {
            "algorithms": ["HS256"],
            "issuer": "iss",
            "audience": "aud",
            "leeway": 1,
            "require": ["exp"],
            "typ": "JWT",
            "max_token_bytes": 4096,
            "cache_size": 4,
        },
    ),
    ("JWTVerifier.verify", VERIFIER.verify, (TOKEN,), {"now": 1.0}),
    ("JWTSigner", bastion.JWTSigner, (KEY, "HS256"), {"issuer": "i", "audience": "a", "ttl": 60, "typ": "JWT"}),
    ("JWTSigner.sign", SIGNER.sign, ({"sub": "u", "x": 1},), {"headers": {"kid": "k1"}, "now": 1.0}),
    ("dangerous.decode_unverified", dangerous.decode_unverified, (TOKEN,), {"max_token_bytes": 4096}),
    ("dangerous.verify_jws", dangerous.verify_jws, (TOKEN, KEY), {"algorithms": ["HS256"], "max_token_bytes": 4096}),
    (
        "TokenStore",
        bastion.TokenStore,
        (None,),
        {
            "prefix": "bst",
            "pepper": b"p" * 32,
            "foreign_tokens": False,
            "negative_cache_size": 16,
            "negative_ttl": 1.0,
            "usage_interval": 1.0,
            "poll_interval": 0.5,
            "default_ttl": 60.0,
            "pool_size": 2,
            "timeout": 1.0,
            "background": False,
        },
    ),
    (
        "TokenStore.issue",
        STORE.issue,
        ("u",),
        {
            "scopes": ["a"],
            "roles": "r",
            "tier": "t",
            "ttl": 60,
            "name": "n",
            "metadata": {"m": 1},
            "kind": "k",
            "client_id": "c",
        },
    ),
    ("TokenStore.verify", STORE.verify, (ISSUED.token,), {"now": 1.0}),
    ("TokenStore.revoke", STORE.revoke, ("bstk_x",), {"reason": "r"}),
    ("TokenStore.revoke_id", STORE.revoke_id, ("0" * 22,), {"reason": "r"}),
    ("TokenStore.revoke_subject", STORE.revoke_subject, ("nobody",), {}),
    ("TokenStore.revoke_jti", STORE.revoke_jti, ("j", 1.0), {}),
    ("TokenStore.rotate", STORE.rotate, ("bstk_x",), {"grace": 1.0}),
    ("TokenStore.get", STORE.get, (ISSUED.id,), {}),
    ("TokenStore.list", STORE.list, ("u",), {}),
    ("TokenStore.subject_valid_after", STORE.subject_valid_after, ("u",), {}),
    (
        "TokenStore.import_hashed",
        STORE.import_hashed,
        ([{"digest": b"d" * 32, "subject": "s", "expires_at": 1.0, "scopes": ["a"], "created_at": 0.5}],),
        {"scheme": "sha256"},
    ),
    ("Rate", bastion.Rate, (10,), {"per": 1.0, "burst": 5}),
    ("RateLimiter", bastion.RateLimiter, ({"t": RATE},), {"default": "t", "max_keys": 100, "clock": None}),
    ("RateLimiter.check", LIMITER.check, ("k",), {"tier": "t", "cost": 1}),
    ("RateLimiter.allow", LIMITER.allow, ("k",), {"tier": "t"}),
    ("RateLimiter.reset", LIMITER.reset, ("k",), {"tier": "t"}),
    ("Decision", bastion.Decision, (True, "t", [(10, 1, 5, 0.1, 0.0)]), {"retry_after": 0.0, "source": "local"}),
    (
        "RedisRateLimiter",
        bastion.RedisRateLimiter,
        ("redis://127.0.0.1:1/0", {"t": RATE}),
        {
            "default": "t",
            "prefix": "p",
            "timeout": 0.1,
            "spin": 0.0,
            "failure_mode": {"t": "open"},
            "retry_interval": 1.0,
            "max_keys": 10,
        },
    ),
    (
        "Authenticator",
        bastion.Authenticator,
        (VERIFIER, STORE, LIMITER),
        {"realm": "api", "api_key_header": "X-API-Key", "max_header_bytes": 4096},
    ),
    ("JWTVerifier.replace_keys", VERIFIER.replace_keys, ([KEY],), {}),
    (
        "JWKSClient",
        bastion.JWKSClient,
        ("https://idp.example/jwks",),
        {
            "allow_http": False,
            "headers": {"X-A": "b"},
            "timeout": 1.0,
            "connect_timeout": 1.0,
            "max_bytes": 1000,
            "cooldown": 1.0,
            "min_ttl": 1.0,
            "max_ttl": 10.0,
            "default_ttl": 5.0,
            "grace": 1.0,
            "negative_cache": 8,
            "background": False,
        },
    ),
    (
        "JWKSClient.from_issuer",
        bastion.JWKSClient.from_issuer,
        ("https://idp.example",),
        {"discovery": "auto", "metadata_ttl": 60.0, "background": False},
    ),
    ("JWKSClient.verifier", JWKS.verifier, (), {"algorithms": ["ES256"], "issuer": "https://idp.example"}),
    ("Rule", bastion.Rule, ("/a/{x}",), {"methods": ["GET"], "scopes": ["s"], "roles": ["r"], "auth": "required"}),
    ("Principal.has_scopes", PRINCIPAL.has_scopes, ("a",), {}),
    ("Principal.has_role", PRINCIPAL.has_role, ("a",), {}),
    ("AuditLog", bastion.audit.AuditLog, ("bastion.test.hostile",), {"queue_size": 10, "level": logging.INFO}),
]
for _mw in (bastion.asgi.AuthMiddleware, bastion.wsgi.AuthMiddleware):
    CALLS.append(
        (
            f"{_mw.__module__}.AuthMiddleware",
            _mw,
            (_app, AUTH),
            {
                "rules": [bastion.Rule("/a")],
                "exempt": ["/health"],
                "default": "required",
                "problem_details": False,
                "ratelimit_headers": True,
                "trusted_proxies": ["10.0.0.0/8"],
                "request_id_header": "X-Request-ID",
            },
        )
    )


#: argument positions left out of the sweep (none: JWTSigner's key is a ConfigurationError now too)
ELSEWHERE: set[tuple[str, int]] = set()


def _variants() -> Iterator[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]]:
    for what, fn, args, kwargs in CALLS:
        for i in range(len(args)):
            if (what, i) in ELSEWHERE:
                continue
            for h in HOSTILE:
                yield f"{what} arg {i}={h!r:.40}", fn, (*args[:i], h, *args[i + 1 :]), kwargs
        for k in kwargs:
            for h in HOSTILE:
                yield f"{what} {k}={h!r:.40}", fn, args, {**kwargs, k: h}


def test_the_base_calls_are_valid() -> None:
    # so that each hostile value is what a call refuses: the base calls succeed, but those that refuse on
    # purpose with a bastion error of their own (an empty PEM, an unknown token, a time before the token)
    refused = set()
    for what, fn, args, kwargs in CALLS:
        try:
            fn(*args, **kwargs)
        except BastionError:
            refused.add(what)
    assert refused == {
        "Key.from_pem",
        "JWTVerifier.verify",
        "TokenStore.revoke",
        "TokenStore.rotate",
    }


def test_hostile_values_raise_only_bastion_errors() -> None:
    failures: list[str] = []
    for what, fn, args, kwargs in _variants():
        try:
            out = fn(*args, **kwargs)
        except BastionError:
            continue
        except BaseException as exc:  # anything else is the defect this test looks for
            failures.append(f"{what}: {type(exc).__name__}: {exc!s:.80}")
            continue
        close = getattr(out, "close", None)
        if isinstance(out, bastion.TokenStore | bastion.RedisRateLimiter) and close is not None:
            close()
    assert not failures, "\n".join(failures)
