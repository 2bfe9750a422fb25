"""A JT/T 808 terminal over asyncio TCP: what the simulator, the benchmark and the tests drive the
gateway with. It registers, authenticates, reports and re-sends a report that was not answered."""

from __future__ import annotations

import asyncio
import contextlib

from gateway.jt808.frame import Edition, Frame, Header, Refusal, decode_frame, encode_frame, split_stream
from gateway.jt808.location import Location
from gateway.jt808.messages import (
    Authenticate,
    Body,
    Empty,
    GeneralResponse,
    LocationAnswer,
    MsgId,
    Register,
    RegisterAnswer,
    decode_body,
    encode_body,
)
from gateway.jt808.packages import split_frames


class TerminalError(Exception):
    """The gateway closed the connection or did not answer in time."""


class Terminal:
    def __init__(
        self, phone: str, edition: Edition = Edition.V2013, *, answer_timeout_s: float = 30.0
    ) -> None:
        self.phone = phone.rjust(20, "0") if edition is Edition.V2019 else phone
        self.edition = edition
        self.answer_timeout_s = answer_timeout_s
        self.serial = 0
        self.commands: asyncio.Queue[tuple[Header, Body | None]] = asyncio.Queue()
        self._waiting: dict[int, asyncio.Future[Body]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, host: str, port: int) -> None:
        self._reader, self._writer = await asyncio.open_connection(host, port)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self._task
        self._writer = self._task = None

    @property
    def connected(self) -> bool:
        return (
            self._writer is not None
            and not self._writer.is_closing()
            and self._task is not None
            and not self._task.done()
        )

    def next_serial(self) -> int:
        self.serial = (self.serial + 1) & 0xFFFF
        return self.serial

    def frame(self, msg_id: int, message: Body, serial: int | None = None) -> tuple[int, bytes]:
        serial = self.next_serial() if serial is None else serial
        header = Header(msg_id=msg_id, phone=self.phone, serial=serial, edition=self.edition)
        return serial, encode_frame(header, encode_body(message, self.edition))

    def send_raw(self, data: bytes) -> None:
        if self._writer is None:
            raise TerminalError("not connected")
        self._writer.write(data)

    async def request(self, msg_id: int, message: Body, *, serial: int | None = None) -> Body:
        """Send a message and wait for the platform's answer to its serial (0x8001 or 0x8100)."""
        serial, data = self.frame(msg_id, message, serial)
        return await self.send_and_wait(serial, data)

    async def send_and_wait(self, serial: int, data: bytes) -> Body:
        future: asyncio.Future[Body] = asyncio.get_running_loop().create_future()
        self._waiting[serial] = future
        try:
            self.send_raw(data)
            async with asyncio.timeout(self.answer_timeout_s):
                return await future
        except TimeoutError as error:
            raise TerminalError(f"no answer to serial {serial} within {self.answer_timeout_s} s") from error
        finally:
            self._waiting.pop(serial, None)

    async def request_split(self, msg_id: int, message: Body, package_bytes: int) -> Body:
        first = self.serial + 1
        header = Header(msg_id=msg_id, phone=self.phone, serial=first & 0xFFFF, edition=self.edition)
        frames = split_frames(header, encode_body(message, self.edition), package_bytes)
        self.serial = (first + len(frames) - 1) & 0xFFFF
        return await self.send_and_wait(first & 0xFFFF, b"".join(frames))

    async def register(self, plate: str = "苏D00001") -> RegisterAnswer:
        message = Register(
            province=32,
            city=400,
            maker="70001",
            model="FW-SIM",
            device_id=self.phone[-7:],
            plate_colour=1,
            plate=plate,
        )
        answer = await self.request(MsgId.REGISTER, message)
        assert isinstance(answer, RegisterAnswer)
        return answer

    async def authenticate(self, code: str) -> GeneralResponse:
        message = Authenticate(code=code, imei="86" + self.phone[-13:].rjust(13, "0"), firmware="fw-sim-1")
        answer = await self.request(MsgId.AUTHENTICATE, message)
        assert isinstance(answer, GeneralResponse)
        return answer

    async def heartbeat(self) -> GeneralResponse:
        answer = await self.request(MsgId.HEARTBEAT, Empty())
        assert isinstance(answer, GeneralResponse)
        return answer

    def answer_query(self, query: Header, location: Location) -> None:
        """Answer a 0x8201 position query with 0x0201."""
        _, data = self.frame(
            MsgId.LOCATION_ANSWER, LocationAnswer(reply_serial=query.serial, location=location)
        )
        self.send_raw(data)

    async def _read(self) -> None:
        assert self._reader is not None
        buffer = b""
        while True:
            try:
                data = await self._reader.read(65_536)
            except OSError:  # reset by the gateway (killed): the same as a close
                data = b""
            if not data:
                if self._writer is not None:
                    self._writer.close()
                for future in self._waiting.values():
                    if not future.done():
                        future.set_exception(TerminalError("the gateway closed the connection"))
                return
            frames, buffer = split_stream(buffer + data)
            for raw in frames:
                frame = decode_frame(raw)
                if isinstance(frame, Frame):
                    self._on_frame(frame)

    def _on_frame(self, frame: Frame) -> None:
        message = decode_body(frame)
        if isinstance(message, GeneralResponse | RegisterAnswer):
            future = self._waiting.get(message.reply_serial)
            if future is not None and not future.done():
                future.set_result(message)
            return
        self.commands.put_nowait((frame.header, None if isinstance(message, Refusal) else message))


async def connect_and_authenticate(terminal: Terminal, host: str, port: int, code: str | None) -> str:
    """(Re)connect, register when there is no code yet, authenticate; retries until it works.
    Returns the auth code."""
    delay_s = 0.05
    while True:
        try:
            await terminal.close()
            await terminal.connect(host, port)
            if code is None:
                answer = await terminal.register()
                if answer.result != 0:
                    raise TerminalError(f"registration refused: result {answer.result}")
                code = answer.code
            response = await terminal.authenticate(code)
            if response.result != 0:
                code = None  # the code is no longer valid: register again
                raise TerminalError("authentication refused")
            return code
        except (OSError, TerminalError):
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 1.0)


async def report_reliably(
    terminal: Terminal, host: str, port: int, code: str, *, msg_id: int, message: Body
) -> tuple[str, int]:
    """Send a report until the gateway answers it 0x8001 success, reconnecting as a terminal does.
    Returns the (possibly new) auth code and how many times the report was re-sent."""
    resent = 0
    while True:
        try:
            if not terminal.connected:
                code = await connect_and_authenticate(terminal, host, port, code)
            answer = await terminal.request(msg_id, message)
            if isinstance(answer, GeneralResponse) and answer.result == 0:
                return code, resent
        except (OSError, TerminalError):
            await terminal.close()
        resent += 1
        await asyncio.sleep(0.05)
