"""wrk, the load generator of ``python -m bastion bench http``: one run, pinned to a CPU, and its output read.

wrk (https://github.com/wg/wrk) is a C program: one thread of it saturates a Python server on loopback
without competing with it for the server's CPU. ``--latency`` adds the percentiles read here.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

#: keep-alive connections per run: enough to keep one worker busy, few enough not to measure the queue
CONNECTIONS = 16
#: the server's CPU and wrk's, where this process may use both
SERVER_CPU, CLIENT_CPU = 0, 1


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run measured (latencies in seconds)."""

    requests_per_s: float
    p50_s: float
    p99_s: float
    requests: int
    non_2xx: int = 0
    socket_errors: int = 0


_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)


def parse_wrk(text: str) -> WrkRun:
    """Requests/s, p50 and p99 (``--latency``), the request count and the errors of one wrk run's output.
    Raises ValueError when a figure is missing (wrk failed, or ran without ``--latency``)."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ", text, re.MULTILINE)
    latency = {p: float(v) * _UNIT[u] for p, v, u in _LATENCY.findall(text)}
    if rps is None or total is None or set(latency) != {"50", "99"}:
        raise ValueError("not the output of a wrk --latency run:\n" + text[-800:])
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkRun(
        requests_per_s=float(rps.group(1)),
        p50_s=latency["50"],
        p99_s=latency["99"],
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
    )


def pinned(cpu: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child process to ``cpu`` (None: no pinning)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def cpus() -> tuple[int | None, int | None]:
    """(server CPU, client CPU): 0 and 1 where this process may use both, else no pinning."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if {SERVER_CPU, CLIENT_CPU} <= allowed:
        return SERVER_CPU, CLIENT_CPU
    return None, None


def wrk(url: str, token: str | None, seconds: float, cpu: int | None) -> WrkRun:
    """One wrk run (one thread, ``CONNECTIONS`` keep-alive connections) against ``url``."""
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency", url]
    if token is not None:
        argv[1:1] = ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 60, check=False, preexec_fn=pinned(cpu)
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return parse_wrk(done.stdout)
