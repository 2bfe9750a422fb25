-- Named queries of the API's settlement routes (api/settlement.py). Scope: the order's agency.

-- api_settlement_lines --
-- One line per executed order (one with a main trip) whose window starts in [from, to): its linked
-- trips (main, positioning, return), the pool's tariff valid on the window's first China-local day,
-- and what the provider reported.
SELECT o.dispatch_order_id, o.code, o.agency_id, o.pool_id, p.kind AS pool_kind,
       coalesce(o.vehicle_id, l.vehicle_id) AS vehicle_id, v.plate, o.status, o.window_start_at,
       o.window_end_at, l.trip_ids, l.roles, l.distance_m, l.first_start_at, l.last_end_at, l.final,
       tf.tariff_id, tf.kind AS tariff_kind, tf.per_km_fen, tf.per_hour_fen, tf.per_day_fen,
       tf.discount_pct::numeric AS discount_pct, s.provider_km, s.fare_fen AS provider_fare_fen,
       s.reference AS provider_reference
FROM dispatch_order AS o
JOIN pool AS p USING (pool_id)
CROSS JOIN LATERAL (
    SELECT array_agg(t.trip_id ORDER BY t.start_at) AS trip_ids, array_agg(tor.role ORDER BY t.start_at) AS roles,
           sum(t.distance_m)::numeric AS distance_m, min(t.start_at) AS first_start_at,
           max(t.end_at) AS last_end_at, bool_and(t.final) AS final, min(t.vehicle_id) AS vehicle_id,
           bool_or(tor.role = 'main') AS executed
    FROM trip_order AS tor
    JOIN trip AS t USING (trip_id)
    WHERE tor.dispatch_order_id = o.dispatch_order_id
) AS l
LEFT JOIN vehicle AS v ON v.vehicle_id = coalesce(o.vehicle_id, l.vehicle_id)
LEFT JOIN tariff AS tf
       ON tf.pool_id = o.pool_id
      AND daterange(tf.valid_from, tf.valid_until) @> (o.window_start_at AT TIME ZONE 'Asia/Shanghai')::date
LEFT JOIN provider_statement AS s USING (dispatch_order_id)
WHERE l.executed
  AND (%(all_agencies)s OR o.agency_id = ANY(%(agency_ids)s))
  AND (%(agency_id)s::integer IS NULL OR o.agency_id = %(agency_id)s)
  AND (%(dispatch_order_id)s::bigint IS NULL OR o.dispatch_order_id = %(dispatch_order_id)s)
  AND (%(from)s::timestamptz IS NULL OR o.window_start_at >= %(from)s)
  AND (%(to)s::timestamptz IS NULL OR o.window_start_at < %(to)s)
ORDER BY o.window_start_at, o.dispatch_order_id
LIMIT %(limit)s;

-- api_agency --
SELECT agency_id, code, name, parent_agency_id FROM agency WHERE agency_id = %(agency_id)s;

-- api_provider_statement_row --
SELECT to_jsonb(s) AS row FROM provider_statement AS s WHERE s.dispatch_order_id = %(dispatch_order_id)s
FOR UPDATE;

-- api_upsert_provider_statement --
INSERT INTO provider_statement (dispatch_order_id, provider_km, fare_fen, reference, reported_at)
VALUES (%(dispatch_order_id)s, %(provider_km)s, %(fare_fen)s, %(reference)s, now())
ON CONFLICT (dispatch_order_id) DO UPDATE
SET provider_km = excluded.provider_km, fare_fen = excluded.fare_fen, reference = excluded.reference,
    reported_at = excluded.reported_at
RETURNING to_jsonb(provider_statement.*) AS row;

