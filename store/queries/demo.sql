-- The demo's progress checks and summaries (fleetwatch/demo.py).

-- demo_fixes_received --
-- How many fixes ingest has accounted for so far (stored, duplicate or quarantined).
SELECT coalesce(sum(fixes_received), 0) FROM ingest_batch;

-- demo_engine_queue --
-- Vehicles ingest marked that the engine has not taken yet.
SELECT count(*) FROM engine_queue;

-- demo_alerts_per_kind --
SELECT kind, count(*) FROM alert WHERE retracted_at IS NULL GROUP BY kind ORDER BY kind;

-- demo_alerts_published --
SELECT count(*) FROM alert WHERE published_at IS NOT NULL;

-- demo_insert_tariffs --
-- The settlement office's tariffs (own pools: 2 yuan/km + 30 yuan/h; rental: 400 yuan/day + 60/h;
-- ride-hailing: 10 % off the provider's fare).
INSERT INTO tariff (pool_id, kind, per_km_fen, per_hour_fen, per_day_fen, discount_pct, valid_from, note)
SELECT pool_id,
       CASE kind WHEN 'rental' THEN 'rental' WHEN 'ride_hailing' THEN 'ride_hailing' ELSE 'own_pool' END,
       CASE WHEN kind IN ('city', 'district') THEN 200 END,
       CASE WHEN kind IN ('city', 'district') THEN 3000 WHEN kind = 'rental' THEN 6000 END,
       CASE WHEN kind = 'rental' THEN 40000 END,
       CASE WHEN kind = 'ride_hailing' THEN 10 END,
       %(valid_from)s, 'demo tariff'
FROM pool;

-- demo_first_depot --
SELECT name, lon, lat FROM depot ORDER BY depot_id LIMIT 1;

-- demo_busiest_agency --
-- The agency with the most dispatch orders (its monthly statement is shown).
SELECT agency_id, a.name
FROM dispatch_order JOIN agency AS a USING (agency_id)
GROUP BY agency_id, a.name
ORDER BY count(*) DESC
LIMIT 1;

-- demo_trip_totals --
-- Trips stored, final ones, kilometres, trips without a dispatch order.
SELECT count(*), count(*) FILTER (WHERE final), coalesce(sum(distance_m), 0) / 1000,
       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM trip_order o WHERE o.trip_id = t.trip_id))
FROM trip AS t;

-- demo_order_totals --
-- Orders that should have run, and those a trip executed as its main order.
SELECT count(*),
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM trip_order o
                                      WHERE o.dispatch_order_id = d.dispatch_order_id AND o.role = 'main'))
FROM dispatch_order AS d
WHERE status NOT IN ('requested', 'cancelled');

-- demo_conformance_totals --
-- Orders checked against their route, those with a trip < 90 % inside, those whose destination was missed.
SELECT count(DISTINCT dispatch_order_id),
       count(DISTINCT dispatch_order_id) FILTER (WHERE inside_share < 0.9),
       count(DISTINCT dispatch_order_id) - count(DISTINCT dispatch_order_id) FILTER (WHERE arrived)
FROM trip_conformance;

-- demo_busiest_vehicles --
SELECT v.plate, sum(u.trips), round(sum(u.distance_km)::numeric, 1), round(sum(u.hours_in_use)::numeric, 1)
FROM vehicle_day_usage AS u JOIN vehicle AS v USING (vehicle_id)
GROUP BY v.plate
ORDER BY sum(u.distance_km) DESC
LIMIT 3;

-- demo_positions_stored --
SELECT count(*) FROM position;

-- demo_ingest_totals --
-- Fixes received, duplicates, quarantined fixes and quarantined messages over every batch.
SELECT coalesce(sum(fixes_received), 0), coalesce(sum(fixes_duplicate), 0),
       coalesce(sum(fixes_quarantined), 0), coalesce(sum(messages_quarantined), 0)
FROM ingest_batch;

-- demo_quarantine_reasons --
SELECT reason, count(*), min(detail) FROM quarantine GROUP BY reason ORDER BY count(*) DESC;

-- demo_live_positions --
SELECT count(*) FROM latest_position;

-- demo_vehicles --
SELECT count(*) FROM vehicle;

-- demo_dispatch_orders --
SELECT count(*) FROM dispatch_order;
