-- registry_rows --
-- How much of a registry the database already holds (the loader writes into an empty one).
SELECT (SELECT count(*) FROM agency) + (SELECT count(*) FROM pool) + (SELECT count(*) FROM vehicle)
     + (SELECT count(*) FROM place) + (SELECT count(*) FROM dispatch_order);

-- copy_agency --
COPY agency (agency_id, code, name, parent_agency_id) FROM STDIN;

-- copy_pool --
COPY pool (pool_id, code, name, kind, agency_id) FROM STDIN;

-- copy_place --
COPY place (place_id, code, kind, name, forbidden, lon, lat, radius_m, polygon) FROM STDIN;

-- copy_depot --
COPY depot (depot_id, pool_id, name, lon, lat, radius_m) FROM STDIN;

-- copy_vehicle --
COPY vehicle (vehicle_id, plate, kind, seats, pool_id, agency_id, depot_id, status, tank_l, fuel_norm_l_per_100km)
FROM STDIN;

-- copy_terminal --
COPY terminal (terminal_id, vehicle_id, protocol) FROM STDIN;

-- copy_dispatch_order --
COPY dispatch_order (dispatch_order_id, code, agency_id, passengers, purpose, origin_place_id, origin_lon,
                     origin_lat, destination_place_id, destination_lon, destination_lat, requested_at,
                     window_start_at, window_end_at, route, route_length_m, status, vehicle_id, pool_id,
                     cross_region)
FROM STDIN;

-- copy_fuel_record --
COPY fuel_record (fuel_record_id, vehicle_id, card, place_id, lon, lat, fuelled_at, litres) FROM STDIN;

-- copy_maintenance_record --
COPY maintenance_record (maintenance_record_id, vehicle_id, place_id, lon, lat, started_at, ended_at) FROM STDIN;

-- copy_vehicle_document --
COPY vehicle_document (vehicle_document_id, vehicle_id, kind, number, issuer, valid_from, expires_on, cost_fen)
FROM STDIN;

-- upsert_calendar_day --
INSERT INTO calendar_day (day, kind, name) VALUES (%(day)s, %(kind)s, %(name)s)
ON CONFLICT (day) DO UPDATE SET kind = excluded.kind, name = excluded.name;

-- sync_identities --
-- After rows were written with explicit ids, move each identity past the largest id.
SELECT setval(pg_get_serial_sequence('agency', 'agency_id'), greatest(max(agency_id), 1)) FROM agency
UNION ALL SELECT setval(pg_get_serial_sequence('pool', 'pool_id'), greatest(max(pool_id), 1)) FROM pool
UNION ALL SELECT setval(pg_get_serial_sequence('place', 'place_id'), greatest(max(place_id), 1)) FROM place
UNION ALL SELECT setval(pg_get_serial_sequence('depot', 'depot_id'), greatest(max(depot_id), 1)) FROM depot
UNION ALL SELECT setval(pg_get_serial_sequence('vehicle', 'vehicle_id'), greatest(max(vehicle_id), 1)) FROM vehicle
UNION ALL SELECT setval(pg_get_serial_sequence('dispatch_order', 'dispatch_order_id'),
                        greatest(max(dispatch_order_id), 1)) FROM dispatch_order
UNION ALL SELECT setval(pg_get_serial_sequence('fuel_record', 'fuel_record_id'), greatest(max(fuel_record_id), 1))
          FROM fuel_record
UNION ALL SELECT setval(pg_get_serial_sequence('maintenance_record', 'maintenance_record_id'),
                        greatest(max(maintenance_record_id), 1)) FROM maintenance_record
UNION ALL SELECT setval(pg_get_serial_sequence('road', 'road_id'), greatest(max(road_id), 1)) FROM road
UNION ALL SELECT setval(pg_get_serial_sequence('vehicle_document', 'vehicle_document_id'),
                        greatest(max(vehicle_document_id), 1)) FROM vehicle_document;

-- copy_road --
COPY road (road_id, name, kind, speed_limit_kmh, geometry) FROM STDIN;

-- stage_orders --
CREATE TEMPORARY TABLE order_stage (
    code text, agency_code text, passengers smallint, purpose text, origin_code text, origin_lon float8,
    origin_lat float8, destination_code text, destination_lon float8, destination_lat float8,
    requested_at timestamptz, window_start_at timestamptz, window_end_at timestamptz, route jsonb,
    route_length_m real, status text, plate text, pool_code text, cross_region boolean
) ON COMMIT DROP;

-- copy_order_stage --
COPY order_stage FROM STDIN;

-- insert_staged_orders --
-- Orders by code: agency, places, vehicle (plate) and pool (code) looked up; returns code → id.
INSERT INTO dispatch_order (code, agency_id, passengers, purpose, origin_place_id, origin_lon, origin_lat,
                            destination_place_id, destination_lon, destination_lat, requested_at,
                            window_start_at, window_end_at, route, route_length_m, status, vehicle_id, pool_id,
                            cross_region)
SELECT s.code, a.agency_id, s.passengers, s.purpose, o.place_id, s.origin_lon, s.origin_lat, d.place_id,
       s.destination_lon, s.destination_lat, s.requested_at, s.window_start_at, s.window_end_at, s.route,
       s.route_length_m, s.status, v.vehicle_id, p.pool_id, s.cross_region
FROM order_stage AS s
JOIN agency AS a ON a.code = s.agency_code
JOIN pool AS p ON p.code = s.pool_code
LEFT JOIN place AS o ON o.code = s.origin_code
LEFT JOIN place AS d ON d.code = s.destination_code
LEFT JOIN vehicle AS v ON v.plate = s.plate
RETURNING code, dispatch_order_id;

-- vehicles_by_plate --
SELECT plate, vehicle_id FROM vehicle;
