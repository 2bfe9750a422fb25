"""Loss tests with real processes: terminals → gateway → private Mosquitto → `fleetwatch ingest` →
TimescaleDB. The gateway SIGKILLed mid-stream and restarted, the broker restarted mid-stream: every report
the gateway answered is stored exactly once."""

from __future__ import annotations

import signal
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleetwatch.mosquitto import free_port
from fleetwatch.processes import start_ingest, stop
from tests.conftest import Broker, scalar, wait_until
from tests.jt808_fixtures import FleetDriver, register_phones, running_gateway, start_gateway

pytestmark = pytest.mark.slow


def start_ingest_process(env: dict[str, str], broker: Broker, log: Path) -> subprocess.Popen[bytes]:
    args = ["--mqtt-port", str(broker.port), "--worker-name", f"ing-{uuid.uuid4().hex[:8]}"]
    return start_ingest(env, [*args, "--flush-interval-s", "0.5"], log, timeout_s=60)


def assert_stored_once(db: str, driver: FleetDriver) -> None:
    total = driver.total_fixes
    wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == total, 120, f"{total} fixes stored")
    assert scalar(db, "SELECT count(DISTINCT (vehicle_id, fix_at)) FROM position") == total
    assert scalar(db, "SELECT count(*) FROM quarantine") == 0
    assert scalar(db, "SELECT count(DISTINCT vehicle_id) FROM position") == len(driver.phones)
    # the JT/T 808 words are stored with every fix (status: ACC on, positioned)
    assert scalar(db, "SELECT count(*) FROM position WHERE alarm_word = 0 AND status_word = 3") == total


def test_gateway_sigkilled_mid_stream_loses_nothing(
    db: str, broker: Broker, worker_env: dict[str, str], tmp_path: Path
) -> None:
    phones = register_phones(db, 16)
    ingest = start_ingest_process(worker_env, broker, tmp_path / "ingest.log")
    port = free_port()
    env = {
        "FLEETWATCH_DATABASE_URL": db,
        "FLEETWATCH_MQTT_PORT": str(broker.port),
        "FLEETWATCH_GATEWAY_NAME": f"gw-{uuid.uuid4().hex[:8]}",
    }
    gateway = start_gateway(env, port, tmp_path / "gateway.log")
    try:
        driver = FleetDriver(port, phones, reports=50, end=datetime.now(UTC) - timedelta(minutes=1))
        driver.start()
        wait_until(lambda: driver.answered > 80, 120, "some reports answered")
        gateway.send_signal(signal.SIGKILL)  # publishes in flight, answers not yet sent
        gateway.wait()
        answered_at_kill = driver.answered
        assert 0 < answered_at_kill < driver.total_fixes
        gateway = start_gateway(env, port, tmp_path / "gateway.log")  # same name: the same MQTT session
        driver.join(timeout=240)
        assert not driver.is_alive() and driver.error is None, driver.error
        assert driver.answered == driver.total_fixes
        assert_stored_once(db, driver)
    finally:
        stop(gateway)
        stop(ingest)


def test_broker_restarted_mid_stream_loses_nothing(
    db: str, broker: Broker, worker_env: dict[str, str], tmp_path: Path
) -> None:
    phones = register_phones(db, 16)
    ingest = start_ingest_process(worker_env, broker, tmp_path / "ingest.log")
    try:
        with running_gateway(db, broker, tmp_path) as (port, _):
            driver = FleetDriver(port, phones, reports=50, end=datetime.now(UTC) - timedelta(minutes=1))
            driver.start()
            wait_until(lambda: driver.answered > 80, 120, "some reports answered")
            broker.restart()  # SIGTERM: Mosquitto saves its sessions and comes back on the same port
            assert driver.answered < driver.total_fixes
            driver.join(timeout=240)
            assert not driver.is_alive() and driver.error is None, driver.error
            assert driver.answered == driver.total_fixes
            assert_stored_once(db, driver)
            log = (tmp_path / "gateway.log").read_text()
            assert log.count("MQTT connected") >= 2  # it did reconnect
    finally:
        stop(ingest)
