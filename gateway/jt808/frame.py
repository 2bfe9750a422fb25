"""JT/T 808 framing: 0x7e delimiters, 0x7d escaping, the XOR check code and both editions' headers.

Pure and total: ``decode_frame`` never raises; a frame that cannot be read is a ``Refusal`` naming why.

Header (big-endian):
  2013: message id (2), body attributes (2), phone (6 BCD), serial (2), [package count (2), number (2)]
  2019: message id (2), body attributes (2), protocol version (1), phone (10 BCD), serial (2), [count, number]
Body attributes: bits 0-9 body length, 10-12 encryption (bit 10 RSA), 13 sub-package, 14 version flag (2019).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

FLAG = 0x7E
ESCAPE = 0x7D
_LENGTH_MASK = 0x03FF
_ENCRYPTION_SHIFT = 10
_SPLIT_BIT = 1 << 13
_VERSION_BIT = 1 << 14
MAX_BODY_BYTES = _LENGTH_MASK


class Edition(StrEnum):
    V2013 = "2013"
    V2019 = "2019"


class RefusalReason(StrEnum):
    """Why a frame or message was refused; each value is an ingest.reasons.Reason (quarantine reason)."""

    TRUNCATED = "jt808_truncated"
    BAD_ESCAPE = "jt808_bad_escape"
    BAD_CHECK = "jt808_bad_check"
    BAD_LENGTH = "jt808_bad_length"
    BAD_BCD = "jt808_bad_bcd"
    ENCRYPTED = "jt808_encrypted"
    BAD_BODY = "jt808_bad_body"
    NOT_AUTHENTICATED = "jt808_not_authenticated"
    WRONG_TERMINAL = "jt808_wrong_terminal"


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A frame (or a message in it) that cannot be accepted, and why."""

    reason: RefusalReason
    detail: str
    msg_id: int | None = None
    phone: str | None = None
    serial: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    msg_id: int
    phone: str  # the BCD digits as written (12 in 2013, 20 in 2019)
    serial: int
    edition: Edition = Edition.V2013
    protocol_version: int = 1  # 2019 only
    encryption: int = 0
    package_count: int = 0  # 0: not split
    package_number: int = 0  # 1-based when split

    @property
    def split(self) -> bool:
        return self.package_count > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    header: Header
    body: bytes


def escape(data: bytes) -> bytes:
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes) -> bytes | Refusal:
    if ESCAPE not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte == ESCAPE:
            follower = data[i + 1] if i + 1 < n else None
            if follower == 0x01:
                out.append(ESCAPE)
            elif follower == 0x02:
                out.append(FLAG)
            else:
                shown = "end of frame" if follower is None else f"0x{follower:02x}"
                return Refusal(reason=RefusalReason.BAD_ESCAPE, detail=f"0x7d followed by {shown} at {i}")
            i += 2
        else:
            out.append(byte)
            i += 1
    return bytes(out)


def check_code(data: bytes) -> int:
    """XOR of all bytes, folded as one integer (a few big-int steps instead of a loop per byte)."""
    value, size = int.from_bytes(data), len(data)
    while size > 1:
        half = size // 2
        value = (value >> (8 * half)) ^ (value & ((1 << (8 * half)) - 1))
        size -= half
    return value


def bcd_digits(data: bytes) -> str | None:
    text = data.hex()
    return text if text.isdigit() else None


def bcd_bytes(digits: str, size: int) -> bytes:
    return bytes.fromhex(digits.rjust(size * 2, "0"))


def terminal_id_of(phone: str) -> str:
    """The registry's terminal id for a phone number: a 2019 phone's padding zeros are dropped down to the
    2013 width (12 digits), so one terminal has one id under either edition."""
    return phone[-12:] if len(phone) > 12 and set(phone[:-12]) <= {"0"} else phone


def split_stream(buffer: bytes | bytearray) -> tuple[list[bytes], bytes]:
    """Complete frames (escaped, without their 0x7e) found in ``buffer``, and the unfinished rest.

    Bytes before the first 0x7e are dropped (noise between frames); consecutive 0x7e are one delimiter."""
    frames: list[bytes] = []
    start = buffer.find(FLAG)
    if start < 0:
        return frames, b""
    while True:
        end = buffer.find(FLAG, start + 1)
        if end < 0:
            return frames, bytes(buffer[start:])
        if end > start + 1:
            frames.append(bytes(buffer[start + 1 : end]))
        start = end


