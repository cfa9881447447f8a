-- Polling capture (catalog/src/poll.rs): what the poller last saw of each product, and its cursors.
CREATE TABLE IF NOT EXISTS catalog_sync.polled (
    product_id        TEXT PRIMARY KEY,
    updated_at        TIMESTAMPTZ,              -- the product row's updated_at when last seen
    prices_updated_at TIMESTAMPTZ               -- the newest updated_at of its prices when last seen
);
CREATE TABLE IF NOT EXISTS catalog_sync.cursors (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
