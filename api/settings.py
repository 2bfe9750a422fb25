"""Settings of the HTTP API (``fleetwatch api``)."""

from __future__ import annotations

from pydantic import Field

from store.settings import SETTINGS_CONFIG, StoreSettings


class ApiSettings(StoreSettings):
    model_config = SETTINGS_CONFIG
    api_port: int = Field(default=8080, ge=1, le=65_535)  # served on 127.0.0.1
    online_within_s: int = Field(default=300, gt=0)  # "online recently": the newest fix is at most this old
    max_track_range_s: int = Field(default=7 * 86_400, gt=0)  # a track request spans at most this
    max_track_points: int = Field(default=10_000, gt=0)  # fixes per track page
    max_nearest_k: int = Field(default=50, gt=0)
    token_ttl_days: int = Field(default=365, gt=0)
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
