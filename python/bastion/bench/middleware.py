"""Middleware cases for ``python -m bastion bench middleware`` (``benches/bench_middleware.py`` runs the same
cases under pytest-benchmark): what authentication adds to one request, in process, over the bare app.

The apps and the drivers are in :mod:`bastion.bench.webapps`: ASGI requests run on one event loop,
``REQUESTS_PER_CALL`` of them inside one coroutine per call, with a pre-built scope copied per request; WSGI
requests get a pre-built environ copied per request and a server's handling of the body. Every timed call
reports how many requests were answered 200, and every stack is checked first to answer its token with 200
and a bad one (signed with another key, or unknown to the store) with 401.

Every group has its bare app as the baseline: a case's figure is its overhead over that app, measured in the
same rounds. The peers are the middleware a user would write with PyJWT (raw ASGI and raw WSGI), Starlette's
``AuthenticationMiddleware`` with a PyJWT backend (over the bare Starlette app) and flask-jwt-extended's
``@jwt_required`` (over the bare Flask app). Bastion runs with its HS256 verifier (no cache), an opaque token
and a repeated token (``cache_size=1024``), the rate limiter and the audit log on, and a route rule needing
scope ``read``. The audit log writes JSON lines to a temporary file from its thread (``AuditLog(file=...)``,
the sink for high request rates): each bastion batch is timed until that thread has written every record
the batch queued, so the whole cost of the audit is billed to the batch that caused it. :func:`footer`
judges the budgets from the run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import bastion
from bastion import asgi, wsgi
from bastion.audit import AuditLog
from bastion.bench import NOT_INSTALLED, Case, Group, Row, fmt_ratio, fmt_time
from bastion.bench.webapps import (
    REQUESTS_PER_CALL,
    PassThroughMiddleware,
    PassThroughWSGIMiddleware,
    PyJWTMiddleware,
    PyJWTWSGIMiddleware,
    asgi_batch,
    asgi_status,
    bare_asgi,
    bare_wsgi,
    flask_apps,
    starlette_apps,
    wsgi_call,
)

SECRET = b"bench-middleware-secret-0123456789abcdef"
#: the key the bad JWT is signed with: a well-formed token that every stack must refuse
WRONG_SECRET = b"another-secret-entirely-0123456789abcdef"
SUBJECT = "user_8c1f2b7e"

ASGI_RAW = "ASGI: raw app, GET /api/items (per request)"
ASGI_STARLETTE = "ASGI: Starlette app, GET /api/items (per request)"
WSGI_RAW = "WSGI: raw callable, GET /api/items (per request)"
WSGI_FLASK = "WSGI: Flask app, GET /api/items (per request)"

BASTION_HS256 = "bastion, HS256 (limiter + audit)"
BASTION_OPAQUE = "bastion, opaque token (limiter + audit)"
BASTION_CACHED = "bastion, repeated HS256 token (cache_size=1024)"
PYJWT = "PyJWT middleware (hand-written)"
STARLETTE_AUTH = "Starlette AuthenticationMiddleware + PyJWT"
FLASK_JWT = "flask-jwt-extended @jwt_required"
FLOOR = "floor: pass-through middleware (no auth)"


# -- the stacks ---------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """One app as a request reaches it, middleware included: :meth:`case` is its timed case, :meth:`status`
    answers one request. ``app`` is None when the stack cannot be built here (``missing`` says why)."""

    group: str
    name: str
    kind: str  # "asgi" or "wsgi"
    app: Any
    token: str = ""
    bad_token: str = ""
    missing: str = ""
    is_bastion: bool = False
    is_baseline: bool = False
    #: authenticates nothing (the floor): checked to answer 200, never to refuse
    is_floor: bool = False
    settle: Callable[[], object] | None = None

    def status(self, token: str) -> int:
        if self.kind == "asgi":
            return asgi_status(self.app, token)
        return wsgi_call(self.app, token)()

    def case(self) -> Case:
        if self.app is None:
            return Case(self.group, self.name, None, self.missing, self.is_bastion, is_baseline=self.is_baseline)
        if self.kind == "asgi":
            return Case(
                self.group,
                self.name,
                asgi_batch(self.app, self.token),
                is_bastion=self.is_bastion,
                ok=_all_admitted,
                is_baseline=self.is_baseline,
                per_call=REQUESTS_PER_CALL,
                settle=self.settle,
            )
        return Case(
            self.group,
            self.name,
            wsgi_call(self.app, self.token),
            is_bastion=self.is_bastion,
            ok=_admitted,
            is_baseline=self.is_baseline,
            settle=self.settle,
        )


def _all_admitted(admitted: int) -> bool:
    return admitted == REQUESTS_PER_CALL


def _admitted(status: int) -> bool:
    return status == 200


@dataclass
class Tokens:
    """The benchmark's tokens and, for each, a well-formed one every stack must refuse (the opaque pair is
    issued once bastion's token store is built)."""

    jwt: str
    bad_jwt: str
    opaque: str = ""
    bad_opaque: str = ""


