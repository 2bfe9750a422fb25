"""Gateways: terminals that do not speak fleetwatch's MQTT JSON, bridged onto it (JT/T 808 over TCP)."""
