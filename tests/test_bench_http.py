"""``python -m bastion bench http``: wrk's output read right, the shares and tables, the CLI's wiring.

The run itself (a dozen servers loaded for minutes, wrk installed) is not a test; these check its arithmetic
over recorded wrk output, that the section is reachable only by name, and that the servers it loads start and
answer as the run requires (no wrk needed).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from bastion import bench
from bastion.__main__ import main
from bastion.bench import Report, Timing
from bastion.bench import http as http_bench
from bastion.bench.http import BASELINE, Case, Plan, Result
from bastion.bench.wrk import WrkRun, parse_wrk

WRK_OK = """\
Running 15s test @ http://127.0.0.1:41235/api/items
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.52ms    3.10ms  45.01ms   85.12%
    Req/Sec     1.36k   120.45     1.60k    70.00%
  Latency Distribution
     50%  850.00us
     75%   12.80ms
     90%   14.20ms
     99%   21.78ms
  20250 requests in 15.00s, 2.90MB read
Requests/sec:   1350.12
Transfer/sec:    198.11KB
"""

WRK_REFUSED = """\
Running 2s test @ http://127.0.0.1:41236/api/items
  1 threads and 16 connections
  Latency Distribution
     50%    1.20ms
     75%    1.50ms
     90%    2.00ms
     99%    1.02s
  5000 requests in 2.00s, 1.10MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 5000
Requests/sec:   2500.00
Transfer/sec:    550.00KB
"""


def test_parse_wrk_reads_throughput_percentiles_and_units() -> None:
    run = parse_wrk(WRK_OK)
    assert (run.requests_per_s, run.requests, run.non_2xx, run.socket_errors) == (1350.12, 20250, 0, 0)
    assert run.p50_s == pytest.approx(850e-6)
    assert run.p99_s == pytest.approx(21.78e-3)


def test_parse_wrk_counts_refusals_and_socket_errors() -> None:
    run = parse_wrk(WRK_REFUSED)
    assert (run.non_2xx, run.socket_errors) == (5000, 7)
    assert run.p99_s == pytest.approx(1.02)


def test_output_without_latency_distribution_is_an_error() -> None:
    without = WRK_OK.replace("Latency Distribution", "").replace("     50%  850.00us\n", "")
    with pytest.raises(ValueError, match="wrk --latency"):
        parse_wrk(without)
    with pytest.raises(ValueError, match="wrk --latency"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def _run(rps: float, p50_ms: float = 1.0) -> WrkRun:
    return WrkRun(rps, p50_ms / 1e3, 4 * p50_ms / 1e3, int(rps * 15))


def _results() -> list[Result]:
    bare = Result(Case("S", BASELINE, (), "bare"), [_run(1000), _run(800), _run(1200)])
    ours = Result(
        Case("S", "bastion, HS256 JWT", (), "bastion", "t", is_bastion=True), [_run(900), _run(720), _run(1080)]
    )
    peer = Result(Case("S", "peer", (), "peer", "t"), [_run(500, 3.0), _run(400, 3.0), _run(600, 3.0)])
    missing = Result(Case("S", "absent", (), "absent", "t"), missing="not installed")
    for res in (bare, ours, peer):
        res.shares = [r.requests_per_s / b.requests_per_s for r, b in zip(res.runs, bare.runs, strict=True)]
    return [bare, ours, peer, missing]


def test_shares_are_paired_by_round_and_the_table_shows_them() -> None:
    _bare, ours, peer, _ = results = _results()
    assert ours.share == pytest.approx(0.9)
    assert peer.share == pytest.approx(0.5)
    assert ours.requests_per_s == 900
    lines = http_bench.format_results("S", results).splitlines()
    assert lines[0] == "S"
    assert lines[1].split() == ["case", "requests/s", "p50", "p99", "share"]
    assert lines[2].split() == ["unauthenticated", "1,000", "1.00", "ms", "4.00", "ms", "100%"]
    assert lines[3].endswith(" 90%")
    assert lines[4].split()[-5:] == ["3.00", "ms", "12.00", "ms", "50%"]
    assert lines[5].split() == ["absent", "—", "not", "installed"]


def test_the_group_rows_are_overheads_over_the_unauthenticated_server() -> None:
    group = http_bench.group_of("S", _results())
    bare, ours, peer, missing = group.rows
    assert bare.is_baseline
    assert bare.overhead_s is None
    assert ours.median_s == pytest.approx(1 / 900)
    assert ours.overhead_s == pytest.approx(1 / 900 - 1 / 1000)
    assert ours.ratio == pytest.approx(1.0)
    # the peer spends 1 ms more per request than the bare server, bastion 0.111 ms: 9 times as much
    assert peer.ratio == pytest.approx((1 / 500 - 1 / 1000) / (1 / 900 - 1 / 1000))
    assert (missing.median_s, missing.missing) == (None, "not installed")
    figures = {f.name: f.value for f in http_bench.figures_of("S", _results())}
    assert figures["S: peer: share of unauthenticated"] == pytest.approx(50.0)
    assert figures["S: bastion, HS256 JWT: requests/s"] == 900


def test_the_plan_is_three_rounds_and_seconds_sets_a_run() -> None:
    assert Plan.for_run(quick=False, seconds=None) == Plan(3.0, 15.0, 3)
    assert Plan.for_run(quick=True, seconds=None) == Plan(0.5, 2.0, 3)
    assert Plan.for_run(quick=False, seconds=5) == Plan(3.0, 5, 3)


def test_http_runs_only_when_named_and_says_how_to_install_a_missing_wrk(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "http" not in bench.SECTIONS
    assert "http" in bench.ON_REQUEST
    monkeypatch.setattr("shutil.which", lambda name: None)
    report = Report(quick=True, timing=Timing())
    bench.run_section("http", report)
    out = capsys.readouterr().out
    assert "wrk is not installed: apt-get install -y wrk" in out
    assert report.groups == []
    assert main(["bench", "http", "--quick"]) == 0
    assert "apt-get install -y wrk" in capsys.readouterr().out


def test_every_server_answers_its_token_200_and_no_token_401(tmp_path: Path) -> None:
    cases = http_bench.plan_cases(str(tmp_path))
    assert len(cases) == 12
    assert {c.server for c in cases} == {http_bench.FASTAPI, http_bench.FLASK, http_bench.DRF}
    # one guarded case of each server (the run starts all twelve; check() raises unless 200 and 401/403)
    chosen = [c for c in cases if c.name in ("bastion, opaque token", "flask-jwt-extended", "django-rest-knox")]
    assert len(chosen) == 4
    with http_bench.servers(chosen, str(tmp_path), None) as running:
        assert [r.proc.poll() for r in running] == [None] * 4
        for r in running:
            assert httpx.get(r.url, headers={"Authorization": f"Bearer {r.case.token}"}).json() == {"items": []}
            assert httpx.get(r.url, headers={"Authorization": f"Bearer {r.case.token}x"}).status_code in (401, 403)
    assert all(r.proc.poll() is not None for r in running)


def test_a_server_whose_framework_is_missing_is_listed_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "knox" else real(name, *a))
    why = http_bench.missing_of(http_bench.DRF)
    assert why == f"knox {bench.NOT_INSTALLED}"
    assert http_bench.missing_of(http_bench.FASTAPI) == ""
    result = Result(Case(http_bench.DRF, "django-rest-knox", (), "knox", "t"), missing=why)
    last = http_bench.format_results(http_bench.DRF, [result]).splitlines()[-1]
    assert last.split()[:3] == ["django-rest-knox", "—", "knox"]
    assert last.endswith(bench.NOT_INSTALLED)
