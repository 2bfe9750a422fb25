-- Imports (ingest/imports). The statements with {placeholders} are templates: run.py fills them from a
-- kind's declaration (ingest/imports/kinds.py) with psycopg.sql identifiers, so each shape is written
-- once here for every kind. The staging tables live for one transaction.

-- import_create_stage --
CREATE TEMP TABLE import_stage (row_no integer PRIMARY KEY, {columns}) ON COMMIT DROP;

-- import_copy_stage --
COPY import_stage (row_no, {columns}) FROM STDIN (FORMAT BINARY);

-- import_unknown_refs --
-- File codes that name no row of the referenced table (nor, for a tree, a row of the same file).
SELECT s.row_no, s.{column}::text FROM import_stage AS s
WHERE s.{column} IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM {table} AS r WHERE r.{key} = s.{column})
  AND NOT (%(self_ref)s AND EXISTS (SELECT 1 FROM import_stage AS o WHERE o.{self_key} = s.{column}))
ORDER BY s.row_no;

-- import_create_ready --
-- The rows as the table will hold them: codes resolved to ids, constants filled in.
CREATE TEMP TABLE import_ready ON COMMIT DROP AS
SELECT s.row_no, NULL::integer AS import_round, {values}
FROM import_stage AS s {joins};

-- import_duplicate_keys --
SELECT row_no, first_row FROM (
    SELECT row_no, min(row_no) OVER (PARTITION BY {key}) AS first_row FROM import_ready
    WHERE ROW({key}) IS NOT NULL
) AS d
WHERE row_no <> first_row
ORDER BY row_no;

-- import_out_of_scope --
-- Rows the caller may not write: a new row outside their agencies, or an existing row of another agency.
SELECT r.row_no FROM import_ready AS r
WHERE NOT coalesce({owner_new} = ANY(%(agency_ids)s::integer[]), false) AND NOT {in_file_tree}
UNION
SELECT r.row_no FROM import_ready AS r JOIN {table} AS t ON {key_match}
WHERE NOT coalesce({owner_old} = ANY(%(agency_ids)s::integer[]), false)
ORDER BY 1;

-- import_drop_rows --
DELETE FROM import_stage WHERE row_no = ANY(%(row_nos)s::integer[]);

-- import_drop_ready_rows --
DELETE FROM import_ready WHERE row_no = ANY(%(row_nos)s::integer[]);

-- import_next_round --
-- The rows that can be written now: all of them, or in a tree those whose parent exists already.
UPDATE import_ready AS r SET import_round = %(round)s
WHERE r.import_round IS NULL AND {ready};

-- import_resolve_tree --
-- After a round: parents written in it become ids for their children.
UPDATE import_ready AS r SET {target} = p.{value}
FROM import_stage AS s JOIN {table} AS p ON p.{key} = s.{column}
WHERE s.row_no = r.row_no AND r.{target} IS NULL AND r.import_round IS NULL;

-- import_unplaced --
SELECT row_no FROM import_ready WHERE import_round IS NULL ORDER BY row_no;

-- import_upsert --
-- One statement per round: insert new keys, update changed rows (a row with the same values is left
-- alone: re-importing a file is a no-op), audit every written row with its before and after, and hand
-- the vehicles of late records to the track engine.
WITH old AS (
    SELECT t.{id} AS old_id, to_jsonb(t) AS before
    FROM {table} AS t JOIN import_ready AS r ON {key_match}
    WHERE r.import_round = %(round)s
), up AS (
    INSERT INTO {table} AS t ({targets})
    SELECT {targets} FROM import_ready WHERE import_round = %(round)s
    ON CONFLICT ({key}) DO UPDATE SET ({targets}) = ROW({excluded})
    WHERE ({old_values}) IS DISTINCT FROM ({excluded})
    RETURNING t.*
), audited AS (
    INSERT INTO audit (api_user_id, actor, action, entity, entity_id, agency_id, before, after)
    SELECT %(api_user_id)s, %(actor)s, %(action)s, %(entity)s, up.{id}::text, {owner_up}, old.before, to_jsonb(up)
    FROM up LEFT JOIN old ON old.old_id = up.{id}
    RETURNING before IS NULL AS inserted
){requeue}
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM audited;

-- import_requeue --
-- (a CTE of import_upsert) the days of the vehicles whose records arrived go back to the engine
, queued AS (
    INSERT INTO engine_queue AS q (vehicle_id, dirty_from, dirty_to, dirty_at)
    SELECT up.vehicle_id, min(up.{time_from}), max(up.{time_to}), clock_timestamp() FROM up
    GROUP BY up.vehicle_id
    ON CONFLICT (vehicle_id) DO UPDATE
    SET dirty_from = least(q.dirty_from, excluded.dirty_from),
        dirty_to = greatest(q.dirty_to, excluded.dirty_to), dirty_at = excluded.dirty_at
)

