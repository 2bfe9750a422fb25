"""Process settings (pydantic-settings), built in main(), never at import. Environment prefix FLEETWATCH_."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.filters import FilterParams

DEFAULT_DATABASE_URL = "postgresql://fleetwatch:fleetwatch@127.0.0.1:5432/fleetwatch"

_CONFIG = SettingsConfigDict(
    env_prefix="FLEETWATCH_", env_file=".fleetwatch.env", env_nested_delimiter="__", extra="ignore"
)


class StoreSettings(BaseSettings):
    model_config = _CONFIG
    database_url: str = DEFAULT_DATABASE_URL


class MqttSettings(BaseSettings):
    model_config = _CONFIG
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None


class IngestSettings(StoreSettings, MqttSettings):
    model_config = _CONFIG
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


class ApiSettings(StoreSettings, MqttSettings):
    model_config = _CONFIG
    command_timeout_s: float = Field(default=10.0, gt=0)  # a JT/T 808 downlink command's answer (else 504)
    api_port: int = Field(default=8080, ge=1, le=65_535)  # served on 127.0.0.1
    online_within_s: int = Field(default=300, gt=0)  # "online recently": the newest fix is at most this old
    max_track_range_s: int = Field(default=7 * 86_400, gt=0)  # a track request spans at most this
    max_track_points: int = Field(default=10_000, gt=0)  # fixes per track page
    max_nearest_k: int = Field(default=50, gt=0)
    token_ttl_days: int = Field(default=365, gt=0)
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)


class EngineSettings(StoreSettings):
    model_config = _CONFIG
    worker_name: str = Field(default="engine-1", pattern=r"^[A-Za-z0-9_.-]{1,48}$")
    poll_interval_s: float = Field(default=0.5, gt=0, le=10)
    batch_vehicles: int = Field(default=500, ge=1)  # vehicles claimed per round
    lease_s: float = Field(default=120.0, gt=0)  # a claim older than this is void (its worker died)
