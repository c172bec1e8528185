"""Copy a gateway database while the gateway runs (SQLite's online backup):
a consistent copy, written beside the target and renamed into place only
once it is whole and checked, so FILE is never a half-written backup."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

# Pages copied per step: the gateway's writer waits at most one step's worth.
PAGES_PER_STEP = 1024


def add_arguments(parser) -> None:
    parser.add_argument("--db", required=True, metavar="PATH", help="the gateway's SQLite file")
    parser.add_argument("--to", required=True, metavar="FILE", help="where the copy goes (replaced if it exists)")


def run(args) -> int:
    source_path, target = Path(args.db), Path(args.to)
    if not source_path.exists():
        print(f"lonewatch backup: no database at {source_path}", file=sys.stderr)
        return 2
    if target.resolve() == source_path.resolve():
        print("lonewatch backup: --to must not be the database itself", file=sys.stderr)
        return 2
    partial = target.with_name(target.name + ".partial")
    try:
        source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=10)
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy, pages=PAGES_PER_STEP)
            check = copy.execute("PRAGMA integrity_check").fetchone()[0]
            version = copy.execute("PRAGMA user_version").fetchone()[0]
            incidents = copy.execute("SELECT count(*) FROM incidents").fetchone()[0]
        finally:
            copy.close()
            source.close()
        if check != "ok":
            raise sqlite3.DatabaseError(f"the copy fails its integrity check: {check}")
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        print(f"lonewatch backup: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {source_path} to {target}: schema version {version}, {incidents} incidents, "
          f"{target.stat().st_size:,} bytes")
    return 0
