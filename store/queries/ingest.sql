-- create_stage --
-- Per-connection staging table; the binary COPY lands here, emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    ord         integer          NOT NULL,
    vehicle_id  integer          NOT NULL,
    fix_at      timestamptz      NOT NULL,
    received_at timestamptz      NOT NULL,
    terminal_no integer          NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    speed_kmh   real             NOT NULL,
    heading_deg real             NOT NULL,
    altitude_m  real             NOT NULL,
    satellites  smallint         NOT NULL,
    hdop        real             NOT NULL,
    accuracy_m  real             NOT NULL,
    valid       boolean          NOT NULL,
    ignition    smallint         NOT NULL,
    odometer_km double precision NOT NULL,
    seq         bigint           NOT NULL
) ON COMMIT DELETE ROWS;

-- create_latest_stage --
CREATE TEMP TABLE IF NOT EXISTS latest_stage (
    vehicle_id  integer          NOT NULL,
    oldest_fix_at timestamptz    NOT NULL,  -- the vehicle's oldest fix in the batch (back-fill reaches back)
    fix_at      timestamptz      NOT NULL,
    received_at timestamptz      NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    speed_kmh   real             NOT NULL,
    heading_deg real             NOT NULL,
    ignition    smallint         NOT NULL,
    odometer_km double precision NOT NULL
) ON COMMIT DELETE ROWS;

-- copy_stage --
COPY ingest_stage FROM STDIN (FORMAT BINARY);

-- copy_positions --
COPY position (vehicle_id, fix_at, received_at, terminal_no, lon, lat, speed_kmh, heading_deg, altitude_m,
               satellites, hdop, accuracy_m, valid, ignition, odometer_km, seq)
FROM STDIN (FORMAT BINARY);

-- copy_latest_stage --
COPY latest_stage FROM STDIN (FORMAT BINARY);

-- insert_positions --
-- Stage sentinels (NaN, -1) become NULL. A key already stored, or twice in the batch, is left as it is
-- (the first copy wins, by ord): a replay is a no-op. The row count says how many are new.
INSERT INTO position (vehicle_id, fix_at, received_at, terminal_no, lon, lat, speed_kmh, heading_deg,
                      altitude_m, satellites, hdop, accuracy_m, valid, ignition, odometer_km, seq)
SELECT vehicle_id, fix_at, received_at, terminal_no, lon, lat,
       NULLIF(speed_kmh, 'NaN'), NULLIF(heading_deg, 'NaN'), NULLIF(altitude_m, 'NaN'),
       NULLIF(satellites, -1), NULLIF(hdop, 'NaN'), NULLIF(accuracy_m, 'NaN'), valid,
       CASE ignition WHEN -1 THEN NULL ELSE ignition = 1 END,
       NULLIF(odometer_km, 'NaN'), NULLIF(seq, -1)
FROM ingest_stage
ORDER BY ord
ON CONFLICT (vehicle_id, fix_at) DO NOTHING;

-- stage_conflicts --
-- Staged fixes whose key is stored with different measurements: the same fix time cannot be two places.
SELECT s.ord, p.lon, p.lat, p.speed_kmh, p.ignition, p.odometer_km
FROM ingest_stage AS s
JOIN position AS p USING (vehicle_id, fix_at)
WHERE p.fix_at BETWEEN (SELECT min(fix_at) FROM ingest_stage) AND (SELECT max(fix_at) FROM ingest_stage)
  AND (s.lon, s.lat, NULLIF(s.speed_kmh, 'NaN'), NULLIF(s.heading_deg, 'NaN'), NULLIF(s.altitude_m, 'NaN'),
       s.valid, CASE s.ignition WHEN -1 THEN NULL ELSE s.ignition = 1 END, NULLIF(s.odometer_km, 'NaN'))
      IS DISTINCT FROM
      (p.lon, p.lat, p.speed_kmh, p.heading_deg, p.altitude_m, p.valid, p.ignition, p.odometer_km)
ORDER BY s.ord;

-- update_latest_positions --
-- latest_stage holds each vehicle's newest fix of the batch; only a newer fix moves the latest position
-- (back-filled fixes are older).
INSERT INTO latest_position AS l (vehicle_id, fix_at, received_at, lon, lat, speed_kmh, heading_deg, ignition,
                                  odometer_km)
