-- rule_calendar --
SELECT day, kind FROM calendar_day ORDER BY day;

-- rule_vehicles --
-- Per vehicle (sorted): its depot circle and fuel figures; vehicles without a depot are left out.
SELECT v.vehicle_id, d.lon, d.lat, d.radius_m, coalesce(v.tank_l, 'NaN'), coalesce(v.fuel_norm_l_per_100km, 'NaN')
FROM vehicle AS v
JOIN depot AS d USING (depot_id)
ORDER BY v.vehicle_id;

-- rule_forbidden_zones --
SELECT place_id, polygon::text FROM place WHERE forbidden AND polygon IS NOT NULL ORDER BY place_id;

-- rule_fuel_records --
SELECT fuel_record_id, vehicle_id, (extract(epoch FROM fuelled_at) * 1000000)::bigint, lon, lat, litres,
       coalesce(place_id, -1)
FROM fuel_record
WHERE vehicle_id = ANY(%(vehicle_ids)s) AND fuelled_at >= %(from)s AND fuelled_at < %(to)s
ORDER BY vehicle_id, fuelled_at;

-- rule_maintenance_records --
SELECT maintenance_record_id, vehicle_id, (extract(epoch FROM started_at) * 1000000)::bigint,
       (extract(epoch FROM ended_at) * 1000000)::bigint, lon, lat, coalesce(place_id, -1)
FROM maintenance_record
WHERE vehicle_id = ANY(%(vehicle_ids)s) AND ended_at >= %(from)s AND started_at < %(to)s
ORDER BY vehicle_id, started_at;

-- upsert_alert --
-- New: inserted (true). Open and changed: updated, un-retracted (false). Reviewed: left as it is (no row).
INSERT INTO alert AS a (kind, severity, vehicle_id, agency_id, anchor, anchor_value, dispatch_order_id, start_at,
                        end_at, evidence)
VALUES (%(kind)s, %(severity)s, %(vehicle_id)s,
        coalesce((SELECT agency_id FROM dispatch_order WHERE dispatch_order_id = %(dispatch_order_id)s),
                 (SELECT agency_id FROM vehicle WHERE vehicle_id = %(vehicle_id)s)),
        %(anchor)s, %(anchor_value)s, %(dispatch_order_id)s, %(start_at)s, %(end_at)s, %(evidence)s::jsonb)
ON CONFLICT (kind, vehicle_id, anchor, anchor_value) DO UPDATE
SET severity = excluded.severity, agency_id = excluded.agency_id, dispatch_order_id = excluded.dispatch_order_id,
    start_at = excluded.start_at, end_at = excluded.end_at, evidence = excluded.evidence,
    updated_at = clock_timestamp(), retracted_at = NULL
WHERE a.status = 'open'
  AND (a.severity, a.dispatch_order_id, a.start_at, a.end_at, a.evidence, a.retracted_at IS NULL)
      IS DISTINCT FROM
      (excluded.severity, excluded.dispatch_order_id, excluded.start_at, excluded.end_at, excluded.evidence, true)
RETURNING xmax = 0;

-- retract_alerts --
-- Open alerts of the judged kinds of the recomputed vehicles, in the recomputed span, that the rules did
-- not raise again.
UPDATE alert AS a
SET retracted_at = clock_timestamp(), updated_at = clock_timestamp()
FROM unnest(%(vehicle_ids)s::integer[], %(after)s::timestamptz[], %(until)s::timestamptz[])
     AS w(vehicle_id, after_at, until_at)
WHERE a.vehicle_id = w.vehicle_id AND a.start_at > w.after_at AND a.end_at <= w.until_at
  AND a.status = 'open' AND a.retracted_at IS NULL AND a.kind = ANY(%(judged_kinds)s::text[])
  AND (a.kind, a.vehicle_id, a.anchor, a.anchor_value) NOT IN (
      SELECT * FROM unnest(%(kinds)s::text[], %(vehicles)s::integer[], %(anchors)s::text[],
                           %(anchor_values)s::bigint[]));

