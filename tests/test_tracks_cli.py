"""``fleetwatch analyze`` on small CSV files: JSON lines per trip, route figures, clear input errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from fleetwatch.cli import main
from tracks.geo import wgs84_to_gcj02
from tracks.synth import metres_to_lonlat

HEADER = "vehicle_id,time,lon,lat,speed_kmh,ignition,odometer_km"


def drive_csv(vehicle: str = "苏A12345", epoch: bool = False) -> str:
    """Parked 07:30-08:00, 6 km east at 36 km/h reporting every 10 s, parked 08:10-08:40 (+08:00)."""
    start = datetime(2026, 3, 2, 7, 30)
    rows = []
    for k in range(31):
        rows.append((start + timedelta(minutes=k), 0.0, 0.0, 1, 1000.0))
    go = datetime(2026, 3, 2, 8, 0)
    for k in range(1, 60):
        rows.append((go + timedelta(seconds=10 * k), 100.0 * k, 36.0, 1, 1000 + 0.1 * k))
    for k in range(31):
        rows.append((go + timedelta(minutes=10 + k), 6_000.0, 0.0, 0, 1006.0))
    x = np.array([r[1] for r in rows])
    lon, lat = metres_to_lonlat(x, np.zeros(len(x)))
    lines = [HEADER]
    for (moment, _, speed, acc, odometer), a, b in zip(rows, lon, lat, strict=True):
        when = (
            f"{(moment - timedelta(hours=8) - datetime(1970, 1, 1)).total_seconds():.0f}"
            if epoch
            else moment.isoformat(sep=" ")
        )
        lines.append(f"{vehicle},{when},{a:.7f},{b:.7f},{speed},{acc},{odometer:.1f}")
    return "\n".join(lines) + "\n"


def run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *extra: str
) -> tuple[int, list[dict[str, object]], str]:
    path = tmp_path / "fixes.csv"
    path.write_text(text, encoding="utf-8")
    code = main(["analyze", str(path), *extra])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_analyze_prints_one_json_line_per_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, trips, _ = run(tmp_path, capsys, drive_csv())
    assert code == 0
    (trip,) = trips
    assert trip["vehicle_id"] == "苏A12345"
    assert trip["start"] == "2026-03-02T08:00:00+08:00"
    assert trip["end"] == "2026-03-02T08:10:00+08:00"
    assert trip["distance_m"] == pytest.approx(6_000, rel=1e-4)
    assert trip["duration_s"] == 600
    assert "inside_share" not in trip


def test_analyze_reads_epoch_seconds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, iso, _ = run(tmp_path, capsys, drive_csv())
    _, epoch, _ = run(tmp_path, capsys, drive_csv(epoch=True))
    assert epoch == iso


def test_analyze_with_a_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lon, lat = metres_to_lonlat(np.array([0.0, 3_000.0, 6_000.0]), np.array([0.0, 400.0, 0.0]))
    route = tmp_path / "route.geojson"
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {
            "type": "LineString",
            "coordinates": [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)],
        },
    }
    route.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    code, (trip,), _ = run(tmp_path, capsys, drive_csv(), "--route", str(route))
    assert code == 0
    assert trip["max_deviation_m"] == pytest.approx(400 * 3_000 / np.hypot(3_000, 400), abs=1)  # to the slope
    assert trip["arrived"] is True
    assert 0 < trip["inside_share"] < 1  # type: ignore[operator]


def test_analyze_converts_a_gcj02_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lon, lat = metres_to_lonlat(np.array([0.0, 6_000.0]), np.zeros(2))
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)  # as drawn on Amap: hundreds of metres off
    route = tmp_path / "route.geojson"
    route.write_text(
        json.dumps(
            {
                "type": "LineString",
                "coordinates": [[float(a), float(b)] for a, b in zip(gcj_lon, gcj_lat, strict=True)],
            }
        )
    )
    _, (as_wgs,), _ = run(tmp_path, capsys, drive_csv(), "--route", str(route))
    _, (converted,), _ = run(tmp_path, capsys, drive_csv(), "--route", str(route), "--route-datum", "gcj02")
    assert as_wgs["max_deviation_m"] > 100  # type: ignore[operator]
    assert converted["max_deviation_m"] < 1 and converted["inside_share"] == 1.0  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vehicle_id,time,lon\n1,2026-03-02T08:00:00,118.8\n", "fixes.csv:1: missing column 'lat'"),
        (
            f"{HEADER}\n1,2026-03-02T08:00:00,118.8,abc,,,\n",
            "fixes.csv:2: column 'lat': 'abc' is not a number",
        ),
        (
            f"{HEADER}\n1,yesterday,118.8,32.0,,,\n",
            "fixes.csv:2: column 'time': 'yesterday' is neither ISO 8601",
        ),
        (f"{HEADER}\n1,2026-03-02T08:00:00,118.8,32.0,,maybe,\n", "fixes.csv:2: column 'ignition': 'maybe'"),
        (
            f"{HEADER}\n1,2026-03-02T08:00:00,118.8,32.0,,,\n,2026-03-02T08:00:10,118.8,32.0,,,\n",
            "fixes.csv:3: column 'vehicle_id' is empty",
        ),
        (f"{HEADER}\n1,2026-03-02T08:00:00,118.8,32.0,,,,9\n", "fixes.csv:2: more fields than the header"),
    ],
)
def test_bad_input_names_the_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    code, trips, err = run(tmp_path, capsys, text)
    assert code == 2 and trips == []
    assert message in err


def test_bad_route_file_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    route = tmp_path / "route.geojson"
    route.write_text('{"type": "Point", "coordinates": [118.8, 32.0]}')
    code, _, err = run(tmp_path, capsys, drive_csv(), "--route", str(route))
    assert code == 2 and "no LineString" in err
    code, _, err = run(tmp_path, capsys, drive_csv(), "--route", str(tmp_path / "missing.geojson"))
    assert code == 2 and "cannot read" in err


def test_missing_csv_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nothing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
