-- Named queries of the HTTP API (api/). Scope: a caller sees rows whose agency is in %(agency_ids)s
-- (their agencies and every agency below them) unless %(all_agencies)s (admin).

-- api_caller_by_token --
WITH RECURSIVE caller AS (
    SELECT u.api_user_id, u.name, u.role
    FROM api_token AS t
    JOIN api_user AS u USING (api_user_id)
    WHERE t.token_sha256 = %(token_sha256)s
      AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > now())
      AND u.disabled_at IS NULL
), own AS (
    SELECT ua.agency_id FROM api_user_agency AS ua JOIN caller USING (api_user_id)
), below (agency_id) AS (
    SELECT agency_id FROM own
    UNION
    SELECT a.agency_id FROM agency AS a JOIN below AS b ON a.parent_agency_id = b.agency_id
), above (agency_id) AS (
    SELECT agency_id FROM own
    UNION
    SELECT a.parent_agency_id FROM agency AS a JOIN above AS b ON a.agency_id = b.agency_id
    WHERE a.parent_agency_id IS NOT NULL
)
SELECT caller.api_user_id, caller.name, caller.role,
       ARRAY(SELECT agency_id FROM below ORDER BY agency_id) AS agency_ids,
       -- pools the caller may draw cars from: shared pools (no agency), and pools of their agencies,
       -- of the agencies below them and of the agencies above them (a district office uses the city pool)
       ARRAY(SELECT pool_id FROM pool
             WHERE agency_id IS NULL
                OR agency_id IN (SELECT agency_id FROM below)
                OR agency_id IN (SELECT agency_id FROM above)
             ORDER BY pool_id) AS pool_ids
FROM caller;

-- api_user_by_name --
SELECT api_user_id, name, role FROM api_user WHERE name = %(name)s;

-- api_insert_user --
INSERT INTO api_user (name, role) VALUES (%(name)s, %(role)s)
RETURNING api_user_id, name, role, created_at, disabled_at, ARRAY[]::integer[] AS agency_ids;

-- api_insert_user_agency --
INSERT INTO api_user_agency (api_user_id, agency_id) VALUES (%(api_user_id)s, %(agency_id)s);

-- api_agency_ids_by_code --
SELECT agency_id, code FROM agency WHERE code = ANY(%(codes)s);

-- api_users --
SELECT u.api_user_id, u.name, u.role, u.created_at, u.disabled_at,
       ARRAY(SELECT ua.agency_id FROM api_user_agency AS ua
             WHERE ua.api_user_id = u.api_user_id ORDER BY ua.agency_id) AS agency_ids
FROM api_user AS u
WHERE %(api_user_id)s::integer IS NULL OR u.api_user_id = %(api_user_id)s
ORDER BY u.api_user_id;

-- api_insert_token --
INSERT INTO api_token (api_user_id, token_sha256, label, expires_at)
VALUES (%(api_user_id)s, %(token_sha256)s, %(label)s, %(expires_at)s)
RETURNING api_token_id, api_user_id, label, created_at, expires_at, revoked_at;

-- api_revoke_token --
UPDATE api_token SET revoked_at = now()
WHERE api_token_id = %(api_token_id)s AND revoked_at IS NULL
RETURNING api_token_id, api_user_id, label, created_at, expires_at, revoked_at;

-- api_insert_audit --
INSERT INTO audit (api_user_id, actor, action, entity, entity_id, agency_id, before, after)
VALUES (%(api_user_id)s, %(actor)s, %(action)s, %(entity)s, %(entity_id)s, %(agency_id)s, %(before)s,
        %(after)s);

-- api_audit --
SELECT audit_id, at, api_user_id, actor, action, entity, entity_id, agency_id, before, after
FROM audit
WHERE (%(all_agencies)s OR agency_id = ANY(%(agency_ids)s))
  AND (%(entity)s::text IS NULL OR entity = %(entity)s)
  AND (%(entity_id)s::text IS NULL OR entity_id = %(entity_id)s)
  AND (%(before_audit_id)s::bigint IS NULL OR audit_id < %(before_audit_id)s)
ORDER BY audit_id DESC
LIMIT %(limit)s;

-- api_agencies --
SELECT agency_id, code, name, parent_agency_id
FROM agency
WHERE %(all_agencies)s OR agency_id = ANY(%(agency_ids)s)
ORDER BY agency_id;

-- api_pools --
SELECT pool_id, code, name, kind, agency_id
FROM pool
WHERE %(all_pools)s OR pool_id = ANY(%(pool_ids)s)
ORDER BY pool_id;

-- api_pool --
SELECT pool_id, code, name, kind, agency_id FROM pool WHERE pool_id = %(pool_id)s;

-- api_depot --
SELECT depot_id, pool_id FROM depot WHERE depot_id = %(depot_id)s;

