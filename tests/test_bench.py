"""The harness behind ``python -m bastion bench``: one interleaving loop, medians, ratios, tables, JSON, plot."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable
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


def _sleep(seconds: float) -> Callable[[], None]:
    return lambda: time.sleep(seconds)


def test_interleave_settles_a_case_after_each_of_its_batches_untimed() -> None:
    settled: list[int] = []

    def settle() -> None:
        settled.append(0)
        time.sleep(0.01)

    samples = bench.interleave([_fast, _fast], target_s=0.002, repeats=3, settle=[settle, None])
    assert settled == [0] * 4  # after calibration, then after each of the three rounds
    assert max(samples[0]) < 0.01  # the settle step's sleep is not in the timings


def test_a_group_with_a_baseline_reports_overheads_over_it_and_their_ratio() -> None:
    cases = [
        # sleeps far apart, so that a loaded machine's oversleeping cannot reorder them
        Case("g", "bare", lambda: None, is_baseline=True),
        Case("g", "bastion", _sleep(0.002), is_bastion=True),
        Case("g", "peer, 4 per call", _sleep(0.032), per_call=4),  # 8 ms per operation
        Case("g", "absent", None, missing="not built"),
    ]
    bare, ours, peer, absent = bench.time_group("s", "g", cases, Timing(target_s=0.05, repeats=5)).rows
    assert bare.is_baseline
    assert (bare.overhead_s, bare.ratio) == (None, None)
    assert ours.overhead_s is not None
    assert peer.overhead_s is not None
    assert peer.median_s is not None
    assert 0.007 < peer.median_s < 0.02  # divided by per_call
    assert 0.001 < ours.overhead_s < peer.overhead_s
    assert ours.ratio == 1.0
    assert peer.ratio is not None
    assert peer.ratio == pytest.approx(peer.overhead_s / ours.overhead_s)
    assert peer.ratio > 1.5
    assert (absent.median_s, absent.overhead_s, absent.missing) == (None, None, "not built")


def test_without_bastion_a_baseline_group_still_reports_overheads_but_no_ratio() -> None:
    cases = [Case("g", "bare", _fast, is_baseline=True), Case("g", "peer", _sleep(0.0002))]
    _, peer = bench.time_group("s", "g", cases, Timing(target_s=0.02, repeats=3)).rows
    assert peer.overhead_s is not None
    assert peer.overhead_s >= 0.0002
    assert peer.ratio is None


def test_the_overhead_table_shows_the_baseline_the_overheads_and_why_a_row_is_missing() -> None:
    rows = [
        Row("bare app", 1e-6, None, False, is_baseline=True),
        Row("bastion", 3.5e-6, 1.0, True, overhead_s=2.5e-6),
        Row("peer", 4.1e-5, 16.0, False, overhead_s=4e-5),
        Row("gone", None, None, False, "not built in this tree"),
    ]
    lines = bench.format_group(Group("s", "ASGI", rows)).splitlines()
    assert lines[1].split() == ["case", "median", "over", "bare", "vs", "bastion"]
    assert lines[2].split()[-1] == "baseline"
    assert lines[3].split()[-3:] == ["2.50", "µs", "1×"]
    assert lines[4].split()[-3:] == ["40.00", "µs", "16.0×"]
    assert lines[5].endswith("—  not built in this tree")


#: why a row was not timed, in the groups built by hand below
NOT_RUN = "not installed: pip install 'bastion[bench]'"


def _middleware_groups(hs256: float | None, pyjwt_ratio: float | None) -> list[Group]:
    from bastion.bench import middleware as mw

    missing = "" if hs256 is not None else NOT_RUN
    median = None if hs256 is None else 2e-6 + hs256
    rows = [
        Row("bare ASGI app", 2e-6, None, False, is_baseline=True),
        Row(mw.BASTION_HS256, median, 1.0 if hs256 else None, True, missing, hs256),
        Row(mw.BASTION_OPAQUE, median, None, False, missing, hs256),
        Row(mw.PYJWT, 1e-4, pyjwt_ratio, False, overhead_s=9.8e-5),
    ]
    return [Group("middleware", mw.ASGI_RAW, rows)]


def test_the_budgets_are_judged_from_the_run() -> None:
    from bastion.bench import middleware as mw

    met = mw.footer(_middleware_groups(2.5e-6, 39.2))
    assert "  ASGI bastion HS256, limiter + audit: ≤ 3.00 µs: 2.50 µs over the bare app — met" in met
    assert "  ASGI bastion opaque token: ≤ 2.00 µs: 2.50 µs over the bare app — NOT MET" in met
    assert "  ASGI bastion HS256 ≥ 15× less than PyJWT middleware (hand-written): 39.2× — met" in met
    slow = mw.footer(_middleware_groups(9e-6, 10.9))
    assert "  ASGI bastion HS256, limiter + audit: ≤ 3.00 µs: 9.00 µs over the bare app — NOT MET" in slow
    assert "  ASGI bastion HS256 ≥ 15× less than PyJWT middleware (hand-written): 10.9× — NOT MET" in slow
    # the cache row and the WSGI group are not in these groups: listed, not judged
    assert any(line.startswith("  WSGI bastion HS256, limiter + audit: ≤ 3.00 µs: not measured") for line in met)
    assert [line.endswith("— met") for line in met].count(True) == 2
    assert [line.endswith("— NOT MET") for line in met].count(True) == 1


def test_budgets_without_bastion_say_why_they_are_not_measured() -> None:
    from bastion.bench import middleware as mw

    lines = mw.footer(_middleware_groups(None, None))
    assert f"  ASGI bastion HS256, limiter + audit: ≤ 3.00 µs: not measured ({NOT_RUN})" in lines
    assert (
        f"  ASGI bastion HS256 ≥ 15× less than PyJWT middleware (hand-written): not measured (bastion: {NOT_RUN})"
        in lines
    )


def test_every_middleware_case_is_built_and_answers_its_token() -> None:
    from bastion.bench import middleware as mw

    cases = mw.cases(quick=True)  # checks every stack: its token 200, a bad one 401
    ours = [c for c in cases if c.name.startswith("bastion")]
    assert len(ours) == 8  # three rows in each raw group, one in each framework group
    assert sum(c.is_bastion for c in ours) == 4  # every group keeps its reference row
    assert {c.group for c in cases if c.fn is not None} == {mw.ASGI_RAW, mw.ASGI_STARLETTE, mw.WSGI_RAW, mw.WSGI_FLASK}
    assert sum(c.is_baseline for c in cases if c.fn is not None) == 4
    for case in cases:
        assert case.fn is not None, f"{case.name}: {case.missing}"
        assert case.ok(case.fn()), case.name


def test_a_missing_web_framework_lists_its_group_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    from bastion.bench import middleware as mw

    monkeypatch.setitem(sys.modules, "starlette.applications", None)
    monkeypatch.setitem(sys.modules, "flask_jwt_extended", None)
    cases = mw.cases(quick=True)
    for group in (mw.ASGI_STARLETTE, mw.WSGI_FLASK):
        members = [c for c in cases if c.group == group]
        assert len(members) == 3
        assert all(c.fn is None and c.missing for c in members)
        assert [c.missing for c in members if not c.name.startswith("bastion")] == [bench.NOT_INSTALLED] * 2
    assert any(c.fn is not None for c in cases if c.group == mw.ASGI_RAW)


def test_the_drivers_count_admitted_requests_so_a_benchmark_of_refusals_fails_its_check() -> None:
    from bastion.bench import middleware as mw
    from bastion.bench import webapps as web

    tokens = mw.mint_tokens()
    asgi = web.PyJWTMiddleware(web.bare_asgi, mw.SECRET)
    assert web.asgi_batch(asgi, tokens.jwt)() == web.REQUESTS_PER_CALL
    assert web.asgi_batch(asgi, tokens.bad_jwt)() == 0
    assert web.asgi_status(asgi, tokens.bad_jwt) == 401
    wsgi = web.PyJWTWSGIMiddleware(web.bare_wsgi, mw.SECRET)
    assert web.wsgi_call(wsgi, tokens.jwt)() == 200
    assert web.wsgi_call(wsgi, tokens.bad_jwt)() == 401
    bad = mw.Stack(mw.ASGI_RAW, "refuses everything", "asgi", asgi, tokens.bad_jwt, tokens.bad_jwt)
    with pytest.raises(AssertionError, match="refuses everything: the benchmark's token got 401, not 200"):
        mw.check(bad)


def test_bench_middleware_cli_prints_overheads_and_budgets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bastion.bench import middleware as mw

    out_json = tmp_path / "m.json"
    assert main(["bench", "middleware", "--quick", "--seconds", "0.01", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "## middleware" in out
    assert "over bare" in out
    assert "budgets (this run):" in out
    [section] = json.loads(out_json.read_text())["sections"]
    assert section["name"] == "middleware"
    assert [g["name"] for g in section["groups"]] == [mw.ASGI_RAW, mw.ASGI_STARLETTE, mw.WSGI_RAW, mw.WSGI_FLASK]
    assert len([n for n in section["notes"] if "≤" in n or "≥" in n]) == len(mw.BUDGETS)
    for group in section["groups"]:
        [baseline] = [c for c in group["cases"] if c["is_baseline"]]
        assert baseline["median_s"] > 0
        peers = [c for c in group["cases"] if not c["is_baseline"] and not c["name"].startswith("bastion")]
        assert peers
        assert all(p["overhead_s"] > 0 for p in peers)  # JWT verification in Python is never free
