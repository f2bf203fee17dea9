"""``python -m bastion tokens issue|list|revoke|rotate|import``: manage opaque tokens from a shell.

The pepper comes from an environment variable (``BASTION_PEPPER`` by default, its UTF-8 bytes, at least 32),
never from the command line, where other users could read it in the process list. A new token is printed
exactly once, on its own line, on stdout; everything else goes to stderr. Tokens to revoke or rotate may be
given as ``-`` to read them from stdin, for the same reason.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from typing import Any

from bastion.errors import BastionError
from bastion.tokens.store import TokenInfo, TokenStore


def add_parser(sub: Any) -> None:
    """Add the ``tokens`` command to ``python -m bastion``'s subparsers."""
    tokens = sub.add_parser("tokens", help="issue, list, revoke, rotate and import opaque tokens")
    actions = tokens.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", required=True, help="sqlite:///file.db, sqlite:////abs/file.db or postgresql://…")
        p.add_argument("--pepper-env", default="BASTION_PEPPER", help="environment variable holding the pepper")
        p.add_argument("--pepper-id", default="default", help="id of that pepper (default: default)")
        p.add_argument("--prefix", default="bst", help="token prefix (default: bst)")

    issue = actions.add_parser("issue", help="issue a token and print it once")
    common(issue)
    issue.add_argument("subject")
    issue.add_argument("--scope", action="append", default=[], help="repeatable")
    issue.add_argument("--role", action="append", default=[], help="repeatable")
    issue.add_argument("--tier")
    issue.add_argument("--ttl", type=float, help="seconds (default 30 days)")
    issue.add_argument("--name")
    issue.add_argument("--kind", default="k", choices=["k", "a", "r", "c"])
    issue.add_argument("--client-id")
    lst = actions.add_parser("list", help="list a subject's tokens (never secrets)")
    common(lst)
    lst.add_argument("subject")
    lst.add_argument("--json", action="store_true")
    rev = actions.add_parser("revoke", help="revoke a token ('-' reads it from stdin), or a record with --id")
    common(rev)
    rev.add_argument("token_or_id", help="the token, or with --id the record's public id")
    rev.add_argument("--id", action="store_true", help="the argument is a record id (see 'list'), not a token")
    rev.add_argument("--reason")
    rot = actions.add_parser("rotate", help="rotate a token ('-' reads it from stdin) and print the new one once")
    common(rot)
    rot.add_argument("token")
    rot.add_argument("--grace", type=float, default=60.0)
    imp = actions.add_parser("import", help="import SHA-256-hashed tokens from a CSV file (see docs/OPAQUE.md)")
    common(imp)
    imp.add_argument("csv", help="columns: digest_hex, subject, expires_at[, created_at, scopes, roles, tier, name]")
    imp.add_argument("--scheme", default="sha256-b64url", choices=["sha256-b64url", "sha256"])


def _secret_arg(value: str) -> str:
    return sys.stdin.readline().strip() if value == "-" else value


def _pepper(name: str) -> bytes | None:
    """The variable's bytes as the OS holds them (a pepper need not be UTF-8)."""
    if os.supports_bytes_environ:
        return os.environb.get(os.fsencode(name))
    value = os.environ.get(name)
    return None if value is None else value.encode("utf-8", "surrogateescape")  # pragma: no cover - Windows


def _store(args: argparse.Namespace) -> TokenStore:
    pepper = _pepper(args.pepper_env)
    if not pepper:
        raise SystemExit(f"error: set the pepper in ${args.pepper_env} (at least 32 bytes)")
    return TokenStore(
        args.store,
        prefix=args.prefix,
        peppers={args.pepper_id: pepper},
        pepper_id=args.pepper_id,
        background=False,
    )


def _info_dict(info: TokenInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "kind": info.kind,
        "subject": info.subject,
        "name": info.name,
        "scopes": list(info.scopes),
        "roles": list(info.roles),
        "tier": info.tier,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "last_used_at": info.last_used_at,
        "use_count": info.use_count,
        "revoked_at": info.revoked_at,
        "revoked_reason": info.revoked_reason,
        "active": info.is_active(),
    }


def run(args: argparse.Namespace) -> int:
    """Run one ``tokens`` action; returns the exit status."""
    try:
        with _store(args) as store:
            if args.action == "issue":
                issued = store.issue(
                    args.subject,
                    scopes=args.scope,
                    roles=args.role,
                    tier=args.tier,
                    ttl=args.ttl,
                    name=args.name,
                    kind=args.kind,
                    client_id=args.client_id,
                )
                print(issued.token)
                print(
                    f"issued id={issued.id} expires_at={issued.expires_at:.0f} (the token is shown only once)",
                    file=sys.stderr,
                )
                return 0
            if args.action == "list":
                infos = store.list(args.subject)
                if args.json:
                    print(json.dumps([_info_dict(i) for i in infos], indent=2))
                else:
                    for i in infos:
                        state = "active" if i.is_active() else ("revoked" if i.revoked_at else "expired")
                        print(
                            f"{i.id}  {i.kind}  {state:<7}  uses={i.use_count}  scopes={' '.join(i.scopes)}  "
                            f"expires={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(i.expires_at))}"
                            f"{'  name=' + i.name if i.name else ''}"
                        )
                return 0
            if args.action == "revoke":
                if args.id:
                    done = store.revoke_id(args.token_or_id, reason=args.reason)
                else:
                    done = store.revoke(_secret_arg(args.token_or_id), reason=args.reason)
                print("revoked" if done else "not found or already revoked", file=sys.stderr)
                return 0 if done else 1
            if args.action == "rotate":
                issued = store.rotate(_secret_arg(args.token), grace=args.grace)
                print(issued.token)
                print(
                    f"rotated: new id={issued.id}; the old token works for {args.grace:g} more seconds", file=sys.stderr
                )
                return 0
            if args.action == "import":
                try:
                    with open(args.csv, newline="", encoding="utf-8") as f:
                        rows = [_import_row(r) for r in csv.DictReader(f)]
                except (OSError, UnicodeDecodeError, csv.Error) as exc:
                    print(f"error: cannot read {args.csv} ({type(exc).__name__})", file=sys.stderr)
                    return 2
                n = store.import_hashed(rows, scheme=args.scheme)
                print(f"imported {n} token digests", file=sys.stderr)
                return 0
    except BastionError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    return 2


def _import_row(r: dict[str, str]) -> dict[str, Any]:
    try:
        row: dict[str, Any] = {
            "digest": bytes.fromhex(r["digest_hex"].removeprefix("\\x")),
            "subject": r["subject"],
            "expires_at": float(r["expires_at"]),
        }
        if r.get("created_at"):
            row["created_at"] = float(r["created_at"])
    except (KeyError, ValueError, TypeError, AttributeError) as exc:  # a missing column reads as None
        raise SystemExit(f"error: bad CSV row ({type(exc).__name__}): need digest_hex, subject, expires_at") from exc
    for key in ("scopes", "roles"):
        if r.get(key):
            row[key] = r[key].split()
    for key in ("tier", "name"):
        if r.get(key):
            row[key] = r[key]
    return row
