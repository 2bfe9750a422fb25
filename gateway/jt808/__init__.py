"""JT/T 808 (2013 and 2019 editions): a pure codec (frame, messages, packages), an asyncio server and a
loss-free bridge onto MQTT (``fleet/<terminal>/pos``, 0x8001 only after the broker's PUBACK)."""
