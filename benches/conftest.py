"""The pytest-benchmark adapters: each ``bench_<section>.py`` names its ``SECTION`` and gets one test per
runnable case of ``bastion.bench.<section>.cases()`` (cases whose peer is missing are not collected).

Under ``--benchmark-disable`` (the default in ``addopts``) every case runs once as a test and the cases are
built with ``quick=True``; ``make bench`` times the full ones.
"""

from __future__ import annotations

import functools
import importlib
import warnings

import pytest
from bastion.bench import Case


@functools.cache
def _cases(section: str, quick: bool) -> list[Case]:
    with warnings.catch_warnings():
        # cases() calls each case once to check it; joserfc warns about EdDSA on that call
        warnings.filterwarnings("ignore", "EdDSA is deprecated")
        built = importlib.import_module(f"bastion.bench.{section}").cases(quick=quick)
    return [c for c in built if c.fn is not None]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        runnable = _cases(metafunc.module.SECTION, bool(metafunc.config.getoption("benchmark_disable")))
        metafunc.parametrize("case", runnable, ids=[f"{c.group}: {c.name}" for c in runnable])
