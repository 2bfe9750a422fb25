-- create_stage --
-- Per-connection staging tables; the binary COPY lands here, emptied at every commit. Their columns
-- are position's and latest_position's own (LIKE), so a fix column is declared once (store/fixcolumns.py).
-- {fix_columns}-style placeholders in this file are filled from that declaration (store/fixsql.py).
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (ord integer NOT NULL, LIKE position) ON COMMIT DELETE ROWS;

-- create_latest_stage --
-- oldest_fix_at: the vehicle's oldest fix in the batch (back-fill reaches back)
CREATE TEMP TABLE IF NOT EXISTS latest_stage (oldest_fix_at timestamptz NOT NULL, LIKE latest_position)
ON COMMIT DELETE ROWS;

-- copy_stage --
COPY ingest_stage (ord, {fix_columns}) FROM STDIN (FORMAT BINARY);

-- copy_positions --
COPY position ({fix_columns}) FROM STDIN (FORMAT BINARY);

-- copy_latest_stage --
COPY latest_stage (oldest_fix_at, {latest_columns}) FROM STDIN (FORMAT BINARY);

-- insert_positions --
-- A key already stored, or twice in the batch, is left as it is (the first copy wins, by ord): a replay
-- is a no-op. The row count says how many are new.
INSERT INTO position ({fix_columns})
SELECT {fix_columns}
FROM ingest_stage
ORDER BY ord
ON CONFLICT (vehicle_id, fix_at) DO NOTHING;

-- stage_conflicts --
-- Staged fixes whose key is stored with different measurements: the same fix time cannot be two places.
-- Returns the stored values of the compared columns.
SELECT s.ord, {stored_compared}
FROM ingest_stage AS s
JOIN position AS p USING (vehicle_id, fix_at)
WHERE p.fix_at BETWEEN (SELECT min(fix_at) FROM ingest_stage) AND (SELECT max(fix_at) FROM ingest_stage)
  AND ROW({stage_compared}) IS DISTINCT FROM ROW({stored_compared})
ORDER BY s.ord;

-- update_latest_positions --
-- latest_stage holds each vehicle's newest fix of the batch; only a newer fix moves the latest position
-- (back-filled fixes are older).
INSERT INTO latest_position AS l ({latest_columns})
SELECT {latest_columns}
FROM latest_stage
ON CONFLICT (vehicle_id) DO UPDATE
SET ({latest_updated}) = ROW({latest_excluded})
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
