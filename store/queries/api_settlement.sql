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
