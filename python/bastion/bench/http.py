"""``python -m bastion bench http``: requests per second through a real server on loopback, with wrk.

Three servers, each in the configurations that matter: FastAPI under uvicorn (unauthenticated, bastion with
an HS256 JWT and with an opaque token, a hand-written PyJWT dependency), Flask under gunicorn
(unauthenticated, bastion both ways, flask-jwt-extended) and Django REST framework under gunicorn
(unauthenticated, bastion, djangorestframework-simplejwt, django-rest-knox). One small endpoint
(``GET /api/items``); bastion runs with its limiter and audit on. Every server process is pinned to CPU 0 and
wrk to CPU 1, one worker each. The servers of one framework all run at once (an idle one costs nothing):
after a warm-up, each round loads each of them once, in an order that rotates from round to round, so a
change of load on a shared machine hits them alike. Each case reports the medians over the rounds of its
requests/s and wrk's p50 and p99 latency, and its share of the unauthenticated server's requests/s in the
same round (the cost of authentication as the server sees it). A run with a non-2xx answer or a socket
error is an error, not a figure: a benchmark of refusals would be wrong.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import httpx

from bastion.bench import NOT_INSTALLED, Figure, Group, Report, Row, progress
from bastion.bench.httpapps import CASE_ENV, DIR_ENV, PEPPER_FILE, store
from bastion.bench.middleware import SUBJECT, mint_tokens
from bastion.bench.webapps import PATH
from bastion.bench.wrk import CONNECTIONS, WrkRun, cpus, pinned, wrk

WRK_INSTALL = "apt-get install -y wrk (Debian, Ubuntu), brew install wrk (macOS)"
BASELINE = "unauthenticated"


@dataclass(frozen=True)
class Plan:
    """How long each case is loaded: ``warmup_s`` once, then ``rounds`` runs of ``run_s``."""

    warmup_s: float = 3.0
    run_s: float = 15.0
    rounds: int = 3

    @classmethod
    def for_run(cls, *, quick: bool, seconds: float | None) -> Plan:
        base = cls(0.5, 2.0, 3) if quick else cls()
        return base if seconds is None else cls(min(base.warmup_s, seconds), seconds, base.rounds)


@dataclass(frozen=True)
class Case:
    """One server configuration: ``server`` is its family (one table), ``argv`` starts it (a ``{port}``
    placeholder), ``token`` the bearer token wrk sends (None: none)."""

    server: str
    name: str
    argv: tuple[str, ...]
    env_case: str
    token: str | None = None
    is_bastion: bool = False

    @property
    def is_baseline(self) -> bool:
        return self.name == BASELINE


@dataclass
class Result:
    case: Case
    runs: list[WrkRun] = field(default_factory=list)
    #: this case's requests/s over the unauthenticated server's, one per round
    shares: list[float] = field(default_factory=list)
    missing: str = ""

    @property
    def requests_per_s(self) -> float:
        return statistics.median(r.requests_per_s for r in self.runs)

    @property
    def p50_s(self) -> float:
        return statistics.median(r.p50_s for r in self.runs)

    @property
    def p99_s(self) -> float:
        return statistics.median(r.p99_s for r in self.runs)

    @property
    def share(self) -> float | None:
        return statistics.median(self.shares) if self.shares else None


# -- the servers --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _uvicorn(factory: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", "{port}",
            "--no-access-log", "--log-level", "warning")  # fmt: skip


def _gunicorn(app: str) -> tuple[str, ...]:
    # gthread: keep-alive connections, as uvicorn has (the sync worker closes each one)
    return (sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "4", "-b",
            "127.0.0.1:{port}", "--log-level", "warning", app)  # fmt: skip


FASTAPI = "FastAPI under uvicorn"
FLASK = "Flask under gunicorn (gthread, 4 threads)"
DRF = "Django REST framework under gunicorn (gthread, 4 threads)"
#: what each server's processes import (its app module imports every case's guard)
NEEDS = {
    FASTAPI: ("fastapi", "uvicorn"),
    FLASK: ("flask", "flask_jwt_extended", "gunicorn"),
    DRF: ("django", "rest_framework", "rest_framework_simplejwt", "knox", "gunicorn"),
}


def missing_of(server: str) -> str:
    """Why ``server`` cannot run here ("": it can)."""
    absent = [name for name in NEEDS[server] if importlib.util.find_spec(name) is None]
    return f"{', '.join(absent)} {NOT_INSTALLED}" if absent else ""


def plan_cases(folder: str) -> list[Case]:
    """Every case, with its tokens: the HS256 JWT (PyJWT-minted, a neutral party) and an opaque token issued
    in the run's SQLite store; the DRF peers' own tokens from their database (``httpdjango setup``)."""
    tokens = mint_tokens()
    with open(os.path.join(folder, PEPPER_FILE), "wb") as f:
        f.write(secrets.token_bytes(32))
    ours = store(folder)
    try:
        opaque = ours.issue(SUBJECT, scopes=["read"], ttl=86400).token
    finally:
        ours.close()
    fastapi, flask = _uvicorn("bastion.bench.httpapps:fastapi_app"), _gunicorn("bastion.bench.httpapps:flask_app()")
    drf = _gunicorn("bastion.bench.httpdjango:application()")
    cases = [
        Case(FASTAPI, BASELINE, fastapi, "bare"),
        Case(FASTAPI, "bastion, HS256 JWT", fastapi, "bastion", tokens.jwt, is_bastion=True),
        Case(FASTAPI, "bastion, opaque token", fastapi, "bastion", opaque),
        Case(FASTAPI, "PyJWT dependency", fastapi, "pyjwt", tokens.jwt),
        Case(FLASK, BASELINE, flask, "bare"),
        Case(FLASK, "bastion, HS256 JWT", flask, "bastion", tokens.jwt, is_bastion=True),
        Case(FLASK, "bastion, opaque token", flask, "bastion", opaque),
        Case(FLASK, "flask-jwt-extended", flask, "flask-jwt-extended", tokens.jwt),
    ]
    drf_tokens = _drf_tokens(folder) if not missing_of(DRF) else {"simplejwt": "", "knox": ""}
    cases += [
        Case(DRF, BASELINE, drf, "bare"),
        Case(DRF, "bastion, HS256 JWT", drf, "bastion", tokens.jwt, is_bastion=True),
        Case(DRF, "djangorestframework-simplejwt", drf, "simplejwt", drf_tokens["simplejwt"]),
        Case(DRF, "django-rest-knox", drf, "knox", drf_tokens["knox"]),
    ]
    return cases


def _drf_tokens(folder: str) -> dict[str, str]:
    env = {**os.environ, DIR_ENV: folder}
    subprocess.run([sys.executable, "-m", "bastion.bench.httpdjango", "setup"], env=env, check=True, timeout=120)
    with open(os.path.join(folder, "drf_tokens.json"), encoding="utf-8") as f:
        tokens: dict[str, str] = json.load(f)
    return tokens


@dataclass
class Running:
    case: Case
    url: str
    proc: subprocess.Popen[bytes]


def _status(url: str, token: str | None) -> int:
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=5).status_code


def _wait_ready(running: Running, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            raise RuntimeError(f"{running.case.server}: {running.case.name}: the server exited")
        with contextlib.suppress(httpx.TransportError):
            _status(running.url, None)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{running.case.server}: {running.case.name}: no answer within {timeout:.0f} s")


def check(running: Running) -> None:
    """Raise unless the server admits its token with 200 and (unauthenticated aside) refuses no token."""
    case = running.case
    got = _status(running.url, case.token)
    if got != 200:
        raise RuntimeError(f"{case.server}: {case.name}: the benchmark's request got {got}, not 200")
    if not case.is_baseline and (got := _status(running.url, None)) not in (401, 403):
        raise RuntimeError(f"{case.server}: {case.name}: a request without a token got {got}, not 401")


@contextlib.contextmanager
def servers(cases: Sequence[Case], folder: str, cpu: int | None) -> Iterator[list[Running]]:
    """Start one server per case (all at once, pinned to ``cpu``), check each, stop them all at the end."""
    started: list[Running] = []
    try:
        for case in cases:
            port = _free_port()
            argv = [a.replace("{port}", str(port)) for a in case.argv]
            env = {**os.environ, DIR_ENV: folder, CASE_ENV: case.env_case}
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, preexec_fn=pinned(cpu))
            started.append(Running(case, f"http://127.0.0.1:{port}{PATH}", proc))
        for running in started:
            _wait_ready(running)
            check(running)
        yield started
    finally:
        for running in started:
            running.proc.terminate()
        for running in started:
            try:
                running.proc.wait(10)
            except subprocess.TimeoutExpired:
                running.proc.kill()
                running.proc.wait()


def measure(running: Sequence[Running], plan: Plan, client_cpu: int | None) -> list[Result]:
    """Warm every server up, then ``plan.rounds`` rounds of one wrk run each, in a rotating order."""
    results = [Result(r.case) for r in running]
    for r in running:
        wrk(r.url, r.case.token, plan.warmup_s, client_cpu)
    for k in range(plan.rounds):
        for j in range(len(running)):
            i = (j + k) % len(running)
            progress(f"[http] {running[i].case.server}: {running[i].case.name}, round {k + 1}/{plan.rounds}")
            run = wrk(running[i].url, running[i].case.token, plan.run_s, client_cpu)
            if run.non_2xx or run.socket_errors:
                raise RuntimeError(
                    f"{running[i].case.name}: {run.non_2xx} non-2xx answers, {run.socket_errors} socket errors"
                )
            results[i].runs.append(run)
    base = next((res for res in results if res.case.is_baseline), None)
    if base is not None:
        for res in results:
            res.shares = [r.requests_per_s / b.requests_per_s for r, b in zip(res.runs, base.runs, strict=True)]
    return results


# -- the table, and the Report rows -------------------------------------------------------------------------


def fmt_latency(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_results(server: str, results: Sequence[Result]) -> str:
    """One aligned table: case, requests/s, p50, p99, share of the unauthenticated server's requests/s."""
    width = max(len("case"), *(len(r.case.name) for r in results))
    lines = [server, f"  {'case':<{width}}  {'requests/s':>10}  {'p50':>9}  {'p99':>9}  {'share':>6}"]
    for r in results:
        if not r.runs:
            lines.append(f"  {r.case.name:<{width}}  {'—':>10}  {r.missing}")
            continue
        share = "—" if r.share is None else f"{r.share:.0%}"
        lines.append(
            f"  {r.case.name:<{width}}  {r.requests_per_s:>10,.0f}  {fmt_latency(r.p50_s):>9}  "
            f"{fmt_latency(r.p99_s):>9}  {share:>6}"
        )
    return "\n".join(lines)


