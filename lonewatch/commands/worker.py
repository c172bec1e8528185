"""The workers the devices protect: add one (optionally with the device they
wear), give a device to a worker, list them. Each change is audited; a
device's earlier wearers stay on record for its old incidents."""

from __future__ import annotations

import sys

from lonewatch.commands import open_store


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add a worker", description="add a worker")
    add.add_argument("--db", required=True, help="the gateway's SQLite file")
    add.add_argument("--name", required=True, help="as responders should hear it")
    add.add_argument("--phone", required=True, help="the number responders call")
    add.add_argument("--note", default="", help="for responders: health, access, language")
    add.add_argument("--device", help="the device they wear from now on")
    assign = sub.add_parser("assign", help="give a device to a worker (or to nobody)",
                            description="give a device to a worker (or to nobody)")
    assign.add_argument("--db", required=True, help="the gateway's SQLite file")
    assign.add_argument("--device", required=True, help="device id")
    who = assign.add_mutually_exclusive_group(required=True)
    who.add_argument("--worker", help="worker id, or a name only one worker has")
    who.add_argument("--nobody", action="store_true", help="nobody wears the device from now on")
    listing = sub.add_parser("list", help="list workers and their devices", description="list workers and their devices")
    listing.add_argument("--db", required=True, help="the gateway's SQLite file")


def run(args) -> int:
    import time

    from gateway import people

    store = open_store(args.db, "worker")
    if store is None:
        return 1
    try:
        with store.transaction():
            if args.action == "add":
                worker = people.add_worker(store, args.name, args.phone, args.note, args.device, time.time(), "cli")
                print(f"worker {worker['id']} {worker['name']} ({worker['phone']})"
                      + (f" wears {worker['device']}" if worker["device"] else ", no device yet"))
            elif args.action == "assign":
                worker = None if args.nobody else people.find_worker(store, args.worker)
                people.assign(store, worker and worker["id"], args.device, time.time(), "cli")
                print(f"{args.device} is now worn by " + (f"{worker['name']} (worker {worker['id']})"
                                                            if worker else "nobody"))
            else:
                _print_workers(store.list_workers())
    except ValueError as exc:
        print(f"lonewatch worker {args.action}: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


def _print_workers(workers: list[dict]) -> None:
    if not workers:
        print("no workers")
        return
    print(f"{'id':>4}  {'name':<28} {'phone':<20} {'device':<16} note")
    for w in workers:
        print(f"{w['id']:>4}  {w['name']:<28} {w['phone']:<20} {w['device'] or '-':<16} {w['note']}")
