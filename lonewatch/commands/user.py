"""Desk users in the gateway's database: add one (operator or admin), change
a password, disable one. The password is asked for twice at a terminal, or
read as one line from standard input. Operators in a TOML config keep
working beside these (docs/desk.md)."""

from __future__ import annotations

import getpass
import sys

from lonewatch.commands import open_store


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add a desk user", description="add a desk user")
    add.add_argument("name")
    add.add_argument("--role", choices=("operator", "admin"), default="operator",
                     help="admins also manage workers and devices (default operator)")
    add.add_argument("--db", required=True, help="the gateway's SQLite file")
    passwd = sub.add_parser("passwd", help="set a user's password", description="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--db", required=True, help="the gateway's SQLite file")
    disable = sub.add_parser("disable", help="stop a user logging in", description="stop a user logging in")
    disable.add_argument("name")
    disable.add_argument("--db", required=True, help="the gateway's SQLite file")


def _password(name: str) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != password:
        raise ValueError("the two entries differ")
    return password


def run(args) -> int:
    import time

    from gateway import accounts

    try:
        password = _password(args.name) if args.action in ("add", "passwd") else None
    except ValueError as exc:
        print(f"lonewatch user {args.action}: {exc}", file=sys.stderr)
        return 2
    store = open_store(args.db, "user")
    if store is None:
        return 1
    try:
        with store.transaction():
            if args.action == "add":
                accounts.add_user(store, args.name, args.role, password, time.time(), "cli")
                print(f"user {args.name} added as {args.role}")
            elif args.action == "passwd":
                accounts.change_password(store, args.name, password, time.time(), "cli")
                print(f"password of {args.name} changed")
            else:
                accounts.disable_user(store, args.name, time.time(), "cli")
                print(f"user {args.name} disabled; a running desk ends their sessions at their next request")
    except ValueError as exc:
        print(f"lonewatch user {args.action}: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0
