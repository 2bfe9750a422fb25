"""A run as MQTT messages and as files (JSON Lines): what ingest receives, and the truth to score against.

``messages(run)`` yields (sent_at_ms, topic, payload) in send order, payloads exactly as a terminal
publishes them (see ingest.decode). ``write_run(run, folder)`` writes:

  messages.jsonl   {"sent_at_ms": …, "topic": "fleet/<terminal_id>/pos", "payload": {…}} per message
  trips.jsonl, alerts.jsonl, orders.jsonl, fuel.jsonl, maintenance.jsonl   the truth (simulators.truth)
  agencies.jsonl, pools.jsonl, depots.jsonl, vehicles.jsonl, places.jsonl, calendar.jsonl, roads.jsonl
  run.json         the parameters and counts

Everything is written in a fixed order with fixed key order, so the same inputs give the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from simulators.city import ROAD_KINDS
from simulators.run import SimRun
from simulators.terminal import Fixes

log = logging.getLogger(__name__)

_BLOCK = 20_000  # messages encoded at a time


def iso(t_s: float) -> str:
    return (
        datetime.fromtimestamp(round(t_s, 3), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _iso_seconds(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _fix_documents(fixes: Fixes, rows: np.ndarray, iso_time: np.ndarray) -> list[dict[str, Any]]:
    columns = (
        fixes.t_ms[rows].tolist(),
        fixes.lon[rows].tolist(),
        fixes.lat[rows].tolist(),
        fixes.speed_kmh[rows].tolist(),
        fixes.heading_deg[rows].astype(np.int64).tolist(),
        fixes.altitude_m[rows].astype(np.int64).tolist(),
        fixes.satellites[rows].tolist(),
        fixes.hdop[rows].tolist(),
        fixes.valid[rows].tolist(),
        fixes.ignition[rows].tolist(),
        fixes.odometer_km[rows].tolist(),
        fixes.seq[rows].tolist(),
        iso_time[fixes.vehicle[rows]].tolist(),
    )
    return [
        {
            "time": _iso_seconds(t) if as_text else t,
            "lon": lon,
            "lat": lat,
            "speed_kmh": v,
            "heading_deg": h,
            "altitude_m": alt,
            "satellites": sat,
            "hdop": hdop,
            "valid": ok,
            "ignition": ign,
            "odometer_km": odo,
            "seq": seq,
        }
        for t, lon, lat, v, h, alt, sat, hdop, ok, ign, odo, seq, as_text in zip(*columns, strict=True)
    ]


def messages(run: SimRun, *, topic_root: str = "fleet") -> Iterator[tuple[int, str, bytes]]:
    """(sent_at_ms, topic, payload) per message, in send order."""
    d, fixes = run.deliveries, run.fixes
    cars = run.world.fleet.vehicles
    topics = [f"{topic_root}/{c.terminal_id}/pos" for c in cars]
    iso_time = np.array([c.iso_time for c in cars], dtype=np.bool_)
    for b0 in range(0, len(d), _BLOCK):
        b1 = min(len(d), b0 + _BLOCK)
        count = d.row_count[b0:b1]
        starts = d.row_start[b0:b1]
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(count)[:-1])), count)
        rows = d.rows[np.arange(int(count.sum())) + offsets]
        docs = _fix_documents(fixes, rows, iso_time)
        at = 0
        for m in range(b1 - b0):
            c = int(count[m])
            payload = orjson.dumps({"fixes": docs[at : at + c]} if d.batch[b0 + m] else docs[at])
            at += c
            yield int(d.sent_ms[b0 + m]), topics[int(d.vehicle[b0 + m])], payload


def _lines(path: Path, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> int:
    n = 0
    with path.open("wb") as out:
        for row in rows:
            out.write(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY))
            out.write(b"\n")
            n += 1
    return n


def _line_string(lon: np.ndarray, lat: np.ndarray) -> dict[str, Any] | None:
    if len(lon) < 2:
        return None
    return {"type": "LineString", "coordinates": np.column_stack((lon, lat)).tolist()}


def world_rows(run: SimRun) -> dict[str, list[dict[str, Any]]]:
    """The registry and map as rows, by file stem."""
    world = run.world
    fleet = world.fleet
    net = world.city.network
    places = []
    for p in world.places:
        row: dict[str, Any] = {
            "place_id": p.place_id,
            "code": p.code,
            "kind": p.kind.value,
            "name": p.name,
            "lon": p.lon,
            "lat": p.lat,
            "radius_m": p.radius_m,
            "forbidden": p.forbidden,
            "polygon": None,
        }
        if p.polygon_lon is not None and p.polygon_lat is not None:
            row["polygon"] = {
                "type": "Polygon",
                "coordinates": [np.column_stack((p.polygon_lon, p.polygon_lat)).tolist()],
            }
        places.append(row)
    return {
        "agencies": [asdict(a) for a in fleet.agencies],
        "pools": [{**asdict(p), "kind": p.kind.value} for p in fleet.pools],
        "depots": [asdict(d) for d in fleet.depots],
        "vehicles": [{**asdict(v), "kind": v.kind.value} for v in fleet.vehicles],
        "places": places,
        "calendar": [
            {"day": c.day.isoformat(), "kind": c.kind.value, "name": c.name} for c in world.calendar.days()
        ],
        "roads": [
            {
                "edge": e,
                "road": net.roads[int(net.edge_road[e])].name,
                "kind": ROAD_KINDS[int(net.edge_kind[e])].value,
                "speed_limit_kmh": float(net.edge_speed_kmh[e]),
                "tunnel": bool(net.edge_tunnel[e]),
                "geometry": _line_string(
                    net.vertex_lon[net.vertex_start[e] : net.vertex_start[e + 1]],
                    net.vertex_lat[net.vertex_start[e] : net.vertex_start[e + 1]],
                ),
            }
            for e in range(net.edges)
        ],
    }


def truth_rows(run: SimRun) -> dict[str, list[dict[str, Any]]]:
    cars = run.world.fleet.vehicles
    truth = run.truth

    def car(v: int) -> dict[str, Any]:
        return {"vehicle_id": cars[v].vehicle_id, "plate": cars[v].plate, "terminal_id": cars[v].terminal_id}

    return {
        "trips": [
            {
                "trip_id": t.trip_id,
                **car(t.vehicle),
                "outing_id": t.outing_id,
                "outing_kind": t.outing_kind,
                "dispatch_order_id": t.order_id,
                "start_at": iso(t.start_s),
                "end_at": iso(t.end_s),
                "path_length_m": round(t.path_length_m, 3),
                "from_place_id": t.from_place_id,
                "to_place_id": t.to_place_id,
                "violations": [k.value for k in t.labels],
                "path": _line_string(t.path_lon, t.path_lat),
            }
            for t in truth.trips
        ],
        "alerts": [
            {
                "alert_id": i + 1,
                "kind": a.kind.value,
                **car(a.vehicle),
                "start_at": iso(a.start_s),
                "end_at": iso(a.end_s),
                "trip_id": a.trip_id,
                "dispatch_order_id": a.order_id,
                "place_id": a.place_id,
                "fuel_record_id": a.fuel_record_id,
                "maintenance_record_id": a.maintenance_record_id,
                "value": a.value,
                "limit": a.limit,
                "unit": a.unit,
            }
            for i, a in enumerate(truth.alerts)
        ],
        "orders": [
            {
                "dispatch_order_id": o.order_id,
                "code": o.code,
                "agency_id": o.agency_id,
                "passengers": o.passengers,
                "purpose": o.purpose,
                "origin_place_id": o.origin_place_id,
                "origin": [o.origin_lon, o.origin_lat],
                "destination_place_id": o.destination_place_id,
                "destination": [o.destination_lon, o.destination_lat],
                "requested_at": iso(o.requested_at_s),
                "window_start_at": iso(o.window_start_s),
                "window_end_at": iso(o.window_end_s),
                "route": _line_string(o.route_lon, o.route_lat),
                "route_length_m": round(o.route_length_m, 3),
                "status": o.status.value,
                "vehicle_id": o.vehicle_id,
                "pool_id": o.pool_id,
                "cross_region": o.cross_region,
            }
            for o in truth.orders
        ],
        "fuel": [
            {
                "fuel_record_id": r.fuel_record_id,
                "vehicle_id": cars[r.vehicle].vehicle_id,
                "card": r.card,
                "place_id": r.place_id,
                "station": [r.lon, r.lat],
                "fuelled_at": iso(r.at_s),
                "litres": r.litres,
            }
            for r in truth.fuel
        ],
        "maintenance": [
            {
                "maintenance_record_id": r.maintenance_record_id,
                "vehicle_id": cars[r.vehicle].vehicle_id,
                "place_id": r.place_id,
                "shop": [r.lon, r.lat],
                "started_at": iso(r.start_s),
                "ended_at": iso(r.end_s),
            }
            for r in truth.maintenance
        ],
    }


def write_run(run: SimRun, folder: Path, *, topic_root: str = "fleet") -> dict[str, int]:
    """Write the messages, the truth and the world as JSON Lines; returns rows per file."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    with (folder / "messages.jsonl").open("wb") as out:
        n = 0
        for sent_ms, topic, payload in messages(run, topic_root=topic_root):
            out.write(
                b'{"sent_at_ms":%d,"topic":%s,"payload":%s}\n' % (sent_ms, orjson.dumps(topic), payload)
            )
            n += 1
        written["messages"] = n
    for stem, rows in {**truth_rows(run), **world_rows(run)}.items():
        written[stem] = _lines(folder / f"{stem}.jsonl", rows)
    summary = {
        "seed": run.world.seed,
        "vehicles": len(run.world.fleet.vehicles),
        "start": run.params.start.isoformat(),
        "days": run.params.days,
        "start_at": iso(run.start_s),
        "end_at": iso(run.end_s),
        "fixes": len(run.fixes),
        "rates": asdict(run.params.rates),
        "thresholds": asdict(run.params.thresholds),
        "files": written,
    }
    (folder / "run.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    log.info("wrote %s to %s", ", ".join(f"{v} {k}" for k, v in written.items()), folder)
    return written
