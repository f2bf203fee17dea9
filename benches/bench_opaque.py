"""pytest-benchmark over ``bastion.bench.opaque``: opaque-token verify (index hit) against the usual ways, and
the index's memory per record. Runs once as a test by default (``--benchmark-disable``); ``make bench`` times it.
"""

from __future__ import annotations

from typing import Any

from bastion.bench import Case
from bastion.bench.opaque import figures

SECTION = "opaque"


def test_case(benchmark: Any, case: Case) -> None:
    benchmark.group = case.group
    assert case.fn is not None
    assert case.ok(benchmark(case.fn))


def test_index_memory(benchmark: Any) -> None:
    measured = benchmark.pedantic(figures, kwargs={"quick": not benchmark.enabled}, rounds=1, iterations=1)
    for figure in measured:
        assert figure.value is not None, figure.missing
        benchmark.extra_info[figure.name] = round(figure.value, 1)
        assert 0 < figure.value < 2000, figure
