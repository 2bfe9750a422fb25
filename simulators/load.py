"""Load mode: many terminals streaming plain, valid fixes, for the ingest benchmark and loss tests.

The fixes are a seeded random walk per terminal around a city centre, one every 10 s, so every fix
passes the ingest filters and has a distinct (vehicle, time) key and a per-terminal sequence number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import psycopg
from numpy.typing import NDArray

CENTRE_LON, CENTRE_LAT = 119.97, 31.81


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadFleet:
    terminal_ids: tuple[str, ...]
    vehicle_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadStream:
    """Encoded messages, and the fixes they carry as columns (terminal index, time, position, seq)."""

    messages: list[tuple[str, bytes]]
    terminal_index: NDArray[np.int32]
    t_ms: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    speed_kmh: NDArray[np.float64]
    seq: NDArray[np.int64]

    @property
    def fixes(self) -> int:
        return len(self.t_ms)


def register_load_fleet(conn: psycopg.Connection[Any], terminals: int, prefix: str = "L") -> LoadFleet:
    """An agency, a city pool and ``terminals`` vehicles with one terminal each."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO agency (code, name) VALUES (%s, 'Load-test bureau') RETURNING agency_id",
            (f"A-{prefix}",),
        ).fetchone()
        assert row is not None
        agency_id = row[0]
        row = conn.execute(
            "INSERT INTO pool (code, name, kind, agency_id) VALUES (%s, 'Load pool', 'city', %s)"
            " RETURNING pool_id",
            (f"P-{prefix}", agency_id),
        ).fetchone()
        assert row is not None
        vehicle_ids = [
            r[0]
            for r in conn.execute(
                "INSERT INTO vehicle (plate, kind, seats, pool_id, agency_id)"
                " SELECT %s || lpad(i::text, 6, '0'), 'sedan', 5, %s, %s FROM generate_series(1, %s) AS i"
                " ORDER BY i RETURNING vehicle_id",
                (f"LD{prefix}", row[0], agency_id, terminals),
            ).fetchall()
        ]
        terminal_ids = [f"{prefix}{i:06d}" for i in range(1, terminals + 1)]
        with conn.cursor() as cur, cur.copy("COPY terminal (terminal_id, vehicle_id) FROM STDIN") as copy:
            for terminal_id, vehicle_id in zip(terminal_ids, vehicle_ids, strict=True):
                copy.write_row((terminal_id, vehicle_id))
    return LoadFleet(terminal_ids=tuple(terminal_ids), vehicle_ids=tuple(vehicle_ids))


def load_stream(
    terminal_ids: tuple[str, ...],
    fixes: int,
    fixes_per_message: int,
    *,
    seed: int,
    end_ms: int,
    period_s: int = 10,
) -> LoadStream:
    """``fixes`` fixes spread evenly over the terminals, grouped ``fixes_per_message`` to a message,
    messages interleaved across terminals as a live fleet sends them; the last fix is at ``end_ms``."""
    rng = np.random.default_rng(seed)
    n_terminals = len(terminal_ids)
    per_terminal = -(-fixes // n_terminals)
    per_terminal = -(-per_terminal // fixes_per_message) * fixes_per_message
    step = rng.normal(0.0, 1.0, size=(n_terminals, per_terminal, 2)) * 8e-5  # ~9 m per 10 s, each axis
    start = rng.uniform(-0.2, 0.2, size=(n_terminals, 1, 2))
    track = start + np.cumsum(step, axis=1)
    lon = CENTRE_LON + track[:, :, 0]
    lat = CENTRE_LAT + track[:, :, 1]
    k = np.arange(per_terminal)
    t_ms = end_ms - (per_terminal - 1 - k) * period_s * 1000
    speed = np.round(rng.uniform(0, 60, size=(n_terminals, per_terminal)), 1)

    messages: list[tuple[str, bytes]] = []
    columns: dict[str, list[Any]] = {
        "terminal_index": [],
        "t_ms": [],
        "lon": [],
        "lat": [],
        "speed": [],
        "seq": [],
    }
    total = 0
    for m in range(per_terminal // fixes_per_message):
        for i, terminal_id in enumerate(terminal_ids):
            if total >= fixes:
                break
            sl = slice(m * fixes_per_message, (m + 1) * fixes_per_message)
            batch = [
                {"time": int(t), "lon": float(x), "lat": float(y), "speed_kmh": float(v), "seq": int(q)}
                for t, x, y, v, q in zip(t_ms[sl], lon[i, sl], lat[i, sl], speed[i, sl], k[sl], strict=True)
            ]
            payload = orjson.dumps(batch[0] if fixes_per_message == 1 else {"fixes": batch})
            messages.append((f"fleet/{terminal_id}/pos", payload))
            columns["terminal_index"].append(np.full(fixes_per_message, i))
            columns["t_ms"].append(t_ms[sl])
            columns["lon"].append(lon[i, sl])
            columns["lat"].append(lat[i, sl])
            columns["speed"].append(speed[i, sl])
            columns["seq"].append(k[sl])
            total += fixes_per_message
    return LoadStream(
        messages=messages,
        terminal_index=np.concatenate(columns["terminal_index"]).astype(np.int32),
        t_ms=np.concatenate(columns["t_ms"]).astype(np.int64),
        lon=np.concatenate(columns["lon"]),
        lat=np.concatenate(columns["lat"]),
        speed_kmh=np.concatenate(columns["speed"]),
        seq=np.concatenate(columns["seq"]).astype(np.int64),
    )
