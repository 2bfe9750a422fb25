"""Settings of the gateway process (pydantic-settings, environment prefix FLEETWATCH_), built in main()."""

from __future__ import annotations

from pydantic import Field

from ingest.settings import MqttSettings
from store.settings import SETTINGS_CONFIG, StoreSettings


class GatewaySettings(StoreSettings, MqttSettings):
    model_config = SETTINGS_CONFIG
    # stable name: the MQTT session (and so what the broker has not acknowledged yet) is kept under it
    gateway_name: str = Field(default="jt808-1", pattern=r"^[A-Za-z0-9_.-]{1,48}$")
    session_expiry_s: int = Field(default=7 * 86_400, ge=0)
    jt808_host: str = "127.0.0.1"
    jt808_port: int = Field(default=7808, ge=0, le=65_535)
    idle_timeout_s: float = Field(default=300.0, gt=0)  # no frame for this long: the connection is closed
    max_connections_per_address: int = Field(default=64, ge=0)  # 0: no limit
    max_bad_frames: int = Field(default=20, ge=0)  # a connection survives this many refused frames
    max_frame_bytes: int = Field(default=8_192, ge=64)  # escaped, between delimiters
    package_timeout_s: float = Field(
        default=30.0, gt=0
    )  # then missing sub-packages are re-requested (0x8003)
    package_requests: int = Field(default=2, ge=0)  # re-requests before a split message is given up
    max_waiting_publishes: int = Field(default=200_000, ge=1)  # beyond: reports are answered 'failure'
    log_every_s: float = Field(default=10.0, gt=0)
    # benchmark ceiling only: reports answered 0x8001 at once, nothing published (no MQTT at all)
    answer_without_broker: bool = False
