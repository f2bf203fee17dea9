"""``python -m bastion clients create|list|rotate-secret|disable``: manage OAuth clients from a shell.

The store and pepper options are those of ``python -m bastion tokens`` (the pepper from an environment
variable, never the command line). A new secret is printed exactly once, alone on stdout; everything else
goes to stderr. No command takes a secret as an argument: ``rotate-secret`` makes the new one itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bastion.errors import BastionError
from bastion.oauth.clients import GRANT_TYPES, Client, ClientRegistry
from bastion.tokens import cli as tokens_cli


def add_parser(sub: Any) -> None:
    """Add the ``clients`` command to ``python -m bastion``'s subparsers."""
    clients = sub.add_parser("clients", help="create, list, rotate the secret of and disable OAuth clients")
    actions = clients.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", required=True, help="sqlite:///file.db, sqlite:////abs/file.db or postgresql://…")
        p.add_argument("--pepper-env", default="BASTION_PEPPER", help="environment variable holding the pepper")
        p.add_argument("--pepper-id", default="default", help="id of that pepper (default: default)")
        p.add_argument("--prefix", default="bst", help="token prefix (default: bst)")

    create = actions.add_parser("create", help="register a client and print its secret once")
    common(create)
    create.add_argument("client_id", nargs="?", help="default: a random id")
    create.add_argument("--name")
    create.add_argument("--grant", action="append", choices=GRANT_TYPES, help="repeatable (default client_credentials)")
    create.add_argument("--scope", action="append", default=[], help="an allowed scope; repeatable")
    create.add_argument("--tier", help="rate-limit tier of the client's tokens")
    create.add_argument("--jwks-file", help="a JWK Set of the client's public keys (private_key_jwt)")
    create.add_argument("--no-secret", action="store_true", help="private_key_jwt only (needs --jwks-file)")
    create.add_argument("--introspect-any", action="store_true", help="may introspect other clients' tokens")
    lst = actions.add_parser("list", help="list the clients (never a secret)")
    common(lst)
    lst.add_argument("--json", action="store_true")
    rot = actions.add_parser("rotate-secret", help="print a new secret once; the old one works --grace seconds")
    common(rot)
    rot.add_argument("client_id")
    rot.add_argument("--grace", type=float, default=86400.0, help="seconds the previous secret still works")
    dis = actions.add_parser("disable", help="refuse the client from now on and revoke its live tokens")
    common(dis)
    dis.add_argument("client_id")


def _as_dict(c: Client) -> dict[str, Any]:
    return {
        "client_id": c.client_id,
        "name": c.name,
        "grant_types": list(c.grant_types),
        "scopes": list(c.scopes),
        "tier": c.tier,
        "private_key_jwt": c.jwks is not None,
        "has_secret": c.has_secret,
        "previous_secret_until": c.previous_secret_until,
        "introspect_any": c.introspect_any,
        "disabled": c.disabled,
        "created_at": c.created_at,
    }


def run(args: argparse.Namespace) -> int:
    """Run one ``clients`` action; returns the exit status."""
    try:
        with tokens_cli._store(args) as store:
            registry = ClientRegistry(store)
            if args.action == "create":
                jwks = None
                if args.jwks_file:
                    try:
                        with open(args.jwks_file, encoding="utf-8") as f:
                            jwks = f.read()
                    except (OSError, UnicodeDecodeError) as exc:
                        print(f"error: cannot read {args.jwks_file} ({type(exc).__name__})", file=sys.stderr)
                        return 2
                made = registry.create(
                    args.client_id,
                    name=args.name,
                    grant_types=args.grant or ["client_credentials"],
                    scopes=args.scope,
                    tier=args.tier,
                    jwks=jwks,
                    secret=not args.no_secret,
                    introspect_any=args.introspect_any,
                )
                if made.secret is not None:
                    print(made.secret)
                print(
                    f"created client_id={made.client.client_id}"
                    + (" (the secret is shown only once)" if made.secret is not None else ""),
                    file=sys.stderr,
                )
                return 0
            if args.action == "list":
                clients = registry.list()
                if args.json:
                    print(json.dumps([_as_dict(c) for c in clients], indent=2))
                else:
                    for c in clients:
                        state = "disabled" if c.disabled else "active"
                        print(
                            f"{c.client_id}  {state:<8}  grants={','.join(c.grant_types)}  scopes={' '.join(c.scopes)}"
                            f"{'  tier=' + c.tier if c.tier else ''}{'  name=' + c.name if c.name else ''}"
                        )
                return 0
            if args.action == "rotate-secret":
                made = registry.rotate_secret(args.client_id, grace=args.grace)
                print(made.secret)
                print(
                    f"rotated: the previous secret of {args.client_id} works for {args.grace:g} more seconds",
                    file=sys.stderr,
                )
                return 0
            if args.action == "disable":
                done = registry.disable(args.client_id)
                print("disabled; its live tokens are revoked" if done else "no such client", file=sys.stderr)
                return 0 if done else 1
    except BastionError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    return 2
