"""The import doors (ingest/imports) per kind, against the real database, with the example files of
examples/import: a good file, a file with errors (every error listed, nothing written), --partial
(good rows written, bad ones quarantined with their reason), re-import as a no-op, GCJ-02 input stored
as WGS-84, and scoping (an administrator of one agency cannot write another's data)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, LiteralString

import numpy as np
import psycopg
import pytest
from psycopg import sql

from ingest.imports.kinds import KINDS
from ingest.imports.parse import Datum
from ingest.imports.read import Table, read_file, read_path
from ingest.imports.run import Actor, ImportResult, run_import
from tracks.geo import wgs84_to_gcj02

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "import"
ADMIN = Actor(api_user_id=None, name="test-admin")
# the order in which a world is loaded: KINDS is declared with each kind's references before it
ORDER = tuple(KINDS)
TABLE = {k.name: k.table for k in KINDS.values()}

# two broken cells per kind: (row, column, value, part of the reason)
BAD: dict[str, tuple[tuple[int, str, object, str], ...]] = {
    "agencies": ((2, "code", "bad code!", "does not match"), (3, "parent_code", "NOPE", "unknown parent")),
    "pools": ((1, "kind", "taxi", "one of"), (3, "agency_code", "NOPE", "unknown agency")),
    "depots": ((1, "lon", "200", "above the maximum"), (2, "pool_code", "NOPE", "unknown pool")),
    "places": (
        (1, "kind", "zoo", "one of"),
        (2, "polygon", '{"type": "Polygon", "coordinates": [[[1, 2], [3, 4]]]}', "ring"),
    ),
    "forbidden_zones": ((1, "min_dwell_s", "-5", "below"), (2, "polygon", "not json", "GeoJSON")),
    "vehicles": ((1, "seats", "0", "below"), (2, "depot_code", "NOPE", "unknown depot")),
    "drivers": ((1, "licence_expires_on", "2030-13-01", "date"), (3, "licence_class", "Z9", "one of")),
    "fuel_cards": ((1, "plate", "粤X00000", "unknown vehicle"), (2, "card", "", "required")),
    "fuel": ((1, "fuelled_at", "yesterday", "time"), (3, "litres", "abc", "number")),
    "maintenance": (
        (1, "ended_at", "2026-03-04T08:00:00+08:00", "before started_at"),
        (2, "plate", "NOPE", "unknown vehicle"),
    ),
    "calendar": ((1, "kind", "rest", "one of"), (4, "day", "2026-02-30", "date")),
    "roads": (
        (1, "speed_limit_kmh", "0", "below"),
        (2, "geometry", {"type": "Point", "coordinates": [1, 2]}, "LineString"),
    ),
    "thresholds": ((1, "name", "Bad Name", "does not match"), (3, "value", "x", "number")),
    "insurance": (
        (1, "expires_on", "2025-01-01", "before valid_from"),
        (2, "plate", "NOPE", "unknown vehicle"),
    ),
    "inspections": ((1, "cost_fen", "12.5", "integer"), (2, "inspected_on", "", "required")),
    "rentals": ((1, "pool_code", "NOPE", "unknown pool"), (2, "amount_fen", "-1", "below")),
    "working_hours": (
        (1, "end_local", "07:00", "before start_local"),
        (2, "agency_code", "NOPE", "unknown agency"),
    ),
}


def example(kind: str) -> Path:
    for suffix in (".csv", ".geojson"):
        path = EXAMPLES / f"{kind}{suffix}"
        if path.exists():
            return path
    raise AssertionError(f"no example file for {kind}")


def do_import(url: str, kind: str, table: Table, **options: Any) -> ImportResult:
    with psycopg.connect(url, autocommit=True) as conn:
        return run_import(conn, KINDS[kind], table, actor=options.pop("actor", ADMIN), **options)


def load(url: str, kinds: Sequence[str]) -> None:
    for kind in kinds:
        result = do_import(url, kind, read_path(example(kind)))
        assert not result.refused, (kind, result.errors)


def before(kind: str) -> tuple[str, ...]:
    return ORDER[: ORDER.index(kind)]


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        assert row is not None
        return int(row[0])


def scalar(url: str, statement: LiteralString, params: Sequence[object] = ()) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(statement, params).fetchone()
        return None if row is None else row[0]


def broken(kind: str) -> Table:
    table = read_path(example(kind))
    rows = [list(r) for r in table.rows]
    for row_no, column, value, _ in BAD[kind]:
        rows[row_no - 1][table.header.index(column)] = value
    return Table(header=table.header, rows=rows, source=table.source)


def test_every_kind_has_an_example_and_broken_cells() -> None:
    assert set(ORDER) == set(KINDS) == set(BAD)


@pytest.mark.parametrize("kind", ORDER)
def test_good_file_imports_every_row_and_reimport_is_a_no_op(db: str, kind: str) -> None:
    load(db, before(kind))
    table = read_path(example(kind))
    rows_before, audit_before = count(db, TABLE[kind]), count(db, "audit")

    first = do_import(db, kind, table)
    assert not first.refused and first.errors == ()
    assert (first.rows, first.inserted, first.updated, first.quarantined) == (
        len(table.rows),
        len(table.rows),
        0,
        0,
    )
    assert count(db, TABLE[kind]) == rows_before + len(table.rows)
    written = scalar(
        db,
        "SELECT count(*) FROM audit WHERE action = %s AND entity = %s AND before IS NULL",
        (f"import.{kind}", TABLE[kind]),
    )
    assert written == len(table.rows)

    audit_after_first = count(db, "audit")
    again = do_import(db, kind, read_path(example(kind)))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(table.rows))
    assert count(db, TABLE[kind]) == rows_before + len(table.rows)
    assert count(db, "audit") == audit_after_first > audit_before
    assert count(db, "import_batch") == len(before(kind)) + 2  # one batch per import


@pytest.mark.parametrize("kind", ORDER)
def test_file_with_errors_is_refused_whole_then_partial_quarantines_the_bad_rows(db: str, kind: str) -> None:
    load(db, before(kind))
    rows_before, batches_before = count(db, TABLE[kind]), count(db, "import_batch")
    table = broken(kind)

    refused = do_import(db, kind, table)
    assert refused.refused
    assert {(e.row_no, e.column) for e in refused.errors} == {(r, c) for r, c, _, _ in BAD[kind]}
    for error, (_, _, _, reason) in zip(refused.errors, BAD[kind], strict=True):
        assert reason in error.reason, (error, reason)
    assert count(db, TABLE[kind]) == rows_before
    assert count(db, "import_batch") == batches_before
    assert count(db, "import_quarantine") == 0

    partial = do_import(db, kind, table, partial=True)
    good = len(table.rows) - len(BAD[kind])
    assert not partial.refused
    assert (partial.inserted, partial.quarantined) == (good, len(BAD[kind]))
    assert count(db, TABLE[kind]) == rows_before + good
    quarantined = scalar(
        db,
        "SELECT array_agg(row_no ORDER BY row_no) FROM import_quarantine WHERE import_batch_id = %s",
        (partial.import_batch_id,),
    )
    assert quarantined == sorted(r for r, _, _, _ in BAD[kind])


def test_changed_row_updates_in_place_with_before_and_after_audited(db: str) -> None:
    load(db, (*before("fuel"), "fuel"))
    table = read_path(example("fuel"))
    rows = [list(r) for r in table.rows]
    rows[1][table.header.index("amount_fen")] = "30000"
    result = do_import(db, "fuel", Table(header=table.header, rows=rows, source="fuel-corrected.csv"))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 2)
    change = scalar(
        db,
        "SELECT jsonb_build_array(before->'amount_fen', after->'amount_fen') FROM audit"
        " WHERE action = 'import.fuel' AND before IS NOT NULL",
    )
    assert change == [29640, 30000]


GEO_KEYS: dict[str, LiteralString] = {
    "depots": "SELECT code, lon, lat, NULL::jsonb FROM depot",
    "places": "SELECT code, lon, lat, polygon FROM place",
    "forbidden_zones": "SELECT code, lon, lat, polygon FROM place",
    "fuel": "SELECT amount_fen::text, lon, lat, NULL::jsonb FROM fuel_record",
    "maintenance": "SELECT work_order, lon, lat, NULL::jsonb FROM maintenance_record",
    "roads": "SELECT source_key, NULL::float8, NULL::float8, geometry FROM road",
}
KEY_COLUMN = {
    "depots": "code",
    "places": "code",
    "forbidden_zones": "code",
    "fuel": "amount_fen",
    "maintenance": "work_order",
    "roads": "key",
}


def _to_gcj(value: object) -> object:
    if isinstance(value, str) and value:
        value = json.loads(value)
    if isinstance(value, dict):
        coords = value["coordinates"]
        rings = coords if value["type"] == "Polygon" else [coords]
        out = []
        for ring in rings:
            a = np.asarray(ring, np.float64)
            x, y = wgs84_to_gcj02(a[:, 0], a[:, 1])
            out.append(np.column_stack((x, y)).tolist())
        return {"type": value["type"], "coordinates": out if value["type"] == "Polygon" else out[0]}
    return value


@pytest.mark.parametrize("kind", sorted(GEO_KEYS))
def test_gcj02_input_is_stored_as_wgs84(db: str, kind: str) -> None:
    load(db, before(kind))
    table = read_path(example(kind))
    header = list(table.header)
    shifted = []
    for row in table.rows:
        cells = list(row)
        if "lon" in header and cells[header.index("lon")] not in (None, ""):
            i, j = header.index("lon"), header.index("lat")
            x, y = wgs84_to_gcj02(float(str(cells[i])), float(str(cells[j])))
            cells[i], cells[j] = float(x), float(y)
        for name in ("polygon", "geometry"):
            if name in header:
                cells[header.index(name)] = _to_gcj(cells[header.index(name)])
        shifted.append(cells)
    result = do_import(
        db, kind, Table(header=table.header, rows=shifted, source="gcj.csv"), datum=Datum.GCJ02
    )
    assert not result.refused, result.errors
    with psycopg.connect(db) as conn:
        stored = {str(k): (lon, lat, geom) for k, lon, lat, geom in conn.execute(GEO_KEYS[kind]).fetchall()}
    key = header.index(KEY_COLUMN[kind])
    moved_m = 0.0
    for row, original in zip(shifted, table.rows, strict=True):
        lon, lat, geom = stored[str(original[key])]
        if "lon" in header and original[header.index("lon")] not in (None, ""):
            assert lon == pytest.approx(float(str(original[header.index("lon")])), abs=1e-8)
            assert lat == pytest.approx(float(str(original[header.index("lat")])), abs=1e-8)
            moved_m = max(moved_m, abs(float(str(row[header.index("lon")])) - lon) * 100_000)
        for name in ("polygon", "geometry"):
            if name in header and original[header.index(name)] not in (None, ""):
                want = original[header.index(name)]
                want_coords = np.asarray(
                    (want if isinstance(want, dict) else json.loads(str(want)))["coordinates"]
                )
                np.testing.assert_allclose(np.asarray(geom["coordinates"]), want_coords, atol=1e-8)
    if "lon" in header and kind != "forbidden_zones":
        assert moved_m > 100, "the GCJ-02 input must differ from WGS-84 by hundreds of metres"


EDU_ADMIN_CODES = ("EDU", "EDU-1")


def edu_admin(url: str) -> Actor:
    with psycopg.connect(url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT agency_id FROM agency WHERE code = ANY(%s)", (list(EDU_ADMIN_CODES),)
            )
        ]
    return Actor(api_user_id=None, name="edu-admin", agency_ids=frozenset(ids))


@pytest.mark.parametrize("kind", ORDER)
def test_admin_of_one_agency_cannot_write_another_agencys_rows(db: str, kind: str) -> None:
    load(db, ("agencies", *before(kind)) if kind != "agencies" else ("agencies",))
    actor = edu_admin(db)
    if kind == "agencies":  # the tree is there; a new agency under CITY is not the education office's
        rows: list[list[object]] = [["EDU-2", "第二分局", "EDU"], ["CITY-2", "市府二处", "CITY"]]
        table = Table(header=("code", "name", "parent_code"), rows=rows, source="t.csv")
    else:
        table = read_path(example(kind))
    rows_before = count(db, TABLE[kind])
    refused = do_import(db, kind, table, actor=actor)
    assert refused.refused
    reasons = {e.reason for e in refused.errors}
    assert reasons <= {
        "not one of the caller's agencies",
        "city-wide data: only an administrator without agencies",
    }
    assert count(db, TABLE[kind]) == rows_before
    partial = do_import(db, kind, table, actor=actor, partial=True)
    assert partial.quarantined == len({e.row_no for e in refused.errors})
    assert partial.inserted == len(table.rows) - partial.quarantined


def test_admin_of_one_agency_cannot_overwrite_another_agencys_existing_row(db: str) -> None:
    load(db, (*before("vehicles"), "vehicles"))
    table = read_path(example("vehicles"))
    edu_row = next(list(r) for r in table.rows if r[table.header.index("agency_code")] == "EDU")
    city_row = next(list(r) for r in table.rows if r[table.header.index("agency_code")] == "CITY")
    city_row[table.header.index("seats")] = "4"
    city_row[table.header.index("agency_code")] = "EDU"  # "moving" the city's car to EDU
    result = do_import(
        db,
        "vehicles",
        Table(header=table.header, rows=[edu_row, city_row], source="v.csv"),
        actor=edu_admin(db),
    )
    assert result.refused
    assert [(e.row_no, e.reason) for e in result.errors] == [(2, "not one of the caller's agencies")]


def test_agency_cycles_are_refused(db: str) -> None:
    rows: list[list[object]] = [["A", "a", "B"], ["B", "b", "A"], ["C", "c", None]]
    in_file = Table(header=("code", "name", "parent_code"), rows=rows, source="cycle.csv")
    result = do_import(db, "agencies", in_file)
    assert result.refused
    assert {(e.row_no, e.column) for e in result.errors} == {(1, "parent_code"), (2, "parent_code")}
    assert count(db, "agency") == 0
    load(db, ("agencies",))
    through_tree = Table(
        header=("code", "name", "parent_code"), rows=[["CITY", "市政府办公厅", "EDU-1"]], source="x"
    )
    result = do_import(db, "agencies", through_tree, partial=True)
    assert result.refused and "cycle" in result.errors[0].reason
    assert scalar(db, "SELECT parent_agency_id FROM agency WHERE code = 'CITY'") is None


def test_agency_default_fills_rows_without_agency(db: str) -> None:
    load(db, ("agencies",))
    table = Table(header=("code", "name", "kind"), rows=[["P1", "pool", "city"]], source="p.csv")
    result = do_import(db, "pools", table, agency_code="EDU")
    assert result.inserted == 1
    assert scalar(db, "SELECT a.code FROM pool JOIN agency AS a USING (agency_id)") == "EDU"


def test_header_problems_are_listed_and_nothing_is_read(db: str) -> None:
    table = Table(header=("code", "nmae"), rows=[["X", "y"]], source="h.csv")
    result = do_import(db, "agencies", table)
    assert result.refused
    assert {(e.row_no, e.column, e.reason.split(";")[0]) for e in result.errors} == {
        (0, "nmae", "unknown column"),
        (0, "name", "missing column"),
    }


# --- reading files ---------------------------------------------------------------------------------


def test_csv_in_gb18030_and_with_a_bom_reads_the_same_as_utf8() -> None:
    text = example("agencies").read_text(encoding="utf-8")
    plain = read_file(text.encode("utf-8"), "a.csv")
    assert read_file(text.encode("gb18030"), "a.csv") == Table(
        header=plain.header, rows=plain.rows, source="a.csv"
    )
    assert read_file(b"\xef\xbb\xbf" + text.encode("utf-8"), "a.csv").header == plain.header
    assert plain.rows[0][1] == "市政府办公厅"


def test_xlsx_with_typed_cells_imports_like_the_csv(db: str, tmp_path: Path) -> None:
    from datetime import datetime

    import openpyxl

    load(db, before("fuel"))
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    csv_table = read_path(example("fuel"))
    sheet.append(list(csv_table.header))
    for row in csv_table.rows:
        cells: list[object] = []
        for name, cell in zip(csv_table.header, row, strict=True):
            if name == "fuelled_at":
                cells.append(
                    datetime.fromisoformat(str(cell)).replace(tzinfo=None)
                )  # local time, as Excel has it
            elif name in ("lon", "lat", "litres", "amount_fen"):
                cells.append(float(str(cell)))
            else:
                cells.append(cell)
        sheet.append(cells)
    path = tmp_path / "fuel.xlsx"
    book.save(path)
    result = do_import(db, "fuel", read_path(path))
    assert (result.inserted, result.errors) == (3, ())
    again = do_import(db, "fuel", read_path(example("fuel")))  # the CSV: the same rows
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)


def write_osm_pbf(path: Path) -> None:
    """Two highways with a maxspeed (one in mph), one without (not a speed-limit row), one footpath."""
    import osmium

    with osmium.SimpleWriter(str(path)) as writer:
        nodes = {1: (114.00, 22.54), 2: (114.01, 22.541), 3: (114.02, 22.542), 4: (114.03, 22.55)}
        for node_id, (lon, lat) in nodes.items():
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat), version=1))
        ways = (
            (10, [1, 2], {"highway": "primary", "maxspeed": "60", "name": "深南大道"}),
            (11, [2, 3], {"highway": "trunk", "maxspeed": "50 mph"}),
            (12, [3, 4], {"highway": "residential"}),
        )
        for way_id, refs, tags in ways:
            writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags, version=1))


def test_osm_pbf_roads_with_maxspeed_become_the_speed_limit_layer(db: str, tmp_path: Path) -> None:
    path = tmp_path / "roads.osm.pbf"
    write_osm_pbf(path)
    result = do_import(db, "roads", read_path(path))
    assert (result.inserted, result.errors) == (2, ())
    with psycopg.connect(db) as conn:
        roads = conn.execute(
            "SELECT source_key, name, kind, speed_limit_kmh, geometry FROM road ORDER BY 1"
        ).fetchall()
    assert [r[:4] for r in roads] == [
        ("osm:way/10", "深南大道", "primary", 60.0),
        ("osm:way/11", "", "trunk", 80.5),
    ]
    assert roads[0][4] == {"type": "LineString", "coordinates": [[114.0, 22.54], [114.01, 22.541]]}
    assert do_import(db, "roads", read_path(path)).unchanged == 2


def test_example_osm_pbf_is_the_one_the_tests_write(tmp_path: Path) -> None:
    write_osm_pbf(tmp_path / "roads.osm.pbf")
    assert read_path(EXAMPLES / "roads.osm.pbf").rows == read_path(tmp_path / "roads.osm.pbf").rows


def test_import_command_lists_every_error_and_exits_1(db: str, tmp_path: Path) -> None:
    load(db, ("agencies",))
    bad = tmp_path / "pools.csv"
    bad.write_text(
        "code,name,kind,agency_code\nP1,a,taxi,CITY\nP2,b,city,NOPE\nP3,c,city,EDU\n", encoding="utf-8"
    )
    command = [sys.executable, "-m", "fleetwatch.cli", "import", "pools", str(bad), "--database-url", db]
    refused = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1, refused.stderr
    summary = json.loads(refused.stdout.strip().splitlines()[-1])
    assert summary["refused"] is True
    assert [(e["row"], e["column"]) for e in summary["errors"]] == [(1, "kind"), (2, "agency_code")]
    partial = subprocess.run(
        [*command, "--partial"], capture_output=True, text=True, timeout=120, check=False
    )
    assert partial.returncode == 0, partial.stderr
    assert "inserted 1" in partial.stdout and "quarantined 2" in partial.stdout


def test_a_row_with_a_bad_cell_still_has_its_other_cells_checked(db: str) -> None:
    load(db, ("agencies",))
    table = Table(
        header=("code", "name", "kind", "agency_code"), rows=[["P1", "a", "taxi", "NOPE"]], source="p"
    )
    result = do_import(db, "pools", table)
    assert [(e.column, e.reason) for e in result.errors] == [
        ("agency_code", "unknown agency"),
        ("kind", "one of city, district, rental, ride_hailing expected"),
    ]


def test_csv_blank_lines_are_skipped_and_short_rows_padded() -> None:
    table = read_file(b"code,name,parent_code\r\nA,a\r\n,,\r\n\r\n  , ,\r\nB,b,A\r\n", "a.csv")
    assert table.rows == [["A", "a", ""], ["B", "b", "A"]]


def test_the_packaged_holiday_notices_import_as_they_are(db: str) -> None:
    """rules/data/cn_holidays_2025_2026.csv (comment lines, then day,kind,name) is a calendar file."""
    notices = Path(__file__).resolve().parent.parent / "rules" / "data" / "cn_holidays_2025_2026.csv"
    path = notices if notices.exists() else example("calendar")
    table = read_path(path)
    result = do_import(db, "calendar", table)
    assert (result.inserted, result.errors) == (len(table.rows), ())
    assert scalar(db, "SELECT count(*) FROM calendar_day WHERE kind = 'workday'") > 0
