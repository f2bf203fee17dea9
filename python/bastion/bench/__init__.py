"""The harness behind ``python -m bastion bench``: bastion and its peers, same operation, same run.

Each section module (``bastion.bench.jwt``, ``.opaque``, ``.ratelimit``, ``.middleware``) exposes
``cases(quick=False)``, a list of :class:`Case`, and may expose ``figures(quick=False)``, measured quantities
that are not timings (memory per record), and ``footer(groups)``, lines printed under its tables (budgets met
or not). A section that measures in its own way (``http``: wrk against real servers) exposes
``run_section(report)`` instead and adds its groups, figures and notes to the report itself. A case whose
peer is not installed has ``fn=None`` and is listed with the reason, never fatal. Every group is timed by
the one loop here, :func:`interleave`: its cases alternate in batches, so a change of load on a shared, noisy
machine hits them alike. The figures are medians of those batches; a ratio is the median over
rounds of (peer batch / bastion batch of the same round). A group with a baseline case (a bare app) reports
each case's overhead over it instead: the median over rounds of (case batch − baseline batch of the same
round), and as the ratio, a case's overhead over bastion's. Compare within one run only.

One module of about 450 lines: the timing loop, the tables, the JSON and the plot all read the same rows and
the CLI drives them in one order; split up, each part would import the others.

Over 400 lines because the harness is one loop with what reads its samples (medians, ratios, overheads,
tables, JSON, the plot, the CLI): one module, so that every section is measured and shown the same way.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import itertools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

SECTIONS = ("jwt", "opaque", "ratelimit", "middleware")
#: sections run only when named, not by "all": they start real servers (``http`` loads them with wrk for minutes)
ON_REQUEST = ("http", "oauth")
#: what a missing peer's row says; the peers are the ``bastion[bench]`` extra
NOT_INSTALLED = "not installed: pip install 'bastion[bench]'"


def _returned_something(result: object) -> bool:
    return result is not None


@dataclass
class Case:
    """One timed operation: ``group`` (e.g. "HS256 verify"), ``name`` (e.g. "bastion", "PyJWT").

    ``ok`` says whether a call's result is right; the pytest adapters in ``benches/`` assert it.
    """

    group: str
    name: str
    fn: Callable[[], object] | None
    #: why ``fn`` is None (peer not installed, needs another Python, …)
    missing: str = ""
    is_bastion: bool = False
    ok: Callable[[Any], bool] = field(default=_returned_something, repr=False)
    #: the group's reference point (a bare app): the other cases are reported as overhead over it (one a group)
    is_baseline: bool = False
    #: operations one call of ``fn`` performs (a batch of requests in one coroutine); times are per operation
    per_call: int = 1
    #: run after each batch of this case and billed to it: the work the case left for a background thread
    #: (an audit log's queue) is finished — and paid for — before the next case's batch starts
    settle: Callable[[], object] | None = field(default=None, repr=False)


@dataclass
class Figure:
    """A measured quantity that is not a time per call, such as RSS bytes per live key."""

    name: str
    value: float | None
    unit: str
    missing: str = ""


@dataclass
class Row:
    """One case's result: median seconds per call and the ratio to bastion's case (None if not timed).

    In a group with a baseline, ``overhead_s`` is the median over rounds of (this case − the baseline) and
    ``ratio`` is this overhead over bastion's (None for the baseline itself)."""

    name: str
    median_s: float | None
    ratio: float | None
    is_bastion: bool
    missing: str = ""
    overhead_s: float | None = None
    is_baseline: bool = False


@dataclass
class Group:
    section: str
    name: str
    rows: list[Row]


@dataclass
class Timing:
    """How long each case of a group is timed: ``repeats`` rounds of one batch per case."""

    target_s: float = 0.2
    repeats: int = 15

    @classmethod
    def for_run(cls, *, quick: bool, seconds: float | None) -> Timing:
        if seconds is not None:
            return cls(seconds, 5 if quick else 15)
        return cls(0.03, 5) if quick else cls()


