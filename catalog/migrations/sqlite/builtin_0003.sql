-- Tiered, multi-currency, pay-what-you-want, packaged and metered prices, SQLite. Same columns as PostgreSQL.
ALTER TABLE catalog_prices ADD COLUMN tiers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE catalog_prices ADD COLUMN tiers_mode TEXT;
ALTER TABLE catalog_prices ADD COLUMN currency_options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE catalog_prices ADD COLUMN custom_unit_amount TEXT;
ALTER TABLE catalog_prices ADD COLUMN transform_quantity TEXT;
ALTER TABLE catalog_prices ADD COLUMN usage_type TEXT;
ALTER TABLE catalog_prices ADD COLUMN meter TEXT;
ALTER TABLE catalog_prices ADD COLUMN lookup_key TEXT;