def group_of(server: str, results: Sequence[Result]) -> Group:
    """The results as the harness's rows (JSON, plot): seconds per request, the overhead over the
    unauthenticated server's (per round), and the ratio of that overhead to bastion's HS256 one."""
    base = next((r for r in results if r.case.is_baseline and r.runs), None)
    overhead: dict[int, float] = {}
    for i, r in enumerate(results):
        if base is not None and r.runs and not r.case.is_baseline:
            paired = zip(r.runs, base.runs, strict=True)
            overhead[i] = statistics.median(1 / a.requests_per_s - 1 / b.requests_per_s for a, b in paired)
    reference = next((overhead[i] for i, r in enumerate(results) if r.case.is_bastion and i in overhead), None)
    rows = []
    for i, r in enumerate(results):
        over = overhead.get(i)
        ratio = None if over is None or reference is None or reference <= 0 else over / reference
        median = 1 / r.requests_per_s if r.runs else None
        rows.append(Row(r.case.name, median, ratio, r.case.is_bastion, r.missing, over, r.case.is_baseline))
    return Group("http", server, rows)


def figures_of(server: str, results: Sequence[Result]) -> list[Figure]:
    out = []
    for r in results:
        if not r.runs:
            continue
        name = f"{server}: {r.case.name}"
        out += [
            Figure(f"{name}: requests/s", r.requests_per_s, "req/s"),
            Figure(f"{name}: p50", r.p50_s * 1e3, "ms"),
            Figure(f"{name}: p99", r.p99_s * 1e3, "ms"),
        ]
        if r.share is not None:
            out.append(Figure(f"{name}: share of unauthenticated", r.share * 100, "%"))
    return out


