-- Secrets catalog-sync generates for itself and shares between its processes through the catalog
-- database (which every process already reaches): `write_key` signs the idempotency keys of its
-- Stripe writes, so that the relay recognises their webhook echoes and nobody else can claim one.
CREATE TABLE IF NOT EXISTS catalog_sync_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
