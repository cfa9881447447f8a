-- Bindings (catalog/src/bindings.rs): a catalog row handed an existing Stripe product by
-- `starter import`. Same columns as PostgreSQL.
CREATE TABLE IF NOT EXISTS catalog_sync_bindings (
    catalog_id TEXT PRIMARY KEY,
    stripe_id  TEXT NOT NULL UNIQUE,
    bound_at   INTEGER NOT NULL        -- Unix ms
);
