"""``python -m bastion demo``: the reports API behind bastion, served by uvicorn, toured over real HTTP.

The app, its token store and its audit log (:mod:`bastion.demo.app`) live in a fresh temporary directory
(or ``--dir``); the credentials (:mod:`bastion.demo.tokens`) are minted, printed as ``curl`` lines, and the
tour (:mod:`bastion.demo.tour`) sends every request and checks its answer. The audit records are shown at
the end and checked for tokens, as is the token database. Exit status 0 only if every check held.
``--serve`` keeps serving after the tour until Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import tempfile
import time
from typing import TYPE_CHECKING, Any

import bastion

if TYPE_CHECKING:  # the demo's modules import Starlette, uvicorn and httpx: only when the demo runs
    from bastion.demo.app import Service
    from bastion.demo.tokens import Tokens

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``demo`` command to ``python -m bastion``'s subparsers."""
    demo = sub.add_parser("demo", help="serve a small API behind bastion and tour it over HTTP (checks itself)")
    demo.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: a free one)")
    demo.add_argument("--serve", action="store_true", help="keep serving after the tour, until Ctrl-C")
    demo.add_argument(
        "--dir",
        help="keep the token database and audit log in DIR, a new or empty directory (default: a temporary one)",
    )


#: what the demo imports beyond bastion: the ``demo`` extra
NEEDS = ("starlette", "uvicorn", "httpx")


def run(args: argparse.Namespace) -> int:
    absent = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if absent:
        print(f"error: the demo needs {', '.join(absent)}: pip install 'bastion[demo]'", flush=True)
        return 2
    if not 0 <= args.port <= 65535:
        print("error: --port must be 0-65535", flush=True)
        return 2
    if args.dir is not None:
        # an earlier run's database and audit log would mix with this run's (and its tokens with the checks)
        if os.path.exists(args.dir) and (not os.path.isdir(args.dir) or os.listdir(args.dir)):
            print(f"error: --dir {args.dir} must be a new or empty directory", flush=True)
            return 2
        os.makedirs(args.dir, exist_ok=True)
        return _run(args.dir, args.port, args.serve)
    with tempfile.TemporaryDirectory(prefix="bastion-demo-") as folder:
        return _run(folder, args.port, args.serve)


def _run(folder: str, port: int, serve: bool) -> int:
    import httpx

    from bastion.demo import tour
    from bastion.demo.app import Server, build_app, service
    from bastion.demo.tokens import curl_lines, mint

    svc = service(folder)
    try:
        tokens = mint(svc)
        try:
            server = Server(build_app(svc), port)
        except bastion.ConfigurationError as exc:
            print(f"error: {exc}", flush=True)
            return 2
        with server:
            print(f"bastion {bastion.__version__}: the reports API behind bastion.asgi.AuthMiddleware, on {server.url}")
            print(f"  token store sqlite:///{svc.db_path}\n  audit log   {svc.audit_path}\n")
            print("try it (throwaway tokens, minted for this run):")
            print("\n".join("  " + line for line in curl_lines(server.url, tokens)) + "\n")
            with httpx.Client(base_url=server.url, timeout=10) as client:
                results = tour.walk(client, tour.steps(tokens))
            print("the tour (each request's expected and actual status, median milliseconds, body):")
            print(tour.table(results) + "\n")
            problems = [f"step {n}: expected {r.step.expect}" for n, r in enumerate(results, 1) if not r.ok]
            problems += _show_audit(svc, tokens)
            if serve:
                _serve_until_interrupted(server.url)
    finally:
        svc.close()
    if problems:
        print("FAILED:\n" + "\n".join("  " + p for p in problems), flush=True)
        return 1
    print(f"all {len(results)} steps answered as expected; no token in the audit log or the database", flush=True)
    return 0


def _show_audit(svc: Service, tokens: Tokens) -> list[str]:
    """Print the audit records; return what is wrong with them (a token in them, or in the database)."""
    from bastion.demo import tour

    if not svc.audit.flush(5.0):
        return ["the audit log did not flush within 5 s"]
    with open(svc.audit_path, encoding="utf-8") as f:
        text = f.read()
    records = [json.loads(line) for line in text.splitlines()]
    print(f"the audit log: {len(records)} records, one per request (every field in {svc.audit_path}):")
    print(tour.audit_table(records) + "\n")
    problems = [f"token {name!r} found in the audit log" for name in tour.leaked(text, tokens)]
    for path in (svc.db_path, svc.db_path + "-wal"):
        if os.path.exists(path):
            with open(path, "rb") as f:
                problems += [
                    f"token {name!r} found in {os.path.basename(path)}" for name in tour.leaked(f.read(), tokens)
                ]
    return problems


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve_until_interrupted(url: str) -> None:
    """Wait for Ctrl-C (or SIGTERM); the caller then stops the server and closes the store and the log."""
    print(f"serving on {url} (the curl lines above work); Ctrl-C stops", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