-- insert_rule_failure --
INSERT INTO rule_failure (rule, vehicle_id, detail) VALUES (%(rule)s, %(vehicle_id)s, %(detail)s);

-- unpublished_alerts --
SELECT a.alert_id, coalesce(g.code, 'none'), a.kind, a.severity, a.vehicle_id, v.plate, a.dispatch_order_id,
       a.start_at, a.end_at, a.evidence::text
FROM alert AS a
JOIN vehicle AS v USING (vehicle_id)
LEFT JOIN agency AS g ON g.agency_id = a.agency_id
WHERE a.published_at IS NULL AND a.retracted_at IS NULL
ORDER BY a.alert_id
LIMIT %(limit)s;

-- mark_published --
UPDATE alert SET published_at = clock_timestamp() WHERE alert_id = ANY(%(alert_ids)s);

-- rule_quarantined_fixes --
-- Fixes the terminals sent that ingest refused (a tunnel's invalid fixes): the terminal was not silent.
SELECT t.vehicle_id, q.payload
FROM quarantine AS q
JOIN terminal AS t USING (terminal_id)
WHERE q.fix_index IS NOT NULL AND t.vehicle_id = ANY(%(vehicle_ids)s)
  AND q.received_at >= %(from)s;

-- rule_roads --
SELECT speed_limit_kmh, geometry::text FROM road ORDER BY road_id;

-- rule_forbidden_zone_dwell --
-- Per forbidden zone (as rule_forbidden_zones orders them): its own minimum dwell, NaN for the default.
SELECT coalesce(min_dwell_s::float8, 'NaN') FROM place WHERE forbidden AND polygon IS NOT NULL ORDER BY place_id;

-- rule_agencies --
-- The agency tree: id, code, parent.
SELECT agency_id, code, parent_agency_id FROM agency ORDER BY agency_id;

-- rule_vehicle_agencies --
-- Whose rules judge a vehicle: its agency, else its pool's.
SELECT v.vehicle_id, coalesce(v.agency_id, p.agency_id)
FROM vehicle AS v JOIN pool AS p USING (pool_id)
WHERE coalesce(v.agency_id, p.agency_id) IS NOT NULL
ORDER BY v.vehicle_id;

-- rule_thresholds --
SELECT agency_id, name, value, effective_from FROM rule_threshold ORDER BY agency_id, name, effective_from;

-- rule_working_hours --
SELECT agency_id, (extract(epoch FROM start_local))::int, (extract(epoch FROM end_local))::int
FROM agency_working_hours ORDER BY agency_id;

-- rule_documents --
-- Insurance policies and inspections of the vehicles, dates as days since 1970-01-01.
SELECT vehicle_document_id, vehicle_id, kind, coalesce(valid_from - date '1970-01-01', -1099511627776),
       expires_on - date '1970-01-01', number
FROM vehicle_document
WHERE vehicle_id = ANY(%(vehicle_ids)s)
ORDER BY vehicle_id, kind, expires_on, vehicle_document_id;

-- rule_documents_due --
-- Every document whose warning period or lapse can matter around a day: expiring from the day to
-- ``lead_days`` after it, or expired already (for the sweep), with the vehicles it belongs to.
SELECT vehicle_document_id, vehicle_id, kind, coalesce(valid_from - date '1970-01-01', -1099511627776),
       expires_on - date '1970-01-01', number
FROM vehicle_document
WHERE vehicle_id IN (SELECT vehicle_id FROM vehicle_document
                     WHERE expires_on BETWEEN %(from_day)s AND %(to_day)s)
ORDER BY vehicle_id, kind, expires_on, vehicle_document_id;

-- rule_config_stamp --
-- Changes whenever data the rules' configuration is built from changes (triggers in 0012).
SELECT stamp FROM rule_config_stamp;
