"""For the people lonewatch protects: everything held about a worker, as
JSON (`export`), and erasure on request (`forget`, audited without the
name). What each covers: docs/operations.md#privacy."""

from __future__ import annotations

import json
import sys

from lonewatch.commands import open_store


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = sub.add_parser("export", help="everything held about a worker, as JSON",
                            description="everything held about a worker, as JSON")
    forget = sub.add_parser("forget", help="erase a worker's personal data (audited)",
                            description="erase a worker's personal data; the audit keeps that it happened, "
                                        "not who it was")
    for action in (export, forget):
        action.add_argument("--db", required=True, help="the gateway's SQLite file")
        action.add_argument("--worker", required=True, type=int, help="worker id (lonewatch worker list)")
    export.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    forget.add_argument("--by", default="privacy request", help="who asked, for the audit (default: privacy request)")


def run(args) -> int:
    import time

    from gateway import privacy

    store = open_store(args.db, "privacy")
    if store is None:
        return 1
    try:
        if args.action == "export":
            text = json.dumps(privacy.export(store, args.worker), indent=2, default=str)
            if args.out:
                with open(args.out, "w") as f:
                    f.write(text + "\n")
            else:
                print(text)
            return 0
        with store.transaction():
            counts = privacy.forget(store, args.worker, time.time(), args.by)
        print(f"worker #{args.worker} forgotten: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
        return 0
    except ValueError as exc:
        print(f"lonewatch privacy: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
