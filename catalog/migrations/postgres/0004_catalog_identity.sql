-- The identity of the catalog this database holds (one row, made by the first migration that
-- runs here). catalog-sync writes it into the metadata of every Stripe object it creates
-- (`catalog_sync_catalog`) and touches only objects that carry it, so a worker pointed at the
-- wrong or an empty catalog cannot archive or overwrite another catalog's products.
CREATE TABLE IF NOT EXISTS catalog_sync_identity (
    only_row   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    catalog    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
