"""Every import kind declared once: its file columns (types, units, optional, choices), the table and
natural key it lands on, the codes it resolves (references), whose agency a row belongs to, and which
records re-queue a vehicle's days for the engine. parse.py, run.py and the SQL templates in
store/queries/imports.sql derive everything from these declarations.

The file formats are listed for operators in README.md ("Operating the platform").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class ColType(StrEnum):
    TEXT = "text"
    INT = "int8"
    FLOAT = "float8"
    BOOL = "bool"
    DATE = "date"
    TIME = "timestamptz"  # ISO 8601; without an offset: China local time (UTC+8)
    CLOCK = "time"  # a local time of day, HH:MM
    POLYGON = "polygon"  # a GeoJSON Polygon (text in CSV/XLSX, the geometry in GeoJSON)
    LINE = "line"  # a GeoJSON LineString

    @property
    def pg(self) -> str:
        return "jsonb" if self in (ColType.POLYGON, ColType.LINE) else self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class Col:
    name: str  # in the file (and in the staging table)
    type: ColType = ColType.TEXT
    optional: bool = False
    default: object = None  # for an empty optional cell
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # a regular expression a text must match entirely
    min_value: float | None = None
    max_value: float | None = None
    target: str | None = None  # the table column, when it is not ``name``
    stage_only: bool = False  # read and checked, written by a follow-up statement (a vehicle's terminal)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ref:
    """``target`` = ``table.value`` of the row whose ``table.key`` equals the file's ``column``."""

    column: str
    table: str
    key: str
    target: str
    value: str | None = None  # the looked-up column, when it is not ``target``
    what: str = ""  # for the error text: "unknown <what>"


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    name: str
    table: str
    id_column: str  # the table's own key, named in the audit
    key: tuple[str, ...]  # the natural key: table columns with a unique constraint
    columns: tuple[Col, ...]
    refs: tuple[Ref, ...] = ()
    fixed: Mapping[str, str | bool] = field(default_factory=dict)  # table column -> constant
    # the agency a row belongs to, an SQL expression over a table row aliased {a}; None: city-wide data
    # that only an administrator without agencies may write
    owner: str | None = "{a}.agency_id"
    owner_new: str | None = None  # for a new row, when it differs (a new agency belongs to its parent)
    point: tuple[str, str] | None = None  # (lon, lat) columns converted from GCJ-02
    requeue: tuple[str, str] | None = None  # (from, to) time columns: the vehicle's days go to the engine
    self_ref: str | None = None  # a reference to the same table, which may name rows of the same file
    ordered: tuple[tuple[str, str], ...] = ()  # (a, b) file columns: a <= b where both are given
    after: str | None = None  # a named query run after the upsert (a vehicle's terminal)

    @property
    def file_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def target_of(self, col: Col) -> str | None:
        if col.stage_only:
            return None
        if col.target is not None:
            return col.target
        return None if any(r.column == col.name for r in self.refs) else col.name

    @property
    def targets(self) -> tuple[str, ...]:
        """The table columns written: direct columns, references, constants."""
        direct = [t for c in self.columns if (t := self.target_of(c)) is not None]
        return (*direct, *(r.target for r in self.refs), *self.fixed)


INT, F, B, D, TM, CK = ColType.INT, ColType.FLOAT, ColType.BOOL, ColType.DATE, ColType.TIME, ColType.CLOCK
CODE = r"[A-Za-z0-9_.:/-]{1,64}"


def _lon(optional: bool = False) -> Col:
    return Col(name="lon", type=F, optional=optional, min_value=-180.0, max_value=180.0)


def _lat(optional: bool = False) -> Col:
    return Col(name="lat", type=F, optional=optional, min_value=-90.0, max_value=90.0)


def _fen(name: str, *, optional: bool = False, target: str | None = None) -> Col:
    """An amount in fen (分, 0.01 CNY)."""
    return Col(name=name, type=INT, optional=optional, target=target, min_value=0.0, max_value=1e13)


PLACE_KINDS = (
    "agency_office",
    "depot",
    "hospital",
    "station",
    "hotel",
    "venue",
    "government",
    "city_entry",
    "fuel_station",
    "repair_shop",
    "residence",
    "scenic_spot",
    "golf_club",
    "entertainment",
)
AGENCY = Ref(column="agency_code", table="agency", key="code", target="agency_id", what="agency")
VEHICLE = Ref(column="plate", table="vehicle", key="plate", target="vehicle_id", what="vehicle (plate)")
POOL = Ref(column="pool_code", table="pool", key="code", target="pool_id", what="pool")
BY_VEHICLE = "(SELECT v.agency_id FROM vehicle AS v WHERE v.vehicle_id = {a}.vehicle_id)"
BY_POOL = "(SELECT p.agency_id FROM pool AS p WHERE p.pool_id = {a}.pool_id)"


