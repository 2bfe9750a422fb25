"""Seeded fleet simulators: synthetic city, vehicles, terminals, ground truth; MQTT publishing."""
