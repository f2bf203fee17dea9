"""The main job (`make demo`): the reports API served by uvicorn, toured over HTTP, checking itself."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from bastion.__main__ import main
from bastion.demo import tour
from bastion.demo.tour import Step

CODES = (
    "missing_token",
    "token_malformed",
    "invalid_request",
    "token_expired",
    "invalid_signature",
    "invalid_audience",
    "token_revoked",
    "unknown_token",
    "insufficient_scope",
    "forbidden",
    "rate_limited",
)


def test_the_demo_serves_tours_and_audits_without_leaking_a_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bastion", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"on http://127\.0\.0\.1:\d+", out)
    rows = [line for line in out.splitlines() if re.match(r"[ \d]\d  \S", line)]
    assert len(rows) == 20
    assert all(" ✓ " in row for row in rows), "\n".join(rows)
    for expect in ("200  200", "401  401", "400  400", "403  403", "429  429"):
        assert expect in out
    for code in CODES:
        assert f'"error":"{code}"' in out
    assert "retry-after: " in out
    assert "all 20 steps answered as expected" in out

    # the printed curl lines carry the tokens: none of them may reach the audit records
    printed = re.findall(r"(?:Bearer|X-API-Key:) ([A-Za-z0-9._~+/=-]+)'", out)
    assert len(printed) == 7
    assert len(set(printed)) == 6
    audit = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in audit.splitlines()]
    assert len(records) == 78  # one per request: 14 single steps, 2 × 30, 4 third-party
    for token in printed:
        assert token not in audit
        assert token.rsplit(".", 1)[-1] not in audit  # not even a JWT's signature
        assert token.encode() not in (tmp_path / "tokens.db").read_bytes()
    reasons = {r["bastion.auth.reason"] for r in records}
    assert set(CODES) <= reasons
    limited = [r for r in records if r["http.response.status_code"] == 429]
    assert [(r["enduser.id"], r["bastion.ratelimit.tier"]) for r in limited] == [("app_42", "third_party")]


def test_a_step_answered_otherwise_than_expected_is_a_failure() -> None:
    def app(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") == "Bearer good":
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(401, json={"error": "missing_token"}, headers={"WWW-Authenticate": 'Bearer realm="api"'})

    steps = [
        Step("right", "GET", "/x", 401, "missing_token"),
        Step("wrong status", "GET", "/x", 200),
        Step("wrong code", "GET", "/x", 401, "token_expired"),
        Step("missing header", "GET", "/x", 401, header="Retry-After"),
        Step("one of many", "GET", "/x", 200, headers={"Authorization": "Bearer good"}, repeat=3),
    ]
    with httpx.Client(transport=httpx.MockTransport(app), base_url="http://demo") as client:
        results = tour.walk(client, steps)
    assert [r.step.who for r in tour.failures(results)] == ["wrong status", "wrong code", "missing header"]
    table = tour.table(results)
    assert table.count(" ✗ ") == 3
    assert table.count(" ✓ ") == 2
    assert "GET /x ×3" in table


def test_the_demo_exits_nonzero_when_a_step_is_not_answered_as_expected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    honest = tour.steps
    monkeypatch.setattr(tour, "steps", lambda t: [*honest(t), Step("anonymous", "GET", "/api/v1/me", 200)])
    assert main(["demo", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED:\n  step 21: expected 200" in out
    assert " 401 ✗ " in out


def test_a_port_in_use_or_out_of_range_is_refused_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["demo", "--port", str(busy.getsockname()[1])]) == 2
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().out
    assert main(["demo", "--port", "70000"]) == 2
    assert "--port must be 0-65535" in capsys.readouterr().out


def test_dir_must_be_new_or_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "audit.jsonl").write_text("an earlier run\n", encoding="utf-8")
    assert main(["demo", "--dir", str(tmp_path)]) == 2
    assert "must be a new or empty directory" in capsys.readouterr().out
    assert (tmp_path / "audit.jsonl").read_text(encoding="utf-8") == "an earlier run\n"


def test_the_audit_table_counts_runs_of_the_same_request() -> None:
    record = {"http.response.status_code": 200, "http.request.method": "GET", "url.path": "/a"}
    rows = [{**record, "bastion.ratelimit.remaining": n} for n in (3, 2, 1)] + [{**record, "url.path": "/b"}]
    lines = tour.audit_table(rows).splitlines()
    assert len(lines) == 3
    assert lines[1].startswith("3×")
    assert lines[1].endswith("3…1")
    assert lines[2].split() == ["200", "GET", "/b"]


def test_serve_keeps_serving_after_the_tour_until_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bastion", "demo", "--serve", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            if line.startswith("serving on "):
                url = line.split()[2]
                break
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/health").json() == {"status": "ok"}
        assert httpx.get(url + "/api/v1/me").status_code == 401
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert "stopping" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_missing_dependency_is_named_with_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["demo"]) == 2
    assert "the demo needs uvicorn: pip install 'bastion[demo]'" in capsys.readouterr().out
