"""Nothing is lost when the worker is killed, when the broker restarts, or when two workers share the load."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import orjson
import pytest

from fleetwatch.processes import start_ingest
from ingest.mqtt_publish import Publisher
from tests.conftest import Broker, Fleet, ingest_settings, register_fleet, running_worker, scalar, wait_until

pytestmark = pytest.mark.slow

LON, LAT = 119.97, 31.81


def stream(fleet: Fleet, messages_per_terminal: int, fixes_per_message: int) -> list[tuple[str, bytes]]:
    """Messages interleaved across terminals, each fix with a distinct time, like a live fleet."""
    start_ms = int(time.time() * 1000) - messages_per_terminal * fixes_per_message * 1000 - 60_000
    out = []
    for m in range(messages_per_terminal):
        for k, terminal in enumerate(fleet.terminal_ids):
            fixes = [
                {
                    "time": start_ms + (m * fixes_per_message + i) * 1000,
                    "lon": LON + k * 1e-3 + m * 1e-5,
                    "lat": LAT + i * 1e-6,
                    "speed_kmh": 30.0,
                    "seq": m * fixes_per_message + i,
                }
                for i in range(fixes_per_message)
            ]
            out.append((f"fleet/{terminal}/pos", orjson.dumps({"fixes": fixes})))
    return out


class Stream(threading.Thread):
    """Publishes messages at about ``per_s`` messages a second; ``acknowledged`` counts broker PUBACKs."""

    def __init__(self, port: int, messages: list[tuple[str, bytes]], per_s: float) -> None:
        super().__init__(daemon=True)
        self.messages, self.per_s = messages, per_s
        self.publisher = Publisher(port=port, client_id=f"stream-{time.monotonic_ns()}", max_inflight=500)
        self.acknowledged = 0

    def run(self) -> None:
        assert self.publisher.wait_connected()
        chunk = max(1, int(self.per_s / 20))
        for i in range(0, len(self.messages), chunk):
            self.publisher.publish(self.messages[i : i + chunk], timeout_s=60)
            time.sleep(chunk / self.per_s)
        deadline = time.monotonic() + 60
        while self.publisher.acknowledged < len(self.messages) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.acknowledged = self.publisher.acknowledged
        self.publisher.close()


def start_worker_process(
    env: dict[str, str], broker: Broker, name: str, log: Path
) -> subprocess.Popen[bytes]:
    return start_ingest(
        env, ["--mqtt-port", str(broker.port), "--worker-name", name, "--flush-interval-s", "1.0"], log
    )


def test_sigkill_mid_stream_loses_nothing(
    db: str, broker: Broker, worker_env: dict[str, str], tmp_path: Path
) -> None:
    fleet = register_fleet(db, 40)
    messages = stream(fleet, messages_per_terminal=60, fixes_per_message=10)  # 2,400 messages, 24,000 fixes
    total = 24_000
    log = tmp_path / "worker.log"
    worker = start_worker_process(worker_env, broker, "killed", log)
    publisher = Stream(broker.port, messages, per_s=600)
    publisher.start()
    wait_until(lambda: scalar(db, "SELECT count(*) FROM position") > 3_000, 30, "some rows stored")
    worker.send_signal(signal.SIGKILL)  # with up to a second of messages received but not committed
    worker.wait()
    stored_at_kill = scalar(db, "SELECT count(*) FROM position")
    assert 0 < stored_at_kill < total
    time.sleep(1.0)
    worker = start_worker_process(worker_env, broker, "killed", log)  # same name: resumes the broker session
    try:
        publisher.join(timeout=90)
        assert publisher.acknowledged == len(messages)
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == total, 60, "every fix stored")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert scalar(db, "SELECT count(*) FROM quarantine") == 0
    assert scalar(db, "SELECT count(DISTINCT (vehicle_id, seq)) FROM position") == total


def test_broker_restart_mid_stream_loses_nothing(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 40)
    messages = stream(fleet, messages_per_terminal=50, fixes_per_message=10)  # 20,000 fixes
    total = 20_000
    with running_worker(ingest_settings(db, broker, flush_interval_s=1.0)) as metrics:
        publisher = Stream(broker.port, messages, per_s=500)
        publisher.start()
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") > 2_000, 30, "some rows stored")
        broker.restart()  # SIGTERM: Mosquitto writes its persistence file and comes back with the sessions
        assert scalar(db, "SELECT count(*) FROM position") < total
        publisher.join(timeout=120)
        assert publisher.acknowledged == len(messages)
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == total, 90, "every fix stored")
    assert scalar(db, "SELECT count(*) FROM quarantine") == 0
    assert metrics.totals["stored"] == total


def test_two_workers_on_a_shared_subscription_store_each_fix_once(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 20)
    messages = stream(fleet, messages_per_terminal=100, fixes_per_message=5)  # 2,000 messages, 10,000 fixes
    total = 10_000
    with (
        running_worker(ingest_settings(db, broker, worker_name="share-a", share_group="ingest")) as a,
        running_worker(ingest_settings(db, broker, worker_name="share-b", share_group="ingest")) as b,
    ):
        publisher = Stream(broker.port, messages, per_s=2_000)
        publisher.start()
        publisher.join(timeout=60)
        assert publisher.acknowledged == len(messages)
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == total, 60, "every fix stored")
        time.sleep(0.5)
    assert a.totals["stored"] > 0 and b.totals["stored"] > 0, "both workers took a share"
    assert a.totals["stored"] + b.totals["stored"] == total
    assert a.totals["duplicate"] + b.totals["duplicate"] == 0, "no message went to both"
    assert scalar(db, "SELECT count(DISTINCT worker) FROM ingest_batch") == 2