def _batch(fn: Callable[[], object], n: int) -> float:
    """Seconds per call over ``n`` calls, timed as ``timeit`` does: the loop allocates nothing
    (``itertools.repeat``, not ``range``) and the cyclic garbage collector is off while it runs, so a
    collection triggered by one case's garbage is not billed to another."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            fn()
        return (time.perf_counter_ns() - t0) / n / 1e9
    finally:
        if gc_was_on:
            gc.enable()


def _calibrate(fn: Callable[[], object], batch_s: float) -> int:
    """Calls per batch so that one batch takes about ``batch_s`` seconds."""
    fn()
    n = 1
    while True:
        dt = _batch(fn, n) * n
        if dt > 0.002 or n >= 1 << 24:
            break
        n *= 4
    return max(1, int(n * batch_s / max(dt, 1e-9)))


def interleave(
    fns: Sequence[Callable[[], object]],
    *,
    target_s: float = 0.2,
    repeats: int = 15,
    settle: Sequence[Callable[[], object] | None] | None = None,
) -> list[list[float]]:
    """Seconds per call of each function in each of ``repeats`` rounds; a round times one batch of each.

    The order rotates from round to round so that no function always runs first (cache state, turbo, the
    scheduler). ``samples[i][r]`` is function ``i`` in round ``r``. ``settle[i]``, when given, runs after each
    batch of function ``i`` (and after its calibration), and its time is spread over the batch's calls: what a
    call hands to a background thread is part of its cost.
    """
    after = list(settle) if settle is not None else [None] * len(fns)
    sizes = []
    for fn, then in zip(fns, after, strict=True):
        sizes.append(_calibrate(fn, target_s / repeats))
        if then is not None:
            then()
    samples: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        for k in range(len(fns)):
            i = (k + r) % len(fns)
            per_call = _batch(fns[i], sizes[i])
            then = after[i]
            if then is not None:
                t0 = time.perf_counter_ns()
                then()
                per_call += (time.perf_counter_ns() - t0) / sizes[i] / 1e9
            samples[i].append(per_call)
    return samples


def measure(fn: Callable[[], object], *, target_s: float = 0.2, repeats: int = 7) -> float:
    """Median seconds per call of one function (the demo's timings)."""
    return statistics.median(interleave([fn], target_s=target_s, repeats=repeats)[0])


def time_group(section: str, name: str, cases: Sequence[Case], timing: Timing) -> Group:
    """Time the runnable cases of one group together; ratios are per round against the bastion case, or
    with a baseline in the group, ratios of the overheads over it (see :class:`Row`)."""
    runnable = [i for i, c in enumerate(cases) if c.fn is not None]
    fns = [f for f in (cases[i].fn for i in runnable) if f is not None]
    timed = interleave(
        fns, target_s=timing.target_s, repeats=timing.repeats, settle=[cases[i].settle for i in runnable]
    )
    samples = {i: [t / cases[i].per_call for t in s] for i, s in zip(runnable, timed, strict=True)}
    if any(c.is_baseline for c in cases):
        return Group(section, name, _overhead_rows(cases, samples))
    base = next((samples[i] for i, c in enumerate(cases) if c.is_bastion and i in samples), None)
    rows = []
    for i, case in enumerate(cases):
        s = samples.get(i)
        if s is None:
            rows.append(Row(case.name, None, None, case.is_bastion, case.missing))
            continue
        ratio = None if base is None else statistics.median(t / b for t, b in zip(s, base, strict=True))
        rows.append(Row(case.name, statistics.median(s), ratio, case.is_bastion))
    return Group(section, name, rows)


def _overhead_rows(cases: Sequence[Case], samples: dict[int, list[float]]) -> list[Row]:
    """Rows of a group with a baseline: each case's overhead is the median over rounds of (case − baseline),
    paired by round so that a change of load cancels; the ratio is an overhead over bastion's (undefined when
    bastion's is not positive, i.e. lost in the noise)."""
    baseline = next((samples.get(i) for i, c in enumerate(cases) if c.is_baseline), None)
    overhead: dict[int, float] = {}
    if baseline is not None:
        for i, times in samples.items():
            if not cases[i].is_baseline:
                overhead[i] = statistics.median(t - b for t, b in zip(times, baseline, strict=True))
    reference = next((overhead[i] for i, c in enumerate(cases) if c.is_bastion and i in overhead), None)
    rows = []
    for i, case in enumerate(cases):
        s = samples.get(i)
        if s is None:
            rows.append(Row(case.name, None, None, case.is_bastion, case.missing, is_baseline=case.is_baseline))
            continue
        over = overhead.get(i)
        ratio = None if over is None or reference is None or reference <= 0 else over / reference
        rows.append(Row(case.name, statistics.median(s), ratio, case.is_bastion, "", over, case.is_baseline))
    return rows


def groups_of(cases: Sequence[Case]) -> dict[str, list[Case]]:
    """The cases by group, in the order they first appear."""
    out: dict[str, list[Case]] = {}
    for case in cases:
        out.setdefault(case.group, []).append(case)
    return out


def fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e3:.2f} ms"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×"


