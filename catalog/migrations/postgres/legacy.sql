-- A catalog database made before catalog-sync kept its own schema (its tables beside the
-- catalog's in `public`, migrated by sqlx): its tables move into `catalog_sync` under their new
-- names, with their rows; the old trigger functions go (own_0001 and builtin_0001 make the new
-- ones). One transaction with the rest of `starter migrate`.
CREATE SCHEMA IF NOT EXISTS catalog_sync;
DROP TRIGGER IF EXISTS catalog_products_capture ON catalog_products;
DROP FUNCTION IF EXISTS catalog_products_capture();
DROP TRIGGER IF EXISTS catalog_products_bump ON catalog_products;
DROP FUNCTION IF EXISTS catalog_products_bump();
DROP TRIGGER IF EXISTS catalog_prices_bump ON catalog_prices;
DROP FUNCTION IF EXISTS catalog_prices_bump();
ALTER TABLE catalog_changes SET SCHEMA catalog_sync;
ALTER TABLE catalog_sync.catalog_changes RENAME TO changes;
ALTER INDEX catalog_sync.catalog_changes_pending RENAME TO changes_pending;
ALTER TABLE catalog_sync_audit SET SCHEMA catalog_sync;
ALTER TABLE catalog_sync.catalog_sync_audit RENAME TO audit;
ALTER INDEX catalog_sync.catalog_sync_audit_product RENAME TO audit_product;
ALTER TABLE stripe_webhook_events SET SCHEMA catalog_sync;
ALTER TABLE catalog_sync.stripe_webhook_events RENAME TO webhook_events;
ALTER TABLE catalog_sync_secrets SET SCHEMA catalog_sync;
ALTER TABLE catalog_sync.catalog_sync_secrets RENAME TO secrets;
ALTER TABLE catalog_sync_identity SET SCHEMA catalog_sync;
ALTER TABLE catalog_sync.catalog_sync_identity RENAME TO identity;
ALTER TABLE catalog_sync_archives SET SCHEMA catalog_sync;
ALTER TABLE catalog_sync.catalog_sync_archives RENAME TO archives;
ALTER INDEX catalog_sync.catalog_sync_archives_at RENAME TO archives_at;
ALTER TABLE catalog_sync_held_archives SET SCHEMA catalog_sync;
ALTER TABLE catalog_sync.catalog_sync_held_archives RENAME TO held_archives;
ALTER TABLE catalog_sync_relays SET SCHEMA catalog_sync;
ALTER TABLE catalog_sync.catalog_sync_relays RENAME TO relays;
DROP TABLE _sqlx_migrations;