def mint_tokens() -> Tokens:
    """The HS256 token every stack verifies, minted by PyJWT (a neutral party), and one signed with another
    key. ``type`` and ``fresh`` are flask-jwt-extended's claims; the others ignore them."""
    import jwt

    now = int(time.time())
    claims = {
        "sub": SUBJECT,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": "4f1c6a2e-8a4b-4f7e-9d3c-1b2a3c4d5e6f",
        "scope": "read",
        "type": "access",
        "fresh": False,
    }
    return Tokens(jwt.encode(claims, SECRET, algorithm="HS256"), jwt.encode(claims, WRONG_SECRET, algorithm="HS256"))


def audit_log(folder: str) -> AuditLog:
    """An AuditLog writing JSON lines to a file in ``folder`` (a real file, written and flushed a batch at a
    time by the log's thread)."""
    return AuditLog(file=f"{folder}/audit.jsonl")


class _Bastion:
    """Bastion's pieces: one token store, limiter and audit log under two Authenticators (HS256 without a
    cache, and with ``cache_size=1024``)."""

    def __init__(self, tokens: Tokens) -> None:
        self.rules = [bastion.Rule("/api/*", scopes=["read"])]
        # lives as long as this object, which every bastion stack holds through its ``settle``
        self.folder = tempfile.TemporaryDirectory(prefix="bastion-bench-audit-")
        store = bastion.TokenStore(None)
        tokens.opaque = store.issue(SUBJECT, scopes=["read"]).token
        # well-formed, but from another store: unknown to this one
        tokens.bad_opaque = bastion.TokenStore(None, background=False).issue(SUBJECT, scopes=["read"]).token
        limiter = bastion.RateLimiter({"default": bastion.Rate(10**9, per=1)}, default="default")
        self.audit = audit_log(self.folder.name)
        key = bastion.Key.hmac(SECRET)
        self.plain = bastion.Authenticator(
            jwt=bastion.JWTVerifier(key, algorithms=["HS256"], cache_size=0),
            tokens=store,
            limiter=limiter,
            audit=self.audit,
        )
        self.cached = bastion.Authenticator(
            jwt=bastion.JWTVerifier(key, algorithms=["HS256"], cache_size=1024),
            tokens=store,
            limiter=limiter,
            audit=self.audit,
        )

    def settle(self) -> None:
        """Wait until the audit log has written what a batch queued (billed to that batch)."""
        self.audit.flush()

    def stacks(self, group: str, kind: str, app: Any, tokens: Tokens, *, all_tokens: bool) -> list[Stack]:
        """Bastion's middleware around ``app``: the HS256 row (the group's reference) and, with
        ``all_tokens``, the opaque and the cached rows."""
        names = [BASTION_HS256, BASTION_OPAQUE, BASTION_CACHED] if all_tokens else [BASTION_HS256]
        if app is None:  # the group's framework is not installed
            return [
                Stack(group, name, kind, None, missing=NOT_INSTALLED, is_bastion=name == BASTION_HS256)
                for name in names
            ]
        middleware: Any = asgi.AuthMiddleware if kind == "asgi" else wsgi.AuthMiddleware
        plain = middleware(app, self.plain, rules=self.rules)
        settle = self.settle
        out = [Stack(group, BASTION_HS256, kind, plain, tokens.jwt, tokens.bad_jwt, is_bastion=True, settle=settle)]
        if all_tokens:
            cached = middleware(app, self.cached, rules=self.rules)
            out.append(Stack(group, BASTION_OPAQUE, kind, plain, tokens.opaque, tokens.bad_opaque, settle=settle))
            out.append(Stack(group, BASTION_CACHED, kind, cached, tokens.jwt, tokens.bad_jwt, settle=settle))
        return out