def format_group(group: Group) -> str:
    """One aligned table: case, median, ratio to bastion (a missing case shows why instead); with a baseline,
    also each case's overhead over it, and the ratio is of the overheads."""
    if any(r.is_baseline for r in group.rows):
        return _format_overheads(group)
    width = max(len("case"), *(len(r.name) for r in group.rows))
    lines = [group.name, f"  {'case':<{width}}  {'median':>10}  {'vs bastion':>10}"]
    for row in group.rows:
        if row.median_s is None:
            lines.append(f"  {row.name:<{width}}  {'—':>10}  {row.missing}")
            continue
        ratio = "1×" if row.is_bastion else ("—" if row.ratio is None else fmt_ratio(row.ratio))
        lines.append(f"  {row.name:<{width}}  {fmt_time(row.median_s):>10}  {ratio:>10}")
    return "\n".join(lines)


def _format_overheads(group: Group) -> str:
    width = max(len("case"), *(len(r.name) for r in group.rows))
    lines = [group.name, f"  {'case':<{width}}  {'median':>10}  {'over bare':>10}  {'vs bastion':>10}"]
    for row in group.rows:
        if row.median_s is None:
            lines.append(f"  {row.name:<{width}}  {'—':>10}  {row.missing}")
            continue
        if row.is_baseline:
            lines.append(f"  {row.name:<{width}}  {fmt_time(row.median_s):>10}  {'baseline':>10}")
            continue
        over = "—" if row.overhead_s is None else fmt_time(row.overhead_s)
        if row.is_bastion:
            ratio = "1×" if row.ratio is not None else "—"
        else:
            ratio = "—" if row.ratio is None else fmt_ratio(row.ratio)
        lines.append(f"  {row.name:<{width}}  {fmt_time(row.median_s):>10}  {over:>10}  {ratio:>10}")
    return "\n".join(lines)


def format_figures(figures: Sequence[Figure]) -> str:
    width = max(len(f.name) for f in figures)
    lines = []
    for f in figures:
        shown = f.missing if f.value is None else f"{f.value:,.1f} {f.unit}"
        lines.append(f"  {f.name:<{width}}  {shown}")
    return "\n".join(lines)


@dataclass
class Report:
    """Everything one run measured, in section order."""

    quick: bool
    timing: Timing
    #: ``--seconds`` as given (None: the section's default)
    seconds: float | None = None
    groups: list[Group] = field(default_factory=list)
    figures: dict[str, list[Figure]] = field(default_factory=dict)
    #: a section's footer lines (its budgets, met or not), by section
    notes: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"python", "platform", "quick", "target_s", "repeats", "sections": [{"name", "groups":
        [{"name", "cases": [{"name", "median_s", "ratio", "is_bastion", "missing", "overhead_s",
        "is_baseline"}]}], "figures": [...], "notes": [str]}]}``."""
        names = list(dict.fromkeys([g.section for g in self.groups] + list(self.figures) + list(self.notes)))
        sections = []
        for name in names:
            groups = [
                {"name": g.name, "cases": [vars(r).copy() for r in g.rows]} for g in self.groups if g.section == name
            ]
            figures = [vars(f).copy() for f in self.figures.get(name, [])]
            sections.append({"name": name, "groups": groups, "figures": figures, "notes": self.notes.get(name, [])})
        return {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "quick": self.quick,
            "target_s": self.timing.target_s,
            "repeats": self.timing.repeats,
            "sections": sections,
        }


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_section(section: str, report: Report) -> None:
    """Build, time and print one section's cases and figures, adding them to ``report``."""
    module = importlib.import_module(f"bastion.bench.{section}")
    if hasattr(module, "run_section"):
        module.run_section(report)
        return
    print(f"## {section}\n", flush=True)
    progress(f"[{section}] preparing cases")
    try:
        by_group = groups_of(module.cases(quick=report.quick))
    except ImportError as exc:  # a library the section's fixtures need (PyJWT mints the JWT section's tokens)
        print(f"not available: {exc.name or exc} {NOT_INSTALLED}\n", flush=True)
        return
    timed = []
    for k, (name, members) in enumerate(by_group.items(), 1):
        progress(f"[{section}] {k}/{len(by_group)} {name} ({sum(c.fn is not None for c in members)} cases)")
        group = time_group(section, name, members, report.timing)
        report.groups.append(group)
        timed.append(group)
        print(format_group(group) + "\n", flush=True)
    if hasattr(module, "footer"):
        lines: list[str] = module.footer(timed)
        report.notes[section] = lines
        print("\n".join(lines) + "\n", flush=True)
    if hasattr(module, "figures"):
        progress(f"[{section}] measuring memory")
        figures: list[Figure] = module.figures(quick=report.quick)
        report.figures[section] = figures
        print("memory\n" + format_figures(figures) + "\n", flush=True)


