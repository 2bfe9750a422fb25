"""Many JT/T 808 terminals in one process, lean (a Protocol per socket, frames encoded up front), for the
benchmark: ``python -m gateway.jt808.load --port P --first-phone N --terminals T --reports R --window W``
connects T terminals, authenticates each with its pre-issued code, waits until all are in, then each
keeps W reports in flight until R are answered 0x8001. Prints one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import cast

import orjson

from gateway.jt808.frame import Frame, Header, decode_frame, encode_frame, split_stream
from gateway.jt808.location import location_of
from gateway.jt808.messages import Authenticate, GeneralResponse, MsgId, decode_body, encode_body


def bench_code(terminal_id: str) -> str:
    """The auth code the benchmark issues to a terminal up front."""
    return f"b{terminal_id}"


def report_frames(phone: str, reports: int, index: int, end: datetime) -> list[bytes]:
    frames = []
    for r in range(reports):
        location = location_of(
            lon=119.8 + (index % 100) * 0.004 + r * 1e-4,
            lat=31.7 + (index // 100) * 0.002,
            time=end - timedelta(seconds=10 * (reports - 1 - r)),
            speed_kmh=3.6,
            mileage_km=1000 + r * 0.01,
            satellites=10,
        )
        header = Header(msg_id=MsgId.LOCATION, phone=phone, serial=r + 2)
        frames.append(encode_frame(header, encode_body(location)))
    return frames


class LoadTerminal(asyncio.Protocol):
    def __init__(self, phone: str, frames: list[bytes], window: int, run: Run) -> None:
        self.phone, self.frames, self.window, self.run = phone, frames, window, run
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.next = 0
        self.acked = 0
        self.authenticated = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = own = cast(asyncio.Transport, transport)
        auth = Header(msg_id=MsgId.AUTHENTICATE, phone=self.phone, serial=1)
        own.write(encode_frame(auth, encode_body(Authenticate(code=bench_code(self.phone)))))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.authenticated.done():
            self.authenticated.set_exception(ConnectionError(f"{self.phone}: connection lost"))
        self.run.lost_connections += 1
        self.transport = None

    def start(self) -> None:
        self.send(self.window)

    def send(self, n: int) -> None:
        if self.transport is None:
            return
        chunk = self.frames[self.next : self.next + n]
        self.next += len(chunk)
        self.run.sent += len(chunk)
        if chunk:
            self.transport.write(b"".join(chunk))

    def data_received(self, data: bytes) -> None:
        frames, self.buffer = split_stream(self.buffer + data)
        for raw in frames:
            frame = decode_frame(raw)
            if not isinstance(frame, Frame):
                continue
            answer = decode_body(frame)
            if not isinstance(answer, GeneralResponse):
                continue
            if answer.reply_id == MsgId.AUTHENTICATE:
                if not self.authenticated.done():
                    self.authenticated.set_result(answer.result == 0)
            elif answer.reply_id == MsgId.LOCATION and answer.result == 0:
                self.acked += 1
                self.run.acked += 1
                self.send(1)
                if self.acked == len(self.frames):
                    self.run.finished_terminal()


class Run:
    def __init__(self, terminals: int) -> None:
        self.sent = self.acked = self.lost_connections = 0
        self.remaining = terminals
        self.done = asyncio.get_running_loop().create_future()

    def finished_terminal(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 and not self.done.done():
            self.done.set_result(None)


async def drive(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    end = datetime.fromtimestamp(args.end_s, UTC)
    phones = [f"{args.first_phone + i:012d}" for i in range(args.terminals)]
    run = Run(args.terminals)
    frames = [report_frames(phone, args.reports, i, end) for i, phone in enumerate(phones)]
    gate = asyncio.Semaphore(500)

    async def connect(i: int) -> LoadTerminal:
        async with gate:
            for attempt in range(20):
                try:
                    _, protocol = await loop.create_connection(
                        lambda: LoadTerminal(phones[i], frames[i], args.window, run), args.host, args.port
                    )
                    if not await protocol.authenticated:
                        raise SystemExit(f"{phones[i]}: authentication refused")
                    return protocol
                except (OSError, ConnectionError):
                    await asyncio.sleep(0.1 * (attempt + 1))
            raise SystemExit(f"{phones[i]}: could not connect")

    started = time.perf_counter()
    terminals = await asyncio.gather(*(connect(i) for i in range(args.terminals)))
    connect_s = time.perf_counter() - started
    connections = sum(1 for t in terminals if t.transport is not None)
    started = time.perf_counter()
    for terminal in terminals:
        terminal.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.done, args.timeout_s)
    seconds = time.perf_counter() - started
    lost_during_run = run.lost_connections
    for terminal in terminals:
        if terminal.transport is not None:
            terminal.transport.abort()  # no TIME_WAIT left holding loopback ports
    return {
        "connections": connections,
        "frames_sent": run.sent,
        "frames_acked": run.acked,
        "seconds": round(seconds, 3),
        "frames_per_s": round(run.acked / seconds, 1) if seconds > 0 else 0.0,
        "connect_s": round(connect_s, 2),
        "connections_lost": lost_during_run,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-phone", type=int, required=True)
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--window", type=int, default=1)
    parser.add_argument("--end-s", type=float, default=time.time() - 60)
    parser.add_argument("--timeout-s", type=float, default=600)
    args = parser.parse_args()
    from gateway.jt808.server import raise_fd_limit

    raise_fd_limit()
    try:
        import uvloop

        result = uvloop.run(drive(args))
    except ImportError:
        result = asyncio.run(drive(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
