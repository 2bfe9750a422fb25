"""fleetwatch: telemetry and monitoring core for a government motor pool."""
