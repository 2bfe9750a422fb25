"""The JT/T 808 codec against frames built byte by byte from the standard's tables (2013 and 2019)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.jt808.decode import decode_lines
from gateway.jt808.frame import (
    Edition,
    Frame,
    Header,
    Refusal,
    RefusalReason,
    decode_frame,
    split_stream,
    terminal_id_of,
)
from gateway.jt808.location import Location, decode_location, location_of
from gateway.jt808.messages import (
    Authenticate,
    Empty,
    GeneralResponse,
    LocationAnswer,
    LocationBatch,
    MsgId,
    Register,
    RegisterAnswer,
    ResendPackages,
    Tracking,
    decode_body,
    encode_body,
    encode_message,
)
from gateway.jt808.packages import Pending, add_package, overdue, split_frames

CHINA = timezone(timedelta(hours=8))
PHONE_2013 = "013912345678"
PHONE_2019 = "00000000013912345678"


def xor(data: bytes) -> int:
    code = 0
    for b in data:
        code ^= b
    return code


def wire(content_hex: str) -> bytes:
    """A frame as the standard draws it: content, its XOR, escaped, between 0x7e."""
    content = bytes.fromhex(content_hex.replace(" ", ""))
    inner = content + bytes((xor(content),))
    return b"\x7e" + inner.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02") + b"\x7e"


# 0x0200 body: alarm 0x00000001 (emergency), status 0x0000000F (ACC, positioned, south, west),
# lat 31.810000° = 0x01E561D0, lon 119.970000° = 0x072698D0, altitude 12 m, speed 42.5 km/h (425),
# direction 90°, time 26-12-07 11:00:05 (UTC+8), items 0x01 mileage 1234.5 km (12345), 0x02 fuel 45.6 L
# (456), 0x03 recorder 42.0 km/h (420), 0x25 signals 0x00000003, 0x30 signal 25, 0x31 satellites 11,
# vendor 0xE1 two bytes 0xBEEF, unknown 0x66 one byte 0x01.
LOCATION_BODY = (
    "00000001 0000000F 01E561D0 072698D0 000C 01A9 005A 261207110005"
    " 01 04 00003039 02 02 01C8 03 02 01A4 25 04 00000003 30 01 19 31 01 0B E1 02 BEEF 66 01 01"
)


def body_len(body_hex: str) -> str:
    return f"{len(bytes.fromhex(body_hex.replace(' ', ''))):04x}"


def header_2013(msg_id: str, body_hex: str, serial: str = "0007") -> str:
    return f"{msg_id} {body_len(body_hex)} {PHONE_2013} {serial} {body_hex}"


def header_2019(msg_id: str, body_hex: str, serial: str = "0007") -> str:
    attributes = int(body_len(body_hex), 16) | 0x4000
    return f"{msg_id} {attributes:04x} 01 {PHONE_2019} {serial} {body_hex}"


def decoded(raw: bytes) -> tuple[Frame, object]:
    frame = decode_frame(raw)
    assert isinstance(frame, Frame), frame
    return frame, decode_body(frame)


def test_location_2013_golden() -> None:
    frame, message = decoded(wire(header_2013("0200", LOCATION_BODY)))
    assert frame.header == Header(msg_id=0x0200, phone=PHONE_2013, serial=7, edition=Edition.V2013)
    assert isinstance(message, Location)
    assert (message.lon, message.lat) == (-119.97, -31.81)
    assert message.altitude_m == 12 and message.speed_kmh == 42.5 and message.direction_deg == 90
    assert message.time == datetime(2026, 12, 7, 11, 0, 5, tzinfo=CHINA)
    assert message.time_ms == int(datetime(2026, 12, 7, 3, 0, 5, tzinfo=UTC).timestamp() * 1000)
    assert message.acc and message.positioned
    assert message.alarms() == ["emergency"]
    assert message.status()["south"] is True and message.status()["load"] == "empty"
    assert message.item_values() == {
        "mileage_km": 1234.5,
        "fuel_l": 45.6,
        "recorder_speed_kmh": 42.0,
        "vehicle_signals": 3,
        "signal_strength": 25,
        "satellites": 11,
        "0xe1": "beef",
        "0x66": "01",
    }


def test_location_2019_golden() -> None:
    frame, message = decoded(wire(header_2019("0200", LOCATION_BODY)))
    assert frame.header.edition is Edition.V2019
    assert frame.header.protocol_version == 1
    assert frame.header.phone == PHONE_2019
    assert terminal_id_of(frame.header.phone) == PHONE_2013 == terminal_id_of(PHONE_2013)
    assert isinstance(message, Location) and message.item("mileage_km") == 1234.5


def test_every_alarm_and_status_bit_named() -> None:
    body = (
        bytes.fromhex("FFFFFFFF 00000300".replace(" ", ""))
        + bytes.fromhex(LOCATION_BODY.replace(" ", ""))[8:28]
    )
    location = decode_location(body)
    assert isinstance(location, Location)
    assert {"emergency", "power_cut", "gnss_antenna_cut", "illegal_ignition", "illegal_displacement"} <= set(
        location.alarms()
    )
    assert {"collision", "rollover"} <= set(location.alarms())
    assert location.status()["load"] == "full" and location.acc is False


@pytest.mark.parametrize(
    ("msg_id", "body_hex", "edition", "expected"),
    [
        ("0002", "", Edition.V2013, Empty()),
        ("0003", "", Edition.V2019, Empty()),
        ("8201", "", Edition.V2013, Empty()),
        ("0001", "0009 8300 00", Edition.V2013, GeneralResponse(reply_serial=9, reply_id=0x8300, result=0)),
        ("8001", "0007 0200 00", Edition.V2013, GeneralResponse(reply_serial=7, reply_id=0x0200, result=0)),
        ("8100", "0007 00 61626364", Edition.V2013, RegisterAnswer(reply_serial=7, result=0, code="abcd")),
        ("8100", "0007 04", Edition.V2013, RegisterAnswer(reply_serial=7, result=4, code="")),
        ("0102", "61626364", Edition.V2013, Authenticate(code="abcd")),
        ("8202", "000A 0000003C", Edition.V2013, Tracking(interval_s=10, validity_s=60)),
        ("8003", "0010 02 0002 0004", Edition.V2013, ResendPackages(first_serial=16, numbers=(2, 4))),
        ("8003", "0010 0002 0002 0004", Edition.V2019, ResendPackages(first_serial=16, numbers=(2, 4))),
    ],
)
def test_messages_golden(msg_id: str, body_hex: str, edition: Edition, expected: object) -> None:
    head = header_2019 if edition is Edition.V2019 else header_2013
    raw = wire(head(msg_id, body_hex))
    frame, message = decoded(raw)
    assert message == expected
    assert isinstance(
        message, Empty | GeneralResponse | RegisterAnswer | Authenticate | Tracking | ResendPackages
    )
    assert encode_message(int(msg_id, 16), frame.header.phone, 7, message, edition) == raw


def test_register_2013_golden() -> None:
    body = (
        "0020"  # province 32 (Jiangsu)
        "0190"  # city 400
        "3730303031"  # maker "70001" (5)
        + "4a543830382d4d31".ljust(40, "0")  # model "JT808-M1" (20)
        + "4b313233343536"  # device id "K123456" (7)
        "01"  # plate colour blue
        "cbd544313233343536"  # plate "苏D123456" in GBK
    )
    _, message = decoded(wire(header_2013("0100", body)))
    assert message == Register(
        province=32,
        city=400,
        maker="70001",
        model="JT808-M1",
        device_id="K123456",
        plate_colour=1,
        plate="苏D123456",
    )
    assert isinstance(message, Register)
    assert encode_body(message, Edition.V2013) == bytes.fromhex(body)


def test_register_and_authenticate_2019_golden() -> None:
    body = (
        "0020"
        "0190"
        + "3730303031".ljust(22, "0")  # maker (11)
        + "4a543830382d4d31".ljust(60, "0")  # model (30)
        + "4b313233343536".ljust(60, "0")  # device id (30)
        + "01"
        + "cbd544313233343536"
    )
    _, message = decoded(wire(header_2019("0100", body)))
    assert isinstance(message, Register) and message.device_id == "K123456" and message.plate == "苏D123456"
    imei = "383631323334353637383930313233"  # "861234567890123" (15)
    firmware = "56312e322e33".ljust(40, "0")  # "V1.2.3" (20)
    auth = "04" + "61626364" + imei + firmware
    _, message = decoded(wire(header_2019("0102", auth)))
    assert message == Authenticate(code="abcd", imei="861234567890123", firmware="V1.2.3")
    assert isinstance(message, Authenticate)
    assert encode_body(message, Edition.V2019) == bytes.fromhex(auth)


def test_batch_and_answer_golden() -> None:
    report = LOCATION_BODY.replace(" ", "")
    size = f"{len(report) // 2:04x}"
    batch = "0002" + "01" + size + report + size + report
    _, message = decoded(wire(header_2013("0704", batch)))
    assert isinstance(message, LocationBatch) and message.kind == 1 and len(message.locations) == 2
    _, answer = decoded(wire(header_2019("0201", "0031" + report)))
    assert isinstance(answer, LocationAnswer) and answer.reply_serial == 0x31
    assert answer.location.item("satellites") == 11


def test_escaping_at_the_edges() -> None:
    # a serial of 0x7e7d: escaped inside; then search a serial whose check code is 0x7e / 0x7d (last byte)
    raw = wire(header_2013("0002", "", serial="7e7d"))
    assert b"\x7d\x02\x7d\x01" in raw
    frame, _ = decoded(raw)
    assert frame.header.serial == 0x7E7D
    for last in (0x7E, 0x7D):
        serial = next(
            s
            for s in range(65536)
            if xor(bytes.fromhex(header_2013("0002", "", f"{s:04x}").replace(" ", ""))) == last
        )
        raw = encode_message(0x0002, PHONE_2013, serial, Empty())
        assert raw[-3:-1] == (b"\x7d\x02" if last == 0x7E else b"\x7d\x01")
        assert decoded(raw)[0].header.serial == serial
    # a body starting and ending with 0x7e/0x7d bytes (vendor item) survives
    loc = decode_location(bytes.fromhex(LOCATION_BODY.replace(" ", "")) + bytes.fromhex("e2027e7d"))
    assert isinstance(loc, Location)
    raw = encode_message(0x0200, PHONE_2013, 1, loc)
    _, again = decoded(raw)
    assert again == loc


def test_split_stream_finds_frames_across_reads() -> None:
    a = encode_message(0x0002, PHONE_2013, 1, Empty())
    b = encode_message(0x0002, PHONE_2013, 2, Empty())
    stream = b"noise" + a + b
    frames, rest = split_stream(stream[:-3])
    assert [decoded(f)[0].header.serial for f in frames] == [1]
    frames, rest = split_stream(rest + stream[-3:])
    assert [decoded(f)[0].header.serial for f in frames] == [2] and rest == b"\x7e"


def test_subpackages_out_of_order_and_missing() -> None:
    body = encode_body(
        LocationBatch(
            kind=1,
            locations=tuple(
                location_of(lon=119.9, lat=31.8, time=datetime(2026, 12, 7, 3, m, tzinfo=UTC))
                for m in range(10)
            ),
        )
    )
    header = Header(msg_id=0x0704, phone=PHONE_2013, serial=65534)  # serials wrap past 65535
    frames = split_frames(header, body, 100)
    assert len(frames) == 4
    parsed = [decoded(f)[0] for f in frames]
    assert [p.header.package_number for p in parsed] == [1, 2, 3, 4]
    pending: Pending = {}
    whole = None
    for p in (parsed[2], parsed[0], parsed[3]):
        pending, whole = add_package(pending, p, 0.0)
        assert whole is None
    pending, ask, drop = overdue(pending, 31.0, 30.0, max_requests=1)
    assert [a.missing() for a in ask] == [(2,)] and ask[0].first.serial == 65534 and not drop
    pending, whole = add_package(pending, parsed[1], 32.0)
    assert isinstance(whole, Frame) and not pending
    assert whole.header.serial == 65534 and not whole.header.split
    message = decode_body(whole)
    assert isinstance(message, LocationBatch) and len(message.locations) == 10
    # never completed: dropped after max_requests
    pending, _ = add_package({}, parsed[0], 0.0)
    pending, ask, _ = overdue(pending, 31.0, 30.0, max_requests=1)
    pending, ask, drop = overdue(pending, 62.0, 30.0, max_requests=1)
    assert not pending and not ask and drop[0].missing() == (2, 3, 4)


MALFORMED = {
    "bad check": (bytes.fromhex("7e000200000139123456780001ff7e"), RefusalReason.BAD_CHECK),
    "truncated": (bytes.fromhex("7e00020000017e"), RefusalReason.TRUNCATED),
    "wrong length": (wire(header_2013("0002", "").replace("0000", "0005", 1)), RefusalReason.BAD_LENGTH),
    "unescaped 0x7e": (b"\x7e\x00\x02\x7e\x00" + bytes(12) + b"\x7e", RefusalReason.BAD_ESCAPE),
    "bad escape": (bytes.fromhex("7e00027d0300000139123456780001007e"), RefusalReason.BAD_ESCAPE),
    "escape at end": (bytes.fromhex("7e0002000001391234567800017d7e"), RefusalReason.BAD_ESCAPE),
    "phone not bcd": (wire("0002 0000 0139123456AB 0001"), RefusalReason.BAD_BCD),
    "rsa": (wire("0002 0400 013912345678 0001"), RefusalReason.ENCRYPTED),
    "split number 0": (wire("0002 2000 013912345678 0001 0002 0000"), RefusalReason.BAD_LENGTH),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_corpus_is_refused_with_its_reason(name: str) -> None:
    raw, reason = MALFORMED[name]
    refusal = decode_frame(raw)
    assert isinstance(refusal, Refusal) and refusal.reason is reason, refusal
    assert refusal.detail


@pytest.mark.parametrize(
    ("msg_id", "body_hex"),
    [
        ("0200", LOCATION_BODY.replace(" ", "")[:50]),  # short
        ("0200", LOCATION_BODY.replace(" ", "")[:48] + "991307110005"),  # month 13
        ("0200", LOCATION_BODY.replace(" ", "") + "0105"),  # item longer than the body
        ("0704", "0003 01 0005 0000000000"),
        ("0002", "00"),
        ("0102", "ff"),  # lone GBK lead byte
        ("0001", "00"),
    ],
)
def test_bad_bodies_are_refused(msg_id: str, body_hex: str) -> None:
    _, message = decoded(wire(header_2013(msg_id, body_hex)))
    assert isinstance(message, Refusal) and message.reason is RefusalReason.BAD_BODY
    assert message.phone == PHONE_2013


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for raw in (data, b"\x7e" + data + b"\x7e"):
        result = decode_frame(raw)
        if isinstance(result, Frame):
            decode_body(result)
    list(decode_lines([data.hex(), data.hex()[:-1]]))


@st.composite
def locations(draw: st.DrawFn) -> Location:
    items = draw(
        st.lists(
            st.tuples(st.integers(0, 255), st.binary(max_size=8)).map(lambda t: (t[0], t[1])), max_size=5
        )
    )
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)))
    return Location(
        alarm_word=draw(st.integers(0, 2**32 - 1)),
        status_word=draw(st.integers(0, 2**32 - 1)),
        lat_e6=draw(st.integers(0, 90_000_000)),
        lon_e6=draw(st.integers(0, 180_000_000)),
        altitude_m=draw(st.integers(-32768, 32767)),
        speed_01kmh=draw(st.integers(0, 65535)),
        direction_deg=draw(st.integers(0, 359)),
        time_bcd=moment.strftime("%y%m%d%H%M%S"),
        items=tuple(items),
    )


@settings(max_examples=200, deadline=None)
@given(
    locations(),
    st.sampled_from(list(Edition)),
    st.integers(0, 65535),
    st.text("0123456789", min_size=12, max_size=12),
)
def test_location_round_trip(location: Location, edition: Edition, serial: int, phone: str) -> None:
    phone = phone.rjust(20, "0") if edition is Edition.V2019 else phone
    raw = encode_message(MsgId.LOCATION, phone, serial, location, edition)
    frame, message = decoded(raw)
    assert message == location
    assert (frame.header.phone, frame.header.serial, frame.header.edition) == (phone, serial, edition)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(locations(), min_size=1, max_size=12), st.integers(10, 300), st.randoms(use_true_random=False)
)
def test_split_round_trip_in_any_order(locs: list[Location], package_bytes: int, rnd: object) -> None:
    batch = LocationBatch(kind=1, locations=tuple(locs))
    frames = split_frames(
        Header(msg_id=0x0704, phone=PHONE_2013, serial=3), encode_body(batch), package_bytes
    )
    parsed = [decoded(f)[0] for f in frames]
    rnd.shuffle(parsed)  # type: ignore[attr-defined]
    pending: Pending = {}
    whole = None
    for p in parsed:
        pending, whole = add_package(pending, p, 0.0) if p.header.split else ({}, p)
    assert isinstance(whole, Frame)
    assert decode_body(whole) == batch


def test_decode_command_prints_one_json_line_per_frame() -> None:
    location = decode_location(bytes.fromhex(LOCATION_BODY.replace(" ", "")))
    assert isinstance(location, Location)
    good = encode_message(0x0200, PHONE_2013, 5, location)
    lines = [good.hex(), good.hex()[2:-2], "7e0002", "nothex", ""]
    done = subprocess.run(
        [sys.executable, "-m", "fleetwatch.cli", "jt808", "decode"],
        input="\n".join(lines).encode(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    out = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert len(out) == 4
    assert out[0] == out[1]
    assert out[0]["msg_id"] == "0x0200" and out[0]["phone"] == PHONE_2013 and out[0]["serial"] == 5
    fix = out[0]["fixes"][0]
    assert fix["time"] == "2026-12-07T11:00:05+08:00" and (fix["lon"], fix["lat"]) == (-119.97, -31.81)
    assert fix["alarm"] == ["emergency"] and fix["acc"] is True and fix["items"]["fuel_l"] == 45.6
    assert set(fix) >= {
        "time",
        "lon",
        "lat",
        "speed_kmh",
        "heading_deg",
        "altitude_m",
        "acc",
        "alarm",
        "status",
        "items",
    }
    assert "error" in out[2] and "error" in out[3]


def test_refusal_reasons_are_quarantine_reasons() -> None:
    from ingest.reasons import Reason

    assert {r.value for r in RefusalReason} <= {r.value for r in Reason}
