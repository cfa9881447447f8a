-- Polling capture (catalog/src/poll.rs): what the poller last saw of each product, and its cursors.
CREATE TABLE IF NOT EXISTS catalog_sync_polled (
    product_id        TEXT PRIMARY KEY,
    updated_at        TEXT,
    prices_updated_at TEXT
);
CREATE TABLE IF NOT EXISTS catalog_sync_cursors (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