SELECT vehicle_id, fix_at, received_at, lon, lat, NULLIF(speed_kmh, 'NaN'), NULLIF(heading_deg, 'NaN'),
       CASE ignition WHEN -1 THEN NULL ELSE ignition = 1 END, NULLIF(odometer_km, 'NaN')
FROM latest_stage
ON CONFLICT (vehicle_id) DO UPDATE
SET fix_at = excluded.fix_at, received_at = excluded.received_at, lon = excluded.lon, lat = excluded.lat,
    speed_kmh = excluded.speed_kmh, heading_deg = excluded.heading_deg, ignition = excluded.ignition,
    odometer_km = excluded.odometer_km
WHERE l.fix_at < excluded.fix_at;

-- mark_vehicles_dirty --
-- Tell the track engine which vehicles have new fixes, and from how far back.
INSERT INTO engine_queue AS q (vehicle_id, dirty_from, dirty_to, dirty_at)
SELECT vehicle_id, oldest_fix_at, fix_at, clock_timestamp() FROM latest_stage
ON CONFLICT (vehicle_id) DO UPDATE
SET dirty_from = least(q.dirty_from, excluded.dirty_from), dirty_to = greatest(q.dirty_to, excluded.dirty_to),
    dirty_at = excluded.dirty_at;

-- insert_quarantine --
-- A redelivered message (not acknowledged before a crash) bumps seen_count instead of adding a row.
INSERT INTO quarantine AS q (received_at, last_received_at, topic, terminal_id, reason, detail, fix_index, payload,
                             payload_bytes, payload_sha256)
VALUES (%(received_at)s, %(received_at)s, %(topic)s, %(terminal_id)s, %(reason)s, %(detail)s, %(fix_index)s,
        %(payload)s, %(payload_bytes)s, sha256(%(payload)s))
ON CONFLICT (topic, payload_sha256, reason) DO UPDATE
SET seen_count = q.seen_count + 1, last_received_at = greatest(q.last_received_at, excluded.last_received_at);

-- insert_ingest_batch --
INSERT INTO ingest_batch (worker, first_received_at, messages, fixes_received, fixes_stored, fixes_duplicate,
                          fixes_quarantined, messages_quarantined, latency_ms, max_lag_s)
VALUES (%(worker)s, %(first_received_at)s, %(messages)s, %(fixes_received)s, %(fixes_stored)s,
        %(fixes_duplicate)s, %(fixes_quarantined)s, %(messages_quarantined)s, %(latency_ms)s, %(max_lag_s)s);

-- terminals --
SELECT t.terminal_id, t.terminal_no, t.vehicle_id
FROM terminal AS t
JOIN vehicle AS v USING (vehicle_id)
WHERE t.vehicle_id IS NOT NULL;

-- anchors --
SELECT vehicle_id, (extract(epoch FROM fix_at) * 1000000)::bigint, lon, lat
FROM latest_position
WHERE vehicle_id = ANY(%(vehicle_ids)s);

-- quarantine_summary --
SELECT reason, count(*) AS rows, sum(seen_count) AS seen, min(received_at), max(last_received_at)
FROM quarantine
GROUP BY reason
ORDER BY reason;

-- take_quarantined --
-- Rows to replay, oldest first, removed in the caller's transaction: they come back if still refused.
DELETE FROM quarantine
WHERE quarantine_id IN (
    SELECT quarantine_id FROM quarantine
    WHERE reason = ANY(%(reasons)s) AND payload_bytes = octet_length(payload)
      AND quarantine_id > %(after_id)s AND quarantine_id <= %(until_id)s
    ORDER BY quarantine_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING quarantine_id, topic, payload, (extract(epoch FROM received_at) * 1000000)::bigint;

-- last_quarantine_id --
SELECT coalesce(max(quarantine_id), 0) FROM quarantine;

-- drop_old_positions --
SELECT count(*) FROM drop_chunks('position', older_than => now() - make_interval(days => %(keep_days)s));

-- delete_old_quarantine --
DELETE FROM quarantine WHERE last_received_at < now() - make_interval(days => %(keep_days)s);

-- delete_old_ingest_batches --
DELETE FROM ingest_batch WHERE committed_at < now() - make_interval(days => %(keep_days)s);
