"""Why a message or a fix was quarantined instead of stored. Values equal the SQL values."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # message level: the whole payload is kept
    OVERSIZED_PAYLOAD = "oversized_payload"
    BAD_TOPIC = "bad_topic"
    MALFORMED_JSON = "malformed_json"
    WRONG_TYPE = "wrong_type"
    NOT_A_POSITION = "not_a_position"
    UNKNOWN_TERMINAL = "unknown_terminal"
    # fix level: that fix's JSON is kept
    INVALID_FIX = "invalid_fix"
    NULL_ISLAND = "null_island"
    OUT_OF_RANGE = "out_of_range"
    BAD_VALUE = "bad_value"
    LOW_ACCURACY = "low_accuracy"
    FUTURE_TIME = "future_time"
    PAST_TIME = "past_time"
    IMPOSSIBLE_SPEED = "impossible_speed"
    CONFLICT = "conflict"
    STORE_ERROR = "store_error"  # the database refused a message that passed every filter
    # JT/T 808 gateway: a frame it could not take (raw bytes kept); = gateway.jt808.frame.RefusalReason
    JT808_TRUNCATED = "jt808_truncated"
    JT808_BAD_ESCAPE = "jt808_bad_escape"
    JT808_BAD_CHECK = "jt808_bad_check"
    JT808_BAD_LENGTH = "jt808_bad_length"
    JT808_BAD_BCD = "jt808_bad_bcd"
    JT808_ENCRYPTED = "jt808_encrypted"
    JT808_BAD_BODY = "jt808_bad_body"
    JT808_NOT_AUTHENTICATED = "jt808_not_authenticated"
    JT808_WRONG_TERMINAL = "jt808_wrong_terminal"


# Fix-level reasons as small integer codes for numpy masks; 0 means "accepted".
FIX_REASONS: tuple[Reason, ...] = (
    Reason.WRONG_TYPE,
    Reason.INVALID_FIX,
    Reason.OUT_OF_RANGE,
    Reason.NULL_ISLAND,
    Reason.BAD_VALUE,
    Reason.LOW_ACCURACY,
    Reason.FUTURE_TIME,
    Reason.PAST_TIME,
    Reason.IMPOSSIBLE_SPEED,
    Reason.CONFLICT,
)
CODE = {reason: code for code, reason in enumerate(FIX_REASONS, start=1)}
