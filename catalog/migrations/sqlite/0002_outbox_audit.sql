-- Change capture (see the PostgreSQL migration): triggers append a row per product change in the
-- writer's own transaction. A price change bumps its product's version (0001), which is captured as
-- an update. Times are text in `%Y-%m-%dT%H:%M:%fZ`, whose text order is time order.
CREATE TABLE IF NOT EXISTS catalog_changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id    TEXT NOT NULL,
    op            TEXT NOT NULL,
    version       INTEGER,
    changed_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    claimed_by    TEXT,
    claimed_until TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    failed_at     TEXT,
    last_error    TEXT
);

CREATE TRIGGER IF NOT EXISTS catalog_products_capture_insert AFTER INSERT ON catalog_products
BEGIN
    INSERT INTO catalog_changes (product_id, op, version) VALUES (NEW.id, 'insert', NEW.version);
END;

-- The bump trigger of 0001 re-updates the row with a new version: capture that update only.
CREATE TRIGGER IF NOT EXISTS catalog_products_capture_update AFTER UPDATE ON catalog_products
WHEN NEW.version <> OLD.version
BEGIN
    INSERT INTO catalog_changes (product_id, op, version) VALUES (NEW.id, 'update', NEW.version);
END;

CREATE TRIGGER IF NOT EXISTS catalog_products_capture_delete AFTER DELETE ON catalog_products
BEGIN
    INSERT INTO catalog_changes (product_id, op) VALUES (OLD.id, 'delete');
END;

CREATE TABLE IF NOT EXISTS catalog_sync_audit (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id      TEXT NOT NULL,
    catalog_version INTEGER,
    content_hash    TEXT,
    outcome         TEXT NOT NULL,
    operations      TEXT NOT NULL DEFAULT '[]',
    request_ids     TEXT NOT NULL DEFAULT '[]',
    detail          TEXT,
    workflow_id     TEXT,
    run_id          TEXT,
    attempt         INTEGER,
    recorded_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS catalog_sync_audit_product ON catalog_sync_audit (product_id, seq);

CREATE TABLE IF NOT EXISTS stripe_webhook_events (
    event_id    TEXT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    object_id   TEXT,
    decision    TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
