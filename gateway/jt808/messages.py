"""JT/T 808 message bodies, terminal → platform and platform → terminal. Pure; decoding never raises.

Terminal: 0x0001 general response, 0x0002 heartbeat, 0x0003 unregister, 0x0100 register, 0x0102
authenticate, 0x0200 location, 0x0201 position-query answer, 0x0704 batch / blind-area upload.
Platform: 0x8001 general response, 0x8003 re-send packages, 0x8100 register answer, 0x8201 position
query, 0x8202 temporary tracking. Strings are GBK.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gateway.jt808.frame import Edition, Frame, Header, Refusal, RefusalReason, encode_frame
from gateway.jt808.location import Location, decode_location, encode_location


class MsgId(IntEnum):
    TERMINAL_RESPONSE = 0x0001
    HEARTBEAT = 0x0002
    UNREGISTER = 0x0003
    REGISTER = 0x0100
    AUTHENTICATE = 0x0102
    LOCATION = 0x0200
    LOCATION_ANSWER = 0x0201
    LOCATION_BATCH = 0x0704
    PLATFORM_RESPONSE = 0x8001
    RESEND_PACKAGES = 0x8003
    REGISTER_ANSWER = 0x8100
    LOCATION_QUERY = 0x8201
    TRACKING = 0x8202


class Result(IntEnum):
    """0x8001 result."""

    OK = 0
    FAILURE = 1
    BAD_MESSAGE = 2
    UNSUPPORTED = 3
    ALARM_ACKNOWLEDGED = 4


class RegisterResult(IntEnum):
    """0x8100 result."""

    OK = 0
    VEHICLE_TAKEN = 1
    NO_SUCH_VEHICLE = 2
    TERMINAL_TAKEN = 3
    NO_SUCH_TERMINAL = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Empty:
    """0x0002 heartbeat, 0x0003 unregister, 0x8201 position query."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneralResponse:
    """0x0001 (terminal) and 0x8001 (platform)."""

    reply_serial: int
    reply_id: int
    result: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    province: int
    city: int
    maker: str
    model: str
    device_id: str
    plate_colour: int
    plate: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate:
    code: str
    imei: str = ""  # 2019
    firmware: str = ""  # 2019


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationBatch:
    """0x0704; kind 0 a normal batch, 1 a blind-area back-fill."""

    kind: int
    locations: tuple[Location, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationAnswer:
    """0x0201: the answer to a 0x8201 query."""

    reply_serial: int
    location: Location


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterAnswer:
    reply_serial: int
    result: int
    code: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResendPackages:
    first_serial: int
    numbers: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tracking:
    interval_s: int
    validity_s: int


Body = (
    Empty
    | GeneralResponse
    | Register
    | Authenticate
    | Location
    | LocationBatch
    | LocationAnswer
    | RegisterAnswer
    | ResendPackages
    | Tracking
)

# (maker, model, device id) field widths of 0x0100 per edition
_REGISTER_WIDTHS = {Edition.V2013: (5, 20, 7), Edition.V2019: (11, 30, 30)}


def _gbk(data: bytes) -> str | None:
    try:
        return data.rstrip(b"\x00").decode("gbk")
    except UnicodeDecodeError:
        return None


def _field(text: str, width: int) -> bytes:
    return text.encode("gbk")[:width].ljust(width, b"\x00")


def _decode_register(body: bytes, edition: Edition) -> Register | str:
    maker_n, model_n, device_n = _REGISTER_WIDTHS[edition]
    fixed = 4 + maker_n + model_n + device_n + 1
    if len(body) < fixed:
        return f"register body of {len(body)} bytes, at least {fixed} needed"
    at = 4
    texts: list[str] = []
    for width in (maker_n, model_n, device_n):
        text = _gbk(body[at : at + width])
        if text is None:
            return f"register field at byte {at} is not GBK"
        texts.append(text)
        at += width
    plate = _gbk(body[fixed:])
    if plate is None:
        return "plate is not GBK"
    return Register(
        province=int.from_bytes(body[0:2]),
        city=int.from_bytes(body[2:4]),
        maker=texts[0],
        model=texts[1],
        device_id=texts[2],
        plate_colour=body[fixed - 1],
        plate=plate,
    )


def _decode_authenticate(body: bytes, edition: Edition) -> Authenticate | str:
    if edition is Edition.V2013:
        code = _gbk(body)
        return "auth code is not GBK" if code is None else Authenticate(code=code)
    if not body or len(body) < 1 + body[0] + 35:
        return f"2019 authentication body of {len(body)} bytes is short"
    size = body[0]
    code, imei, firmware = (
        _gbk(body[1 : 1 + size]),
        _gbk(body[1 + size : 16 + size]),
        _gbk(body[16 + size : 36 + size]),
    )
    if code is None or imei is None or firmware is None:
        return "authentication text is not GBK"
    return Authenticate(code=code, imei=imei, firmware=firmware)


def _decode_batch(body: bytes) -> LocationBatch | str:
    if len(body) < 3:
        return f"batch body of {len(body)} bytes"
    count, kind = int.from_bytes(body[0:2]), body[2]
    locations: list[Location] = []
    at = 3
    for k in range(count):
        if at + 2 > len(body):
            return f"batch says {count} reports, body ends after {k}"
        size = int.from_bytes(body[at : at + 2])
        if at + 2 + size > len(body):
            return f"batch report {k} says {size} bytes, {len(body) - at - 2} left"
        location = decode_location(body[at + 2 : at + 2 + size])
        if isinstance(location, str):
            return f"batch report {k}: {location}"
        locations.append(location)
        at += 2 + size
    if at != len(body):
        return f"{len(body) - at} bytes after the batch's {count} reports"
    return LocationBatch(kind=kind, locations=tuple(locations))


def _decode_general(body: bytes) -> GeneralResponse | str:
    if len(body) != 5:
        return f"general response of {len(body)} bytes, 5 expected"
    return GeneralResponse(
        reply_serial=int.from_bytes(body[0:2]), reply_id=int.from_bytes(body[2:4]), result=body[4]
    )


def _decode_answer(body: bytes) -> LocationAnswer | str:
    location = decode_location(body[2:])
    if isinstance(location, str):
        return location
    return LocationAnswer(reply_serial=int.from_bytes(body[0:2]), location=location)


def _decode_register_answer(body: bytes) -> RegisterAnswer | str:
    if len(body) < 3:
        return f"register answer of {len(body)} bytes"
    code = _gbk(body[3:])
    if code is None:
        return "auth code is not GBK"
    return RegisterAnswer(reply_serial=int.from_bytes(body[0:2]), result=body[2], code=code)


def _decode_resend(body: bytes, edition: Edition) -> ResendPackages | str:
    count_n = 2 if edition is Edition.V2019 else 1
    if len(body) < 2 + count_n:
        return f"re-send request of {len(body)} bytes"
    count = int.from_bytes(body[2 : 2 + count_n])
    ids = body[2 + count_n :]
    if len(ids) != 2 * count:
        return f"re-send request says {count} packages, holds {len(ids) // 2}"
    numbers = tuple(int.from_bytes(ids[i : i + 2]) for i in range(0, len(ids), 2))
    return ResendPackages(first_serial=int.from_bytes(body[0:2]), numbers=numbers)


def _decode_tracking(body: bytes) -> Tracking | str:
    if len(body) != 6:
        return f"tracking body of {len(body)} bytes, 6 expected"
    return Tracking(interval_s=int.from_bytes(body[0:2]), validity_s=int.from_bytes(body[2:6]))


def _decode_empty(body: bytes) -> Empty | str:
    return Empty() if not body else f"{len(body)} unexpected body bytes"


def decode_body(frame: Frame) -> Body | Refusal | None:
    """The frame's message; None for a message id this codec does not know; a Refusal if it is malformed."""
    edition, body, msg_id = frame.header.edition, frame.body, frame.header.msg_id
    decoded: Body | str
    if msg_id == MsgId.LOCATION:
        decoded = decode_location(body)
    elif msg_id == MsgId.LOCATION_BATCH:
        decoded = _decode_batch(body)
    elif msg_id in (MsgId.HEARTBEAT, MsgId.UNREGISTER, MsgId.LOCATION_QUERY):
        decoded = _decode_empty(body)
    elif msg_id in (MsgId.TERMINAL_RESPONSE, MsgId.PLATFORM_RESPONSE):
        decoded = _decode_general(body)
    elif msg_id == MsgId.REGISTER:
        decoded = _decode_register(body, edition)
    elif msg_id == MsgId.AUTHENTICATE:
        decoded = _decode_authenticate(body, edition)
    elif msg_id == MsgId.LOCATION_ANSWER:
        decoded = _decode_answer(body)
    elif msg_id == MsgId.REGISTER_ANSWER:
        decoded = _decode_register_answer(body)
    elif msg_id == MsgId.RESEND_PACKAGES:
        decoded = _decode_resend(body, edition)
    elif msg_id == MsgId.TRACKING:
        decoded = _decode_tracking(body)
    else:
        return None
    if isinstance(decoded, str):
        h = frame.header
        return Refusal(
            reason=RefusalReason.BAD_BODY,
            detail=f"0x{msg_id:04x}: {decoded}",
            msg_id=msg_id,
            phone=h.phone,
            serial=h.serial,
        )
    return decoded


def encode_body(message: Body, edition: Edition = Edition.V2013) -> bytes:
    if isinstance(message, Location):
        return encode_location(message)
    if isinstance(message, Empty):
        return b""
    if isinstance(message, GeneralResponse):
        return message.reply_serial.to_bytes(2) + message.reply_id.to_bytes(2) + bytes((message.result,))
    if isinstance(message, Register):
        maker_n, model_n, device_n = _REGISTER_WIDTHS[edition]
        return b"".join(
            (
                message.province.to_bytes(2),
                message.city.to_bytes(2),
                _field(message.maker, maker_n),
                _field(message.model, model_n),
                _field(message.device_id, device_n),
                bytes((message.plate_colour,)),
                message.plate.encode("gbk"),
            )
        )
    if isinstance(message, Authenticate):
        code = message.code.encode("gbk")
        if edition is Edition.V2013:
            return code
        return bytes((len(code),)) + code + _field(message.imei, 15) + _field(message.firmware, 20)
    if isinstance(message, LocationBatch):
        reports = [encode_location(location) for location in message.locations]
        head = len(reports).to_bytes(2) + bytes((message.kind,))
        return head + b"".join(len(r).to_bytes(2) + r for r in reports)
    if isinstance(message, LocationAnswer):
        return message.reply_serial.to_bytes(2) + encode_location(message.location)
    if isinstance(message, RegisterAnswer):
        return message.reply_serial.to_bytes(2) + bytes((message.result,)) + message.code.encode("gbk")
    if isinstance(message, ResendPackages):
        count = len(message.numbers).to_bytes(2 if edition is Edition.V2019 else 1)
        return message.first_serial.to_bytes(2) + count + b"".join(n.to_bytes(2) for n in message.numbers)
    return message.interval_s.to_bytes(2) + message.validity_s.to_bytes(4)


def encode_message(
    msg_id: int, phone: str, serial: int, message: Body, edition: Edition = Edition.V2013
) -> bytes:
    """A whole unsplit frame for ``message``."""
    header = Header(msg_id=msg_id, phone=phone, serial=serial, edition=edition)
    return encode_frame(header, encode_body(message, edition))