def _place_columns() -> tuple[Col, ...]:
    return (
        Col(name="code", pattern=CODE),
        Col(name="kind", choices=PLACE_KINDS),
        Col(name="name"),
        Col(name="forbidden", type=B, optional=True, default=False),
        _lon(optional=True),  # optional with a polygon: its centroid
        _lat(optional=True),
        Col(name="radius_m", type=F, optional=True, default=0.0, min_value=0.0, max_value=50_000.0),
        Col(name="polygon", type=ColType.POLYGON, optional=True),
        Col(name="min_dwell_s", type=F, optional=True, min_value=0.0, max_value=86_400.0),
        Col(name="agency_code", optional=True),
    )


KINDS: Mapping[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            name="agencies",
            table="agency",
            id_column="agency_id",
            key=("code",),
            columns=(
                Col(name="code", pattern=CODE),
                Col(name="name"),
                Col(name="parent_code", optional=True),
            ),
            refs=(
                Ref(
                    column="parent_code",
                    table="agency",
                    key="code",
                    target="parent_agency_id",
                    value="agency_id",
                    what="parent agency",
                ),
            ),
            owner_new="{a}.parent_agency_id",
            self_ref="parent_code",
        ),
        Kind(
            name="pools",
            table="pool",
            id_column="pool_id",
            key=("code",),
            columns=(
                Col(name="code", pattern=CODE),
                Col(name="name"),
                Col(name="kind", choices=("city", "district", "rental", "ride_hailing")),
                Col(name="agency_code", optional=True),
            ),
            refs=(AGENCY,),
        ),
        Kind(
            name="depots",
            table="depot",
            id_column="depot_id",
            key=("code",),
            columns=(
                Col(name="code", pattern=CODE),
                Col(name="pool_code"),
                Col(name="name"),
                _lon(),
                _lat(),
                Col(name="radius_m", type=F, optional=True, default=150.0, min_value=1.0, max_value=5_000.0),
            ),
            refs=(POOL,),
            owner=BY_POOL,
            point=("lon", "lat"),
        ),
        Kind(
            name="places",
            table="place",
            id_column="place_id",
            key=("code",),
            columns=_place_columns(),
            refs=(AGENCY,),
            point=("lon", "lat"),
        ),
        Kind(
            name="forbidden_zones",
            table="place",
            id_column="place_id",
            key=("code",),
            columns=tuple(c for c in _place_columns() if c.name != "forbidden"),
            refs=(AGENCY,),
            fixed={"forbidden": True},
            point=("lon", "lat"),
        ),
        Kind(
            name="vehicles",
            table="vehicle",
            id_column="vehicle_id",
            key=("plate",),
            columns=(
                Col(name="plate", pattern=r"\S{2,16}"),
                Col(name="kind", choices=("sedan", "suv", "mpv", "minibus", "bus", "van")),
                Col(name="seats", type=INT, min_value=1, max_value=80),
                Col(name="pool_code"),
                Col(name="agency_code", optional=True),
                Col(name="depot_code", optional=True),
                Col(
                    name="status",
                    optional=True,
                    default="in_service",
                    choices=("in_service", "maintenance", "retired"),
                ),
                Col(name="tank_l", type=F, optional=True, min_value=1.0, max_value=2_000.0),
                Col(name="fuel_norm_l_per_100km", type=F, optional=True, min_value=0.5, max_value=100.0),
                Col(name="terminal_id", optional=True, pattern=r"[A-Za-z0-9_.:-]{1,64}", stage_only=True),
                Col(
                    name="protocol",
                    optional=True,
                    default="fleet",
                    choices=("fleet", "owntracks", "jt808"),
                    stage_only=True,
                ),
            ),
            refs=(
                POOL,
                AGENCY,
                Ref(column="depot_code", table="depot", key="code", target="depot_id", what="depot"),
            ),
            after="import_vehicle_terminals",
        ),
        Kind(
            name="drivers",
            table="driver",
            id_column="driver_id",
            key=("licence_no",),
            columns=(
                Col(name="licence_no", pattern=r"[A-Za-z0-9]{6,24}"),
                Col(name="name"),
                Col(name="agency_code"),
                Col(
                    name="licence_class",
                    choices=("A1", "A2", "A3", "B1", "B2", "C1", "C2", "C3", "C4", "C5", "C6"),
                ),
                Col(name="licence_expires_on", type=D),
                Col(name="phone", optional=True, default="", pattern=r"[0-9+ -]{0,24}"),
            ),
            refs=(AGENCY,),
        ),
        Kind(
            name="fuel_cards",
            table="fuel_card",
            id_column="fuel_card_id",
            key=("card",),
            columns=(
                Col(name="card", pattern=CODE),
                Col(name="plate"),
                Col(name="agency_code", optional=True),
            ),
            refs=(VEHICLE, AGENCY),
            owner=f"coalesce({{a}}.agency_id, {BY_VEHICLE})",
        ),
        Kind(
            name="fuel",
            table="fuel_record",
            id_column="fuel_record_id",
            key=("card", "fuelled_at", "station"),
            columns=(
                Col(name="card", pattern=CODE, target="card"),
                Col(name="fuelled_at", type=TM),
                Col(name="station"),
                _lon(),
                _lat(),
                Col(name="litres", type=F, min_value=0.01, max_value=2_000.0),
                _fen("amount_fen"),
            ),
            refs=(Ref(column="card", table="fuel_card", key="card", target="vehicle_id", what="fuel card"),),
            owner=BY_VEHICLE,
            point=("lon", "lat"),
            requeue=("fuelled_at", "fuelled_at"),
        ),
        Kind(
            name="maintenance",
            table="maintenance_record",
            id_column="maintenance_record_id",
            key=("work_order",),
            columns=(
                Col(name="work_order", pattern=CODE),
                Col(name="plate"),
                Col(name="shop"),
                _lon(),
                _lat(),
                Col(name="started_at", type=TM),
                Col(name="ended_at", type=TM),
                Col(name="items", optional=True, default=""),
                _fen("cost_fen", optional=True),
            ),
            refs=(VEHICLE,),
            owner=BY_VEHICLE,
            point=("lon", "lat"),
            requeue=("started_at", "ended_at"),
            ordered=(("started_at", "ended_at"),),
        ),
        Kind(
            name="calendar",
            table="calendar_day",
            id_column="day",
            key=("day",),
            columns=(
                Col(name="day", type=D),
                Col(name="kind", choices=("holiday", "workday")),
                Col(name="name"),
            ),
            owner=None,
        ),
        Kind(
            name="roads",
            table="road",
            id_column="road_id",
            key=("source_key",),
            columns=(
                Col(name="key", target="source_key", pattern=r"\S{1,128}"),
                Col(name="name", optional=True, default=""),
                Col(name="kind", optional=True, default=""),
                Col(name="speed_limit_kmh", type=F, min_value=5.0, max_value=200.0),
                Col(name="geometry", type=ColType.LINE),
            ),
            owner=None,
        ),
        Kind(
            name="thresholds",
            table="rule_threshold",
            id_column="rule_threshold_id",
            key=("agency_id", "name", "effective_from"),
            columns=(
                Col(name="agency_code"),
                Col(name="name", pattern=r"[a-z_]+\.[a-z0-9_]+"),
                Col(name="effective_from", type=D),
                Col(name="value", type=F, min_value=-1e9, max_value=1e9),
            ),
            refs=(AGENCY,),
        ),
        Kind(
            name="insurance",
            table="vehicle_document",
            id_column="vehicle_document_id",
            key=("kind", "number"),
            columns=(
                Col(name="plate"),
                Col(name="policy_no", target="number", pattern=r"\S{1,64}"),
                Col(name="insurer", target="issuer"),
                Col(name="valid_from", type=D),
                Col(name="expires_on", type=D),
                _fen("premium_fen", optional=True, target="cost_fen"),
            ),
            refs=(VEHICLE,),
            fixed={"kind": "insurance"},
            ordered=(("valid_from", "expires_on"),),
            owner=BY_VEHICLE,
        ),
        Kind(
            name="inspections",
            table="vehicle_document",
            id_column="vehicle_document_id",
            key=("kind", "number"),
            columns=(
                Col(name="plate"),
                Col(name="certificate_no", target="number", pattern=r"\S{1,64}"),
                Col(name="station", optional=True, default="", target="issuer"),
                Col(name="inspected_on", type=D, target="valid_from"),
                Col(name="expires_on", type=D),
                _fen("cost_fen", optional=True),
            ),
            refs=(VEHICLE,),
            fixed={"kind": "inspection"},
            ordered=(("inspected_on", "expires_on"),),
            owner=BY_VEHICLE,
        ),
        Kind(
            name="rentals",
            table="rental_contract",
            id_column="rental_contract_id",
            key=("contract_no",),
            columns=(
                Col(name="contract_no", pattern=CODE),
                Col(name="pool_code"),
                Col(name="agency_code"),
                Col(name="plate", optional=True),
                Col(name="starts_on", type=D),
                Col(name="ends_on", type=D),
                _fen("amount_fen"),
            ),
            refs=(POOL, AGENCY, VEHICLE),
            ordered=(("starts_on", "ends_on"),),
        ),
        Kind(
            name="working_hours",
            table="agency_working_hours",
            id_column="agency_id",
            key=("agency_id",),
            columns=(
                Col(name="agency_code"),
                Col(name="start_local", type=CK),
                Col(name="end_local", type=CK),
            ),
            refs=(AGENCY,),
            ordered=(("start_local", "end_local"),),
        ),
    )
}
