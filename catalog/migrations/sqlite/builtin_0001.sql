-- The built-in catalog (the default mapping), SQLite. Same columns as PostgreSQL.
CREATE TABLE IF NOT EXISTS catalog_products (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    images      TEXT NOT NULL DEFAULT '[]',
    url         TEXT,
    unit_label  TEXT,
    tax_code    TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    version     INTEGER NOT NULL DEFAULT 1,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at  TEXT
);

CREATE TABLE IF NOT EXISTS catalog_prices (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id               TEXT NOT NULL REFERENCES catalog_products(id) ON DELETE CASCADE,
    position                 INTEGER NOT NULL DEFAULT 0,
    currency                 TEXT NOT NULL,
    unit_amount              INTEGER NOT NULL,
    recurring_interval       TEXT,
    recurring_interval_count INTEGER,
    nickname                 TEXT
);
CREATE INDEX IF NOT EXISTS catalog_prices_product ON catalog_prices(product_id, position, id);
CREATE INDEX IF NOT EXISTS catalog_products_updated ON catalog_products(updated_at);

-- Every change of a product or its prices grows the product's version.
CREATE TRIGGER IF NOT EXISTS catalog_products_bump AFTER UPDATE ON catalog_products
WHEN NEW.version = OLD.version
BEGIN
    UPDATE catalog_products
       SET version = OLD.version + 1,
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS catalog_prices_bump_insert AFTER INSERT ON catalog_prices
BEGIN
    UPDATE catalog_products SET version = version + 1,
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = NEW.product_id;
END;

CREATE TRIGGER IF NOT EXISTS catalog_prices_bump_update AFTER UPDATE ON catalog_prices
BEGIN
    UPDATE catalog_products SET version = version + 1,
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = NEW.product_id;
END;

CREATE TRIGGER IF NOT EXISTS catalog_prices_bump_delete AFTER DELETE ON catalog_prices
BEGIN
    UPDATE catalog_products SET version = version + 1,
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = OLD.product_id;
END;

-- Change capture: a price change bumps its product's version, which is captured as an update.
CREATE TRIGGER IF NOT EXISTS catalog_products_capture_insert AFTER INSERT ON catalog_products
BEGIN
    INSERT INTO catalog_sync_changes (product_id, op, version) VALUES (NEW.id, 'insert', NEW.version);
END;

-- The bump trigger re-updates the row with a new version: capture that update only.
CREATE TRIGGER IF NOT EXISTS catalog_products_capture_update AFTER UPDATE ON catalog_products
WHEN NEW.version <> OLD.version
BEGIN
    INSERT INTO catalog_sync_changes (product_id, op, version) VALUES (NEW.id, 'update', NEW.version);
END;

CREATE TRIGGER IF NOT EXISTS catalog_products_capture_delete AFTER DELETE ON catalog_products
BEGIN
    INSERT INTO catalog_sync_changes (product_id, op) VALUES (OLD.id, 'delete');
END;