#: a 1-minute load average above this, before the first server starts, means other work shares the CPUs
BUSY_LOAD = 0.5


def machine() -> str:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"


def busy_warning() -> str | None:
    """Why the figures are not to be trusted when other processes run: they share CPU 0 with the server,
    the scheduler shares a core by thread, and a server process with more runnable threads (bastion's audit
    writer) then gets more of it: requests/s measure the contention, not the cost of authentication."""
    load = os.getloadavg()[0]
    if load <= BUSY_LOAD:
        return None
    return (
        f"warning: the machine is busy (load {load:.2f} before any server started): the servers share their CPU "
        "with other processes, so these figures measure the contention more than the servers; run on a quiet machine"
    )


def run_section(report: Report, *, servers_named: Sequence[str] | None = None) -> None:
    """Measure every server (or those in ``servers_named``), print the tables, add them to ``report``."""
    print("## http\n", flush=True)
    if shutil.which("wrk") is None:
        print(f"not available: wrk is not installed: {WRK_INSTALL}\n", flush=True)
        return
    plan = Plan.for_run(quick=report.quick, seconds=report.seconds)
    server_cpu, client_cpu = cpus()
    pinning = "not pinned (fewer than 2 CPUs usable)" if server_cpu is None else "server on CPU 0, wrk on CPU 1"
    print(f"{machine()}; {pinning}; wrk -t1 -c{CONNECTIONS}, {plan.rounds} rounds of {plan.run_s:g} s "
          f"after {plan.warmup_s:g} s of warm-up, GET {PATH}\n", flush=True)  # fmt: skip
    notes = [machine()]
    warning = busy_warning()
    if warning is not None:
        print(warning + "\n", flush=True)
        notes.append(warning)
    with tempfile.TemporaryDirectory(prefix="bastion-bench-http-") as folder:
        progress("[http] minting tokens, creating the Django database")
        try:
            planned = plan_cases(folder)
        except ImportError as exc:  # PyJWT mints the tokens every server checks
            print(f"not available: {exc.name or exc} {NOT_INSTALLED}\n", flush=True)
            return
        by_server: dict[str, list[Case]] = {}
        for case in planned:
            by_server.setdefault(case.server, []).append(case)
        for server, cases in by_server.items():
            if servers_named is not None and server not in servers_named:
                continue
            missing = missing_of(server)
            if missing:
                results = [Result(case, missing=missing) for case in cases]
            else:
                progress(f"[http] {server}: starting {len(cases)} servers")
                with servers(cases, folder, server_cpu) as running:
                    results = measure(running, plan, client_cpu)
            table = format_results(server, results)
            print(table + "\n", flush=True)
            report.groups.append(group_of(server, results))
            report.figures.setdefault("http", []).extend(figures_of(server, results))
            bastion_row = next((r for r in results if r.case.is_bastion), None)
            if bastion_row is not None and bastion_row.share is not None:
                notes.append(f"{server}: bastion (HS256) keeps {bastion_row.share:.0%} of unauthenticated requests/s")
    notes.append(f"at the end: {machine()}")
    report.notes["http"] = notes
    print("\n".join(notes[1:]) + "\n", flush=True)
