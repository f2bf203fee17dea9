"""``python -m bastion``: the command-line entry point (demo, bench, tokens)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bastion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="mint and verify tokens, print results and timings")
    # -- cli commands: jwt (issue 2) --
    # -- cli commands: opaque (issue 3) --
    # -- cli commands: ratelimit (issue 4) --
    args = parser.parse_args(argv)
    if args.command == "demo":
        from bastion._demo import run_demo

        return run_demo()
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
