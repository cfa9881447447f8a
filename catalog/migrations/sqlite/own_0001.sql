-- catalog-sync's own tables (SQLite: one file holds everything, so they are prefixed
-- `catalog_sync_`). Same columns as PostgreSQL's `catalog_sync` schema; times are text in
-- `%Y-%m-%dT%H:%M:%fZ`, whose text order is time order.

-- Change capture: a row per insert, update and delete of a product, appended by the capture
-- triggers in the writer's own transaction and drained by the relay.
CREATE TABLE IF NOT EXISTS catalog_sync_changes (
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

CREATE TABLE IF NOT EXISTS catalog_sync_webhook_events (
    event_id    TEXT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    object_id   TEXT,
    decision    TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS catalog_sync_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS catalog_sync_identity (
    only_row   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    catalog    TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS catalog_sync_archives (
    product_id  TEXT NOT NULL,
    archived_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS catalog_sync_archives_at ON catalog_sync_archives (archived_at);
CREATE TABLE IF NOT EXISTS catalog_sync_held_archives (
    product_id   TEXT PRIMARY KEY,
    held_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    reason       TEXT NOT NULL,
    confirmed_at TEXT
);

CREATE TABLE IF NOT EXISTS catalog_sync_relays (
    relay_id TEXT PRIMARY KEY,
    seen_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
