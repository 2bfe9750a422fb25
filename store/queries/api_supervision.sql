-- Named queries of the API's supervision routes (api/trips.py, api/alerts.py, api/stream.py,
-- api/usage.py). Scope as in api.sql: %(agency_ids)s unless %(all_agencies)s.
-- A trip is in scope when its car's agency is, or the agency of an order the trip served.
-- An alert is in scope when its agency (the order's, else the car's) is.
-- An alert concerns a trip when it is about the same car and their spans meet.

-- api_trips --
SELECT t.trip_id, t.vehicle_id, v.plate, v.agency_id, t.start_at, t.end_at, t.distance_m, t.duration_s,
       t.moving_s, t.bridged_m, t.max_speed_kmh, t.odometer_m, t.odometer_confidence, t.start_lon,
       t.start_lat, t.end_lon, t.end_lat, t.final,
       ARRAY(SELECT o.dispatch_order_id FROM trip_order AS o WHERE o.trip_id = t.trip_id
             ORDER BY o.dispatch_order_id) AS dispatch_order_ids,
       (SELECT count(*) FROM alert AS a
        WHERE a.vehicle_id = t.vehicle_id AND a.start_at <= t.end_at AND a.end_at >= t.start_at
          AND a.status = 'open' AND a.retracted_at IS NULL
          AND (%(all_agencies)s OR a.agency_id = ANY(%(agency_ids)s)))::integer AS open_alerts
FROM trip AS t
JOIN vehicle AS v USING (vehicle_id)
WHERE (%(all_agencies)s OR v.agency_id = ANY(%(agency_ids)s)
       OR EXISTS (SELECT 1 FROM trip_order AS o JOIN dispatch_order AS d USING (dispatch_order_id)
                  WHERE o.trip_id = t.trip_id AND d.agency_id = ANY(%(agency_ids)s)))
  AND (%(trip_id)s::bigint IS NULL OR t.trip_id = %(trip_id)s)
  AND (%(vehicle_id)s::integer IS NULL OR t.vehicle_id = %(vehicle_id)s)
  AND (%(agency_id)s::integer IS NULL OR v.agency_id = %(agency_id)s
       OR EXISTS (SELECT 1 FROM trip_order AS o JOIN dispatch_order AS d USING (dispatch_order_id)
                  WHERE o.trip_id = t.trip_id AND d.agency_id = %(agency_id)s))
  AND (%(start_at)s::timestamptz IS NULL OR t.end_at >= %(start_at)s)
  AND (%(end_at)s::timestamptz IS NULL OR t.start_at < %(end_at)s)
  AND (%(without_order)s::boolean IS NULL
       OR %(without_order)s = NOT EXISTS (SELECT 1 FROM trip_order AS o WHERE o.trip_id = t.trip_id))
  AND (%(flagged)s::boolean IS NULL
       OR %(flagged)s = EXISTS (
           SELECT 1 FROM alert AS a
           WHERE a.vehicle_id = t.vehicle_id AND a.start_at <= t.end_at AND a.end_at >= t.start_at
             AND a.status = 'open' AND a.retracted_at IS NULL
             AND (%(all_agencies)s OR a.agency_id = ANY(%(agency_ids)s))))
ORDER BY t.start_at DESC, t.trip_id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- api_trip_orders --
-- The orders a trip served, in the caller's scope, with the link's role and the route conformance.
SELECT o.dispatch_order_id, d.code, d.agency_id, d.status, o.role, o.overlap_s, o.start_distance_m,
       o.end_distance_m, d.window_start_at, d.window_end_at, d.route, d.route_length_m,
       c.inside_share, c.max_deviation_m, c.off_route_m, c.approved_m, c.detour_ratio, c.arrived,
       c.arrival_distance_m
FROM trip_order AS o
JOIN dispatch_order AS d USING (dispatch_order_id)
LEFT JOIN trip_conformance AS c ON c.trip_id = o.trip_id AND c.dispatch_order_id = o.dispatch_order_id
WHERE o.trip_id = %(trip_id)s AND (%(all_agencies)s OR d.agency_id = ANY(%(agency_ids)s))
ORDER BY CASE o.role WHEN 'main' THEN 0 WHEN 'positioning' THEN 1 ELSE 2 END, o.dispatch_order_id;

-- api_alerts --
SELECT a.alert_id, a.kind, a.severity, a.vehicle_id, v.plate, a.agency_id, a.anchor, a.dispatch_order_id,
       a.start_at, a.end_at, a.status, a.raised_at, a.updated_at, a.retracted_at
FROM alert AS a
JOIN vehicle AS v USING (vehicle_id)
WHERE (%(all_agencies)s OR a.agency_id = ANY(%(agency_ids)s))
  AND (%(alert_id)s::bigint IS NULL OR a.alert_id = %(alert_id)s)
  AND (%(status)s::text IS NULL OR a.status = %(status)s)
  AND (%(kind)s::text IS NULL OR a.kind = %(kind)s)
  AND (%(severity)s::text IS NULL OR a.severity = %(severity)s)
  AND (%(vehicle_id)s::integer IS NULL OR a.vehicle_id = %(vehicle_id)s)
  AND (%(agency_id)s::integer IS NULL OR a.agency_id = %(agency_id)s)
  AND (%(dispatch_order_id)s::bigint IS NULL OR a.dispatch_order_id = %(dispatch_order_id)s)
  AND (%(start_at)s::timestamptz IS NULL OR a.end_at >= %(start_at)s)
  AND (%(end_at)s::timestamptz IS NULL OR a.start_at < %(end_at)s)
  AND (%(include_retracted)s OR a.retracted_at IS NULL)
