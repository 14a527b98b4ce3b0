"""``proofcheck web``: the workbench behind uvicorn; ``proofcheck web-account``: local accounts."""

from __future__ import annotations

import argparse
import getpass
import sys


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from flows.web.app import from_env
    from flows.web.config import WebConfigError

    try:
        app = from_env()
    except WebConfigError as exc:
        print(f"proofcheck web: {exc}", file=sys.stderr)
        return 2
    print(f"proofcheck web: http://{args.host}:{args.port}/paquets", flush=True)
    # Behind a TLS proxy in production: it sets X-Forwarded-Proto, trusted from --forwarded-allow-ips only.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", proxy_headers=True,
                forwarded_allow_ips=args.forwarded_allow_ips, server_header=False)
    return 0


def _auth() -> object:
    from flows.index import VerdictIndex
    from flows.settings import PipelineSettings
    from flows.web.auth import Auth

    settings = PipelineSettings.from_env()
    # Accounts only: no form token or session is made here, so the key and lifetimes do not matter.
    return Auth(VerdictIndex(settings.index_url).engine, b"accounts", 3600, 3600)


def cmd_account(args: argparse.Namespace) -> int:
    from flows.web.auth import AccountError, Auth

    auth = _auth()
    assert isinstance(auth, Auth)
    if args.account_command == "list":
        for account in auth.list_accounts():
            state = "désactivé" if account["disabled"] else "actif"
            columns = (account["username"], account["role"], account["publisher"] or "", account["source"], state)
            print("\t".join(str(c) for c in columns))
        return 0
    if args.account_command == "disable":
        found = auth.disable(args.username)
        print("compte désactivé / account disabled" if found else "compte inconnu / unknown account")
        return 0 if found else 1
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Mot de passe : ")
    try:
        auth.add_account(args.username, args.role, password=password, display_name=args.name or args.username,
                         publisher=args.publisher, enable=True)
    except AccountError as exc:
        print(f"proofcheck web-account: {exc}", file=sys.stderr)
        return 2
    print(f"compte {args.username} ({args.role}) enregistré / saved")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    web = subparsers.add_parser("web", help="the instructors' workbench (web application over the verdict index)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    web.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    web.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                     help="proxies trusted for X-Forwarded-* headers (default 127.0.0.1)")
    web.set_defaults(handler=cmd_web)
    account = subparsers.add_parser("web-account", help="local accounts of the workbench")
    sub = account.add_subparsers(dest="account_command", required=True)
    add = sub.add_parser("add", help="create or reset a local account (password asked, or read from stdin)")
    add.add_argument("username")
    add.add_argument("--role", choices=("instructor", "publisher"), required=True)
    add.add_argument("--publisher", help="a publisher account's folder under inbox/")
    add.add_argument("--name", help="name shown in pages and the audit trail")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_parser("list", help="list accounts")
    disable = sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    account.set_defaults(handler=cmd_account)


__all__ = ["cmd_account", "cmd_web", "register"]
