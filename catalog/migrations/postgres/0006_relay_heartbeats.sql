-- Each running relay says it is alive here every few seconds, so `starter status` can tell
-- changes waiting for a busy relay from changes that no relay will ever take.
CREATE TABLE IF NOT EXISTS catalog_sync_relays (
    relay_id TEXT PRIMARY KEY,
    seen_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
