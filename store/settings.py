"""The database's settings (pydantic-settings), built in main(), never at import; env prefix FLEETWATCH_.

Every package's settings share ``SETTINGS_CONFIG`` so one ``.fleetwatch.env`` and one set of environment names
(``FLEETWATCH_DATABASE_URL``, ``FLEETWATCH_MQTT_HOST`` …) serve every process.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql://fleetwatch:fleetwatch@127.0.0.1:5432/fleetwatch"

SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix="FLEETWATCH_", env_file=".fleetwatch.env", env_nested_delimiter="__", extra="ignore"
)


class StoreSettings(BaseSettings):
    model_config = SETTINGS_CONFIG
    database_url: str = DEFAULT_DATABASE_URL