def _header_fields(data: bytes) -> Header | Refusal:
    msg_id = int.from_bytes(data[0:2])
    attributes = int.from_bytes(data[2:4])
    version_flag = bool(attributes & _VERSION_BIT)
    phone_at, phone_size = (5, 10) if version_flag else (4, 6)
    fixed = phone_at + phone_size + 2
    split = bool(attributes & _SPLIT_BIT)
    size = fixed + (4 if split else 0)
    if len(data) < size:
        return Refusal(
            reason=RefusalReason.TRUNCATED,
            detail=f"{len(data)} bytes cannot hold a {size}-byte header",
            msg_id=msg_id,
        )
    phone = bcd_digits(data[phone_at : phone_at + phone_size])
    serial = int.from_bytes(data[fixed - 2 : fixed])
    if phone is None:
        return Refusal(
            reason=RefusalReason.BAD_BCD,
            detail=f"phone {data[phone_at : phone_at + phone_size].hex()} is not BCD",
            msg_id=msg_id,
            serial=serial,
        )
    count = int.from_bytes(data[fixed : fixed + 2]) if split else 0
    number = int.from_bytes(data[fixed + 2 : fixed + 4]) if split else 0
    header = Header(
        msg_id=msg_id,
        phone=phone,
        serial=serial,
        edition=Edition.V2019 if version_flag else Edition.V2013,
        protocol_version=data[4] if version_flag else 1,
        encryption=(attributes >> _ENCRYPTION_SHIFT) & 0x7,
        package_count=count,
        package_number=number,
    )
    if split and not 1 <= number <= count:
        return _refuse(header, RefusalReason.BAD_LENGTH, f"package {number} of {count}")
    return header


def _refuse(header: Header, reason: RefusalReason, detail: str) -> Refusal:
    return Refusal(
        reason=reason, detail=detail, msg_id=header.msg_id, phone=header.phone, serial=header.serial
    )


def decode_frame(raw: bytes) -> Frame | Refusal:
    """One frame, escaped, with or without its 0x7e delimiters."""
    if raw[:1] == b"\x7e":
        raw = raw[1:]
    if raw[-1:] == b"\x7e":
        raw = raw[:-1]
    if FLAG in raw:
        return Refusal(
            reason=RefusalReason.BAD_ESCAPE, detail=f"unescaped 0x7e inside the frame at {raw.index(FLAG)}"
        )
    data = unescape(raw)
    if isinstance(data, Refusal):
        return data
    if len(data) < 5:
        return Refusal(reason=RefusalReason.TRUNCATED, detail=f"{len(data)} bytes is no frame")
    content, code = data[:-1], data[-1]
    header = _header_fields(content)
    if isinstance(header, Refusal):
        return header
    expected = check_code(content)
    if code != expected:
        return _refuse(header, RefusalReason.BAD_CHECK, f"check code 0x{code:02x}, computed 0x{expected:02x}")
    length = int.from_bytes(content[2:4]) & _LENGTH_MASK
    header_size = (17 if header.edition is Edition.V2019 else 12) + (4 if header.split else 0)
    body = content[header_size:]
    if len(body) != length:
        return _refuse(
            header, RefusalReason.BAD_LENGTH, f"body attributes say {length} bytes, frame holds {len(body)}"
        )
    if header.encryption & 0x1:
        return _refuse(header, RefusalReason.ENCRYPTED, "body is encrypted (RSA); the gateway holds no key")
    if header.encryption:
        return _refuse(header, RefusalReason.ENCRYPTED, f"unknown encryption bits {header.encryption:03b}")
    return Frame(header=header, body=body)


def encode_frame(header: Header, body: bytes) -> bytes:
    """The frame on the wire: delimiters, escaped content and check code."""
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"a body of {len(body)} bytes must be split into packages")
    attributes = len(body) | (header.encryption << _ENCRYPTION_SHIFT)
    if header.split:
        attributes |= _SPLIT_BIT
    parts = [header.msg_id.to_bytes(2), b""]
    if header.edition is Edition.V2019:
        attributes |= _VERSION_BIT
        parts.append(bytes((header.protocol_version,)) + bcd_bytes(header.phone, 10))
    else:
        parts.append(bcd_bytes(header.phone, 6))
    parts[1] = attributes.to_bytes(2)
    parts.append(header.serial.to_bytes(2))
    if header.split:
        parts.append(header.package_count.to_bytes(2) + header.package_number.to_bytes(2))
    parts.append(body)
    content = b"".join(parts)
    return b"\x7e" + escape(content + bytes((check_code(content),))) + b"\x7e"
