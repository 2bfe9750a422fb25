-- Alerts for supervisors, with their evidence and an insert-only review trail.

-- One row per finding, keyed on what it is about (rules/alert.py): recomputation and late data
-- update an alert in place, never duplicate it. An alert a supervisor has reviewed is never rewritten
-- by the engine; one the rules stop raising while still open is marked retracted, not deleted.
CREATE TABLE alert (
    alert_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              text        NOT NULL CHECK (kind IN (
        'no_order', 'outside_window', 'off_hours', 'detour', 'wrong_destination', 'mileage_excess',
        'overnight_away', 'not_returned', 'forbidden_place', 'overspeed', 'silent_terminal',
        'mileage_padding', 'order_not_executed', 'fuel_card_elsewhere', 'fuel_over_tank',
        'fuel_consumption', 'maintenance_elsewhere')),
    severity          text        NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    vehicle_id        integer     NOT NULL REFERENCES vehicle,
    agency_id         integer     REFERENCES agency,  -- whose supervisors see it (the order's, else the car's)
    anchor            text        NOT NULL CHECK (anchor IN (
        'trip', 'stop', 'gap', 'night', 'order', 'fuel_record', 'maintenance_record')),
    anchor_value      bigint      NOT NULL,  -- epoch µs of the trip/stop/gap/night, or the record's id
    dispatch_order_id bigint      REFERENCES dispatch_order,
    start_at          timestamptz NOT NULL,
    end_at            timestamptz NOT NULL CHECK (end_at >= start_at),
    evidence          jsonb       NOT NULL,  -- thresholds, measured values, the offending segment (GeoJSON)
    status            text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'confirmed', 'dismissed')),
    raised_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    retracted_at      timestamptz,           -- the rules no longer raise it (open alerts only)
    published_at      timestamptz,           -- sent to MQTT alerts/<agency>/<kind>
    UNIQUE (kind, vehicle_id, anchor, anchor_value)
);
CREATE INDEX alert_queue_idx ON alert (status, start_at DESC);
CREATE INDEX alert_vehicle_idx ON alert (vehicle_id, start_at);
CREATE INDEX alert_agency_idx ON alert (agency_id, start_at DESC);
CREATE INDEX alert_unpublished_idx ON alert (alert_id) WHERE published_at IS NULL;

-- Every review (confirm / dismiss, with a note), insert-only: the audit trail of a decision.
CREATE TABLE alert_review (
    alert_review_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        bigint      NOT NULL REFERENCES alert,
    status          text        NOT NULL CHECK (status IN ('confirmed', 'dismissed', 'open')),
    note            text        NOT NULL,
    reviewer        text        NOT NULL,
    reviewed_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX alert_review_alert_idx ON alert_review (alert_id);

-- Rules that broke while evaluating (the others still ran): for operators, not supervisors.
CREATE TABLE rule_failure (
    rule_failure_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule            text        NOT NULL,
    vehicle_id      integer,
    detail          text        NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
