"""Settings of the MQTT side (broker address, shared by every MQTT client) and of the ingest worker."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from ingest.filters import FilterParams
from store.settings import SETTINGS_CONFIG, StoreSettings


class MqttSettings(BaseSettings):
    model_config = SETTINGS_CONFIG
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None


class IngestSettings(StoreSettings, MqttSettings):
    model_config = SETTINGS_CONFIG
    worker_name: str = Field(default="ingest-1", pattern=r"^[A-Za-z0-9_.-]{1,48}$")
    # "" (the default): one worker with a plain persistent subscription, which survives broker restarts.
    # A name: scale out over an MQTT shared subscription ($share/<name>/…). Mosquitto 2.0 restores the queued
    # messages of a shared session after a restart but not the shared subscription itself, so what is
    # published between the broker's return and the workers' re-subscription is dropped by the broker.
    share_group: str = ""
    receive_maximum: int = Field(default=20_000, ge=20, le=65_535)
    session_expiry_s: int = Field(default=7 * 86_400, ge=0)
    max_batch_messages: int = Field(default=4_000, ge=1)
    max_batch_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    flush_interval_s: float = Field(default=0.5, gt=0, le=1.0)
    max_payload_bytes: int = Field(default=256 * 1024, ge=256)
    max_fixes_per_message: int = Field(default=5_000, ge=1)
    metrics_port: int = Field(default=9108, ge=0, le=65_535)  # 0: no metrics endpoint
    log_every_s: float = 10.0
    filters: FilterParams = FilterParams()
