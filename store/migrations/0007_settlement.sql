-- Settlement: what a provider reports for an order (the rental firm's or ride-hailing platform's bill,
-- or the pool's own log), set beside the kilometres measured from the order's trips.

-- One report per order, replaced when the provider corrects it (every write is audited by the API).
-- provider_km: the kilometres the provider bills; fare_fen: the provider's fare before the tariff's
-- discount (ride-hailing), in fen (0.01 CNY).
CREATE TABLE provider_statement (
    dispatch_order_id bigint PRIMARY KEY REFERENCES dispatch_order,
    provider_km       numeric(10, 3) CHECK (provider_km >= 0),
    fare_fen          bigint CHECK (fare_fen >= 0),
    reference         text NOT NULL DEFAULT '',  -- the provider's bill or invoice number
    reported_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (provider_km IS NOT NULL OR fare_fen IS NOT NULL)
);
