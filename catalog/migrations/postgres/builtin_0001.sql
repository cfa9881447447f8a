-- The built-in catalog (the default mapping): catalog-sync's own product tables, for a team that
-- has none yet, the quickstart and the sample data. A team with its own tables maps them instead
-- (README, "Your own catalog") and these are never created.
CREATE TABLE IF NOT EXISTS catalog_products (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    images      TEXT NOT NULL DEFAULT '[]',   -- JSON array of URLs
    url         TEXT,
    unit_label  TEXT,
    tax_code    TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',   -- JSON object of strings
    version     BIGINT NOT NULL DEFAULT 1,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at  TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS catalog_prices (
    id                       BIGSERIAL PRIMARY KEY,
    product_id               TEXT NOT NULL REFERENCES catalog_products(id) ON DELETE CASCADE,
    position                 INTEGER NOT NULL DEFAULT 0,  -- 0 is the default price
    currency                 TEXT NOT NULL,
    unit_amount              BIGINT NOT NULL,
    recurring_interval       TEXT,
    recurring_interval_count INTEGER,
    nickname                 TEXT
);
CREATE INDEX IF NOT EXISTS catalog_prices_product ON catalog_prices(product_id, position, id);
CREATE INDEX IF NOT EXISTS catalog_products_updated ON catalog_products(updated_at);

-- Every change of a product or its prices grows the product's version.
CREATE OR REPLACE FUNCTION catalog_sync.builtin_products_bump() RETURNS trigger AS $$
BEGIN
    IF NEW.version = OLD.version THEN
        NEW.version := OLD.version + 1;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS catalog_products_bump ON catalog_products;
CREATE TRIGGER catalog_products_bump BEFORE UPDATE ON catalog_products
    FOR EACH ROW EXECUTE FUNCTION catalog_sync.builtin_products_bump();

CREATE OR REPLACE FUNCTION catalog_sync.builtin_prices_bump() RETURNS trigger AS $$
BEGIN
    UPDATE catalog_products SET version = version + 1
     WHERE id = COALESCE(NEW.product_id, OLD.product_id);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS catalog_prices_bump ON catalog_prices;
CREATE TRIGGER catalog_prices_bump AFTER INSERT OR UPDATE OR DELETE ON catalog_prices
    FOR EACH ROW EXECUTE FUNCTION catalog_sync.builtin_prices_bump();

-- Change capture: a price change bumps its product's version, so the product's trigger sees it.
DROP TRIGGER IF EXISTS catalog_products_capture ON catalog_products;
CREATE TRIGGER catalog_products_capture AFTER INSERT OR UPDATE OR DELETE ON catalog_products
    FOR EACH ROW EXECUTE FUNCTION catalog_sync.capture('id', 'version', 'product');
