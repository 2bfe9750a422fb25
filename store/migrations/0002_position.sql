-- Positions: one row per (vehicle, fix time), so a replayed fix is a no-op.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE position (
    vehicle_id  integer          NOT NULL,
    fix_at      timestamptz      NOT NULL,
    received_at timestamptz      NOT NULL,
    terminal_no integer          NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    speed_kmh   real,
    heading_deg real,
    altitude_m  real,
    satellites  smallint,
    hdop        real,
    accuracy_m  real,
    valid       boolean          NOT NULL,
    ignition    boolean,
    odometer_km double precision,
    seq         bigint,
    -- One btree serves both the replay key and "a vehicle's fixes by time, newest first"
    -- (a backward scan); a second (vehicle_id, fix_at DESC) index would double the write cost.
    PRIMARY KEY (vehicle_id, fix_at)
);
-- A day per chunk: ~1,000 cars reporting every 10 s while moving is a few hundred MB a day, so a
-- chunk and its index sit in memory while it is written; retention drops whole days (drop_chunks).
SELECT create_hypertable('position', by_range('fix_at', INTERVAL '1 day'), create_default_indexes => false);

-- The newest fix of each vehicle, kept current by ingest in the same transaction as the rows.
CREATE TABLE latest_position (
    vehicle_id  integer          PRIMARY KEY REFERENCES vehicle,
    fix_at      timestamptz      NOT NULL,
    received_at timestamptz      NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    speed_kmh   real,
    heading_deg real,
    ignition    boolean,
    odometer_km double precision
);
CREATE INDEX latest_position_fix_at_idx ON latest_position (fix_at);

-- Input that was not stored, with the reason; the raw payload is kept so it can be replayed.
-- For a message-level reason payload is the whole message; for a fix-level reason, that fix's JSON.
CREATE TABLE quarantine (
    quarantine_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at       timestamptz NOT NULL,
    last_received_at  timestamptz NOT NULL,
    seen_count        integer     NOT NULL DEFAULT 1,
    topic             text        NOT NULL,
    terminal_id       text,
    reason            text        NOT NULL CHECK (reason IN (
        'oversized_payload', 'bad_topic', 'malformed_json', 'wrong_type', 'not_a_position',
        'unknown_terminal', 'invalid_fix', 'null_island', 'out_of_range', 'bad_value',
        'low_accuracy', 'future_time', 'past_time', 'impossible_speed', 'conflict', 'store_error')),
    detail            text        NOT NULL,
    fix_index         integer,
    payload           bytea       NOT NULL,
    payload_bytes     integer     NOT NULL,
    payload_sha256    bytea       NOT NULL,
    -- a redelivered message (the broker resends what was not acknowledged) is counted, not stored twice
    UNIQUE (topic, payload_sha256, reason)
);
CREATE INDEX quarantine_received_at_idx ON quarantine (received_at);
CREATE INDEX quarantine_reason_idx ON quarantine (reason, received_at);

-- One row per committed ingest batch: what came in, what was stored, how long it took.
CREATE TABLE ingest_batch (
    ingest_batch_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    worker            text        NOT NULL,
    committed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    first_received_at timestamptz NOT NULL,
    messages          integer     NOT NULL,
    fixes_received    integer     NOT NULL,
    fixes_stored      integer     NOT NULL,
    fixes_duplicate   integer     NOT NULL,
    fixes_quarantined integer     NOT NULL,
    messages_quarantined integer  NOT NULL,
    latency_ms        real        NOT NULL,
    max_lag_s         real
);
CREATE INDEX ingest_batch_committed_at_idx ON ingest_batch (committed_at);
