"""pytest-benchmark over ``bastion.bench.jwt.cases()``: bastion and its peers verifying the same realistic
access token. Runs once as a test by default (``--benchmark-disable``); ``make bench`` times it. Compare
medians within one run only: the machine is shared.
"""

from __future__ import annotations

from typing import Any

import pytest
from bastion.bench import Case

SECTION = "jwt"
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


def test_case(benchmark: Any, case: Case) -> None:
    benchmark.group = case.group
    assert case.fn is not None
    assert case.ok(benchmark(case.fn))
