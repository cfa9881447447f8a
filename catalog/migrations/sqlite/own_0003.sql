-- The mirror of Stripe's state (catalog/src/mirror.rs): catalog-sync's products and prices as last
-- seen by an upsert, a webhook event, the events feed or a scan. A cache: nothing is written to
-- Stripe on its word without reading Stripe first.
CREATE TABLE IF NOT EXISTS catalog_sync_stripe_products (
    id      TEXT PRIMARY KEY,
    active  INTEGER NOT NULL,
    updated INTEGER,                 -- Stripe's `updated` (Unix seconds): an older write is ignored
    seen_in TEXT NOT NULL,          -- evt_… | req_… | scan:… | read:…
    seen_at INTEGER NOT NULL,        -- when it was written (Unix ms): a scan prunes what it did not see
    object  TEXT NOT NULL           -- the fields catalog-sync compares, as Stripe's JSON
);
CREATE INDEX IF NOT EXISTS catalog_sync_stripe_products_active ON catalog_sync_stripe_products (id) WHERE active;
CREATE TABLE IF NOT EXISTS catalog_sync_stripe_prices (
    id         TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    active     INTEGER NOT NULL,
    lookup_key TEXT,
    seen_in    TEXT NOT NULL,
    seen_at    INTEGER NOT NULL,
    object     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_sync_stripe_prices_product ON catalog_sync_stripe_prices (product_id);
