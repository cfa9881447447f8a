-- Bindings (catalog/src/bindings.rs): a catalog row handed an existing Stripe product by
-- `starter import`. The sync writes that row to that product; the record outlives the row, so
-- that its deletion still archives the right product. One product per row, one row per product.
CREATE TABLE IF NOT EXISTS catalog_sync.bindings (
    catalog_id TEXT PRIMARY KEY,
    stripe_id  TEXT NOT NULL UNIQUE,
    bound_at   BIGINT NOT NULL        -- Unix ms
);
