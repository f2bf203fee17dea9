"""The harness behind ``python -m bastion bench`` measures, ranks and prints what it is given."""

from __future__ import annotations

import time

import pytest
from bastion import _benchutil
from bastion.__main__ import main


def _slow() -> None:
    time.sleep(0.0002)


def _fast() -> None:
    return None


def test_interleaved_measure_ranks_a_slow_function_slower() -> None:
    slow, fast = _benchutil.measure_interleaved([_slow, _fast], target_s=0.05, repeats=5)
    assert slow >= 0.0002
    assert 0 < fast < slow / 10


def test_fmt_time_units() -> None:
    assert _benchutil.fmt_time(5e-8) == "50 ns"
    assert _benchutil.fmt_time(2.5e-6) == "2.50 µs"
    assert _benchutil.fmt_time(3e-3) == "3.00 ms"


def test_bench_cli_prints_a_table_with_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "opaque", "--seconds", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "## opaque" in out
    assert "bastion TokenStore.verify" in out
    assert "× bastion" in out
