-- The rules read the imported data (issue 11): document alerts, and re-judging when what the rules
-- are configured by changes.

-- Two alert kinds about vehicle documents (insurance policies, annual inspections) and their anchor,
-- beside the JT/T 808 alarm kinds of 0011.
-- The kinds are rules.alert.AlertKind's values (tests/test_rule_data.py compares them).
ALTER TABLE alert DROP CONSTRAINT alert_kind_check;
ALTER TABLE alert ADD CONSTRAINT alert_kind_check CHECK (kind IN (
    'no_order', 'outside_window', 'off_hours', 'detour', 'wrong_destination', 'mileage_excess',
    'overnight_away', 'not_returned', 'forbidden_place', 'overspeed', 'silent_terminal',
    'mileage_padding', 'order_not_executed', 'fuel_card_elsewhere', 'fuel_over_tank',
    'fuel_consumption', 'maintenance_elsewhere',
    'alarm_emergency', 'alarm_power_cut', 'alarm_antenna_cut', 'alarm_illegal_ignition',
    'alarm_illegal_displacement', 'alarm_collision', 'alarm_rollover',
    'document_expiring', 'vehicle_unfit'));
ALTER TABLE alert DROP CONSTRAINT alert_anchor_check;
ALTER TABLE alert ADD CONSTRAINT alert_anchor_check CHECK (anchor IN (
    'trip', 'stop', 'gap', 'night', 'order', 'fuel_record', 'maintenance_record', 'alarm', 'document'));

-- Bumped whenever data the rules' configuration is built from changes, so that a running engine
-- reloads its configuration at once instead of after its reload period.
CREATE TABLE rule_config_stamp (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    stamp bigint  NOT NULL
);
INSERT INTO rule_config_stamp (stamp) VALUES (0);

-- Local midnight (China Standard Time, UTC+8, no daylight saving) starting a day.
CREATE FUNCTION local_midnight(day date) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT (day::timestamp AT TIME ZONE 'UTC') - interval '8 hours'
$$;

-- Mark vehicles for the track engine and the rules from a time on (as ingest marks new fixes).
CREATE FUNCTION requeue_vehicles(vehicle_ids integer[], from_at timestamptz) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO engine_queue AS q (vehicle_id, dirty_from, dirty_to, dirty_at)
    SELECT DISTINCT v, from_at, from_at, clock_timestamp() FROM unnest(vehicle_ids) AS v
    ON CONFLICT (vehicle_id) DO UPDATE
    SET dirty_from = least(q.dirty_from, excluded.dirty_from),
        dirty_to = greatest(q.dirty_to, excluded.dirty_to), dirty_at = excluded.dirty_at
$$;

-- The vehicles an agency's rules judge: its own and those of its sub-agencies (by vehicle, else pool).
CREATE FUNCTION agency_vehicles(root integer) RETURNS SETOF integer LANGUAGE sql STABLE AS $$
    WITH RECURSIVE tree AS (
        SELECT agency_id FROM agency WHERE agency_id = root
        UNION SELECT a.agency_id FROM agency AS a JOIN tree AS t ON a.parent_agency_id = t.agency_id
    )
    SELECT v.vehicle_id FROM vehicle AS v JOIN pool AS p USING (pool_id)
    WHERE coalesce(v.agency_id, p.agency_id) IN (SELECT agency_id FROM tree)
$$;

CREATE FUNCTION bump_rule_config_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rule_config_stamp SET stamp = stamp + 1;
    RETURN NULL;
END $$;

-- A calendar day added, changed or removed: the vehicles that drove on it are judged again from it.
CREATE FUNCTION requeue_calendar_day() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d date;
BEGIN
    FOR d IN SELECT DISTINCT x FROM unnest(ARRAY[
        CASE WHEN TG_OP <> 'INSERT' THEN OLD.day END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.day END]) AS x
        WHERE x IS NOT NULL
    LOOP
        PERFORM requeue_vehicles(ARRAY(
            SELECT DISTINCT vehicle_id FROM trip
            WHERE start_at < local_midnight(d + 1) AND end_at >= local_midnight(d)), local_midnight(d));
    END LOOP;
    RETURN NULL;
END $$;