ORDER BY a.start_at DESC, a.alert_id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- api_alert_detail --
SELECT a.evidence,
       ARRAY(SELECT t.trip_id FROM trip AS t
             WHERE t.vehicle_id = a.vehicle_id AND t.start_at <= a.end_at AND t.end_at >= a.start_at
             ORDER BY t.start_at) AS trip_ids
FROM alert AS a WHERE a.alert_id = %(alert_id)s;

-- api_alert_reviews --
SELECT alert_review_id, alert_id, status, note, reviewer, reviewed_at
FROM alert_review WHERE alert_id = %(alert_id)s ORDER BY alert_review_id;

-- api_alert_row --
-- The row as JSON for the audit, locked for the review that follows.
SELECT to_jsonb(a) - 'evidence' AS row, a.agency_id, a.status, a.retracted_at
FROM alert AS a
WHERE a.alert_id = %(alert_id)s AND (%(all_agencies)s OR a.agency_id = ANY(%(agency_ids)s))
FOR UPDATE;

-- api_set_alert_status --
UPDATE alert SET status = %(status)s, updated_at = clock_timestamp()
WHERE alert_id = %(alert_id)s
RETURNING to_jsonb(alert.*) - 'evidence' AS row;

-- api_insert_alert_review --
INSERT INTO alert_review (alert_id, status, note, reviewer)
VALUES (%(alert_id)s, %(status)s, %(note)s, %(reviewer)s)
RETURNING alert_review_id, alert_id, status, note, reviewer, reviewed_at;

-- api_alerts_after --
-- The stream: alerts raised after %(after_alert_id)s in the caller's scope, oldest first.
SELECT a.alert_id, a.kind, a.severity, a.vehicle_id, v.plate, a.agency_id, a.anchor, a.dispatch_order_id,
       a.start_at, a.end_at, a.status, a.raised_at, a.updated_at, a.retracted_at
FROM alert AS a
JOIN vehicle AS v USING (vehicle_id)
WHERE a.alert_id > %(after_alert_id)s
  AND (%(all_agencies)s OR a.agency_id = ANY(%(agency_ids)s))
  AND (%(agency_id)s::integer IS NULL OR a.agency_id = %(agency_id)s)
  AND (%(kind)s::text IS NULL OR a.kind = %(kind)s)
ORDER BY a.alert_id
LIMIT %(limit)s;

-- api_last_alert_id --
SELECT coalesce(max(alert_id), 0) FROM alert;

-- api_usage --
-- Per period (day, ISO week from Monday, month) of China-local days in [from, to]: the cars in scope,
-- their trips, km and hours from vehicle_day_usage, and idle days: days an in-service car made no trip.
-- A car's status is today's.
WITH car AS (
    SELECT v.vehicle_id, v.status = 'in_service' AS in_service
    FROM vehicle AS v
    WHERE (%(all_agencies)s OR v.agency_id = ANY(%(agency_ids)s))
      AND (%(vehicle_id)s::integer IS NULL OR v.vehicle_id = %(vehicle_id)s)
      AND (%(agency_id)s::integer IS NULL OR v.agency_id = %(agency_id)s)
      AND v.status <> 'retired'
), bucket AS (
    SELECT date_trunc(%(period)s, d)::date AS period_start, count(*)::integer AS days,
           max(d)::date AS period_end
    FROM generate_series(%(from)s::date, %(to)s::date, interval '1 day') AS d
    GROUP BY 1
), used AS (
    SELECT date_trunc(%(period)s, u.day)::date AS period_start, sum(u.trips)::integer AS trips,
           sum(u.distance_km) AS distance_km, sum(u.hours_in_use)::double precision AS hours_in_use,
           (count(*) FILTER (WHERE car.in_service AND u.trips > 0))::integer AS busy_days,
           count(DISTINCT u.vehicle_id) FILTER (WHERE u.trips > 0)::integer AS vehicles_used
    FROM vehicle_day_usage AS u
    JOIN car USING (vehicle_id)
    WHERE u.day BETWEEN %(from)s::date AND %(to)s::date
    GROUP BY 1
)
SELECT b.period_start, b.period_end, b.days,
       (SELECT count(*) FROM car)::integer AS vehicles,
       (SELECT count(*) FILTER (WHERE in_service) FROM car)::integer AS in_service_vehicles,
       coalesce(u.vehicles_used, 0) AS vehicles_used,
       coalesce(u.trips, 0) AS trips, coalesce(u.distance_km, 0) AS distance_km,
       coalesce(u.hours_in_use, 0) AS hours_in_use,
       b.days * (SELECT count(*) FILTER (WHERE in_service) FROM car)::integer - coalesce(u.busy_days, 0)
           AS idle_days
FROM bucket AS b
LEFT JOIN used AS u USING (period_start)
ORDER BY b.period_start;
