"""The speed-limit layer from an OpenStreetMap extract (.osm.pbf or .osm XML) through pyosmium.

Ways tagged ``highway`` with a ``maxspeed`` become road rows: key ``osm:way/<id>``, the ``name``, the
highway value as ``kind``, and the limit in km/h (``maxspeed`` in km/h or ``N mph``). A maxspeed that is
no number (``CN:urban``, ``signals``, ``none``) stays in the row as written, so parse.py reports it with
its row; ways without maxspeed are not speed-limit data and are not rows at all.
"""

from __future__ import annotations

import re

from ingest.imports.read import FileError, Table

MPH_KMH = 1.609344
_MAXSPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$")
HEADER = ("key", "name", "kind", "speed_limit_kmh", "geometry")


def maxspeed_kmh(text: str) -> float | None:
    """OSM's maxspeed as km/h; None when it is not a number (a zone code, "none", "signals")."""
    match = _MAXSPEED.match(text.split(";", maxsplit=1)[0])
    if match is None:
        return None
    value = float(match[1])
    return round(value * MPH_KMH, 1) if match[2] == "mph" else value


def read_osm(data: bytes, source: str) -> Table:
    import osmium

    kind = "pbf" if source.lower().endswith(".pbf") else "osm"
    rows: list[list[object]] = []
    try:
        processor = (
            osmium.FileProcessor(osmium.io.FileBuffer(data, kind))
            .with_locations()
            .with_filter(osmium.filter.KeyFilter("highway"))
        )
        for obj in processor:
            if not isinstance(obj, osmium.osm.Way) or "maxspeed" not in obj.tags:
                continue
            text = obj.tags["maxspeed"]
            limit = maxspeed_kmh(text)
            coords = [[node.lon, node.lat] for node in obj.nodes if node.location.valid()]
            rows.append(
                [
                    f"osm:way/{obj.id}",
                    obj.tags.get("name", ""),
                    obj.tags["highway"],
                    text if limit is None else limit,
                    {"type": "LineString", "coordinates": coords},
                ]
            )
    except RuntimeError as e:
        raise FileError(f"not a readable OpenStreetMap file: {e}") from e
    return Table(header=HEADER, rows=rows, source=source)