-- A threshold version added, changed or removed: the agency's vehicles that drove since it took effect.
CREATE FUNCTION requeue_rule_threshold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        (CASE WHEN TG_OP <> 'INSERT' THEN OLD.agency_id END, CASE WHEN TG_OP <> 'INSERT' THEN OLD.effective_from END),
        (CASE WHEN TG_OP <> 'DELETE' THEN NEW.agency_id END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.effective_from END)
    ) AS c(agency_id, effective_from) WHERE agency_id IS NOT NULL
    LOOP
        PERFORM requeue_vehicles(ARRAY(
            SELECT DISTINCT t.vehicle_id FROM trip AS t
            WHERE t.vehicle_id IN (SELECT agency_vehicles(r.agency_id))
              AND t.end_at >= local_midnight(r.effective_from)), local_midnight(r.effective_from));
    END LOOP;
    RETURN NULL;
END $$;

-- Working hours changed (they have no effective date): the agency's vehicles, from their first trip.
CREATE FUNCTION requeue_working_hours() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    a integer := CASE WHEN TG_OP = 'DELETE' THEN OLD.agency_id ELSE NEW.agency_id END;
    first_at timestamptz;
BEGIN
    SELECT min(start_at) INTO first_at FROM trip WHERE vehicle_id IN (SELECT agency_vehicles(a));
    IF first_at IS NOT NULL THEN
        PERFORM requeue_vehicles(ARRAY(
            SELECT DISTINCT vehicle_id FROM trip WHERE vehicle_id IN (SELECT agency_vehicles(a))), first_at);
    END IF;
    RETURN NULL;
END $$;

-- A document added or changed: its vehicle, from the day after it expired (vehicle_unfit).
CREATE FUNCTION requeue_vehicle_document() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        (CASE WHEN TG_OP <> 'INSERT' THEN OLD.vehicle_id END, CASE WHEN TG_OP <> 'INSERT' THEN OLD.expires_on END),
        (CASE WHEN TG_OP <> 'DELETE' THEN NEW.vehicle_id END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.expires_on END)
    ) AS c(vehicle_id, expires_on) WHERE vehicle_id IS NOT NULL
    LOOP
        IF EXISTS (SELECT 1 FROM trip WHERE vehicle_id = r.vehicle_id
                   AND end_at >= local_midnight(r.expires_on + 1)) THEN
            PERFORM requeue_vehicles(ARRAY[r.vehicle_id], local_midnight(r.expires_on + 1));
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER calendar_day_requeue AFTER INSERT OR UPDATE OR DELETE ON calendar_day
    FOR EACH ROW EXECUTE FUNCTION requeue_calendar_day();
CREATE TRIGGER rule_threshold_requeue AFTER INSERT OR UPDATE OR DELETE ON rule_threshold
    FOR EACH ROW EXECUTE FUNCTION requeue_rule_threshold();
CREATE TRIGGER agency_working_hours_requeue AFTER INSERT OR UPDATE OR DELETE ON agency_working_hours
    FOR EACH ROW EXECUTE FUNCTION requeue_working_hours();
CREATE TRIGGER vehicle_document_requeue AFTER INSERT OR UPDATE OR DELETE ON vehicle_document
    FOR EACH ROW EXECUTE FUNCTION requeue_vehicle_document();

CREATE TRIGGER calendar_day_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calendar_day
    FOR EACH STATEMENT EXECUTE FUNCTION bump_rule_config_stamp();
CREATE TRIGGER rule_threshold_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rule_threshold
    FOR EACH STATEMENT EXECUTE FUNCTION bump_rule_config_stamp();
CREATE TRIGGER agency_working_hours_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agency_working_hours
    FOR EACH STATEMENT EXECUTE FUNCTION bump_rule_config_stamp();
CREATE TRIGGER place_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON place
    FOR EACH STATEMENT EXECUTE FUNCTION bump_rule_config_stamp();
CREATE TRIGGER road_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON road
    FOR EACH STATEMENT EXECUTE FUNCTION bump_rule_config_stamp();
CREATE TRIGGER agency_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agency
    FOR EACH STATEMENT EXECUTE FUNCTION bump_rule_config_stamp();
