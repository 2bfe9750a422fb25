-- The API's import routes, drivers and the driver of an order (api/imports.py, api/orders.py).

-- api_drivers --
SELECT d.driver_id, d.licence_no, d.name, d.agency_id, d.licence_class, d.licence_expires_on, d.phone
FROM driver AS d
WHERE (%(all_agencies)s OR d.agency_id = ANY(%(agency_ids)s))
  AND (%(agency_id)s::integer IS NULL OR d.agency_id = %(agency_id)s)
ORDER BY d.driver_id
LIMIT %(limit)s OFFSET %(offset)s;

-- api_order_driver_check --
-- What licence the order needs: its last local day, and the car's kind and seats if one is assigned.
SELECT (o.window_end_at AT TIME ZONE 'Asia/Shanghai')::date AS last_day, v.kind, v.seats,
       d.licence_class, d.licence_expires_on, d.agency_id
FROM dispatch_order AS o
LEFT JOIN vehicle AS v ON v.vehicle_id = o.vehicle_id
LEFT JOIN driver AS d ON d.driver_id = %(driver_id)s
WHERE o.dispatch_order_id = %(dispatch_order_id)s;

-- api_set_order_driver --
UPDATE dispatch_order SET driver_id = %(driver_id)s
WHERE dispatch_order_id = %(dispatch_order_id)s
RETURNING to_jsonb(dispatch_order.*) AS row;

-- api_requeue_order --
-- An order whose window has begun changed: its cars' days go back to the engine (and the rules).
INSERT INTO engine_queue AS q (vehicle_id, dirty_from, dirty_to, dirty_at)
SELECT v.vehicle_id, o.window_start_at, greatest(o.window_start_at, least(o.window_end_at, now())),
       clock_timestamp()
FROM dispatch_order AS o, unnest(%(vehicle_ids)s::integer[]) AS v(vehicle_id)
WHERE o.dispatch_order_id = %(dispatch_order_id)s AND o.window_start_at <= now() AND v.vehicle_id IS NOT NULL
ON CONFLICT (vehicle_id) DO UPDATE
SET dirty_from = least(q.dirty_from, excluded.dirty_from), dirty_to = greatest(q.dirty_to, excluded.dirty_to),
    dirty_at = excluded.dirty_at;
