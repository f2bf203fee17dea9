"""pytest-benchmark over ``bastion.bench.oauth``: the provider's token endpoint and introspection over real
HTTP against Authlib's authorization server. Runs once as a test by default (``--benchmark-disable``);
``make bench`` times it.
"""

from __future__ import annotations

from typing import Any

from bastion.bench import Case

SECTION = "oauth"


def test_case(benchmark: Any, case: Case) -> None:
    benchmark.group = case.group
    assert case.fn is not None
    assert case.ok(benchmark(case.fn))
