"""Batched PUBACKs for a paho-mqtt client: a committed batch's acknowledgements in one socket write.

Why not paho's public ``Client.ack(mid, qos)``: every call builds one 4-byte packet, queues it and wakes
paho's network thread through its socket pair, which then writes it on its own; at 10k+ messages a
second that is a large share of the ingest worker's CPU, and paho has no public call for many. So the
PUBACKs of a batch go, as one buffer of concatenated packets, into paho's *private* outgoing queue
(``Client._packet_queue``) — the call ``ack`` itself ends in, with the same arguments.

A private method may change in any paho release. ``PubackSender`` checks its shape (the parameter
names) before using it; a paho whose internals differ gets one public ``ack`` per message — slower,
still correct — and a warning in the log, never a silent break. tests/test_ingest_puback.py runs this
against a real Mosquitto that logs every packet: a PUBACK per acknowledged packet id, and after a
reconnect exactly the unacknowledged messages re-sent. It fails if a paho upgrade breaks this.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import paho.mqtt.client as paho

log = logging.getLogger(__name__)

PUBACK = 0x40  # MQTT control packet type 4 in the high nibble; a v5 PUBACK without reason code = success
_PRIVATE_PARAMETERS = ("command", "packet", "mid", "qos")  # of Client._packet_queue, then info


def puback_packets(mids: Sequence[int]) -> bytes:
    """PUBACK packets for ``mids``, concatenated: fixed header (type, remaining length 2), packet id."""
    packets = np.empty((len(mids), 4), dtype=np.uint8)
    packets[:, 0] = PUBACK
    packets[:, 1] = 2
    packets[:, 2:] = np.asarray(mids, dtype=">u2").view(np.uint8).reshape(-1, 2)
    return packets.tobytes()


def _private_queue(client: paho.Client) -> Callable[..., Any] | None:
    """paho's private packet queue if it still has the shape this module was written against."""
    method = getattr(client, "_packet_queue", None)
    if not callable(method):
        log.warning("paho-mqtt %s has no Client._packet_queue; one PUBACK per message", paho.__name__)
        return None
    try:
        names = tuple(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        names = ()
    if names[: len(_PRIVATE_PARAMETERS)] != _PRIVATE_PARAMETERS:
        log.warning(
            "paho-mqtt's Client._packet_queue takes %s, expected %s…; sending one PUBACK per message",
            names,
            _PRIVATE_PARAMETERS,
        )
        return None
    queue: Callable[..., Any] = method
    return queue


class PubackSender:
    """Acknowledges QoS 1 deliveries of a client in manual-ack mode, a batch per call."""

    def __init__(self, client: paho.Client) -> None:
        self._client = client
        self._queue = _private_queue(client)

    @property
    def batched(self) -> bool:
        """True when a batch goes out as one write (paho's internals are as expected)."""
        return self._queue is not None

    def send(self, mids: Sequence[int]) -> None:
        """PUBACK every packet id of ``mids`` (ids of the current connection)."""
        if not mids:
            return
        if self._queue is None:
            for mid in mids:
                self._client.ack(mid, 1)
            return
        self._queue(PUBACK, puback_packets(mids), 0, 0)
