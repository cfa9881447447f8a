-- Stripe's shipping, statement and tax fields, SQLite. Same columns as PostgreSQL.
ALTER TABLE catalog_products ADD COLUMN shippable BOOLEAN;
ALTER TABLE catalog_products ADD COLUMN statement_descriptor TEXT;
ALTER TABLE catalog_products ADD COLUMN package_dimensions TEXT;
ALTER TABLE catalog_products ADD COLUMN marketing_features TEXT NOT NULL DEFAULT '[]';
ALTER TABLE catalog_prices ADD COLUMN tax_behavior TEXT;
ALTER TABLE catalog_prices ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
