"""``fleetwatch gateway jt808``: the asyncio TCP server holding terminal connections.

Per connection: frames are cut from the stream, decoded by the pure codec, and handled in order:
- 0x0100 register → 0x8100 (result 4 'no such terminal' unless the phone is a registered terminal id,
  else a fresh auth code); 0x0102 authenticate → 0x8001; the connection's terminal is the one that
  authenticated on it. A frame naming another phone, or a report before authentication, is refused.
- 0x0200 / 0x0704 / 0x0201 → the bridge (MQTT ``fleet/<terminal>/pos``), 0x8001 only after the PUBACK.
- 0x0002 heartbeat, 0x0003 unregister, 0x0001 terminal answers → 0x8001 / noted.
- a refused frame is quarantined (raw bytes and reason); the connection survives ``max_bad_frames``.
- split messages are reassembled; missing packages re-requested with 0x8003 after ``package_timeout_s``.
Idle connections are closed after ``idle_timeout_s``; at most ``max_connections_per_address`` per peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, cast

import orjson

from gateway.jt808.bridge import Bridge, fix_payload
from gateway.jt808.frame import (
    Edition,
    Header,
    Refusal,
    RefusalReason,
    decode_frame,
    encode_frame,
    split_stream,
    terminal_id_of,
)
from gateway.jt808.messages import (
    Authenticate,
    Body,
    Empty,
    GeneralResponse,
    LocationAnswer,
    MsgId,
    Register,
    RegisterAnswer,
    RegisterResult,
    ResendPackages,
    Result,
    Tracking,
    decode_body,
    encode_body,
)
from gateway.jt808.packages import Partial, Pending, add_package, overdue
from gateway.jt808.registry import Registry
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

_REPORTS = (MsgId.LOCATION, MsgId.LOCATION_BATCH, MsgId.LOCATION_ANSWER)


class Gateway:
    """What the connections share: settings, registry, bridge, counters, connections per address."""

    def __init__(self, settings: GatewaySettings, registry: Registry, bridge: Bridge) -> None:
        self.settings = settings
        self.registry = registry
        self.bridge = bridge
        self.connections: set[Connection] = set()
        self.per_address: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.by_terminal: dict[str, Connection] = {}

    def totals(self) -> dict[str, int]:
        return {
            "connections_open": len(self.connections),
            "quarantined": self.registry.quarantined,
            "publishes_waiting": self.bridge.publisher.unacknowledged,
            **self.counts,
        }

    def on_command(self, topic: str, payload: bytes) -> None:
        """A downlink command on ``jt808/<terminal>/cmd``: {"command": "locate" | "tracking",
        "request_id": …, "interval_s": …, "validity_s": …}. Answers go to ``jt808/<terminal>/answer``."""
        parts = topic.split("/")
        terminal_id = parts[1] if len(parts) == 3 else ""
        try:
            command = orjson.loads(payload)
            kind, request_id = command["command"], str(command.get("request_id", ""))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("unreadable command on %s: %r", topic, payload[:200])
            return
        self.counts["commands"] += 1
        connection = self.by_terminal.get(terminal_id)
        message: Body
        if kind == "locate":
            msg_id, message = MsgId.LOCATION_QUERY, Empty()
        elif kind == "tracking":
            msg_id = MsgId.TRACKING
            message = Tracking(
                interval_s=int(command.get("interval_s", 10)), validity_s=int(command.get("validity_s", 300))
            )
        else:
            self.bridge.answer(terminal_id, {"request_id": request_id, "error": f"unknown command {kind!r}"})
            return
        if connection is None:
            self.counts["commands_not_connected"] += 1
            answer = {"request_id": request_id, "command": kind, "error": "terminal not connected"}
            self.bridge.answer(terminal_id, answer)
            return
        serial = connection.command(msg_id, message)
        connection.requests[serial] = (kind, request_id)

    def sweep(self, now_s: float) -> None:
        """Close idle connections; re-request or give up overdue split messages."""
        for connection in list(self.connections):
            if now_s - connection.last_seen_s > self.settings.idle_timeout_s:
                self.counts["closed_idle"] += 1
                connection.close()
            elif connection.pending:
                connection.sweep_packages(now_s)


class Connection(asyncio.Protocol):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.Transport | None = None
        self.address = "?"
        self.buffer = bytearray()
        self.terminal_id: str | None = None
        self.bad_frames = 0
        self.serial = 0
        self.last_seen_s = time.monotonic()
        self.pending: Pending = {}
        self.edition = Edition.V2013
        self.phone = ""
        self.requests: dict[int, tuple[str, str]] = {}  # serial of a downlink command → (kind, request id)

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else "?"
        transport = self.transport
        gateway = self.gateway
        limit = gateway.settings.max_connections_per_address
        if limit and gateway.per_address[self.address] >= limit:
            gateway.counts["refused_over_address_limit"] += 1
            self.address = ""  # not counted
            transport.abort()
            return
        gateway.per_address[self.address] += 1
        gateway.connections.add(self)
        gateway.counts["connections_accepted"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        gateway = self.gateway
        if self in gateway.connections:
            gateway.connections.discard(self)
            gateway.per_address[self.address] -= 1
            if gateway.per_address[self.address] <= 0:
                del gateway.per_address[self.address]
        if self.terminal_id is not None and gateway.by_terminal.get(self.terminal_id) is self:
            del gateway.by_terminal[self.terminal_id]
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.last_seen_s = time.monotonic()
        self.buffer += data
        frames, rest = split_stream(self.buffer)
        if len(rest) > self.gateway.settings.max_frame_bytes:
            self.refuse(
                Refusal(reason=RefusalReason.TRUNCATED, detail=f"no end of frame in {len(rest)} bytes"),
                rest[: self.gateway.settings.max_frame_bytes],
            )
            rest = b""
        self.buffer = bytearray(rest)
        for raw in frames:
            if self.transport is None:
                return
            self.handle(raw)

    # --- frames
    def handle(self, raw: bytes) -> None:
        counts = self.gateway.counts
        counts["frames"] += 1
        frame = decode_frame(raw)
        if isinstance(frame, Refusal):
            self.refuse(frame, raw)
            return
        header = frame.header
        self.edition, self.phone = header.edition, header.phone
        if header.split:
            self.pending, whole = add_package(self.pending, frame, time.monotonic())
            if whole is None:
                return
            if isinstance(whole, Refusal):
                self.refuse(whole, raw)
                return
            frame, header = whole, whole.header
        terminal_id = terminal_id_of(header.phone)
        if self.terminal_id is not None and terminal_id != self.terminal_id:
            self.refuse(
                Refusal(
                    reason=RefusalReason.WRONG_TERMINAL,
                    detail=f"connection authenticated as {self.terminal_id}, frame names {terminal_id}",
                    msg_id=header.msg_id,
                    phone=header.phone,
                    serial=header.serial,
                ),
                raw,
                answer=Result.FAILURE,
            )
            return
        message = decode_body(frame)
        if isinstance(message, Refusal):
            self.refuse(message, raw, answer=Result.BAD_MESSAGE)
            return
        if message is None:
            counts["unsupported"] += 1
            self.respond(header, Result.UNSUPPORTED)
            return
        self.dispatch(header, message, raw)

    def dispatch(self, header: Header, message: Body, raw: bytes) -> None:
        msg_id = header.msg_id
        if msg_id == MsgId.REGISTER:
            assert isinstance(message, Register)
            self.spawn(self.register(header, message))
        elif msg_id == MsgId.AUTHENTICATE:
            assert isinstance(message, Authenticate)
            self.spawn(self.authenticate(header, message))
        elif self.terminal_id is None:
            self.refuse(
                Refusal(
                    reason=RefusalReason.NOT_AUTHENTICATED,
                    detail=f"0x{msg_id:04x} before authentication",
                    msg_id=msg_id,
                    phone=header.phone,
                    serial=header.serial,
                ),
                raw,
                answer=Result.FAILURE,
            )
        elif msg_id in _REPORTS:
            self.gateway.bridge.forward(self.terminal_id, header, message, self.answered(header))
            if isinstance(message, LocationAnswer):
                kind, request_id = self.requests.pop(message.reply_serial, ("locate", ""))
                answer = {"request_id": request_id, "command": kind, **fix_payload(message.location)}
                self.gateway.bridge.answer(self.terminal_id, answer)
        elif msg_id == MsgId.HEARTBEAT:
            self.respond(header, Result.OK)
        elif msg_id == MsgId.UNREGISTER:
            self.spawn(self.unregister(header))
        elif msg_id == MsgId.TERMINAL_RESPONSE:
            assert isinstance(message, GeneralResponse)
            self.gateway.counts["terminal_responses"] += 1
            request = self.requests.pop(message.reply_serial, None)
            if request is not None:
                answer = {"request_id": request[1], "command": request[0], "result": message.result}
                self.gateway.bridge.answer(self.terminal_id, answer)
        else:
            self.respond(header, Result.UNSUPPORTED)

    def answered(self, header: Header) -> Callable[[bool], None]:
        def done(ok: bool) -> None:
            self.gateway.counts["reports_acked" if ok else "reports_failed"] += 1
            self.respond(header, Result.OK if ok else Result.FAILURE)

        return done

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        task.add_done_callback(_log_failure)

    async def register(self, header: Header, message: Register) -> None:
        terminal_id = terminal_id_of(header.phone)
        if not await self.gateway.registry.known(terminal_id):
            self.gateway.counts["registrations_refused"] += 1
            self.send(header, MsgId.REGISTER_ANSWER, RegisterAnswer(reply_serial=header.serial, result=4))
            return
        code = await self.gateway.registry.register(terminal_id, message)
        self.gateway.counts["registrations"] += 1
        answer = RegisterAnswer(reply_serial=header.serial, result=RegisterResult.OK, code=code)
        self.send(header, MsgId.REGISTER_ANSWER, answer)

    async def authenticate(self, header: Header, message: Authenticate) -> None:
        terminal_id = terminal_id_of(header.phone)
        ok = await self.gateway.registry.authenticate(terminal_id, message)
        if ok:
            self.terminal_id = terminal_id
            previous = self.gateway.by_terminal.get(terminal_id)
            self.gateway.by_terminal[terminal_id] = self
            if previous is not None and previous is not self:
                previous.close()  # the terminal came back on a new connection
            self.gateway.counts["authentications"] += 1
        else:
            self.gateway.counts["authentications_refused"] += 1
        self.respond(header, Result.OK if ok else Result.FAILURE)

    async def unregister(self, header: Header) -> None:
        assert self.terminal_id is not None
        await self.gateway.registry.unregister(self.terminal_id)
        self.gateway.counts["unregistrations"] += 1
        self.respond(header, Result.OK)
        self.terminal_id = None

    def refuse(self, refusal: Refusal, raw: bytes, answer: Result | None = None) -> None:
        self.gateway.counts[refusal.reason.value] += 1
        source = self.address
        terminal_id = self.terminal_id or (terminal_id_of(refusal.phone) if refusal.phone else None)
        self.gateway.registry.quarantine(
            refusal.reason, refusal.detail, raw, terminal_id=terminal_id, source=source
        )
        if answer is not None and refusal.msg_id is not None and refusal.phone is not None:
            header = Header(
                msg_id=refusal.msg_id,
                phone=refusal.phone,
                serial=refusal.serial or 0,
                edition=Edition.V2019 if len(refusal.phone) == 20 else Edition.V2013,
            )
            self.respond(header, answer)
        self.bad_frames += 1
        if self.bad_frames > self.gateway.settings.max_bad_frames:
            self.gateway.counts["closed_bad_frames"] += 1
            log.info("closing %s (%s): %d refused frames", self.address, self.terminal_id, self.bad_frames)
            self.close()

    # --- answers
    def respond(self, header: Header, result: Result) -> None:
        response = GeneralResponse(reply_serial=header.serial, reply_id=header.msg_id, result=result)
        self.send(header, MsgId.PLATFORM_RESPONSE, response)

    def send(self, to: Header, msg_id: int, message: Body) -> None:
        """A platform message to the terminal, in the edition and under the phone it used."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.serial = (self.serial + 1) & 0xFFFF
        header = Header(msg_id=msg_id, phone=to.phone, serial=self.serial, edition=to.edition)
        transport.write(encode_frame(header, encode_body(message, to.edition)))

    def command(self, msg_id: int, message: Body) -> int:
        """A platform command (downlink) on this authenticated connection; returns its serial."""
        self.send(Header(msg_id=msg_id, phone=self.phone, serial=0, edition=self.edition), msg_id, message)
        return self.serial

    def sweep_packages(self, now_s: float) -> None:
        settings = self.gateway.settings
        self.pending, ask, drop = overdue(
            self.pending, now_s, settings.package_timeout_s, settings.package_requests
        )
        for partial in ask:
            self.gateway.counts["packages_requested"] += 1
            request = ResendPackages(first_serial=partial.first.serial, numbers=partial.missing())
            self.send(partial.first, MsgId.RESEND_PACKAGES, request)
        for partial in drop:
            self.give_up(partial)

    def give_up(self, partial: Partial) -> None:
        detail = f"packages {list(partial.missing())} of {partial.count} never arrived"
        refusal = Refusal(
            reason=RefusalReason.TRUNCATED,
            detail=detail,
            msg_id=partial.first.msg_id,
            phone=partial.first.phone,
            serial=partial.first.serial,
        )
        self.refuse(refusal, b"".join(partial.parts[n] for n in sorted(partial.parts)))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("gateway task failed", exc_info=task.exception())


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE raised to the hard limit (each terminal holds a socket)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def run(settings: GatewaySettings, stop: asyncio.Event) -> dict[str, int]:
    raise_fd_limit()
    registry = Registry(settings.database_url)
    await registry.open()
    bridge = Bridge(settings)
    await bridge.start()
    gateway = Gateway(settings, registry, bridge)
    bridge.publisher.on_message = gateway.on_command
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Connection(gateway), settings.jt808_host, settings.jt808_port, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    log.info("jt808 gateway listening on %s:%d", settings.jt808_host, port)
    last_log = time.monotonic()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()
            now = time.monotonic()
            gateway.sweep(now)
            if now - last_log >= settings.log_every_s:
                last_log = now
                log.info("jt808 totals %s", orjson.dumps(gateway.totals()).decode())
    finally:
        server.close()
        for connection in list(gateway.connections):
            connection.close()
        await bridge.close()
        await registry.close()
    totals = gateway.totals()
    log.info("jt808 gateway stopped; totals %s", orjson.dumps(totals).decode())
    return totals


def serve(settings: GatewaySettings) -> dict[str, int]:
    """Run until SIGTERM / SIGINT, on uvloop where it is installed."""

    async def main() -> dict[str, int]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run(settings, stop)

    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())
