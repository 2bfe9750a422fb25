"""The 0x0200 location body (also inside 0x0704 and 0x0201): words, position, BCD time, additional items.

alarm (4) status (4) latitude (4, 1e-6°) longitude (4, 1e-6°) altitude m (2) speed 0.1 km/h (2)
direction ° (2) time BCD YYMMDDhhmmss UTC+8 (6), then items: id (1) length (1) value.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))
BASIC_BYTES = 28

# Alarm word bits (JT/T 808 table 24/25; 2013 names, 2019 keeps them).
ALARM_BITS: dict[int, str] = {
    0: "emergency",
    1: "overspeed",
    2: "fatigue_driving",
    3: "danger_warning",
    4: "gnss_module_fault",
    5: "gnss_antenna_cut",
    6: "gnss_antenna_short",
    7: "power_undervoltage",
    8: "power_cut",
    9: "display_fault",
    10: "tts_fault",
    11: "camera_fault",
    12: "ic_card_fault",
    13: "overspeed_warning",
    14: "fatigue_warning",
    18: "driving_overtime_today",
    19: "parking_overtime",
    20: "area_in_out",
    21: "route_in_out",
    22: "route_time_wrong",
    23: "route_deviation",
    24: "vss_fault",
    25: "fuel_abnormal",
    26: "stolen",
    27: "illegal_ignition",
    28: "illegal_displacement",
    29: "collision",
    30: "rollover",
    31: "illegal_door_open",
}
ALARM_BIT = {name: bit for bit, name in ALARM_BITS.items()}

# Status word: single bits; bits 8-9 (load) are read as a pair.
STATUS_BITS: dict[int, str] = {
    0: "acc",
    1: "positioned",
    2: "south",
    3: "west",
    4: "out_of_service",
    5: "coordinates_encrypted",
    10: "oil_cut",
    11: "circuit_cut",
    12: "door_locked",
    13: "door_1_open",
    14: "door_2_open",
    15: "door_3_open",
    16: "door_4_open",
    17: "door_5_open",
    18: "gps",
    19: "beidou",
    20: "glonass",
    21: "galileo",
    22: "moving",
}
STATUS_BIT = {name: bit for bit, name in STATUS_BITS.items()}
LOADS = ("empty", "half", "reserved", "full")

# Additional items with a meaning: id → (name, bytes, scale).
ITEMS: dict[int, tuple[str, int, float]] = {
    0x01: ("mileage_km", 4, 0.1),
    0x02: ("fuel_l", 2, 0.1),
    0x03: ("recorder_speed_kmh", 2, 0.1),
    0x25: ("vehicle_signals", 4, 1),
    0x30: ("signal_strength", 1, 1),
    0x31: ("satellites", 1, 1),
}
ITEM_ID = {name: item_id for item_id, (name, _, _) in ITEMS.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    alarm_word: int
    status_word: int
    lat_e6: int  # unsigned as sent; the sign is in the status word
    lon_e6: int
    altitude_m: int
    speed_01kmh: int
    direction_deg: int
    time_bcd: str  # YYMMDDhhmmss, UTC+8
    items: tuple[tuple[int, bytes], ...] = field(default=())

    @property
    def lon(self) -> float:
        return -self.lon_e6 / 1e6 if self.status_word & 0x8 else self.lon_e6 / 1e6

    @property
    def lat(self) -> float:
        return -self.lat_e6 / 1e6 if self.status_word & 0x4 else self.lat_e6 / 1e6

    @property
    def acc(self) -> bool:
        return bool(self.status_word & 0x1)

    @property
    def positioned(self) -> bool:
        return bool(self.status_word & 0x2)

    @property
    def speed_kmh(self) -> float:
        return self.speed_01kmh / 10

    @property
    def time(self) -> datetime:
        """The fix time (aware, UTC+8). Decoding has checked it is a valid date."""
        return _bcd_time(self.time_bcd) or datetime(2000, 1, 1, tzinfo=CHINA)

    @property
    def time_ms(self) -> int:
        t = self.time_bcd
        moment = (2000 + int(t[0:2]), int(t[2:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), int(t[10:12]))
        return (calendar.timegm(moment) - 8 * 3600) * 1000

    def alarms(self) -> list[str]:
        return [name for bit, name in ALARM_BITS.items() if self.alarm_word >> bit & 1]

    def status(self) -> dict[str, bool | str]:
        named: dict[str, bool | str] = {
            name: bool(self.status_word >> bit & 1) for bit, name in STATUS_BITS.items()
        }
        named["load"] = LOADS[self.status_word >> 8 & 0x3]
        return named

    def item_values(self) -> dict[str, float | int | str]:
        """Known items by name (scaled to their units), others as ``0xNN`` → raw hex."""
        values: dict[str, float | int | str] = {}
        for item_id, value in self.items:
            known = ITEMS.get(item_id)
            if known is not None and len(value) == known[1]:
                name, _, scale = known
                number = int.from_bytes(value)
                values[name] = number if scale == 1 else round(number * scale, 1)
            else:
                values[f"0x{item_id:02x}"] = value.hex()
        return values

    def item(self, name: str) -> float | int | None:
        value = self.item_values().get(name)
        return None if isinstance(value, str) else value


def _bcd_time(text: str) -> datetime | None:
    if len(text) != 12 or not text.isdigit():
        return None
    try:
        return datetime(
            2000 + int(text[0:2]),
            int(text[2:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            tzinfo=CHINA,
        )
    except ValueError:
        return None


def bcd_time_of(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%y%m%d%H%M%S")


def decode_location(body: bytes) -> Location | str:
    """A location body, or why it is not one."""
    if len(body) < BASIC_BYTES:
        return f"location body of {len(body)} bytes, at least {BASIC_BYTES} needed"
    time_bcd = body[22:28].hex()
    if _bcd_time(time_bcd) is None:
        return f"time {time_bcd} is not a BCD date and time"
    items: list[tuple[int, bytes]] = []
    i = BASIC_BYTES
    while i < len(body):
        if i + 2 > len(body):
            return f"additional item at byte {i} is cut short"
        item_id, size = body[i], body[i + 1]
        if i + 2 + size > len(body):
            return f"additional item 0x{item_id:02x} says {size} bytes, {len(body) - i - 2} left"
        items.append((item_id, body[i + 2 : i + 2 + size]))
        i += 2 + size
    return Location(
        alarm_word=int.from_bytes(body[0:4]),
        status_word=int.from_bytes(body[4:8]),
        lat_e6=int.from_bytes(body[8:12]),
        lon_e6=int.from_bytes(body[12:16]),
        altitude_m=int.from_bytes(body[16:18], signed=True),
        speed_01kmh=int.from_bytes(body[18:20]),
        direction_deg=int.from_bytes(body[20:22]),
        time_bcd=time_bcd,
        items=tuple(items),
    )


def encode_location(location: Location) -> bytes:
    parts = [
        location.alarm_word.to_bytes(4),
        location.status_word.to_bytes(4),
        location.lat_e6.to_bytes(4),
        location.lon_e6.to_bytes(4),
        location.altitude_m.to_bytes(2, signed=True),
        location.speed_01kmh.to_bytes(2),
        location.direction_deg.to_bytes(2),
        bytes.fromhex(location.time_bcd),
    ]
    parts.extend(bytes((item_id, len(value))) + value for item_id, value in location.items)
    return b"".join(parts)


def location_of(
    *,
    lon: float,
    lat: float,
    time: datetime,
    speed_kmh: float = 0.0,
    direction_deg: int = 0,
    altitude_m: int = 0,
    acc: bool = True,
    positioned: bool = True,
    alarm_word: int = 0,
    mileage_km: float | None = None,
    fuel_l: float | None = None,
    satellites: int | None = None,
) -> Location:
    """A location from values in their natural units (the simulator and tests build reports with this)."""
    status = (acc and 0x1) | (positioned and 0x2) | (lat < 0 and 0x4) | (lon < 0 and 0x8)
    items: list[tuple[int, bytes]] = []
    if mileage_km is not None:
        items.append((0x01, round(mileage_km * 10).to_bytes(4)))
    if fuel_l is not None:
        items.append((0x02, round(fuel_l * 10).to_bytes(2)))
    if satellites is not None:
        items.append((0x31, satellites.to_bytes(1)))
    return Location(
        alarm_word=alarm_word,
        status_word=int(status),
        lat_e6=round(abs(lat) * 1e6),
        lon_e6=round(abs(lon) * 1e6),
        altitude_m=altitude_m,
        speed_01kmh=round(speed_kmh * 10),
        direction_deg=direction_deg,
        time_bcd=bcd_time_of(time),
        items=tuple(items),
    )


def utc_iso(location: Location) -> str:
    return location.time.astimezone(UTC).isoformat()
