-- The live archive guard (catalog/src/guard.rs): the archives live syncs made, counted over a
-- sliding window, and the archives it held back until an operator confirms them.
CREATE TABLE IF NOT EXISTS catalog_sync_archives (
    product_id  TEXT NOT NULL,
    archived_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS catalog_sync_archives_at ON catalog_sync_archives (archived_at);
CREATE TABLE IF NOT EXISTS catalog_sync_held_archives (
    product_id   TEXT PRIMARY KEY,
    held_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    reason       TEXT NOT NULL,
    confirmed_at TIMESTAMPTZ
);
