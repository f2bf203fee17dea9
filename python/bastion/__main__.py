"""``python -m bastion``: the command-line entry point (demo, bench, tokens, clients)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bastion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from bastion.bench import add_parser as add_bench_parser
    from bastion.demo import add_parser as add_demo_parser
    from bastion.oauth.cli import add_parser as add_clients_parser
    from bastion.tokens.cli import add_parser as add_tokens_parser

    add_demo_parser(sub)
    add_bench_parser(sub)
    add_tokens_parser(sub)
    add_clients_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from bastion.demo import run as run_demo

        return run_demo(args)
    if args.command == "bench":
        from bastion.bench import run as run_bench

        return run_bench(args)
    if args.command == "tokens":
        from bastion.tokens.cli import run as run_tokens

        return run_tokens(args)
    if args.command == "clients":
        from bastion.oauth.cli import run as run_clients

        return run_clients(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
