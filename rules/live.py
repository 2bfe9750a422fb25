"""The live order in one sentence: the engine's rounds (``tracks.worker.run_engine``) store trips, the rules
judge them in the same transaction (``rules.worker.RulesStep``, which also sweeps vehicle documents once a
day), and new alerts go out over MQTT
(``rules.publish``, its own thread, acknowledged by the broker before they count as published).

``fleetwatch engine`` parses its arguments and calls ``run_live``; batch recomputation
(``fleetwatch engine recompute``) uses ``rules_step`` the same way.
"""

from __future__ import annotations

import logging
import threading

from ingest.settings import MqttSettings
from rules.publish import run_alert_publisher
from rules.worker import RulesStep
from tracks.params import Params
from tracks.settings import EngineSettings
from tracks.worker import run_engine

log = logging.getLogger(__name__)


def rules_step(*, rules: bool = True, sweep_daily: bool = False) -> RulesStep | None:
    """What runs after each engine round: the rules (with ``sweep_daily``, also the daily document sweep
    on the first round of each local day), or nothing (trips only)."""
    return RulesStep(sweep_daily=sweep_daily) if rules else None


def run_live(
    settings: EngineSettings,
    stop: threading.Event,
    *,
    mqtt: MqttSettings | None = None,
    rules: bool = True,
    params: Params | None = None,
) -> None:
    """engine → rules → publish until ``stop``. ``mqtt`` None: alerts are stored, not published."""
    after = rules_step(rules=rules, sweep_daily=True)
    publisher: threading.Thread | None = None
    if after is not None and mqtt is not None:
        publisher = threading.Thread(
            target=run_alert_publisher,
            args=(settings.database_url, mqtt.mqtt_host, mqtt.mqtt_port, stop),
            kwargs={"client_id": f"fleetwatch-{settings.worker_name}-alerts"},
            name="alert-publisher",
            daemon=True,
        )
        publisher.start()
    log.info(
        "live: engine %s%s%s",
        settings.worker_name,
        " → rules" if after is not None else " (no rules)",
        " → MQTT" if publisher is not None else "",
    )
    try:
        run_engine(
            settings.database_url,
            settings.worker_name,
            params or Params(),
            stop,
            poll_s=settings.poll_interval_s,
            limit=settings.batch_vehicles,
            lease_s=settings.lease_s,
            after=after,
        )
    finally:
        stop.set()
        if publisher is not None:
            publisher.join(timeout=35)  # a publish waits up to 30 s for the broker
