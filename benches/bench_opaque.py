"""pytest-benchmark: opaque-token verify (index hit) against the usual ways, in one run.

``make bench`` (release build) gives the figures; with ``--benchmark-disable`` (the default) each case runs once
as a test and checks its result.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from bastion._bench_opaque import cases


@pytest.fixture(scope="module")
def opaque_cases() -> dict[str, Callable[[], object]]:
    return {c.name: c.fn for c in cases() if c.fn is not None}


@pytest.mark.parametrize(
    "name",
    [
        "bastion TokenStore.verify (index hit)",
        "hashlib.sha256 + dict lookup (no checks)",
        "hashlib.sha256 + SQLite query",
    ],
)
def test_opaque_verify(
    benchmark: pytest.FixtureRequest, opaque_cases: dict[str, Callable[[], object]], name: str
) -> None:
    fn = opaque_cases[name]
    assert fn() is not None
    # sub-microsecond calls: time batches of 1,000 so the timer's resolution does not dominate
    benchmark.pedantic(fn, iterations=1000, rounds=100, warmup_rounds=5)  # type: ignore[attr-defined]


def test_index_memory_small() -> None:
    # RSS is only meaningful in a fresh interpreter: earlier tests free memory and would make it negative
    proc = subprocess.run(
        [sys.executable, "-m", "bastion._bench_opaque", "memory", "20000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines())
    assert float(figures["records"].replace(",", "")) == 20_000
    per_record = float(figures["index_bytes_per_record"].replace(",", ""))
    assert 0 < per_record < 1000


def test_interleaved_comparison_runs() -> None:
    from bastion._bench_opaque import compare_interleaved

    figures = compare_interleaved(rounds=2, batch_s=0.001)
    assert figures["bastion TokenStore.verify (index hit)"][1] == 1.0
    assert all(t > 0 for t, _ in figures.values())
