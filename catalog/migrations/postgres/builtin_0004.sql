-- The existing Stripe product a row takes over (`starter import`): NULL for a product
-- catalog-sync creates under the row's id.
ALTER TABLE catalog_products ADD COLUMN IF NOT EXISTS stripe_id TEXT;
