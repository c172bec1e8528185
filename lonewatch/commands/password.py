"""Ask for a password and print the config line for [dashboard.operators]."""

from __future__ import annotations

import getpass
import sys


def add_arguments(parser) -> None:
    parser.add_argument("name", help="operator name, as they log in")


def run(args) -> int:
    from gateway.accounts import hash_password

    password = getpass.getpass(f"password for operator {args.name}: ")
    if len(password) < 8:
        print("lonewatch password: use at least 8 characters", file=sys.stderr)
        return 2
    if getpass.getpass("again: ") != password:
        print("lonewatch password: the two entries differ", file=sys.stderr)
        return 2
    print("Put this line under [dashboard.operators] in the gateway config:")
    print(f'{args.name} = "{hash_password(password)}"')
    return 0
