"""A small asyncio MQTT 5 publisher: QoS 1 on a persistent session, one future per message resolved by
the broker's PUBACK.

Why not paho: a profile of the gateway showed paho's per-message cost (threads, locks, callbacks) above
all the JT/T 808 work. This client does only what the bridge needs:
- CONNECT with clean start off and a session expiry, so the broker keeps the session across our restarts;
- the broker's Receive Maximum (CONNACK) bounds the unacknowledged publishes; the rest wait in order;
- after a reconnect every unacknowledged publish is sent again with DUP set and its packet id, in order;
- keep-alive pings; a silent broker is dropped and reconnected, forever, with a capped back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_CONNECT, _CONNACK, _PUBLISH, _PUBACK = 0x10, 0x20, 0x30, 0x40
_SUBSCRIBE, _SUBACK = 0x82, 0x90
_PINGREQ, _PINGRESP, _DISCONNECT = 0xC0, 0xD0, 0xE0
_QOS1, _DUP = 0x02, 0x08
_PROP_SESSION_EXPIRY, _PROP_RECEIVE_MAXIMUM = 0x11, 0x21
# property id → value size (-1 varint, -2 UTF-8 string/binary, -3 string pair)
_PROPERTY_SIZES = {
    0x01: 1, 0x02: 4, 0x03: -2, 0x08: -2, 0x09: -2, 0x0B: -1, 0x11: 4, 0x12: -2, 0x13: 2, 0x15: -2,
    0x16: -2, 0x17: 1, 0x18: 4, 0x19: 1, 0x1A: -2, 0x1C: -2, 0x1F: -2, 0x21: 2, 0x22: 2, 0x23: 2,
    0x24: 1, 0x25: 1, 0x26: -3, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1,
}  # fmt: skip


class MqttProtocolError(Exception):
    """The broker sent something this client cannot read."""


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return len(data).to_bytes(2) + data


def _read_varint(data: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """(value, next offset), or None if the buffer ends first."""
    value, shift = 0, 0
    for i in range(at, min(at + 4, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    if len(data) - at >= 4:
        raise MqttProtocolError("remaining length longer than 4 bytes")
    return None


def parse_properties(data: bytes, at: int) -> tuple[dict[int, int | bytes], int]:
    length = _read_varint(data, at)
    if length is None:
        raise MqttProtocolError("properties cut short")
    size, at = length
    end = at + size
    properties: dict[int, int | bytes] = {}
    while at < end:
        prop = data[at]
        kind = _PROPERTY_SIZES.get(prop)
        if kind is None:
            raise MqttProtocolError(f"unknown property 0x{prop:02x}")
        at += 1
        if kind > 0:
            properties[prop] = int.from_bytes(data[at : at + kind])
            at += kind
        elif kind == -1:
            read = _read_varint(data, at)
            if read is None:
                raise MqttProtocolError("property cut short")
            properties[prop], at = read
        else:
            for _ in range(1 if kind == -2 else 2):
                n = int.from_bytes(data[at : at + 2])
                properties[prop] = bytes(data[at + 2 : at + 2 + n])
                at += 2 + n
    return properties, end


def connect_packet(
    client_id: str, *, keepalive_s: int, session_expiry_s: int, username: str | None, password: str | None
) -> bytes:
    flags = (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    properties = bytes((_PROP_SESSION_EXPIRY,)) + session_expiry_s.to_bytes(4)
    body = b"".join(
        (
            _string("MQTT"),
            bytes((5, flags)),  # protocol level 5; clean start off: resume the session
            keepalive_s.to_bytes(2),
            varint(len(properties)) + properties,
            _string(client_id),
            _string(username) if username is not None else b"",
            _string(password) if password is not None else b"",
        )
    )
    return bytes((_CONNECT,)) + varint(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, packet_id: int, *, dup: bool = False) -> bytes:
    body = len(topic).to_bytes(2) + topic + packet_id.to_bytes(2) + b"\x00" + payload
    return bytes((_PUBLISH | _QOS1 | (_DUP if dup else 0),)) + varint(len(body)) + body


def subscribe_packet(filters: list[str], packet_id: int) -> bytes:
    body = packet_id.to_bytes(2) + b"\x00" + b"".join(_string(f) + b"\x01" for f in filters)
    return bytes((_SUBSCRIBE,)) + varint(len(body)) + body


@dataclass(slots=True)
class _Outgoing:
    topic: bytes
    payload: bytes
    done: Callable[[bool], None]


class Publisher:
    """QoS 1 publisher on a persistent MQTT 5 session. ``publish`` returns a future: True once the
    broker acknowledged the message, False if the broker refused it (PUBACK reason ≥ 0x80)."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        session_expiry_s: int = 7 * 86_400,
        keepalive_s: int = 30,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.session_expiry_s, self.keepalive_s = session_expiry_s, keepalive_s
        self.username, self.password = username, password
        self.receive_maximum = 65_535
        self.connected = asyncio.Event()
        self.connects = 0
        self.resent = 0  # publishes sent again with DUP after a reconnect
        self.stray = 0  # messages received with no handler
        self.subscriptions: list[str] = []  # subscribed (QoS 1) on every connect; messages to on_message
        self.on_message: Callable[[str, bytes], None] | None = None
        self.max_in_flight = 0  # the most unacknowledged publishes on the wire at once
        self._waiting: deque[_Outgoing] = deque()
        self._inflight: OrderedDict[int, _Outgoing] = OrderedDict()
        self._next_id = 1
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._flush_scheduled = False

    @property
    def unacknowledged(self) -> int:
        return len(self._inflight) + len(self._waiting)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self, drain_s: float = 5.0) -> None:
        """Wait up to ``drain_s`` for outstanding acknowledgements, then DISCONNECT (session kept)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_s):
                while self.unacknowledged and self.connected.is_set():
                    await asyncio.sleep(0.02)
        self._closing = True
        if self._writer is not None:
            self._writer.write(bytes((_DISCONNECT, 0)))
            with contextlib.suppress(OSError):
                await self._writer.drain()
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def publish(self, topic: str, payload: bytes) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def done(ok: bool) -> None:
            if not future.done():
                future.set_result(ok)

        self.publish_then(topic, payload, done)
        return future

    def publish_then(self, topic: str, payload: bytes, done: Callable[[bool], None]) -> None:
        """Publish; ``done(ok)`` is called (from the loop) when the broker answered — the cheap form of
        ``publish`` for the gateway's hot path (no future per message)."""
        self._waiting.append(_Outgoing(topic.encode(), payload, done))
        if not self._flush_scheduled:  # one write for all publishes of this loop iteration
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._send_waiting()

    def _send_waiting(self) -> None:
        writer = self._writer
        if writer is None or not self.connected.is_set():
            return
        chunks = []
        while self._waiting and len(self._inflight) < self.receive_maximum:
            message = self._waiting.popleft()
            packet_id = self._allocate()
            self._inflight[packet_id] = message
            chunks.append(publish_packet(message.topic, message.payload, packet_id))
        if chunks:
            self.max_in_flight = max(self.max_in_flight, len(self._inflight))
            writer.write(b"".join(chunks))

    def _allocate(self) -> int:
        while True:
            packet_id = self._next_id
            self._next_id = packet_id % 65_535 + 1
            if packet_id not in self._inflight:
                return packet_id

    async def _run(self) -> None:
        backoff_s = 0.1
        while not self._closing:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as error:
                log.warning("MQTT broker %s:%d unreachable (%s); retrying", self.host, self.port, error)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 2.0)
                continue
            try:
                await self._session(reader, writer)
                backoff_s = 0.1
            except (OSError, MqttProtocolError, TimeoutError, asyncio.IncompleteReadError) as error:
                if not self._closing:
                    log.warning("MQTT connection lost (%s); %d unacknowledged", error, self.unacknowledged)
            finally:
                self.connected.clear()
                self._writer = None
                writer.close()
            if not self._closing:
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 2.0)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            connect_packet(
                self.client_id,
                keepalive_s=self.keepalive_s,
                session_expiry_s=self.session_expiry_s,
                username=self.username,
                password=self.password,
            )
        )
        buffer = bytearray()
        async with asyncio.timeout(10):
            packet = await self._next_packet(reader, buffer)
            while packet is None:
                packet = await self._next_packet(reader, buffer)
        kind, body = packet
        if kind != _CONNACK or len(body) < 2:
            raise MqttProtocolError(f"expected CONNACK, got packet type 0x{kind:02x}")
        if body[1] != 0:
            raise MqttProtocolError(f"broker refused the connection: reason 0x{body[1]:02x}")
        properties, _ = parse_properties(body, 2) if len(body) > 2 else ({}, 2)
        maximum = properties.get(_PROP_RECEIVE_MAXIMUM, 65_535)
        self.receive_maximum = maximum if isinstance(maximum, int) else 65_535
        self.connects += 1
        log.info(
            "MQTT connected to %s:%d (session present %s, receive maximum %d, %d to re-send)",
            self.host,
            self.port,
            bool(body[0] & 1),
            self.receive_maximum,
            len(self._inflight),
        )
        # re-send, in order and with their packet ids, what the broker never acknowledged; beyond a (lower)
        # Receive Maximum the rest goes back to the front of the queue and gets new packet ids
        while len(self._inflight) > self.receive_maximum:
            self._waiting.appendleft(self._inflight.popitem(last=True)[1])
        resend = [publish_packet(m.topic, m.payload, pid, dup=True) for pid, m in self._inflight.items()]
        if resend:
            self.resent += len(resend)
            writer.write(b"".join(resend))
        self._writer = writer
        self.connected.set()
        if self.subscriptions:
            writer.write(subscribe_packet(self.subscriptions, self._allocate()))
        self._send_waiting()
        pinger = asyncio.get_running_loop().create_task(self._ping(writer))
        try:
            while True:
                async with asyncio.timeout(self.keepalive_s * 1.5):  # one timer per read, not per packet
                    data = await reader.read(65_536)
                if not data:
                    raise asyncio.IncompleteReadError(bytes(buffer), None)
                buffer.extend(data)
                while (packet := _take_packet(buffer)) is not None:
                    self._on_packet(*packet)
                await writer.drain()
        finally:
            pinger.cancel()

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s / 2)
            writer.write(bytes((_PINGREQ, 0)))

    async def _next_packet(self, reader: asyncio.StreamReader, buffer: bytearray) -> tuple[int, bytes] | None:
        """One packet from the buffer, reading more when it holds none; None after a read that did not
        complete a packet (so the caller can drain its writes)."""
        packet = _take_packet(buffer)
        if packet is not None:
            return packet
        data = await reader.read(65_536)
        if not data:
            raise asyncio.IncompleteReadError(bytes(buffer), None)
        buffer.extend(data)
        return _take_packet(buffer)

    def _on_packet(self, first_byte: int, body: bytes) -> None:
        kind = first_byte & 0xF0
        if kind == _PUBACK:
            packet_id = int.from_bytes(body[0:2])
            message = self._inflight.pop(packet_id, None)
            if message is not None:
                reason = body[2] if len(body) > 2 else 0
                if reason >= 0x80:
                    log.warning(
                        "broker refused a publish to %s: reason 0x%02x", message.topic.decode(), reason
                    )
                message.done(reason < 0x80)
            self._send_waiting()
        elif kind == _PUBLISH:
            self._on_publish(first_byte, body)
        elif kind == _SUBACK:
            if any(code >= 0x80 for code in body[3:]):
                raise MqttProtocolError(f"broker refused the subscription: {body[3:].hex()}")
            log.info("MQTT subscription granted: %s", ", ".join(self.subscriptions))
        elif kind == _DISCONNECT:
            raise MqttProtocolError(f"broker disconnected: reason 0x{body[0] if body else 0:02x}")
        elif kind != _PINGRESP:
            raise MqttProtocolError(f"unexpected packet type 0x{kind:02x}")

    def _on_publish(self, first_byte: int, body: bytes) -> None:
        """A message on a subscription: handed to ``on_message``, then acknowledged (QoS 1). Without a
        handler it is a stray (the client id is shared with a subscriber's, a mistake): said once."""
        topic_size = int.from_bytes(body[0:2])
        topic = body[2 : 2 + topic_size].decode(errors="replace")
        qos = (first_byte >> 1) & 0x3
        at = 2 + topic_size + (2 if qos else 0)
        properties = _read_varint(body, at)
        payload = body[properties[0] + properties[1] :] if properties else b""
        if self.on_message is not None:
            self.on_message(topic, payload)
        else:
            self.stray += 1
            if self.stray == 1:
                log.error("client id %s receives messages: is it also a subscriber's id?", self.client_id)
        if qos and self._writer is not None:
            self._writer.write(bytes((_PUBACK, 2)) + body[2 + topic_size : 4 + topic_size])


def _take_packet(buffer: bytearray) -> tuple[int, bytes] | None:
    if len(buffer) < 2:
        return None
    length = _read_varint(buffer, 1)
    if length is None:
        return None
    size, start = length
    if len(buffer) < start + size:
        return None
    packet = (buffer[0], bytes(buffer[start : start + size]))
    del buffer[: start + size]
    return packet
