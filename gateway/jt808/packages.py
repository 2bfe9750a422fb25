"""Sub-packages: a long message split over frames (consecutive serials, 1-based package numbers),
reassembled in any order; what is still missing after a timeout is re-requested (0x8003) or dropped.

Pure values: ``add_package`` and ``overdue`` return new state, the caller keeps it and does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.jt808.frame import Frame, Header, Refusal, RefusalReason, encode_frame

Key = tuple[str, int, int]  # phone, message id, serial of package 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Partial:
    first: Header  # header of package 1 (as computed: serial of package 1)
    count: int
    parts: dict[int, bytes]  # package number → body (treated as read-only)
    started_s: float
    requested: int = 0  # how many times the missing packages were requested

    def missing(self) -> tuple[int, ...]:
        return tuple(n for n in range(1, self.count + 1) if n not in self.parts)


Pending = dict[Key, Partial]


def key_of(header: Header) -> Key:
    return header.phone, header.msg_id, (header.serial - header.package_number + 1) & 0xFFFF


def add_package(pending: Pending, frame: Frame, now_s: float) -> tuple[Pending, Frame | Refusal | None]:
    """Add one package; returns the new pending state and the whole message once every part is in."""
    header = frame.header
    key = key_of(header)
    partial = pending.get(key)
    if partial is not None and partial.count != header.package_count:
        return pending, Refusal(
            reason=RefusalReason.BAD_LENGTH,
            detail=f"package {header.package_number} says {header.package_count} packages,"
            f" earlier ones {partial.count}",
            msg_id=header.msg_id,
            phone=header.phone,
            serial=header.serial,
        )
    if partial is None:
        first = replace(header, serial=key[2], package_count=0, package_number=0)
        partial = Partial(first=first, count=header.package_count, parts={}, started_s=now_s)
    partial = replace(partial, parts={**partial.parts, header.package_number: frame.body})
    rest = {k: v for k, v in pending.items() if k != key}
    if len(partial.parts) < partial.count:
        rest[key] = partial
        return rest, None
    body = b"".join(partial.parts[n] for n in range(1, partial.count + 1))
    return rest, Frame(header=partial.first, body=body)


def overdue(
    pending: Pending, now_s: float, timeout_s: float, max_requests: int
) -> tuple[Pending, list[Partial], list[Partial]]:
    """Messages waiting longer than ``timeout_s``: (new state, to re-request, to give up on).

    A re-requested message waits another ``timeout_s``; after ``max_requests`` requests it is dropped."""
    kept: Pending = {}
    ask: list[Partial] = []
    drop: list[Partial] = []
    for key, partial in pending.items():
        if now_s - partial.started_s < timeout_s:
            kept[key] = partial
        elif partial.requested >= max_requests:
            drop.append(partial)
        else:
            again = replace(partial, requested=partial.requested + 1, started_s=now_s)
            kept[key] = again
            ask.append(again)
    return kept, ask, drop


def split_frames(header: Header, body: bytes, package_bytes: int) -> list[bytes]:
    """``body`` sent as packages of at most ``package_bytes``, serials counting up from ``header.serial``."""
    chunks = [body[i : i + package_bytes] for i in range(0, len(body), package_bytes)] or [b""]
    return [
        encode_frame(
            replace(
                header, serial=(header.serial + k) & 0xFFFF, package_count=len(chunks), package_number=k + 1
            ),
            chunk,
        )
        for k, chunk in enumerate(chunks)
    ]
