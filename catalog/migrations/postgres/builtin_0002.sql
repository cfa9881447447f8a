-- Stripe's shipping, statement and tax fields (issue 16): products gain shippable, a statement
-- descriptor, package dimensions (a JSON object of height, length, weight, width) and marketing
-- features (a JSON array of names); prices gain a tax behavior and metadata. Existing rows keep
-- their meaning: NULL and empty leave Stripe's values as they are.
ALTER TABLE catalog_products
    ADD COLUMN IF NOT EXISTS shippable            BOOLEAN,
    ADD COLUMN IF NOT EXISTS statement_descriptor TEXT,
    ADD COLUMN IF NOT EXISTS package_dimensions   TEXT,                         -- JSON object
    ADD COLUMN IF NOT EXISTS marketing_features   TEXT NOT NULL DEFAULT '[]';   -- JSON array
ALTER TABLE catalog_prices
    ADD COLUMN IF NOT EXISTS tax_behavior TEXT,
    ADD COLUMN IF NOT EXISTS metadata     TEXT NOT NULL DEFAULT '{}';           -- JSON object
