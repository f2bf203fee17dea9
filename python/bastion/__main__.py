"""``python -m bastion``: the command-line entry point (demo, bench, tokens)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bastion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="mint and verify tokens, print results and timings")
    bench = sub.add_parser("bench", help="time bastion against the peer libraries installed here, in one run")
    bench.add_argument("domains", nargs="*", choices=["jwt", "opaque", "ratelimit", []], help="default: all")
    bench.add_argument("--seconds", type=float, default=0.2, help="time spent per case (default 0.2)")
    # -- cli commands: jwt (issue 2) --
    # -- cli commands: opaque (issue 3) --
    from bastion.tokens.cli import add_parser as add_tokens_parser

    add_tokens_parser(sub)
    # -- cli commands: ratelimit (issue 4) --
    args = parser.parse_args(argv)
    if args.command == "demo":
        from bastion._demo import run_demo

        return run_demo()
    if args.command == "bench":
        from bastion._benchutil import DOMAINS, run

        return run(list(args.domains) or list(DOMAINS), target_s=args.seconds)
    # -- cli dispatch: opaque (issue 3) --
    if args.command == "tokens":
        from bastion.tokens.cli import run as run_tokens

        return run_tokens(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
