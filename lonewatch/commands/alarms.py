"""List incidents (id, device, type, state, times), newest first."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from contract.vocabulary import INCIDENT_STATES, label_of
from lonewatch.commands import count


def add_arguments(parser) -> None:
    parser.add_argument("--db", default="lonewatch-demo.db", help="SQLite file (default lonewatch-demo.db)")
    parser.add_argument("--config", metavar="FILE", help="take the database path from this gateway config")
    parser.add_argument("--json", action="store_true", help="print one JSON array on stdout")
    parser.add_argument("--state", choices=INCIDENT_STATES, help="only this state")
    parser.add_argument("--limit", type=count, default=200, help="at most this many (default 200)")


def run(args) -> int:
    from gateway.schema import SchemaError
    from gateway.store import Store

    db = args.db
    if args.config:
        from gateway.config import ConfigError, load_config
        try:
            db = load_config(args.config).db
        except ConfigError as exc:
            print(f"lonewatch alarms: {exc}", file=sys.stderr)
            return 2
    if not Path(db).exists():
        print(f"lonewatch alarms: no database at {db} (give --db PATH or --config FILE)", file=sys.stderr)
        return 2
    try:
        store = Store(db)
    except SchemaError as exc:
        print(f"lonewatch alarms: {exc}", file=sys.stderr)
        return 1
    incidents = store.list_incidents(limit=args.limit, state=args.state)
    store.close()
    if args.json:
        json.dump(incidents, sys.stdout, default=str)
        print()
        return 0
    if not incidents:
        print("no incidents")
        return 0
    print(f"{'id':>5}  {'raised':<20} {'device':<16} {'type':<28} {'state':<13} acknowledged by")
    for i in incidents:
        print(f"{i['id']:>5}  {str(i['raised_at'])[:19]:<20} {i['device']:<16} {label_of(i['type'], i['cause']):<28} "
              f"{i['state']:<13} {i.get('acknowledged_by') or ''}")
    return 0