def _optional(build: Callable[[bytes], tuple[Any, Any]]) -> tuple[Any, Any]:
    try:
        return build(SECRET)
    except ImportError:
        return None, None


def stacks(quick: bool = False) -> list[Stack]:
    """Every stack of every group, bare apps first. Raises ImportError without PyJWT (it mints the tokens)."""
    tokens = mint_tokens()
    ours = _Bastion(tokens)
    out: list[Stack] = []

    out.append(Stack(ASGI_RAW, "bare ASGI app", "asgi", bare_asgi, tokens.jwt, is_baseline=True))
    out += ours.stacks(ASGI_RAW, "asgi", bare_asgi, tokens, all_tokens=True)
    out.append(Stack(ASGI_RAW, PYJWT, "asgi", PyJWTMiddleware(bare_asgi, SECRET), tokens.jwt, tokens.bad_jwt))
    out.append(Stack(ASGI_RAW, FLOOR, "asgi", PassThroughMiddleware(bare_asgi), tokens.jwt, is_floor=True))

    bare_star, guarded_star = _optional(starlette_apps)
    why = "" if bare_star is not None else NOT_INSTALLED
    out.append(Stack(ASGI_STARLETTE, "bare Starlette app", "asgi", bare_star, tokens.jwt, "", why, is_baseline=True))
    out += ours.stacks(ASGI_STARLETTE, "asgi", bare_star, tokens, all_tokens=False)
    out.append(Stack(ASGI_STARLETTE, STARLETTE_AUTH, "asgi", guarded_star, tokens.jwt, tokens.bad_jwt, why))

    out.append(Stack(WSGI_RAW, "bare WSGI callable", "wsgi", bare_wsgi, tokens.jwt, is_baseline=True))
    out += ours.stacks(WSGI_RAW, "wsgi", bare_wsgi, tokens, all_tokens=True)
    out.append(Stack(WSGI_RAW, PYJWT, "wsgi", PyJWTWSGIMiddleware(bare_wsgi, SECRET), tokens.jwt, tokens.bad_jwt))
    out.append(Stack(WSGI_RAW, FLOOR, "wsgi", PassThroughWSGIMiddleware(bare_wsgi), tokens.jwt, is_floor=True))

    bare_flask, guarded_flask = _optional(flask_apps)
    why = "" if bare_flask is not None else NOT_INSTALLED
    out.append(Stack(WSGI_FLASK, "bare Flask app", "wsgi", bare_flask, tokens.jwt, "", why, is_baseline=True))
    out += ours.stacks(WSGI_FLASK, "wsgi", bare_flask, tokens, all_tokens=False)
    out.append(Stack(WSGI_FLASK, FLASK_JWT, "wsgi", guarded_flask, tokens.jwt, tokens.bad_jwt, why))
    return out


def check(stack: Stack) -> None:
    """Raise AssertionError unless ``stack`` admits its token with 200 and (bare apps and the floor aside)
    answers a token signed with another key, or unknown to the store, with 401: a benchmark of refusals would
    be wrong."""
    got = stack.status(stack.token)
    assert got == 200, f"{stack.group}: {stack.name}: the benchmark's token got {got}, not 200"
    if not stack.is_baseline and not stack.is_floor:
        got = stack.status(stack.bad_token)
        assert got == 401, f"{stack.group}: {stack.name}: a bad token got {got}, not 401"


def cases(quick: bool = False) -> list[Case]:
    """The same cases whatever ``quick`` says; every stack is checked (:func:`check`) before it is timed."""
    out = []
    for stack in stacks(quick):
        if stack.app is not None:
            check(stack)
        out.append(stack.case())
    return out


