-- The existing Stripe product a row takes over (`starter import`). Same column as PostgreSQL.
ALTER TABLE catalog_products ADD COLUMN stripe_id TEXT;