-- api_vehicles --
SELECT v.vehicle_id, v.plate, v.kind, v.seats, v.pool_id, v.agency_id, v.depot_id, v.status,
       v.tank_l, v.fuel_norm_l_per_100km, v.created_at,
       ARRAY(SELECT t.terminal_id FROM terminal AS t WHERE t.vehicle_id = v.vehicle_id
             ORDER BY t.terminal_id) AS terminal_ids
FROM vehicle AS v
WHERE (%(all_agencies)s OR v.agency_id = ANY(%(agency_ids)s))
  AND (%(vehicle_id)s::integer IS NULL OR v.vehicle_id = %(vehicle_id)s)
  AND (%(status)s::text IS NULL OR v.status = %(status)s)
  AND (%(pool_id)s::integer IS NULL OR v.pool_id = %(pool_id)s)
  AND (%(agency_id)s::integer IS NULL OR v.agency_id = %(agency_id)s)
ORDER BY v.vehicle_id
LIMIT %(limit)s OFFSET %(offset)s;

-- api_vehicle_row --
-- The row as JSON for the audit, locked for the write that follows.
SELECT to_jsonb(v) AS row, v.agency_id, v.pool_id, v.status, v.seats
FROM vehicle AS v
WHERE v.vehicle_id = %(vehicle_id)s AND (%(all_agencies)s OR v.agency_id = ANY(%(agency_ids)s))
FOR UPDATE;

-- api_insert_vehicle --
INSERT INTO vehicle (plate, kind, seats, pool_id, agency_id, depot_id, tank_l, fuel_norm_l_per_100km)
VALUES (%(plate)s, %(kind)s, %(seats)s, %(pool_id)s, %(agency_id)s, %(depot_id)s, %(tank_l)s,
        %(fuel_norm_l_per_100km)s)
RETURNING vehicle_id, to_jsonb(vehicle.*) AS row;

-- api_set_vehicle_status --
UPDATE vehicle SET status = %(status)s WHERE vehicle_id = %(vehicle_id)s
RETURNING to_jsonb(vehicle.*) AS row;

-- api_vehicle_open_orders --
-- Assigned or running orders of a car that have not ended by %(at)s.
SELECT dispatch_order_id
FROM dispatch_order
WHERE vehicle_id = %(vehicle_id)s
  AND status IN ('assigned', 'dispatched', 'in_progress')
  AND (status = 'in_progress' OR window_end_at > %(at)s)
ORDER BY window_start_at;

-- api_terminals --
SELECT t.terminal_id, t.terminal_no, t.vehicle_id, t.protocol, t.bound_at
FROM terminal AS t
LEFT JOIN vehicle AS v USING (vehicle_id)
WHERE (%(all_agencies)s OR v.agency_id = ANY(%(agency_ids)s))
  AND (%(vehicle_id)s::integer IS NULL OR t.vehicle_id = %(vehicle_id)s)
ORDER BY t.terminal_id
LIMIT %(limit)s OFFSET %(offset)s;

-- api_terminal_row --
SELECT to_jsonb(t) AS row, t.vehicle_id FROM terminal AS t WHERE t.terminal_id = %(terminal_id)s FOR UPDATE;

-- api_insert_terminal --
INSERT INTO terminal (terminal_id, vehicle_id, protocol) VALUES (%(terminal_id)s, %(vehicle_id)s, %(protocol)s)
RETURNING terminal_id, terminal_no, vehicle_id, protocol, bound_at, to_jsonb(terminal.*) AS row;

-- api_bind_terminal --
UPDATE terminal SET vehicle_id = %(vehicle_id)s, protocol = %(protocol)s, bound_at = now()
WHERE terminal_id = %(terminal_id)s
RETURNING terminal_id, terminal_no, vehicle_id, protocol, bound_at, to_jsonb(terminal.*) AS row;

-- api_unbind_terminal --
UPDATE terminal SET vehicle_id = NULL WHERE terminal_id = %(terminal_id)s
RETURNING terminal_id, terminal_no, vehicle_id, protocol, bound_at, to_jsonb(terminal.*) AS row;

-- api_live_positions --
SELECT v.vehicle_id, v.plate, v.status, l.lon, l.lat, l.fix_at, l.received_at, l.speed_kmh, l.heading_deg,
       l.ignition, l.odometer_km,
       extract(epoch FROM (now() - l.fix_at))::double precision AS fix_age_s
FROM latest_position AS l
JOIN vehicle AS v USING (vehicle_id)
WHERE (%(all_agencies)s OR v.agency_id = ANY(%(agency_ids)s))
  AND (%(agency_id)s::integer IS NULL OR v.agency_id = %(agency_id)s)
  AND (%(pool_id)s::integer IS NULL OR v.pool_id = %(pool_id)s)
  AND (%(online_since)s::timestamptz IS NULL OR l.fix_at >= %(online_since)s)
