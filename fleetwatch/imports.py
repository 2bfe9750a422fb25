"""``fleetwatch import KIND FILE [--partial] [--agency CODE] [--datum wgs84|gcj02] [--json]``.

Exit status 0 when the file was imported (with --partial: also when rows were quarantined), 1 when it
was refused (every error is printed: row, column, value, reason), 2 when it could not be read.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any


def add_import_parser(sub: Any) -> None:
    from ingest.imports.kinds import KINDS
    from ingest.imports.parse import Datum

    parser = sub.add_parser(
        "import",
        help="import reference data, provider records, the calendar, thresholds or roads from a file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("file", type=Path, help=".csv, .xlsx, .geojson or .osm.pbf")
    parser.add_argument("--partial", action="store_true", help="write the good rows, quarantine the bad")
    parser.add_argument("--agency", help="agency code for rows that name none")
    parser.add_argument("--datum", choices=[d.value for d in Datum], default=Datum.WGS84.value)
    parser.add_argument("--json", action="store_true", help="the result as one JSON object on the last line")
    parser.add_argument("--database-url")
    parser.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    import psycopg

    from ingest.imports.kinds import KINDS
    from ingest.imports.parse import Datum
    from ingest.imports.read import FileError, read_path
    from ingest.imports.run import Actor, ImportScopeError, run_import
    from store.settings import StoreSettings

    try:
        table = read_path(args.file)
    except (FileError, OSError) as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 2
    url = args.database_url or StoreSettings().database_url
    actor = Actor(api_user_id=None, name=f"cli:{getpass.getuser()}")
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            result = run_import(
                conn,
                KINDS[args.kind],
                table,
                actor=actor,
                partial=args.partial,
                datum=Datum(args.datum),
                agency_code=args.agency,
            )
        except ImportScopeError as e:
            print(str(e), file=sys.stderr)
            return 2
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        for error in result.errors:
            where = f"row {error.row_no}, column {error.column or '-'}"
            print(f"{where}: {error.reason} (value {error.value!r})", file=sys.stderr)
        state = "REFUSED, nothing written" if result.refused else f"batch {result.import_batch_id}"
        print(
            f"{result.kind} from {result.source}: {state}; rows {result.rows}, inserted {result.inserted}, "
            f"updated {result.updated}, unchanged {result.unchanged}, quarantined {result.quarantined}"
        )
    return 1 if result.refused else 0
