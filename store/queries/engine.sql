-- claim_dirty --
-- Vehicles with new fixes, oldest mark first, claimed for this worker for a lease.
UPDATE engine_queue AS q
SET claimed_by = %(worker)s, claimed_at = clock_timestamp()
WHERE q.vehicle_id IN (
    SELECT vehicle_id FROM engine_queue
    WHERE dirty_at <= clock_timestamp() - make_interval(secs => %(settle_s)s)
      AND (claimed_at IS NULL OR claimed_at < clock_timestamp() - make_interval(secs => %(lease_s)s))
    ORDER BY dirty_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING q.vehicle_id, (extract(epoch FROM q.dirty_from) * 1000000)::bigint, q.dirty_at;

-- done_dirty --
-- Unmark a vehicle unless newer fixes arrived while its trips were computed (then only release it).
WITH done AS (
    DELETE FROM engine_queue AS q
    USING unnest(%(vehicle_ids)s::integer[], %(dirty_at)s::timestamptz[]) AS d(vehicle_id, dirty_at)
    WHERE q.vehicle_id = d.vehicle_id AND q.dirty_at = d.dirty_at
    RETURNING q.vehicle_id
)
UPDATE engine_queue SET claimed_by = NULL, claimed_at = NULL
WHERE vehicle_id = ANY(%(vehicle_ids)s) AND vehicle_id NOT IN (SELECT vehicle_id FROM done);

-- trip_anchors --
-- Per vehicle: the end of its last final trip that ended at a depot before ``before`` (the changed data
-- minus the engine's context): recomputing from an outing's start keeps the whole outing (depot to depot)
-- in view, so order links and alerts come out as a full recompute gives them. Also the start of its
-- first stored trip (where to start when there is no anchor).
SELECT d.vehicle_id,
       (extract(epoch FROM max(t.end_at) FILTER (
           WHERE t.final AND t.end_at <= d.before
             AND EXISTS (SELECT 1 FROM depot AS p
                         WHERE abs(p.lon - t.end_lon) < 0.004 AND abs(p.lat - t.end_lat) < 0.003)
       )) * 1000000)::bigint,
       (extract(epoch FROM min(t.start_at)) * 1000000)::bigint
FROM unnest(%(vehicle_ids)s::integer[], %(before)s::timestamptz[]) AS d(vehicle_id, before)
LEFT JOIN trip AS t ON t.vehicle_id = d.vehicle_id
GROUP BY d.vehicle_id;

-- copy_fixes_of_vehicles --
-- {engine_columns}: the fix columns the engine reads (store/fixcolumns.py), NULLs as its sentinels
COPY (
    SELECT {engine_columns}
    FROM unnest(%(vehicle_ids)s::integer[], %(from)s::timestamptz[]) AS w(vehicle_id, from_at)
    JOIN position AS p ON p.vehicle_id = w.vehicle_id AND p.fix_at >= w.from_at
) TO STDOUT (FORMAT BINARY);

-- copy_fixes_of_window --
COPY (
    SELECT {engine_columns}
    FROM position AS p
    WHERE p.fix_at >= %(from)s AND p.fix_at < %(to)s
) TO STDOUT (FORMAT BINARY);

-- orders_of_vehicles --
SELECT dispatch_order_id, vehicle_id, (extract(epoch FROM window_start_at) * 1000000)::bigint,
       (extract(epoch FROM window_end_at) * 1000000)::bigint, origin_lon, origin_lat, destination_lon,
       destination_lat, route::text
FROM dispatch_order
WHERE vehicle_id = ANY(%(vehicle_ids)s) AND status <> 'cancelled' AND status <> 'requested'
  AND window_end_at >= %(from)s AND window_start_at <= %(to)s
ORDER BY dispatch_order_id;

-- depots --
SELECT d.lon, d.lat, d.radius_m FROM depot AS d;

-- delete_trips_after --
DELETE FROM trip AS t
USING unnest(%(vehicle_ids)s::integer[], %(after)s::timestamptz[]) AS k(vehicle_id, after_at)
WHERE t.vehicle_id = k.vehicle_id AND t.start_at > k.after_at;

-- delete_trips_in_range --
DELETE FROM trip WHERE start_at >= %(from)s AND start_at < %(to)s;

-- copy_trips --
COPY trip (vehicle_id, start_at, end_at, duration_s, moving_s, distance_m, bridged_m, bridged_legs,
           speed_distance_m, max_speed_kmh, odometer_m, odometer_confidence, start_lon, start_lat, end_lon,
           end_lat, start_stop_kind, end_stop_kind, final)
FROM STDIN;

-- trip_ids --
SELECT t.trip_id, t.vehicle_id, (extract(epoch FROM t.start_at) * 1000000)::bigint
FROM trip AS t
JOIN unnest(%(vehicle_ids)s::integer[], %(start_at)s::timestamptz[]) AS k(vehicle_id, start_at)
  ON t.vehicle_id = k.vehicle_id AND t.start_at = k.start_at;

-- copy_trip_orders --
COPY trip_order (trip_id, dispatch_order_id, role, overlap_s, start_distance_m, end_distance_m) FROM STDIN;

-- copy_trip_conformance --
COPY trip_conformance (trip_id, dispatch_order_id, inside_share, max_deviation_m, off_route_m, approved_m,
                       detour_ratio, arrived, arrival_distance_m)
FROM STDIN;

-- delete_usage --
-- Daily usage is recomputed from the stored trips for the (vehicle, China day) pairs a run touched.
DELETE FROM vehicle_day_usage AS u
USING unnest(%(vehicle_ids)s::integer[], %(from)s::timestamptz[]) AS k(vehicle_id, from_at)
WHERE u.vehicle_id = k.vehicle_id AND u.day >= (k.from_at AT TIME ZONE 'Asia/Shanghai')::date;

-- insert_usage --
INSERT INTO vehicle_day_usage (vehicle_id, day, trips, distance_km, hours_in_use)
SELECT t.vehicle_id, (t.start_at AT TIME ZONE 'Asia/Shanghai')::date, count(*), sum(t.distance_m) / 1000.0,
       sum(t.duration_s) / 3600.0
FROM trip AS t
JOIN unnest(%(vehicle_ids)s::integer[], %(from)s::timestamptz[]) AS k(vehicle_id, from_at)
  ON t.vehicle_id = k.vehicle_id AND (t.start_at AT TIME ZONE 'Asia/Shanghai')::date >= (k.from_at AT TIME ZONE 'Asia/Shanghai')::date
GROUP BY 1, 2;