ORDER BY v.vehicle_id
LIMIT %(limit)s OFFSET %(offset)s;

-- api_track --
-- One page of a vehicle's fixes in [start_at, end_at), oldest first; limit + 1 rows say whether more follow.
SELECT fix_at, lon, lat, speed_kmh, heading_deg, ignition, valid
FROM position
WHERE vehicle_id = %(vehicle_id)s
  AND fix_at >= %(start_at)s AND fix_at < %(end_at)s
  AND (%(include_invalid)s OR valid)
ORDER BY fix_at
LIMIT %(limit)s;

-- api_nearest_free_vehicles --
-- The KNN walk over latest_position_earth_idx: cars in order of distance from the point, the first k
-- that are free. Free: in service, newest fix at or after online_since, enough seats, a pool the caller
-- may use, and no assigned or running order whose window meets [at, until].
SELECT v.vehicle_id, v.plate, v.kind, v.seats, v.pool_id, v.agency_id, l.lon, l.lat, l.fix_at,
       extract(epoch FROM (now() - l.fix_at))::double precision AS fix_age_s
FROM latest_position AS l
JOIN vehicle AS v USING (vehicle_id)
WHERE l.fix_at >= %(online_since)s
  AND v.status = 'in_service'
  AND v.seats >= %(seats)s
  AND (%(all_pools)s OR v.pool_id = ANY(%(pool_ids)s))
  AND NOT EXISTS (
      SELECT 1 FROM dispatch_order AS o
      WHERE o.vehicle_id = v.vehicle_id
        AND o.status IN ('assigned', 'dispatched', 'in_progress')
        AND o.window_start_at <= %(until)s AND o.window_end_at > %(at)s)
ORDER BY ll_to_earth(l.lat, l.lon) <-> ll_to_earth(%(lat)s, %(lon)s)
LIMIT %(k)s;

-- api_nearest_free_vehicles_scan --
-- The baseline: the same answer by computing every car's haversine distance and sorting (no index).
SELECT v.vehicle_id, v.plate, v.kind, v.seats, v.pool_id, v.agency_id, l.lon, l.lat, l.fix_at,
       extract(epoch FROM (now() - l.fix_at))::double precision AS fix_age_s
FROM latest_position AS l
JOIN vehicle AS v USING (vehicle_id)
WHERE l.fix_at >= %(online_since)s
  AND v.status = 'in_service'
  AND v.seats >= %(seats)s
  AND (%(all_pools)s OR v.pool_id = ANY(%(pool_ids)s))
  AND NOT EXISTS (
      SELECT 1 FROM dispatch_order AS o
      WHERE o.vehicle_id = v.vehicle_id
        AND o.status IN ('assigned', 'dispatched', 'in_progress')
        AND o.window_start_at <= %(until)s AND o.window_end_at > %(at)s)
ORDER BY asin(sqrt(sin(radians(l.lat - %(lat)s) / 2) ^ 2
                   + cos(radians(l.lat)) * cos(radians(%(lat)s)) * sin(radians(l.lon - %(lon)s) / 2) ^ 2))
LIMIT %(k)s;

-- api_orders --
SELECT dispatch_order_id, code, agency_id, passengers, purpose, origin_place_id, origin_lon, origin_lat,
       destination_place_id, destination_lon, destination_lat, requested_at, window_start_at, window_end_at,
       route, route_length_m, status, vehicle_id, pool_id, cross_region, status_changed_at, cancel_reason
FROM dispatch_order
WHERE (%(all_agencies)s OR agency_id = ANY(%(agency_ids)s))
  AND (%(dispatch_order_id)s::bigint IS NULL OR dispatch_order_id = %(dispatch_order_id)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(agency_id)s::integer IS NULL OR agency_id = %(agency_id)s)
  AND (%(vehicle_id)s::integer IS NULL OR vehicle_id = %(vehicle_id)s)
  AND (%(start_at)s::timestamptz IS NULL OR window_end_at > %(start_at)s)
  AND (%(end_at)s::timestamptz IS NULL OR window_start_at < %(end_at)s)
ORDER BY window_start_at, dispatch_order_id
LIMIT %(limit)s OFFSET %(offset)s;

-- api_order_row --
SELECT to_jsonb(o) AS row, o.agency_id, o.status, o.passengers, o.vehicle_id, o.window_start_at,
       o.window_end_at
FROM dispatch_order AS o
WHERE o.dispatch_order_id = %(dispatch_order_id)s AND (%(all_agencies)s OR o.agency_id = ANY(%(agency_ids)s))
FOR UPDATE;

