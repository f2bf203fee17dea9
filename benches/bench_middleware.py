"""pytest-benchmark over ``bastion.bench.middleware``: what authentication adds to a request over the bare app,
bastion against a hand-written PyJWT middleware, Starlette's ``AuthenticationMiddleware`` and
flask-jwt-extended. Runs once as a test by default (``--benchmark-disable``); ``make bench`` times it, each
case alone: the overheads over the bare apps, paired by round, and the budgets are
``python -m bastion bench middleware``'s.
"""

from __future__ import annotations

from typing import Any

from bastion.bench import Case
from bastion.bench.middleware import check, stacks

SECTION = "middleware"


def test_case(benchmark: Any, case: Case) -> None:
    benchmark.group = case.group
    benchmark.extra_info["requests per call"] = case.per_call
    assert case.fn is not None
    assert case.ok(benchmark(case.fn))


def test_every_stack_admits_its_token_and_refuses_a_bad_one() -> None:
    built = [s for s in stacks(quick=True) if s.app is not None]
    assert {s.name for s in built if not s.is_baseline} >= {"PyJWT middleware (hand-written)"}
    for stack in built:
        check(stack)
