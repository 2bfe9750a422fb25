"""Every expected alert can be seen in the published fixes; a run without violations shows none.

The evidence is read from the MQTT payloads the simulator emits (decoded, de-duplicated, sorted), not
from its internal columns, with the definitions of ``ViolationParams``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import orjson
import pytest
import shapely
from numpy.typing import NDArray

from rules.alert import AlertKind
from rules.calendar import local_midnight_s
from simulators.orders import DispatchOrder
from simulators.output import messages
from simulators.run import SimParams, SimRun, simulate
from simulators.truth import ExpectedAlert
from simulators.violations import CLEAN, LABELLED, ViolationParams, ViolationRates
from simulators.world import build_world
from tracks.geo import haversine_m

P = ViolationParams()
Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Seen:
    """The fixes one car published, each once, in time order."""

    t_s: Floats
    lon: Floats
    lat: Floats
    speed_kmh: Floats
    valid: NDArray[np.bool_]
    ignition: NDArray[np.bool_]
    odometer_km: Floats

    def during(self, start_s: float, end_s: float) -> NDArray[np.intp]:
        return np.flatnonzero((self.t_s >= start_s - 1e-6) & (self.t_s <= end_s + 1e-6))


def _time_s(value: int | str) -> float:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value / 1000.0


def published(run: SimRun) -> dict[int, Seen]:
    """vehicle index → what its terminal published, decoded from the payloads."""
    terminal = {f"fleet/{v.terminal_id}/pos": i for i, v in enumerate(run.world.fleet.vehicles)}
    rows: dict[int, dict[float, tuple[float, ...]]] = {}
    for _, topic, payload in messages(run):
        doc = orjson.loads(payload)
        for fix in doc.get("fixes", [doc]):
            t = _time_s(fix["time"])
            rows.setdefault(terminal[topic], {})[t] = (
                t,
                fix["lon"],
                fix["lat"],
                fix["speed_kmh"],
                fix["valid"],
                fix["ignition"],
                fix["odometer_km"],
            )
    seen = {}
    for car, by_time in rows.items():
        a = np.array([by_time[t] for t in sorted(by_time)], dtype=np.float64)
        seen[car] = Seen(
            t_s=a[:, 0],
            lon=a[:, 1],
            lat=a[:, 2],
            speed_kmh=a[:, 3],
            valid=a[:, 4] > 0,
            ignition=a[:, 5] > 0,
            odometer_km=a[:, 6],
        )
    return seen


def _order(run: SimRun, alert: ExpectedAlert) -> DispatchOrder:
    return next(o for o in run.truth.orders if o.order_id == alert.order_id)


def _moving(s: Seen, rows: NDArray[np.intp]) -> NDArray[np.intp]:
    return rows[s.ignition[rows] & (s.speed_kmh[rows] > 5.0) & s.valid[rows]]


def _route_distance_m(run: SimRun, lon: Floats, lat: Floats, route_lon: Floats, route_lat: Floats) -> Floats:
    plane = run.world.city.network.plane
    line = shapely.LineString(np.column_stack(plane.to_xy(route_lon, route_lat)))
    return np.asarray(shapely.distance(shapely.points(*plane.to_xy(lon, lat)), line), dtype=np.float64)


def no_order(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    rows = _moving(s, s.during(a.start_s, a.end_s))
    windows = [(o.window_start_s, o.window_end_s) for o in run.truth.orders if o.vehicle_id == a.vehicle + 1]
    uncovered = [r for r in rows if not any(w0 <= s.t_s[r] <= w1 for w0, w1 in windows)]
    return len(uncovered) >= 3


def outside_window(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    o = _order(run, a)
    rows = _moving(s, s.during(a.start_s, a.end_s))
    outside = (s.t_s[rows] < o.window_start_s - P.window_grace_s) | (
        s.t_s[rows] > o.window_end_s + P.window_grace_s
    )
    return int(outside.sum()) >= 2


def off_hours(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    rows = _moving(s, s.during(a.start_s, a.end_s))
    off = run.world.calendar.off_hours(s.t_s[rows])
    return int(off.sum()) >= 2 or (a.end_s - a.start_s < 30 and len(rows) >= 1 and bool(off.all()))


def detour(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    o = _order(run, a)
    rows = s.during(a.start_s, a.end_s)
    rows = rows[s.valid[rows]]
    off = _route_distance_m(run, s.lon[rows], s.lat[rows], o.route_lon, o.route_lat) > P.corridor_m
    return int(off.sum()) >= 3


def wrong_destination(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    o = _order(run, a)
    rows = s.during(a.start_s, a.end_s)
    gap = haversine_m(np.median(s.lon[rows]), np.median(s.lat[rows]), o.destination_lon, o.destination_lat)
    return len(rows) >= 2 and float(gap) > P.destination_radius_m


def overnight_away(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    depot = run.world.depot_of(run.world.fleet.vehicles[a.vehicle])
    rows = s.during(a.start_s, a.end_s)
    gap = haversine_m(np.median(s.lon[rows]), np.median(s.lat[rows]), depot.lon, depot.lat)
    return len(rows) >= 3 and float(gap) > depot.radius_m


def forbidden_place(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    assert a.place_id is not None
    place = run.world.place(a.place_id)
    assert place.polygon_lon is not None and place.polygon_lat is not None
    polygon = shapely.Polygon(np.column_stack((place.polygon_lon, place.polygon_lat)))
    rows = s.during(a.start_s, a.end_s)
    inside = rows[shapely.contains_xy(polygon, s.lon[rows], s.lat[rows])]
    return len(inside) >= 2 and s.t_s[inside[-1]] - s.t_s[inside[0]] >= P.forbidden_min_dwell_s - 2 * 300


def overspeed(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    assert a.limit is not None
    rows = s.during(a.start_s, a.end_s)
    return int((s.speed_kmh[rows] > a.limit * P.overspeed_ratio).sum()) >= 3


def silent_terminal(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    inside = s.during(a.start_s + 1, a.end_s - 1)
    before = np.flatnonzero(s.t_s < a.start_s)[-1]
    after = np.flatnonzero(s.t_s > a.end_s)[0]
    jump = float(haversine_m(s.lon[before], s.lat[before], s.lon[after], s.lat[after]))
    return len(inside) == 0 and jump > P.silent_min_m * 0.8 and s.t_s[after] - s.t_s[before] >= P.silent_min_s


def mileage_padding(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    assert a.limit is not None
    rows = s.during(a.start_s - 130, a.end_s + 70)
    rows = rows[s.valid[rows]]
    tracked = float(haversine_m(s.lon[rows][:-1], s.lat[rows][:-1], s.lon[rows][1:], s.lat[rows][1:]).sum())
    odometer = (s.odometer_km[rows[-1]] - s.odometer_km[rows[0]]) * 1000
    return bool(odometer - tracked > a.limit * 0.8)


def fuel_card_elsewhere(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    record = next(r for r in run.truth.fuel if r.fuel_record_id == a.fuel_record_id)
    nearest = int(np.argmin(np.abs(s.t_s - record.at_s)))
    return float(haversine_m(s.lon[nearest], s.lat[nearest], record.lon, record.lat)) > P.record_radius_m


def fuel_over_tank(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    record = next(r for r in run.truth.fuel if r.fuel_record_id == a.fuel_record_id)
    return record.litres > run.world.fleet.vehicles[a.vehicle].tank_l


def maintenance_elsewhere(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    record = next(r for r in run.truth.maintenance if r.maintenance_record_id == a.maintenance_record_id)
    rows = s.during(record.start_s, record.end_s)
    return (
        len(rows) > 0 and float(haversine_m(s.lon[rows], s.lat[rows], record.lon, record.lat).min()) > 300.0
    )


def document_expiring(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    """The document's warning period (which the alert spans) overlaps the run's days."""
    doc = next(d for d in run.truth.documents if d.document_id == a.document_id)
    lead = timedelta(days=P.document_lead_days)
    last = run.params.start + timedelta(days=run.params.days - 1)
    return doc.vehicle == a.vehicle and doc.expires_on - lead <= last and doc.expires_on >= run.params.start


def vehicle_unfit(run: SimRun, s: Seen, a: ExpectedAlert) -> bool:
    """The car moved during the trip, on a day after its document expired."""
    doc = next(d for d in run.truth.documents if d.document_id == a.document_id)
    rows = s.during(a.start_s, a.end_s)
    moved = len(rows) > 1 and float(s.speed_kmh[rows].max()) > 5.0
    day = (datetime.fromtimestamp(a.start_s, UTC) + timedelta(hours=8)).date()
    return moved and doc.vehicle == a.vehicle and doc.expires_on < day


EVIDENCE: dict[AlertKind, Callable[[SimRun, Seen, ExpectedAlert], bool]] = {
    AlertKind.NO_ORDER: no_order,
    AlertKind.OUTSIDE_WINDOW: outside_window,
    AlertKind.OFF_HOURS: off_hours,
    AlertKind.DETOUR: detour,
    AlertKind.WRONG_DESTINATION: wrong_destination,
    AlertKind.OVERNIGHT_AWAY: overnight_away,
    AlertKind.FORBIDDEN_PLACE: forbidden_place,
    AlertKind.OVERSPEED: overspeed,
    AlertKind.SILENT_TERMINAL: silent_terminal,
    AlertKind.MILEAGE_PADDING: mileage_padding,
    AlertKind.FUEL_CARD_ELSEWHERE: fuel_card_elsewhere,
    AlertKind.FUEL_OVER_TANK: fuel_over_tank,
    AlertKind.MAINTENANCE_ELSEWHERE: maintenance_elsewhere,
    AlertKind.DOCUMENT_EXPIRING: document_expiring,
    AlertKind.VEHICLE_UNFIT: vehicle_unfit,
}


@pytest.fixture(scope="module")
def violent() -> SimRun:
    """A small fleet over Wednesday … Sunday with every violation far more often than usual."""
    params = SimParams(
        start=date(2026, 12, 2),
        days=5,
        rates=ViolationRates().scaled(12.0),
        maintenance_rate=0.2,
        fuel_start_share=(0.3, 0.4),
    )
    return simulate(build_world(30, 21), params)


@pytest.fixture(scope="module")
def clean() -> SimRun:
    params = SimParams(
        start=date(2026, 12, 2), days=3, rates=CLEAN, maintenance_rate=0.2, fuel_start_share=(0.3, 0.4)
    )
    return simulate(build_world(30, 22), params)


def test_every_kind_of_violation_is_injected(violent: SimRun) -> None:
    kinds = Counter(a.kind for a in violent.truth.alerts)
    assert set(kinds) == LABELLED, f"missing: {LABELLED - set(kinds)}"


def test_every_expected_alert_is_visible_in_the_published_fixes(violent: SimRun) -> None:
    seen = published(violent)
    hidden = [
        (a.kind.value, a.vehicle, a.trip_id)
        for a in violent.truth.alerts
        if not EVIDENCE[a.kind](violent, seen[a.vehicle], a)
    ]
    assert hidden == []


def test_labelled_trips_name_their_alerts(violent: SimRun) -> None:
    by_trip = {t.trip_id: set(t.labels) for t in violent.truth.trips}
    for alert in violent.truth.alerts:
        if alert.trip_id is not None:
            assert alert.kind in by_trip[alert.trip_id]
    assert sum(1 for t in violent.truth.trips if t.labels) < len(violent.truth.trips)


def test_a_clean_run_expects_no_alert(clean: SimRun) -> None:
    assert clean.truth.alerts == ()
    assert clean.truth.fuel and clean.truth.maintenance and clean.truth.trips


def test_a_clean_run_shows_no_violation_in_its_fixes(clean: SimRun) -> None:
    seen = published(clean)
    world, orders = clean.world, clean.truth.orders
    first, days = clean.params.start, clean.params.days
    forbidden = [
        shapely.Polygon(np.column_stack((p.polygon_lon, p.polygon_lat)))
        for p in world.places
        if p.forbidden and p.polygon_lon is not None and p.polygon_lat is not None
    ]
    for car, s in seen.items():
        moving = _moving(s, np.arange(len(s.t_s)))
        windows = [(o.window_start_s, o.window_end_s, o) for o in orders if o.vehicle_id == car + 1]
        # every movement is inside an order's window, in working hours
        for r in moving:
            assert any(w0 <= s.t_s[r] <= w1 for w0, w1, _ in windows), (car, s.t_s[r])
        assert not world.calendar.off_hours(s.t_s[moving]).any()
        # on the approved route during the order: never two valid fixes in a row off it (jumps are single)
        for _, _, o in windows:
            trips = [t for t in clean.truth.trips if t.order_id == o.order_id]
            rows = s.during(min(t.start_s for t in trips), max(t.end_s for t in trips))
            rows = rows[s.valid[rows]]
            off = _route_distance_m(clean, s.lon[rows], s.lat[rows], o.route_lon, o.route_lat) > P.corridor_m
            assert not np.any(off[1:] & off[:-1]), (car, o.order_id)
        # never two fixes in a row inside a forbidden place
        for polygon in forbidden:
            inside = shapely.contains_xy(polygon, s.lon, s.lat)
            assert not np.any(inside[1:] & inside[:-1])
        # at the depot at 03:00
        depot = world.depot_of(world.fleet.vehicles[car])
        for d in range(days):
            night = local_midnight_s(first) + d * 86_400 + P.night_check_local_s
            rows = s.during(night - 900, night + 900)
            gap = haversine_m(np.median(s.lon[rows]), np.median(s.lat[rows]), depot.lon, depot.lat)
            assert float(gap) <= depot.radius_m
        # never silent: back-fill closes every coverage gap
        assert np.diff(s.t_s).max() <= 300.0
    # overspeed: reported speed never far above the limit under the car
    fixes = clean.fixes
    moving_rows = fixes.trip >= 0
    assert np.all(fixes.speed_kmh[moving_rows] <= fixes.limit_kmh[moving_rows] * P.overspeed_ratio)
    # fuel and maintenance records match where the car was
    for record in clean.truth.fuel:
        s = seen[record.vehicle]
        nearest = int(np.argmin(np.abs(s.t_s - record.at_s)))
        assert float(haversine_m(s.lon[nearest], s.lat[nearest], record.lon, record.lat)) < P.record_radius_m
        assert record.litres <= world.fleet.vehicles[record.vehicle].tank_l
    for m in clean.truth.maintenance:
        s = seen[m.vehicle]
        rows = s.during(m.start_s, m.end_s)
        assert float(np.median(haversine_m(s.lon[rows], s.lat[rows], m.lon, m.lat))) < P.record_radius_m


def test_fixes_carry_both_time_formats(violent: SimRun) -> None:
    first = [orjson.loads(p) for _, (_, _, p) in zip(range(3000), messages(violent), strict=False)]
    times = [d["fixes"][0]["time"] if "fixes" in d else d["time"] for d in first]
    assert any(isinstance(t, str) for t in times) and any(isinstance(t, int) for t in times)
    iso = next(t for t in times if isinstance(t, str))
    assert datetime.fromisoformat(iso.replace("Z", "+00:00")).tzinfo == UTC
