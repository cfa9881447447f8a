-- Change capture: every insert, update and delete of a product (a price change bumps its product's
-- version, so it is captured as an update of the product) appends a row here in the writer's own
-- transaction. The relay signals the product's sync and deletes the row only after Temporal accepted.
CREATE TABLE IF NOT EXISTS catalog_changes (
    seq           BIGSERIAL PRIMARY KEY,
    product_id    TEXT NOT NULL,
    op            TEXT NOT NULL,              -- insert | update | delete
    version       BIGINT,                     -- the product's version after the change (NULL on delete)
    changed_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    claimed_by    TEXT,                       -- the relay holding the lease
    claimed_until TIMESTAMPTZ,                -- lease end: after it, another relay may take the row
    attempts      INTEGER NOT NULL DEFAULT 0,
    failed_at     TIMESTAMPTZ,                -- set when Temporal refused the change for good
    last_error    TEXT
);
CREATE INDEX IF NOT EXISTS catalog_changes_pending ON catalog_changes (seq) WHERE failed_at IS NULL;

CREATE OR REPLACE FUNCTION catalog_products_capture() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO catalog_changes (product_id, op) VALUES (OLD.id, 'delete');
    ELSE
        INSERT INTO catalog_changes (product_id, op, version) VALUES (NEW.id, lower(TG_OP), NEW.version);
    END IF;
    -- One notification per transaction (identical payloads are folded): relays wake at commit.
    PERFORM pg_notify('catalog_changes', '');
    RETURN NULL;
END $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS catalog_products_capture ON catalog_products;
CREATE TRIGGER catalog_products_capture AFTER INSERT OR UPDATE OR DELETE ON catalog_products
    FOR EACH ROW EXECUTE FUNCTION catalog_products_capture();

-- The audit ledger: one row per sync pass (and per conflict decision), appended by the activities.
CREATE TABLE IF NOT EXISTS catalog_sync_audit (
    seq             BIGSERIAL PRIMARY KEY,
    product_id      TEXT NOT NULL,
    catalog_version BIGINT,
    content_hash    TEXT,
    outcome         TEXT NOT NULL,
    operations      TEXT NOT NULL DEFAULT '[]',  -- JSON array of writes
    request_ids     TEXT NOT NULL DEFAULT '[]',  -- JSON array of Stripe Request-Ids
    detail          TEXT,                        -- reasons, errors, conflict decisions
    workflow_id     TEXT,
    run_id          TEXT,
    attempt         INTEGER,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS catalog_sync_audit_product ON catalog_sync_audit (product_id, seq);

-- Stripe webhook events already handled (Stripe delivers at least once).
CREATE TABLE IF NOT EXISTS stripe_webhook_events (
    event_id    TEXT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    object_id   TEXT,
    decision    TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