-- import_agency_cycles --
-- Agencies of this import that are their own ancestor after it.
WITH RECURSIVE up_tree (start_id, agency_id, depth) AS (
    SELECT a.agency_id, a.parent_agency_id, 1
    FROM agency AS a JOIN import_stage AS s ON s.code = a.code
    WHERE a.parent_agency_id IS NOT NULL
    UNION ALL
    SELECT u.start_id, a.parent_agency_id, u.depth + 1
    FROM up_tree AS u JOIN agency AS a ON a.agency_id = u.agency_id
    WHERE a.parent_agency_id IS NOT NULL AND u.agency_id <> u.start_id AND u.depth < 1000
)
SELECT DISTINCT s.row_no, s.parent_code FROM up_tree AS u
JOIN agency AS a ON a.agency_id = u.start_id JOIN import_stage AS s ON s.code = a.code
WHERE u.agency_id = u.start_id
ORDER BY s.row_no;

-- import_terminals_taken --
-- Terminals of the file bound today to a vehicle the caller may not write.
SELECT s.row_no, s.terminal_id FROM import_stage AS s
JOIN terminal AS t ON t.terminal_id = s.terminal_id
JOIN vehicle AS v ON v.vehicle_id = t.vehicle_id
WHERE v.plate <> s.plate AND NOT coalesce(v.agency_id = ANY(%(agency_ids)s::integer[]), false)
ORDER BY s.row_no;

-- import_vehicle_terminals --
-- (after vehicles) each named terminal bound to its vehicle, audited like the vehicle.
WITH old AS (
    SELECT t.terminal_id, to_jsonb(t) AS before FROM terminal AS t
    JOIN import_stage AS s ON s.terminal_id = t.terminal_id
), up AS (
    INSERT INTO terminal AS t (terminal_id, vehicle_id, protocol)
    SELECT s.terminal_id, v.vehicle_id, s.protocol
    FROM import_stage AS s JOIN vehicle AS v ON v.plate = s.plate
    WHERE s.terminal_id IS NOT NULL
    ON CONFLICT (terminal_id) DO UPDATE
    SET vehicle_id = excluded.vehicle_id, protocol = excluded.protocol, bound_at = now()
    WHERE (t.vehicle_id, t.protocol) IS DISTINCT FROM (excluded.vehicle_id, excluded.protocol)
    RETURNING t.*
)
INSERT INTO audit (api_user_id, actor, action, entity, entity_id, agency_id, before, after)
SELECT %(api_user_id)s, %(actor)s, %(action)s, 'terminal', up.terminal_id,
       (SELECT v.agency_id FROM vehicle AS v WHERE v.vehicle_id = up.vehicle_id), old.before, to_jsonb(up)
FROM up LEFT JOIN old ON old.terminal_id = up.terminal_id;

-- import_insert_batch --
INSERT INTO import_batch (kind, source, actor, api_user_id, agency_id, partial, rows, inserted, updated,
                          unchanged, quarantined, started_at)
VALUES (%(kind)s, %(source)s, %(actor)s, %(api_user_id)s, %(agency_id)s, %(partial)s, %(rows)s, %(inserted)s,
        %(updated)s, %(unchanged)s, %(quarantined)s, %(started_at)s)
RETURNING import_batch_id;

-- import_insert_quarantine --
INSERT INTO import_quarantine (import_batch_id, row_no, column_name, value, reason, raw)
SELECT %(import_batch_id)s, q.row_no, q.column_name, q.value, q.reason, q.raw
FROM unnest(%(row_no)s::integer[], %(column_name)s::text[], %(value)s::text[], %(reason)s::text[],
            %(raw)s::jsonb[]) AS q(row_no, column_name, value, reason, raw);

-- import_agency_id --
SELECT agency_id FROM agency WHERE code = %(code)s;

-- import_batches --
-- Import batches, newest first, of the caller's agencies (an unscoped administrator sees all).
SELECT import_batch_id, kind, source, actor, agency_id, partial, rows, inserted, updated, unchanged,
       quarantined, started_at, finished_at
FROM import_batch
WHERE (%(all_agencies)s OR agency_id = ANY(%(agency_ids)s::integer[])
       OR api_user_id IS NOT DISTINCT FROM %(api_user_id)s)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s)
ORDER BY import_batch_id DESC
LIMIT %(limit)s;

-- import_batch_quarantine --
SELECT q.row_no, q.column_name, q.value, q.reason, q.raw
FROM import_quarantine AS q JOIN import_batch AS b USING (import_batch_id)
WHERE q.import_batch_id = %(import_batch_id)s
  AND (%(all_agencies)s OR b.agency_id = ANY(%(agency_ids)s::integer[])
       OR b.api_user_id IS NOT DISTINCT FROM %(api_user_id)s)
ORDER BY q.row_no, q.import_quarantine_id;
