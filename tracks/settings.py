"""Settings of the live track engine (``fleetwatch engine``)."""

from __future__ import annotations

from pydantic import Field

from store.settings import SETTINGS_CONFIG, StoreSettings


class EngineSettings(StoreSettings):
    model_config = SETTINGS_CONFIG
    worker_name: str = Field(default="engine-1", pattern=r"^[A-Za-z0-9_.-]{1,48}$")
    poll_interval_s: float = Field(default=0.5, gt=0, le=10)
    batch_vehicles: int = Field(default=500, ge=1)  # vehicles claimed per round
    lease_s: float = Field(default=120.0, gt=0)  # a claim older than this is void (its worker died)