-- api_operating_costs --
-- A car's running cost in the China-local month [first_day, last_day] ([from, to) as instants), in fen
-- by category: fuel by fuelled_at, maintenance by ended_at (the car leaves the shop), and insurance,
-- inspection and rental spread pro rata over their validity days (both ends included; a document
-- without valid_from is valid for the year up to expires_on), each record rounded to the fen. km from
-- vehicle_day_usage. Scope: the car's agency; a rental contract's own agency (one row per agency for
-- contracts bound to no car).
WITH car AS (
    SELECT v.vehicle_id, v.plate, v.agency_id
    FROM vehicle AS v
    WHERE (%(all_agencies)s OR v.agency_id = ANY(%(agency_ids)s))
      AND (%(agency_id)s::integer IS NULL OR v.agency_id = %(agency_id)s)
), spread AS (
    SELECT d.vehicle_id, car.agency_id, d.kind AS category, d.cost_fen, first.day AS first_day,
           d.expires_on AS last_day
    FROM vehicle_document AS d
    JOIN car USING (vehicle_id)
    CROSS JOIN LATERAL (
        SELECT coalesce(d.valid_from, (d.expires_on - interval '1 year')::date + 1) AS day
    ) AS first
    WHERE d.cost_fen IS NOT NULL
    UNION ALL
    SELECT rc.vehicle_id, coalesce(v.agency_id, rc.agency_id), 'rental', rc.amount_fen, rc.starts_on,
           rc.ends_on
    FROM rental_contract AS rc
    LEFT JOIN vehicle AS v USING (vehicle_id)
    WHERE (%(all_agencies)s OR rc.agency_id = ANY(%(agency_ids)s))
      AND (%(agency_id)s::integer IS NULL OR rc.agency_id = %(agency_id)s)
), cost AS (
    SELECT f.vehicle_id, car.agency_id, 'fuel' AS category, f.amount_fen::numeric AS fen
    FROM fuel_record AS f
    JOIN car USING (vehicle_id)
    WHERE f.amount_fen IS NOT NULL AND f.fuelled_at >= %(from)s AND f.fuelled_at < %(to)s
    UNION ALL
    SELECT m.vehicle_id, car.agency_id, 'maintenance', m.cost_fen::numeric
    FROM maintenance_record AS m
    JOIN car USING (vehicle_id)
    WHERE m.cost_fen IS NOT NULL AND m.ended_at >= %(from)s AND m.ended_at < %(to)s
    UNION ALL
    SELECT s.vehicle_id, s.agency_id, s.category,
           round(s.cost_fen::numeric
                 * (least(s.last_day, %(last_day)s::date) - greatest(s.first_day, %(first_day)s::date) + 1)
                 / (s.last_day - s.first_day + 1))
    FROM spread AS s
    WHERE s.first_day <= %(last_day)s::date AND s.last_day >= %(first_day)s::date
), driven AS (
    SELECT u.vehicle_id, car.agency_id, sum(u.distance_km) AS distance_km
    FROM vehicle_day_usage AS u
    JOIN car USING (vehicle_id)
    WHERE u.day BETWEEN %(first_day)s::date AND %(last_day)s::date
    GROUP BY u.vehicle_id, car.agency_id
), per_car AS (
    SELECT c.vehicle_id, c.agency_id,
           coalesce(sum(c.fen) FILTER (WHERE c.category = 'fuel'), 0)::bigint AS fuel_fen,
           coalesce(sum(c.fen) FILTER (WHERE c.category = 'maintenance'), 0)::bigint AS maintenance_fen,
           coalesce(sum(c.fen) FILTER (WHERE c.category = 'insurance'), 0)::bigint AS insurance_fen,
           coalesce(sum(c.fen) FILTER (WHERE c.category = 'inspection'), 0)::bigint AS inspection_fen,
           coalesce(sum(c.fen) FILTER (WHERE c.category = 'rental'), 0)::bigint AS rental_fen
    FROM cost AS c
    GROUP BY c.vehicle_id, c.agency_id
)
SELECT coalesce(p.vehicle_id, d.vehicle_id) AS vehicle_id, v.plate,
       coalesce(p.agency_id, d.agency_id) AS agency_id,
       coalesce(p.fuel_fen, 0) AS fuel_fen, coalesce(p.maintenance_fen, 0) AS maintenance_fen,
       coalesce(p.insurance_fen, 0) AS insurance_fen, coalesce(p.inspection_fen, 0) AS inspection_fen,
       coalesce(p.rental_fen, 0) AS rental_fen, coalesce(d.distance_km, 0) AS distance_km
FROM per_car AS p
FULL JOIN driven AS d ON d.vehicle_id = p.vehicle_id AND d.agency_id IS NOT DISTINCT FROM p.agency_id
LEFT JOIN vehicle AS v ON v.vehicle_id = coalesce(p.vehicle_id, d.vehicle_id)
ORDER BY coalesce(p.vehicle_id, d.vehicle_id) NULLS LAST, coalesce(p.agency_id, d.agency_id);
