"""`Authenticator`: the fused per-request path, and the one step generator that feeds it.

Every request costs one call into the Rust core (`_core.Authenticator.step`): the route rule, the Authorization
header, the JWT or opaque token, the principal, the tier's rate limit and the rule's scopes and roles, in
the order of DESIGN §3. The core does no I/O. When it needs something from outside — an opaque token's record
that is not in the in-memory index, a check of the shared (Redis) limiter, a key source's keys for a kid its
verifier does not hold — it says so, and :meth:`Authenticator._resolve`, a generator written once, asks for it:
:meth:`Authenticator.decide` supplies it blocking (WSGI), :meth:`Authenticator.decide_async` awaits it (ASGI), so
the two worlds never diverge.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Final

from bastion import _core
from bastion._http import check_realm
from bastion.errors import AuthError, AuthUnavailable, ConfigurationError
from bastion.rules import Rule
from bastion.rules import compile as compile_rules

if TYPE_CHECKING:
    from bastion._core import JWTVerifier, Principal, RateLimiter, RuleSet
    from bastion.audit.writer import AuditLog
    from bastion.ratelimit.redis import RedisRateLimiter
    from bastion.tokens import TokenStore

__all__ = ["DEFAULT_MAX_HEADER_BYTES", "Authenticator", "Outcome"]

Outcome = _core.Outcome

#: Authorization values longer than this are refused (`invalid_request`) before any parsing. Above the
#: verifier's default ``max_token_bytes`` (8192) plus the scheme on purpose: a token just over its own cap is
#: then refused as ``token_too_large``, the error that names what is wrong, not as a malformed header.
DEFAULT_MAX_HEADER_BYTES: Final = 8192 + 64

_DONE: Final = _core.Outcome.DONE
_REFUSED: Final = _core.Outcome.REFUSED
_NEED_RECORD: Final = _core.Outcome.NEED_RECORD
_NEED_LIMIT: Final = _core.Outcome.NEED_LIMIT
_NEED_KEY: Final = _core.Outcome.NEED_KEY
# a record that changes while it is read (rotation, revocation) is read again; this bounds the retries
_MAX_STEPS: Final = 8

#: What the shell must supply to the step generator: ("record", miss), ("limit", (key, tier)) or
#: ("key", (source, kid)) — a key source's fetch, after which the request runs again (its answer is None).
Need = tuple[str, Any]
Step = Generator[Need, Any, "Outcome"]


class Authenticator:
    """Authenticates, rate-limits and authorizes requests: one object per application, shared by every thread.

    ``jwt``: a :class:`bastion.JWTVerifier`, or a list of them, one per issuer (each with ``issuer=``: the token's
    unverified ``iss`` chooses the verifier, which then checks it in full; an ``iss`` none accepts is
    ``invalid_issuer``), or ``None``. A verifier made by :meth:`bastion.JWKSClient.verifier` has its unknown
    kids fetched for (once per request; awaited under ASGI). ``tokens``: a :class:`bastion.TokenStore` for opaque
    tokens — and, when given, its subject cut-offs (``revoke_subject``) and jti deny-list (``revoke_jti``) apply
    to JWTs too; ``limiter``: a :class:`bastion.RateLimiter` (checked inside the core call) or a
    :class:`bastion.RedisRateLimiter` (checked by this shell, awaited under ASGI) or ``None``; ``tier_of``: a
    callable ``Principal -> str | None`` choosing the rate-limit tier (default: the token's own tier, from the
    record or a ``tier`` claim; ``None`` means the limiter's default tier); ``realm``: the ``realm`` of every
    ``WWW-Authenticate`` challenge (default ``"api"``); ``audit``: an :class:`bastion.audit.AuditLog` the
    middleware writes one record per request to (default ``None``: no audit); ``api_key_header``: a header that
    may carry an opaque token instead of ``Authorization`` (e.g. ``"X-API-Key"``; default ``None``; both on one
    request is ``invalid_request``); ``max_header_bytes``: the longest Authorization value read.
    """

    __slots__ = ("_core", "_limiter", "_remote", "_rules", "_tokens", "api_key_header", "audit", "realm")

    def __init__(
        self,
        jwt: JWTVerifier | Sequence[JWTVerifier] | None = None,
        tokens: TokenStore | None = None,
        limiter: RateLimiter | RedisRateLimiter | None = None,
        *,
        tier_of: Callable[[Principal], str | None] | None = None,
        realm: str = "api",
        audit: AuditLog | None = None,
        api_key_header: str | None = None,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    ) -> None:
        if jwt is None and tokens is None:
            raise ConfigurationError("an Authenticator needs jwt=, tokens= or both: there is nothing to verify with")
        if tier_of is not None and not callable(tier_of):
            raise ConfigurationError("tier_of must be a callable Principal -> str | None")
        realm = check_realm(realm)
        if api_key_header is not None and (
            not isinstance(api_key_header, str)
            or not api_key_header
            or not all(c.isascii() and (c.isalnum() or c in "-_") for c in api_key_header)
        ):
            raise ConfigurationError("api_key_header must be a header name such as 'X-API-Key'")
        if api_key_header is not None and api_key_header.lower() == "authorization":
            raise ConfigurationError("api_key_header names another header than Authorization")
        if api_key_header is not None and tokens is None:
            raise ConfigurationError("api_key_header carries opaque tokens: it needs tokens=")
        local = isinstance(limiter, _core.RateLimiter)
        remote = limiter is not None and not local
        if remote and not (hasattr(limiter, "check") and hasattr(limiter, "acheck")):
            raise ConfigurationError("limiter must be a bastion.RateLimiter or a bastion.RedisRateLimiter")
        if audit is not None and not callable(getattr(audit, "emit", None)):
            raise ConfigurationError("audit must be a bastion.audit.AuditLog (or have an emit(record) method)")
        self._core = _core.Authenticator(
            jwt,
            tokens,
            limiter if isinstance(limiter, _core.RateLimiter) else None,
            remote_limit=remote,
            tier_of=tier_of,
            api_key_header=api_key_header,
            max_header_bytes=max_header_bytes,
        )
        self._tokens = tokens
        self._limiter = limiter if remote else None
        self._remote = remote
        self._rules = compile_rules(())
        self.realm = realm
        self.audit = audit
        self.api_key_header = api_key_header

    # -- the public calls -------------------------------------------------------------------------------

    def authenticate(
        self,
        authorization: str | bytes | None = None,
        *,
        method: str = "GET",
        path: str = "/",
        api_key: str | bytes | None = None,
        rules: RuleSet | Sequence[Rule] | None = None,
        now: float | None = None,
    ) -> Principal | None:
        """The principal of a request, or raise its :class:`bastion.AuthError`.

        ``None`` when the matching rule lets the request through without a token (``auth="none"``, or
        ``"optional"`` and no token was sent). Blocking: for a WSGI app, a script or a worker thread.
        """
        outcome = self.decide(authorization, method=method, path=path, api_key=api_key, rules=rules, now=now)
        if outcome.error is not None:
            raise outcome.error
        return outcome.principal

    async def authenticate_async(
        self,
        authorization: str | bytes | None = None,
        *,
        method: str = "GET",
        path: str = "/",
        api_key: str | bytes | None = None,
        rules: RuleSet | Sequence[Rule] | None = None,
        now: float | None = None,
    ) -> Principal | None:
        """:meth:`authenticate` for asyncio: the token store and the Redis limiter are awaited, never blocked on."""
        outcome = await self.decide_async(
            authorization, method=method, path=path, api_key=api_key, rules=rules, now=now
        )
        if outcome.error is not None:
            raise outcome.error
        return outcome.principal

    def decide(
        self,
        authorization: str | bytes | None = None,
        *,
        method: str = "GET",
        path: str = "/",
        api_key: str | bytes | None = None,
        headers: Sequence[tuple[bytes, bytes]] | None = None,
        rules: RuleSet | Sequence[Rule] | None = None,
        now: float | None = None,
    ) -> Outcome:
        """The whole outcome of a request, never raising for what the client sent: ``.principal``, ``.decision``
        (the rate decision, when one was made), ``.error`` (the refusal, or ``None``) and ``.rule`` (the index of
        the rule that matched, ``-1`` for the default). ``headers`` (ASGI's list of lowercase ``(name, value)``
        byte pairs) may be given instead of ``authorization``/``api_key``. Blocking."""
        return self._decide(self._ruleset(rules), method, path, headers, authorization, api_key, now)

    def _decide(
        self,
        rules: RuleSet,
        method: str,
        path: str,
        headers: Sequence[tuple[bytes, bytes]] | None,
        authorization: str | bytes | None,
        api_key: str | bytes | None,
        now: float | None,
    ) -> Outcome:
        """:meth:`decide` with positional, checked arguments: what the WSGI middleware calls per request."""
        step = self._core.step(rules, method, path, headers, authorization, api_key, now)
        if step.kind <= _REFUSED:
            return step
        return self._drive(self._resolve(rules, step, method, path, headers, authorization, api_key, now))

    async def decide_async(
        self,
        authorization: str | bytes | None = None,
        *,
        method: str = "GET",
        path: str = "/",
        api_key: str | bytes | None = None,
        headers: Sequence[tuple[bytes, bytes]] | None = None,
        rules: RuleSet | Sequence[Rule] | None = None,
        now: float | None = None,
    ) -> Outcome:
        """:meth:`decide` for asyncio."""
        ruleset = self._ruleset(rules)
        step = self._core.step(ruleset, method, path, headers, authorization, api_key, now)
        if step.kind <= _REFUSED:
            return step
        return await self._adrive(self._resolve(ruleset, step, method, path, headers, authorization, api_key, now))

    # -- one body for both worlds -----------------------------------------------------------------------

    def _resolve(
        self,
        rules: RuleSet,
        step: Outcome,
        method: str,
        path: str,
        headers: Sequence[tuple[bytes, bytes]] | None,
        authorization: str | bytes | None,
        api_key: str | bytes | None,
        now: float | None,
    ) -> Step:
        """Supply what the core asked for, until it has an answer. Yields a :data:`Need`; is sent its answer."""
        for _ in range(_MAX_STEPS):
            kind = step.kind
            if kind <= _REFUSED:
                return step
            try:
                if kind == _NEED_KEY:  # a key source may have the token's kid by now: fetch, then run again
                    yield ("key", step.need)
                    step = self._core.step(rules, method, path, headers, authorization, api_key, now, True)
                    continue
                if kind == _NEED_RECORD:
                    assert self._tokens is not None
                    miss = step.need
                    row = yield ("record", miss)
                    principal = self._tokens._settle(miss, row, now)
                    if principal is None:  # the record changed while it was read: start again
                        step = self._core.step(rules, method, path, headers, authorization, api_key, now)
                        continue
                    step = self._core.resume(rules, step, principal, None, now)
                else:  # _NEED_LIMIT
                    key, tier = step.need
                    decision = yield ("limit", (key, tier))
                    assert step.principal is not None  # a limit is asked for a known principal
                    step = self._core.resume(rules, step, step.principal, decision, now)
            except AuthError as exc:
                return _core.Outcome(_REFUSED, step.principal, step.decision, exc, step.rule, None)
        unavailable = AuthUnavailable("the token kept changing while it was being read", retry_after=1.0)
        return _core.Outcome(_REFUSED, None, None, unavailable, step.rule, None)

    def _drive(self, gen: Step) -> Outcome:
        answer: Any = None
        failure: BaseException | None = None
        while True:
            try:
                need = gen.send(answer) if failure is None else gen.throw(failure)
            except StopIteration as stop:
                result: Outcome = stop.value
                return result
            failure = None
            try:
                answer = self._supply(need)
            except AuthError as exc:
                failure = exc

    async def _adrive(self, gen: Step) -> Outcome:
        answer: Any = None
        failure: BaseException | None = None
        while True:
            try:
                need = gen.send(answer) if failure is None else gen.throw(failure)
            except StopIteration as stop:
                result: Outcome = stop.value
                return result
            failure = None
            try:
                answer = await self._asupply(need)
            except AuthError as exc:
                failure = exc

    def _supply(self, need: Need) -> Any:
        what, arg = need
        if what == "key":
            source, kid = arg
            return source._refresh_for(kid)
        if what == "record":
            assert self._tokens is not None
            return self._tokens._fetch_row(arg)
        assert self._limiter is not None
        key, tier = arg
        return self._limiter.check(key, tier=tier)

    async def _asupply(self, need: Need) -> Any:
        what, arg = need
        if what == "key":
            source, kid = arg
            return await source._arefresh_for(kid)
        if what == "record":
            assert self._tokens is not None
            return await self._tokens._afetch_row(arg)
        limiter: Any = self._limiter
        key, tier = arg
        return await limiter.acheck(key, tier=tier)

    def _ruleset(self, rules: RuleSet | Sequence[Rule] | None) -> RuleSet:
        if rules is None:
            return self._rules
        if isinstance(rules, _core.RuleSet):
            return rules
        return compile_rules(rules)

    def __repr__(self) -> str:
        return f"Authenticator(realm={self.realm!r}, remote_limit={self._remote})"
