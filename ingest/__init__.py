"""Ingest: MQTT messages from vehicle terminals → TimescaleDB, exactly once, bad input quarantined."""
