-- A catalog file made before catalog-sync kept its own tables apart (migrated by sqlx): two
-- tables take their prefixed names, with their rows; the old triggers go (builtin_0001 makes the
-- new ones). One transaction with the rest of `starter migrate`.
DROP TRIGGER IF EXISTS catalog_products_capture_insert;
DROP TRIGGER IF EXISTS catalog_products_capture_update;
DROP TRIGGER IF EXISTS catalog_products_capture_delete;
DROP TRIGGER IF EXISTS catalog_products_bump;
DROP TRIGGER IF EXISTS catalog_prices_bump_insert;
DROP TRIGGER IF EXISTS catalog_prices_bump_update;
DROP TRIGGER IF EXISTS catalog_prices_bump_delete;
ALTER TABLE catalog_changes RENAME TO catalog_sync_changes;
ALTER TABLE stripe_webhook_events RENAME TO catalog_sync_webhook_events;
DROP TABLE _sqlx_migrations;