class PlotUnavailable(Exception):
    """``--plot`` was asked for and matplotlib cannot be imported."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable(
            "--plot needs matplotlib, which is not installed: pip install matplotlib (or 'bastion[bench]')"
        ) from exc
    return plt


def plot(report: Report, path: str) -> None:
    """A PNG of every peer's ratio to bastion, one horizontal bar chart per section (log scale when the
    ratios span more than a factor of 20). Raises :class:`PlotUnavailable` without matplotlib."""
    plt = _pyplot()
    sections = list(dict.fromkeys(g.section for g in report.groups))
    bars: dict[str, list[tuple[str, float]]] = {s: [] for s in sections}
    for g in report.groups:
        for row in g.rows:
            if not row.is_bastion and row.ratio is not None:
                what = " (overhead)" if row.overhead_s is not None else ""
                bars[g.section].append((f"{g.name}: {row.name}{what}", row.ratio))
    sections = [s for s in sections if bars[s]]
    heights = [max(1.5, 0.28 * len(bars[s]) + 0.9) for s in sections] or [2.0]
    fig, axes = plt.subplots(len(heights), 1, figsize=(12, sum(heights)), height_ratios=heights, squeeze=False)
    if not sections:
        axes[0][0].text(0.5, 0.5, "no ratio to plot (no peer was timed)", ha="center", va="center")
        axes[0][0].set_axis_off()
    for ax, section in zip((a[0] for a in axes), sections, strict=False):
        labels = [label for label, _ in bars[section]][::-1]
        values = [value for _, value in bars[section]][::-1]
        colors = ["tab:green" if v >= 1 else "tab:red" for v in values]
        ax.barh(labels, values, color=colors)
        ax.axvline(1.0, color="black", linewidth=1)
        low, high = min(min(values), 1.0), max(max(values), 1.0)
        if high / low > 20:
            ax.set_xscale("log")
            ax.set_xlim(low / 1.5, high * 2.5)  # room for the value labels
        else:
            ax.set_xlim(0, high * 1.2)
        for y, v in enumerate(values):
            ax.annotate(fmt_ratio(v), (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_title(f"{section}: time per call relative to bastion (>1: bastion is faster)", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def add_parser(sub: Any) -> None:
    """Add the ``bench`` command to ``python -m bastion``'s subparsers."""
    bench = sub.add_parser("bench", help="time bastion against the peer libraries installed here, in one run")
    # a default that is one of the choices: argparse checks it when no section is given
    bench.add_argument(
        "sections",
        nargs="*",
        choices=[*SECTIONS, *ON_REQUEST, "all"],
        default="all",
        help="default: all (every section but http, which runs only when named)",
    )
    bench.add_argument("--quick", action="store_true", help="short timings and smaller data sets (a smoke run)")
    bench.add_argument(
        "--seconds", type=float, help="time spent per case (default 0.2, --quick 0.03; http: per wrk run, 15 and 2)"
    )
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    bench.add_argument("--plot", metavar="PATH", help="also draw the ratios to PATH as a PNG (needs matplotlib)")


def run(args: argparse.Namespace) -> int:
    """``python -m bastion bench``: run the sections, print their tables, then write the JSON and the plot."""
    asked = [args.sections] if isinstance(args.sections, str) else list(args.sections)
    sections = list(SECTIONS) if "all" in asked else list(dict.fromkeys(asked))
    if args.seconds is not None and not args.seconds > 0:
        print("error: --seconds must be positive", file=sys.stderr)
        return 2
    if args.plot:
        try:
            _pyplot()  # before the run, not after minutes of timing
        except PlotUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for path in (args.json, args.plot):
        folder = os.path.dirname(os.path.abspath(path)) if path else ""
        if path and not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
            print(f"error: cannot write {path}: {folder} is not a writable directory", file=sys.stderr)
            return 2
    timing = Timing.for_run(quick=args.quick, seconds=args.seconds)
    report = Report(quick=args.quick, timing=timing, seconds=args.seconds)
    print(f"Python {platform.python_version()}, {timing.repeats} interleaved rounds, {timing.target_s:g} s per case\n")
    for section in sections:
        run_section(section, report)
    try:
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(report.to_json(), f, indent=2)
            progress(f"wrote {args.json}")
        if args.plot:
            plot(report, args.plot)
            progress(f"wrote {args.plot}")
    except OSError as exc:
        print(f"error: cannot write {exc.filename or 'the output'}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
