-- The track engine's results: trips, their dispatch orders and route conformance, daily usage,
-- and the queue of vehicles whose fixes changed since the engine last looked.

-- Ingest marks a vehicle here in the same transaction as its rows. An engine worker claims vehicles
-- in a short transaction (FOR UPDATE SKIP LOCKED, then a lease: several workers never do the same
-- vehicle at once, and ingest never waits on a lock held while trips are computed), computes, and
-- deletes the mark when the trips are stored, unless newer fixes arrived meanwhile (dirty_at moved on).
CREATE TABLE engine_queue (
    vehicle_id integer     PRIMARY KEY REFERENCES vehicle,
    dirty_from timestamptz NOT NULL,  -- the oldest fix time that arrived since the engine last looked
    dirty_to   timestamptz NOT NULL,  -- the newest
    dirty_at   timestamptz NOT NULL,  -- when the last such fix was committed
    claimed_by text,
    claimed_at timestamptz            -- a claim older than the lease is void (its worker died)
);
CREATE INDEX engine_queue_dirty_at_idx ON engine_queue (dirty_at);

CREATE TABLE trip (
    trip_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vehicle_id          integer          NOT NULL REFERENCES vehicle,
    start_at            timestamptz      NOT NULL,
    end_at              timestamptz      NOT NULL CHECK (end_at >= start_at),
    duration_s          real             NOT NULL,
    moving_s            real             NOT NULL,
    distance_m          double precision NOT NULL CHECK (distance_m >= 0),
    bridged_m           double precision NOT NULL,  -- straight lines across signal gaps, inside distance_m
    bridged_legs        integer          NOT NULL,
    speed_distance_m    double precision,           -- reported speed integrated over time
    max_speed_kmh       real,
    odometer_m          double precision,           -- the terminal's odometer difference, where usable
    odometer_confidence real,
    start_lon           double precision NOT NULL,
    start_lat           double precision NOT NULL,
    end_lon             double precision NOT NULL,
    end_lat             double precision NOT NULL,
    start_stop_kind     text CHECK (start_stop_kind IN ('other', 'depot', 'destination')),
    end_stop_kind       text CHECK (end_stop_kind IN ('other', 'depot', 'destination')),
    final               boolean          NOT NULL,  -- false: at the newest edge of the data, may still change
    computed_at         timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (vehicle_id, start_at)
);
CREATE INDEX trip_start_at_idx ON trip (start_at);

CREATE TABLE trip_order (
    trip_id           bigint  NOT NULL REFERENCES trip ON DELETE CASCADE,
    dispatch_order_id bigint  NOT NULL REFERENCES dispatch_order,
    role              text    NOT NULL CHECK (role IN ('main', 'positioning', 'return')),
    overlap_s         real    NOT NULL,
    start_distance_m  real    NOT NULL,
    end_distance_m    real    NOT NULL,
    PRIMARY KEY (trip_id, dispatch_order_id)
);
CREATE INDEX trip_order_order_idx ON trip_order (dispatch_order_id);

CREATE TABLE trip_conformance (
    trip_id            bigint           NOT NULL REFERENCES trip ON DELETE CASCADE,
    dispatch_order_id  bigint           NOT NULL REFERENCES dispatch_order,
    inside_share       real             NOT NULL,
    max_deviation_m    real             NOT NULL,
    off_route_m        double precision NOT NULL,
    approved_m         double precision NOT NULL,
    detour_ratio       real             NOT NULL,
    arrived            boolean          NOT NULL,
    arrival_distance_m real             NOT NULL,
    PRIMARY KEY (trip_id, dispatch_order_id)
);

-- Per vehicle and local (China) day; weeks, months and agencies are sums of these.
CREATE TABLE vehicle_day_usage (
    vehicle_id   integer          NOT NULL REFERENCES vehicle,
    day          date             NOT NULL,
    trips        integer          NOT NULL,
    distance_km  double precision NOT NULL,
    hours_in_use real             NOT NULL,
    PRIMARY KEY (vehicle_id, day)
);
