"""Hypothesis, stateful: a TokenStore driven by random issue / verify / revoke / revoke_subject / rotate / clock
steps agrees with a ten-line model of the rules (DESIGN §3): a token verifies while it is neither revoked (by
itself, by its subject's cut-off, or by the end of a rotation's grace) nor expired; tokens issued after a
revoke_subject live, those issued before die, even when both happen within one clock tick."""

from __future__ import annotations

import math
import time
import types
from dataclasses import dataclass

import bastion
import pytest
from bastion import TokenStore
from bastion.tokens import store as store_module
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

SUBJECTS = st.sampled_from(["ann", "ben", "cy"])


@dataclass
class Model:
    token: str
    id: str
    subject: str
    created_at: float
    expires_at: float
    revoked_at: float = math.inf


class TokenRules(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1_800_000_000.25  # a float step at this magnitude is ~2.4e-7 s: ticks can coincide
        self.store: TokenStore | None = None
        self.tokens: list[Model] = []
        self.cuts: dict[str, float] = {}

    @initialize()
    def open(self) -> None:
        self.patch = pytest.MonkeyPatch()
        self.patch.setattr(store_module, "time", types.SimpleNamespace(time=lambda: self.now, monotonic=time.monotonic))
        self.store = TokenStore(None, background=False)

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()
            self.patch.undo()

    def expected(self, m: Model) -> str | None:
        if m.revoked_at <= self.now or m.created_at <= self.cuts.get(m.subject, -math.inf):
            return "token_revoked"
        if m.expires_at <= self.now:
            return "token_expired"
        return None

    def outcome(self, token: str) -> str | None:
        assert self.store is not None
        try:
            p = self.store.verify(token, now=self.now)
        except bastion.AuthError as exc:
            return exc.code
        assert p.token_type == "opaque"
        return None

    @rule(subject=SUBJECTS, ttl=st.integers(min_value=1, max_value=100), kind=st.sampled_from("karc"))
    def issue(self, subject: str, ttl: int, kind: str) -> None:
        assert self.store is not None
        t = self.store.issue(subject, ttl=ttl, kind=kind)  # type: ignore[arg-type]
        assert t.created_at >= self.now
        assert t.created_at > self.cuts.get(subject, -math.inf), "issued after the cut-off: must live"
        assert t.expires_at == pytest.approx(self.now + ttl, abs=1e-6), "ttl counts from now"
        self.tokens.append(Model(t.token, t.id, subject, t.created_at, t.expires_at))

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 7.0, 60.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: self.tokens)
    @rule(i=st.integers(min_value=0), by_token=st.booleans())
    def revoke(self, i: int, by_token: bool) -> None:
        assert self.store is not None
        m = self.tokens[i % len(self.tokens)]
        done = self.store.revoke(m.token) if by_token else self.store.revoke_id(m.id)
        assert done == (m.revoked_at > self.now), "True exactly when this call revoked a live-or-grace token"
        m.revoked_at = min(m.revoked_at, self.now)

    @rule(subject=SUBJECTS)
    def revoke_subject(self, subject: str) -> None:
        assert self.store is not None
        cut = self.store.revoke_subject(subject)
        assert cut >= self.now
        assert cut >= max((m.created_at for m in self.tokens if m.subject == subject), default=-math.inf)
        self.cuts[subject] = max(self.cuts.get(subject, -math.inf), cut)

    @precondition(lambda self: self.tokens)
    @rule(i=st.integers(min_value=0), grace=st.sampled_from([0, 1, 30]))
    def rotate(self, i: int, grace: int) -> None:
        assert self.store is not None
        m = self.tokens[i % len(self.tokens)]
        want = self.expected(m)
        if want is not None:
            with pytest.raises(bastion.AuthError) as info:
                self.store.rotate(m.token, grace=grace)
            assert info.value.code == want, "only a valid token rotates"
            return
        new = self.store.rotate(m.token, grace=grace)
        life = m.expires_at - m.created_at
        m.revoked_at = min(m.revoked_at, self.now + grace)
        assert new.expires_at == pytest.approx(self.now + life, abs=1e-6), "same lifetime, from now"
        self.tokens.append(Model(new.token, new.id, m.subject, new.created_at, new.expires_at))

    @invariant()
    def every_token_verifies_as_the_model_says(self) -> None:
        for m in self.tokens:
            assert self.outcome(m.token) == self.expected(m), m


TokenRules.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_token_rules = TokenRules.TestCase
