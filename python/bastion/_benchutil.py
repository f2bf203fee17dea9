"""The harness behind ``python -m bastion bench``: bastion and its peers, same operation, same run.

Each domain module (``bastion._bench_jwt``, ``bastion._bench_opaque``, ``bastion._bench_ratelimit``) exposes
``cases() -> list[Case]``. A case whose peer library is not installed is reported as missing, not failed.
Figures are medians of timed batches (``time.perf_counter_ns``), the cases of a group timed in alternating
batches; ratios are against bastion's case of the same group. This machine is shared and noisy: compare within
one run, never across runs.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Case:
    """One timed operation: ``group`` (e.g. "HS256 verify"), ``name`` (e.g. "bastion", "PyJWT")."""

    group: str
    name: str
    fn: Callable[[], object] | None
    #: why ``fn`` is None (peer not installed, needs another Python, …)
    missing: str = ""
    is_bastion: bool = field(default=False)


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


def measure(fn: Callable[[], object], *, target_s: float = 0.2, repeats: int = 7) -> float:
    """Median seconds per call over ``repeats`` batches, each about ``target_s / repeats`` long."""
    n = _calibrate(fn, target_s / repeats)
    return statistics.median(_batch(fn, n) for _ in range(repeats))


def measure_interleaved(fns: list[Callable[[], object]], *, target_s: float = 0.2, repeats: int = 15) -> list[float]:
    """Median seconds per call of each function, timed in alternating batches.

    On a shared, noisy machine a change in load then hits every case of a group alike, so the ratios hold even
    when the absolute figures move.
    """
    sizes = [_calibrate(fn, target_s / repeats) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        # rotate the order so that no case always runs first (cache state, turbo, scheduler)
        for k in range(len(fns)):
            i = (k + r) % len(fns)
            samples[i].append(_batch(fns[i], sizes[i]))
    return [statistics.median(s) for s in samples]


def fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e3:.2f} ms"


DOMAINS = ("jwt", "opaque", "ratelimit")


def run(domains: list[str], *, target_s: float = 0.2) -> int:
    """Run the cases of ``domains`` and print one table per group."""
    for domain in domains:
        try:
            module = importlib.import_module(f"bastion._bench_{domain}")
        except ImportError as exc:
            print(f"## {domain}: not available ({exc})")
            continue
        cases: list[Case] = module.cases()
        groups: dict[str, list[Case]] = {}
        for case in cases:
            groups.setdefault(case.group, []).append(case)
        print(f"## {domain}")
        for group, members in groups.items():
            runnable = [c for c in members if c.fn is not None]
            fns = [c.fn for c in runnable if c.fn is not None]
            timed = dict(zip(map(id, runnable), measure_interleaved(fns, target_s=target_s), strict=True))
            results: list[tuple[Case, float | None]] = [(c, timed.get(id(c))) for c in members]
            base = next((t for c, t in results if c.is_bastion and t is not None), None)
            print(f"\n{group}")
            for case, t in results:
                if t is None:
                    print(f"  {case.name:<34} {'—':>10}   ({case.missing})")
                    continue
                ratio = f"{t / base:6.1f}× bastion" if base and not case.is_bastion else ""
                print(f"  {case.name:<34} {fmt_time(t):>10}   {ratio}")
        print()
    return 0