# -- the budgets --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """A row's overhead over the bare app at most ``max_s``, or a peer's overhead at least ``min_ratio``
    times bastion's (the group's reference row)."""

    group: str
    case: str
    label: str
    max_s: float | None = None
    min_ratio: float | None = None

    def verdict(self, groups: Sequence[Group]) -> str:
        row = _row(groups, self.group, self.case)
        if self.max_s is not None:
            limit = f"≤ {fmt_time(self.max_s)}"
            if row is None or row.overhead_s is None:
                return f"{self.label} {limit}: not measured{_why(groups, self.group, row)}"
            met = "met" if row.overhead_s <= self.max_s else "NOT MET"
            return f"{self.label} {limit}: {fmt_time(row.overhead_s)} over the bare app — {met}"
        assert self.min_ratio is not None
        limit = f"≥ {self.min_ratio:g}× less than {self.case}"
        if row is None or row.ratio is None:
            return f"{self.label} {limit}: not measured{_why(groups, self.group, row)}"
        met = "met" if row.ratio >= self.min_ratio else "NOT MET"
        return f"{self.label} {limit}: {fmt_ratio(row.ratio)} — {met}"


def _row(groups: Sequence[Group], group: str, case: str) -> Row | None:
    for g in groups:
        if g.name == group:
            return next((r for r in g.rows if r.name == case), None)
    return None


def _why(groups: Sequence[Group], group: str, row: Row | None) -> str:
    """Why a budget could not be judged: the missing row's reason, else bastion's, else the noise."""
    if row is not None and row.missing:
        return f" ({row.missing})"
    reference = next((r for g in groups if g.name == group for r in g.rows if r.is_bastion), None)
    if reference is not None and reference.missing:
        return f" (bastion: {reference.missing})"
    if reference is not None and reference.overhead_s is not None and reference.overhead_s <= 0:
        return " (bastion's overhead is lost in the noise: time longer, --seconds)"
    return ""


BUDGETS = tuple(
    budget
    for kind, group in (("ASGI", ASGI_RAW), ("WSGI", WSGI_RAW))
    for budget in (
        Budget(group, BASTION_HS256, f"{kind} bastion HS256, limiter + audit:", max_s=3e-6),
        Budget(group, BASTION_OPAQUE, f"{kind} bastion opaque token:", max_s=2e-6),
        Budget(group, BASTION_CACHED, f"{kind} bastion repeated token (cache):", max_s=2e-6),
        Budget(group, PYJWT, f"{kind} bastion HS256", min_ratio=15),
    )
)


def footer(groups: Sequence[Group]) -> list[str]:
    """What the columns mean, then the budgets, met or not in this run."""
    return [
        "over bare: the median over rounds of (this case − its group's bare app in the same round);",
        f"vs bastion: this overhead / the overhead of '{BASTION_HS256}' in the same group.",
        "",
        "budgets (this run):",
        *(f"  {b.verdict(groups)}" for b in BUDGETS),
        "",
        "the floor (this run): a middleware that copies the scope and wraps send, authenticating nothing:",
        *(f"  {line}" for line in _floors(groups)),
    ]


def _floors(groups: Sequence[Group]) -> list[str]:
    """Each raw group's floor over its bare app, and what bastion's rows cost above it."""
    out = []
    for kind, group in (("ASGI", ASGI_RAW), ("WSGI", WSGI_RAW)):
        floor = _row(groups, group, FLOOR)
        if floor is None or floor.overhead_s is None:
            out.append(f"{kind}: not measured")
            continue
        above = []
        for name, label in ((BASTION_HS256, "HS256"), (BASTION_OPAQUE, "opaque"), (BASTION_CACHED, "repeated token")):
            row = _row(groups, group, name)
            if row is not None and row.overhead_s is not None:
                above.append(f"{label} {fmt_time(row.overhead_s - floor.overhead_s)}")
        out.append(f"{kind}: {fmt_time(floor.overhead_s)} over the bare app; bastion above it: " + ", ".join(above))
    return out
