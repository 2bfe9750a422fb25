"""The README's main job: `fleetwatch demo` takes the seeded fleet through MQTT and ingest to the database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import pytest

from store.db import drop_database, with_dbname
from tests.conftest import Broker, scalar

pytestmark = pytest.mark.slow

_FIGURE = re.compile(r"\s+(\S.*?)\s{2,}([\d,]+)")


def test_demo_accounts_for_every_fix(base_url: str, broker: Broker) -> None:
    name = f"fleetwatch_demo_t_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "FLEETWATCH_MQTT_PORT": str(broker.port), "FLEETWATCH_DATABASE_URL": base_url}
    command = ["demo", "--vehicles", "12", "--days", "1", "--database-name", name]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fleetwatch.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        figures = {
            m[1]: int(m[2].replace(",", "")) for m in map(_FIGURE.match, done.stdout.splitlines()) if m
        }
        assert figures["unaccounted fixes"] == 0
        url = with_dbname(base_url, name)
        stored = scalar(url, "SELECT count(*) FROM position")
        assert stored > 1000
        assert figures["stored in TimescaleDB (position)"] == stored
        assert figures["fixes sent"] == figures["fixes received by ingest"]
        assert scalar(url, "SELECT count(*) FROM latest_position") == 12
    finally:
        drop_database(with_dbname(base_url, name))
