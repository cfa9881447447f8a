-- catalog-sync's own tables, in their own schema: nothing here touches a table of the catalog.
CREATE SCHEMA IF NOT EXISTS catalog_sync;

-- Change capture: a row per insert, update and delete of a product (a price change counts as an
-- update of its product), appended by the capture triggers in the writer's own transaction. The
-- relay signals the product's sync and deletes the row only after Temporal accepted it.
CREATE TABLE IF NOT EXISTS catalog_sync.changes (
    seq           BIGSERIAL PRIMARY KEY,
    product_id    TEXT NOT NULL,
    op            TEXT NOT NULL,              -- insert | update | delete
    version       BIGINT,                     -- the product's version after the change, when known
    changed_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    claimed_by    TEXT,                       -- the relay holding the lease
    claimed_until TIMESTAMPTZ,                -- lease end: after it, another relay may take the row
    attempts      INTEGER NOT NULL DEFAULT 0,
    failed_at     TIMESTAMPTZ,                -- set when Temporal refused the change for good
    last_error    TEXT
);
CREATE INDEX IF NOT EXISTS changes_pending ON catalog_sync.changes (seq) WHERE failed_at IS NULL;

-- The capture trigger function, for the product table and the price table of any catalog:
-- TG_ARGV[0] names the column that holds the product id, TG_ARGV[1] the version column ('' when
-- the table has none), TG_ARGV[2] is 'product' or 'price' (any change of a price row is an update
-- of its product). One notification per transaction (identical payloads are folded): relays wake
-- at commit.
CREATE OR REPLACE FUNCTION catalog_sync.capture() RETURNS trigger AS $$
DECLARE
    id_column      TEXT := TG_ARGV[0];
    version_column TEXT := NULLIF(TG_ARGV[1], '');
    is_price       BOOLEAN := TG_ARGV[2] = 'price';
    new_row        JSONB;
    old_row        JSONB;
    new_version    BIGINT;
BEGIN
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
    IF TG_OP = 'UPDATE' AND new_row = old_row THEN
        RETURN NULL;                   -- an UPDATE that set the values the row had: nothing changed
    END IF;
    IF version_column IS NOT NULL AND new_row IS NOT NULL THEN
        new_version := (new_row ->> version_column)::BIGINT;
    END IF;
    IF old_row IS NOT NULL AND (new_row IS NULL OR (old_row ->> id_column) IS DISTINCT FROM (new_row ->> id_column)) THEN
        -- A deleted row, or a row whose id changed: the old id's product lost it.
        INSERT INTO catalog_sync.changes (product_id, op)
        VALUES (old_row ->> id_column, CASE WHEN is_price THEN 'update' ELSE 'delete' END);
    END IF;
    IF new_row IS NOT NULL THEN
        INSERT INTO catalog_sync.changes (product_id, op, version)
        VALUES (new_row ->> id_column,
                CASE WHEN is_price OR TG_OP = 'UPDATE' AND (old_row ->> id_column) = (new_row ->> id_column)
                     THEN 'update' ELSE 'insert' END,
                CASE WHEN is_price THEN NULL ELSE new_version END);
    END IF;
    PERFORM pg_notify('catalog_changes', '');
    RETURN NULL;
END $$ LANGUAGE plpgsql;

-- The audit ledger: one row per sync pass (and per conflict decision), appended by the activities.
CREATE TABLE IF NOT EXISTS catalog_sync.audit (
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
CREATE INDEX IF NOT EXISTS audit_product ON catalog_sync.audit (product_id, seq);

-- Stripe webhook events already handled (Stripe delivers at least once).
CREATE TABLE IF NOT EXISTS catalog_sync.webhook_events (
    event_id    TEXT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    object_id   TEXT,
    decision    TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Secrets catalog-sync generates for itself and shares between its processes through the catalog
-- database (which every process already reaches): `write_key` signs the idempotency keys of its
-- Stripe writes, so that the relay recognises their webhook echoes and nobody else can claim one.
CREATE TABLE IF NOT EXISTS catalog_sync.secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The identity of the catalog this database holds (one row, made by `starter migrate`).
-- catalog-sync writes it into the metadata of every Stripe object it creates
-- (`catalog_sync_catalog`) and touches only objects that carry it, so a worker pointed at the
-- wrong or an empty catalog cannot archive or overwrite another catalog's products.
CREATE TABLE IF NOT EXISTS catalog_sync.identity (
    only_row   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    catalog    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The live archive guard (catalog/src/guard.rs): the archives live syncs made, counted over a
-- sliding window, and the archives it held back until an operator confirms them.
CREATE TABLE IF NOT EXISTS catalog_sync.archives (
    product_id  TEXT NOT NULL,
    archived_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS archives_at ON catalog_sync.archives (archived_at);
CREATE TABLE IF NOT EXISTS catalog_sync.held_archives (
    product_id   TEXT PRIMARY KEY,
    held_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    reason       TEXT NOT NULL,
    confirmed_at TIMESTAMPTZ
);

-- Each running relay says it is alive here every few seconds, so `starter status` can tell
-- changes waiting for a busy relay from changes that no relay will ever take.
CREATE TABLE IF NOT EXISTS catalog_sync.relays (
    relay_id TEXT PRIMARY KEY,
    seen_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
