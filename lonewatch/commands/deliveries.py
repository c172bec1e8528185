"""Notifications to the external channels (webhook, e-mail) that are still
pending or were given up on (dead letters), and putting dead letters back:
a running gateway picks them up within a couple of seconds, a stopped one
when it next starts. docs/routing.md, "Durability"."""

from __future__ import annotations

import sys
import time

from lonewatch.commands import open_store


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="pending deliveries and dead letters, one line each",
                             description="pending deliveries and dead letters, one line each")
    retry = sub.add_parser("retry", help="put dead letters back for delivery",
                           description="move dead letters back to the pending deliveries; the gateway sends them "
                                       "again (a running one within a couple of seconds)")
    for action in (listing, retry):
        action.add_argument("--db", required=True, metavar="PATH", help="the gateway's SQLite file")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append", metavar="N",
                       help="the dead letter's id (from `list`); repeat for several")
    which.add_argument("--all", action="store_true", help="every dead letter")


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def run(args) -> int:
    store = open_store(args.db, "deliveries")
    if store is None:
        return 1
    try:
        if args.action == "list":
            return _list(store)
        return _retry(store, None if args.all else sorted(set(args.id)))
    finally:
        store.close()


def _list(store) -> int:
    pending, dead = store.pending_deliveries(), store.list_dead_letters()
    for row in pending:
        tier = f" tier {row['tier']}" if row["tier"] else ""
        print(f"pending     #{row['id']:<5} {_when(row['created_at'])}  {row['channel']:<16} "
              f"incident {row['incident_id']} {row['event']}{tier}  delivery {row['delivery_id']}")
    for row in dead:
        tier = f" tier {row['tier']}" if row["tier"] else ""
        print(f"dead letter #{row['id']:<5} {_when(row['time'])}  {row['channel']:<16} "
              f"incident {row['incident_id']} {row['event']}{tier}  after {row['attempts']} attempt(s): "
              f"{row['last_error']}")
    print(f"{len(pending)} pending, {len(dead)} dead letter(s)")
    return 0


def _retry(store, ids: list[int] | None) -> int:
    if ids is not None:
        known = {row["id"] for row in store.list_dead_letters()}
        missing = [n for n in ids if n not in known]
        if missing:
            print(f"lonewatch deliveries: no dead letter with id {', '.join(map(str, missing))} "
                  "(see `lonewatch deliveries list`)", file=sys.stderr)
            return 2
    with store.transaction():
        moved = store.retry_dead_letters(ids, time.time())
    print(f"{moved} dead letter(s) back for delivery; a running gateway sends them within a couple of seconds, "
          "a stopped one when it starts")
    return 0
