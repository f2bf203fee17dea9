"""The harness behind ``python -m bastion bench``: one interleaving loop, medians, ratios, tables, JSON, plot."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest
from bastion import bench
from bastion.__main__ import main
from bastion.bench import Case, Group, Report, Row, Timing


def _slow() -> None:
    time.sleep(0.0002)


def _fast() -> None:
    return None


def test_interleave_times_every_function_once_per_round_in_a_rotating_order() -> None:
    calls: list[str] = []
    fns = [lambda name=name: calls.append(name) for name in "abc"]
    samples = bench.interleave(fns, target_s=0.003, repeats=4)
    assert [len(s) for s in samples] == [4, 4, 4]
    assert all(t > 0 for s in samples for t in s)
    # collapse the calls into batches: calibration (a, b, c), then the four rounds
    batches = [name for k, name in enumerate(calls) if k == 0 or calls[k - 1] != name]
    assert batches[3:] == [*"abc", *"bca", *"cab", *"abc"], batches


def test_time_group_medians_and_per_round_ratios_rank_a_slow_peer_slower() -> None:
    cases = [
        Case("g", "bastion", _fast, is_bastion=True),
        Case("g", "slow peer", _slow),
        Case("g", "absent peer", None, missing=bench.NOT_INSTALLED),
    ]
    group = bench.time_group("s", "g", cases, Timing(target_s=0.05, repeats=5))
    fast, slow, absent = group.rows
    assert fast.ratio == 1.0
    assert fast.median_s is not None
    assert slow.median_s is not None
    assert slow.median_s >= 0.0002
    assert 0 < fast.median_s < slow.median_s / 10
    assert slow.ratio is not None
    assert slow.ratio > 10
    assert (absent.median_s, absent.ratio, absent.missing) == (None, None, bench.NOT_INSTALLED)


def test_measure_is_the_median_of_one_function() -> None:
    assert bench.measure(_slow, target_s=0.01, repeats=3) >= 0.0002


def test_fmt_time_units() -> None:
    assert bench.fmt_time(5e-8) == "50 ns"
    assert bench.fmt_time(2.5e-6) == "2.50 µs"
    assert bench.fmt_time(3e-3) == "3.00 ms"


def test_the_table_aligns_its_columns_and_lists_a_missing_peer() -> None:
    group = Group(
        "s",
        "HS256 verify",
        [
            Row("bastion", 1.5e-6, 1.0, is_bastion=True),
            Row("a much longer peer name", 4.5e-5, 30.0, is_bastion=False),
            Row("absent", None, None, is_bastion=False, missing=bench.NOT_INSTALLED),
        ],
    )
    lines = bench.format_group(group).splitlines()
    assert lines[0] == "HS256 verify"
    header, bastion_row, peer_row, absent_row = lines[1:]
    assert header.split() == ["case", "median", "vs", "bastion"]
    assert bastion_row.endswith("1×")
    assert peer_row.endswith("30.0×")
    # the medians end in the same column
    assert header.index("median") + len("median") == bastion_row.index("µs") + 2 == peer_row.index("µs") + 2
    assert absent_row.endswith("not installed: pip install 'bastion[bench]'")


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_a_peer_that_is_not_installed_is_listed_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    from bastion.bench import jwt

    monkeypatch.setitem(sys.modules, "oxyjwt", None)  # import oxyjwt now raises ImportError
    cases = [c for c in jwt.cases(quick=True) if c.name == "oxyjwt"]
    assert len(cases) == len(jwt.ALGS)
    assert all(c.fn is None and c.missing == bench.NOT_INSTALLED for c in cases)
    assert any(c.fn is not None and c.name == "PyJWT" for c in jwt.cases(quick=True))


def test_a_section_whose_fixture_library_is_missing_is_listed_not_fatal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)  # PyJWT mints the JWT section's tokens
    assert main(["bench", "jwt", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "## jwt" in out
    assert "not available: jwt not installed: pip install 'bastion[bench]'" in out


def test_an_unwritable_json_path_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing-dir" / "b.json"
    assert main(["bench", "jwt", "--quick", "--json", str(target)]) == 2
    captured = capsys.readouterr()
    assert f"error: cannot write {target}" in captured.err
    assert "## jwt" not in captured.out  # refused before the run


def test_quick_times_less() -> None:
    quick, full = Timing.for_run(quick=True, seconds=None), Timing.for_run(quick=False, seconds=None)
    assert quick.target_s < full.target_s
    assert quick.repeats < full.repeats
    assert Timing.for_run(quick=True, seconds=0.5).target_s == 0.5


def test_bench_cli_prints_tables_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "b.json"
    assert main(["bench", "opaque", "--quick", "--json", str(out_json)]) == 0
    captured = capsys.readouterr()
    assert "## opaque" in captured.out
    assert "## jwt" not in captured.out
    assert "5 interleaved rounds" in captured.out  # --quick
    assert "bastion TokenStore.verify" in captured.out
    assert "×" in captured.out
    assert "[opaque] 1/1 opaque verify" in captured.err  # progress goes to stderr
    data = json.loads(out_json.read_text())
    assert set(data) == {"python", "platform", "quick", "target_s", "repeats", "sections"}
    assert data["quick"] is True
    [section] = data["sections"]
    assert section["name"] == "opaque"
    [group] = section["groups"]
    assert {c["name"] for c in group["cases"]} >= {"bastion TokenStore.verify (index hit)"}
    for case in group["cases"]:
        assert set(case) == {"name", "median_s", "ratio", "is_bastion", "missing", "overhead_s", "is_baseline"}
        assert case["median_s"] > 0
        assert case["ratio"] > 0
    assert [c["ratio"] for c in group["cases"] if c["is_bastion"]] == [1.0]
    assert all(f["value"] > 0 and f["unit"] == "bytes" for f in section["figures"])


def test_bench_cli_refuses_a_non_positive_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "jwt", "--seconds", "0"]) == 2
    assert "--seconds must be positive" in capsys.readouterr().err


def _report() -> Report:
    report = Report(quick=True, timing=Timing())
    rows = [Row("bastion", 1e-6, 1.0, True), Row("peer", 3e-4, 300.0, False), Row("gone", None, None, False, "x")]
    report.groups.append(Group("jwt", "HS256 verify", rows))
    report.groups.append(Group("opaque", "verify", [Row("bastion", 1e-6, 1.0, True), Row("p", 2e-6, 2.0, False)]))
    return report


def test_plot_without_matplotlib_is_a_clear_error_and_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "b.png"
    assert main(["bench", "jwt", "--quick", "--plot", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err
    assert "pip install" in err
    assert "Traceback" not in err
    assert not out.exists()  # refused before the run, not after it
    with pytest.raises(bench.PlotUnavailable):
        bench.plot(_report(), str(out))


def test_plot_writes_a_png_when_matplotlib_is_installed(tmp_path: Path) -> None:
    out = tmp_path / "b.png"
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(bench.PlotUnavailable, match="pip install matplotlib"):
            bench.plot(_report(), str(out))
        assert not out.exists()
        return
    bench.plot(_report(), str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 1000