-- api_insert_order --
INSERT INTO dispatch_order (code, agency_id, passengers, purpose, origin_lon, origin_lat, destination_lon,
                            destination_lat, requested_at, window_start_at, window_end_at, status, pool_id,
                            cross_region, status_changed_at)
VALUES (%(code)s, %(agency_id)s, %(passengers)s, %(purpose)s, %(origin_lon)s, %(origin_lat)s,
        %(destination_lon)s, %(destination_lat)s, now(), %(window_start_at)s, %(window_end_at)s, 'requested',
        %(pool_id)s, %(cross_region)s, now())
RETURNING dispatch_order_id, to_jsonb(dispatch_order.*) AS row;

-- api_set_order_status --
UPDATE dispatch_order
SET status = %(status)s, status_changed_at = now(),
    vehicle_id = COALESCE(%(vehicle_id)s, vehicle_id), pool_id = COALESCE(%(pool_id)s, pool_id),
    cancel_reason = COALESCE(%(cancel_reason)s, cancel_reason)
WHERE dispatch_order_id = %(dispatch_order_id)s
RETURNING to_jsonb(dispatch_order.*) AS row;

-- api_set_order_route --
UPDATE dispatch_order SET route = %(route)s, route_length_m = %(route_length_m)s
WHERE dispatch_order_id = %(dispatch_order_id)s
RETURNING to_jsonb(dispatch_order.*) AS row;

-- api_vehicle_busy --
-- Orders (other than this one) that hold the car during [start_at, end_at).
SELECT dispatch_order_id
FROM dispatch_order
WHERE vehicle_id = %(vehicle_id)s
  AND dispatch_order_id <> %(dispatch_order_id)s
  AND status IN ('assigned', 'dispatched', 'in_progress')
  AND window_start_at < %(end_at)s AND window_end_at > %(start_at)s
ORDER BY window_start_at;

-- api_approved_orders --
SELECT dispatch_order_id, passengers, window_start_at, window_end_at, origin_lon, origin_lat,
       destination_lon, destination_lat
FROM dispatch_order
WHERE status = 'approved'
  AND (%(all_agencies)s OR agency_id = ANY(%(agency_ids)s))
  AND window_start_at >= %(start_at)s AND window_start_at < %(end_at)s
ORDER BY window_start_at, dispatch_order_id
LIMIT %(limit)s;

-- api_tariffs --
SELECT tariff_id, pool_id, kind, per_km_fen, per_hour_fen, per_day_fen, discount_pct, valid_from,
       valid_until, note, created_at
FROM tariff
WHERE (%(tariff_id)s::integer IS NULL OR tariff_id = %(tariff_id)s)
  AND (%(pool_id)s::integer IS NULL OR pool_id = %(pool_id)s)
ORDER BY pool_id, valid_from;

-- api_tariff_row --
SELECT to_jsonb(t) AS row, t.pool_id FROM tariff AS t WHERE t.tariff_id = %(tariff_id)s FOR UPDATE;

-- api_insert_tariff --
INSERT INTO tariff (pool_id, kind, per_km_fen, per_hour_fen, per_day_fen, discount_pct, valid_from,
                    valid_until, note)
VALUES (%(pool_id)s, %(kind)s, %(per_km_fen)s, %(per_hour_fen)s, %(per_day_fen)s, %(discount_pct)s,
        %(valid_from)s, %(valid_until)s, %(note)s)
RETURNING tariff_id, to_jsonb(tariff.*) AS row;

-- api_update_tariff --
UPDATE tariff
SET kind = %(kind)s, per_km_fen = %(per_km_fen)s, per_hour_fen = %(per_hour_fen)s,
    per_day_fen = %(per_day_fen)s, discount_pct = %(discount_pct)s, valid_from = %(valid_from)s,
    valid_until = %(valid_until)s, note = %(note)s
WHERE tariff_id = %(tariff_id)s
RETURNING to_jsonb(tariff.*) AS row;

-- api_delete_tariff --
DELETE FROM tariff WHERE tariff_id = %(tariff_id)s;

-- api_vehicle_for_assign --
SELECT pool_id, status, seats FROM vehicle WHERE vehicle_id = %(vehicle_id)s FOR SHARE;

-- api_jt808_terminal --
-- A vehicle in scope and its JT/T 808 terminal (one registered with a gateway), newest registration first.
SELECT (SELECT t.terminal_id
        FROM terminal AS t JOIN jt808_terminal AS j USING (terminal_id)
        WHERE t.vehicle_id = v.vehicle_id
        ORDER BY j.registered_at DESC LIMIT 1),
       v.agency_id
FROM vehicle AS v
WHERE v.vehicle_id = %(vehicle_id)s AND (%(all_agencies)s OR v.agency_id = ANY(%(agency_ids)s));
