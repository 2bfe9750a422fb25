-- JT/T 808 terminals: the auth code issued at registration (0x8100) and checked at authentication (0x0102).
CREATE TABLE jt808_terminal (
    terminal_id      text PRIMARY KEY REFERENCES terminal ON DELETE CASCADE,
    auth_code        text NOT NULL,
    registered_at    timestamptz NOT NULL DEFAULT now(),
    authenticated_at timestamptz,
    province         smallint,
    city             smallint,
    maker            text,
    model            text,
    device_id        text,
    plate            text,
    imei             text,
    firmware         text
);

-- Frames the gateway refused go to the same quarantine as ingest's messages (raw frame bytes kept).
ALTER TABLE quarantine DROP CONSTRAINT quarantine_reason_check;
ALTER TABLE quarantine ADD CONSTRAINT quarantine_reason_check CHECK (reason IN (
    'oversized_payload', 'bad_topic', 'malformed_json', 'wrong_type', 'not_a_position',
    'unknown_terminal', 'invalid_fix', 'null_island', 'out_of_range', 'bad_value',
    'low_accuracy', 'future_time', 'past_time', 'impossible_speed', 'conflict', 'store_error',
    'jt808_truncated', 'jt808_bad_escape', 'jt808_bad_check', 'jt808_bad_length', 'jt808_bad_bcd',
    'jt808_encrypted', 'jt808_bad_body', 'jt808_not_authenticated', 'jt808_wrong_terminal'));
