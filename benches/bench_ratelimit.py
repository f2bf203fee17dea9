"""pytest-benchmark over ``bastion.bench.ratelimit``: the in-process and Redis limiters against their peers,
and RSS per live key. Runs once as a test by default (``--benchmark-disable``); ``make bench`` times it.
"""

from __future__ import annotations

from typing import Any

from bastion.bench import Case
from bastion.bench.ratelimit import figures

SECTION = "ratelimit"


def test_case(benchmark: Any, case: Case) -> None:
    benchmark.group = case.group
    assert case.fn is not None
    assert case.ok(benchmark(case.fn))


def test_memory_per_live_key(benchmark: Any) -> None:
    measured = benchmark.pedantic(figures, kwargs={"quick": not benchmark.enabled}, rounds=1, iterations=1)
    by_kind = {f.name.split(",")[0]: f for f in measured}
    for figure in measured:
        if figure.value is not None:
            benchmark.extra_info[figure.name] = round(figure.value, 1)
    bastion_bytes = by_kind["bastion"].value
    assert bastion_bytes is not None, by_kind["bastion"].missing
    # 16-byte slots, at most three quarters full
    assert 0 < bastion_bytes <= 64, bastion_bytes
