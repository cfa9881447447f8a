//! The audit ledger (`catalog_sync.audit`): one row per sync pass and per conflict decision,
//! appended by the activities, read by `starter audit`. And the record of Stripe webhook events
//! already handled (`catalog_sync.webhook_events`), which makes at-least-once delivery harmless.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::{Catalog, CatalogError};

/// What one sync pass (or conflict decision) did to one product.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Catalog id.
    pub product_id: String,
    /// Catalog version the pass synced (`None` when the row was gone).
    pub catalog_version: Option<i64>,
    /// Content hash of the desired Stripe state.
    pub content_hash: Option<String>,
    /// `synced`, `unchanged`, `archived`, `skipped_unmanaged`, `skipped_other_catalog`, `invalid`, `failed` or
    /// `conflict`.
    pub outcome: String,
    /// Stripe writes, in order.
    pub operations: Vec<String>,
    /// Stripe `Request-Id`s of the writes.
    pub request_ids: Vec<String>,
    /// Reasons (invalid), the error (failed) or the decision (conflict).
    pub detail: Option<String>,
    /// The workflow that ran the pass.
    pub workflow_id: Option<String>,
    /// Its run.
    pub run_id: Option<String>,
    /// The activity attempt that recorded it.
    pub attempt: Option<i32>,
}

/// A ledger row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Position in the ledger.
    pub seq: i64,
    /// When it was recorded (the database's clock).
    pub recorded_at: DateTime<Utc>,
    /// What was recorded.
    #[serde(flatten)]
    pub entry: AuditEntry,
}

const AUDIT_COLUMNS: &str = "seq, recorded_at, product_id, catalog_version, content_hash, outcome, \
     operations, request_ids, detail, workflow_id, run_id, attempt";

/// Decodes a row of [`AUDIT_COLUMNS`] on either backend.
macro_rules! decode_audit {
    ($row:expr) => {{
        let row = $row;
        let list = |column: &str| -> Result<Vec<String>, CatalogError> {
            let text: String = row.try_get(column)?;
            Ok(serde_json::from_str(&text).unwrap_or_default())
        };
        AuditRecord {
            seq: row.try_get("seq")?,
            recorded_at: row.try_get("recorded_at")?,
            entry: AuditEntry {
                product_id: row.try_get("product_id")?,
                catalog_version: row.try_get("catalog_version")?,
                content_hash: row.try_get("content_hash")?,
                outcome: row.try_get("outcome")?,
                operations: list("operations")?,
                request_ids: list("request_ids")?,
                detail: row.try_get("detail")?,
                workflow_id: row.try_get("workflow_id")?,
                run_id: row.try_get("run_id")?,
                attempt: row.try_get("attempt")?,
            },
        }
    }};
}

impl Catalog {
    /// Appends one row to the audit ledger.
    pub async fn append_audit(&self, e: &AuditEntry) -> Result<(), CatalogError> {
        let operations = serde_json::to_string(&e.operations).expect("strings serialize");
        let request_ids = serde_json::to_string(&e.request_ids).expect("strings serialize");
        let sql = "INSERT INTO catalog_sync.audit (product_id, catalog_version, content_hash, outcome, \
             operations, request_ids, detail, workflow_id, run_id, attempt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        on_pool!(self, pool => {
            sqlx::query(&self.own(sql))
                .bind(&e.product_id).bind(e.catalog_version).bind(&e.content_hash).bind(&e.outcome)
                .bind(&operations).bind(&request_ids).bind(&e.detail).bind(&e.workflow_id)
                .bind(&e.run_id).bind(e.attempt)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// The newest `limit` ledger rows of a product, oldest first.
    pub async fn audit_history(
        &self,
        product_id: &str,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, CatalogError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM catalog_sync.audit WHERE product_id = $1 ORDER BY seq DESC LIMIT $2"
        );
        let mut records = on_pool!(self, pool => {
            let rows = sqlx::query(&self.own(&sql)).bind(product_id).bind(limit).fetch_all(pool).await?;
            rows.into_iter().map(|row| Ok::<_, CatalogError>(decode_audit!(row))).collect::<Result<Vec<_>, _>>()?
        });
        records.reverse();
        Ok(records)
    }

    /// Those of `ids` that `identity` has written to Stripe, by the ledger: a pass of one of its
    /// own syncs (workflow ids `{identity}:…`, which only releases that stamp every write with the
    /// identity use) synced or archived them. Such a product is this catalog's whatever its
    /// identity metadata in Stripe says now: a hand edit of `catalog_sync_catalog` is drift to
    /// restore, not another catalog. Writes of legacy workflow ids prove nothing (products made
    /// before identities are claimed by `starter adopt`), nor do an earlier identity's (a copy
    /// that took a new one).
    pub async fn written_products(
        &self,
        identity: &str,
        ids: &[String],
    ) -> Result<std::collections::BTreeSet<String>, CatalogError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let prefix = domain::ids::catalog_prefix(identity);
        let sql = format!(
            "SELECT DISTINCT product_id FROM catalog_sync.audit \
             WHERE substr(workflow_id, 1, {}) = $1 AND outcome IN ('synced', 'archived', 'interrupted') \
             AND product_id IN ({})",
            prefix.len(),
            crate::placeholders_after(1, ids.len())
        );
        on_pool!(self, pool => {
            let sql = self.own(&sql);
            let mut query = sqlx::query_scalar::<_, String>(&sql).bind(&prefix);
            for id in ids {
                query = query.bind(id);
            }
            Ok(query.fetch_all(pool).await?.into_iter().collect())
        })
    }

    /// Products whose latest sync (by the ledger; conflict decisions aside) failed, found them
    /// invalid, or left them alone (`skipped_unmanaged`, `skipped_other_catalog`: Stripe holds a
    /// product with their id that catalog-sync may not touch), newest first, at most `limit`.
    pub async fn sync_problems(&self, limit: i64) -> Result<Vec<AuditRecord>, CatalogError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM catalog_sync.audit WHERE seq IN ( \
               SELECT MAX(seq) FROM catalog_sync.audit WHERE outcome <> 'conflict' GROUP BY product_id) \
             AND outcome IN ('failed', 'invalid', 'skipped_unmanaged', 'skipped_other_catalog') \
             ORDER BY seq DESC LIMIT $1"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(&self.own(&sql)).bind(limit).fetch_all(pool).await?;
            rows.into_iter().map(|row| Ok::<_, CatalogError>(decode_audit!(row))).collect()
        })
    }

    /// Records that a Stripe webhook event is being handled. `false` if it was already: the
    /// caller skips it (Stripe delivers at least once).
    pub async fn record_webhook_event(
        &self,
        event_id: &str,
        event_type: &str,
        object_id: Option<&str>,
        decision: &str,
    ) -> Result<bool, CatalogError> {
        let sql = "INSERT INTO catalog_sync.webhook_events (event_id, event_type, object_id, decision) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING";
        on_pool!(self, pool => {
            Ok(sqlx::query(&self.own(sql))
                .bind(event_id).bind(event_type).bind(object_id).bind(decision)
                .execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Forgets a webhook event whose handling failed, so Stripe's retry is handled anew.
    pub async fn forget_webhook_event(&self, event_id: &str) -> Result<(), CatalogError> {
        on_pool!(self, pool => {
            sqlx::query(&self.own("DELETE FROM catalog_sync.webhook_events WHERE event_id = $1"))
                .bind(event_id).execute(pool).await?;
            Ok(())
        })
    }

    /// The decision recorded for a webhook event, if it was handled.
    pub async fn webhook_event_decision(
        &self,
        event_id: &str,
    ) -> Result<Option<String>, CatalogError> {
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar(&self.own("SELECT decision FROM catalog_sync.webhook_events WHERE event_id = $1"))
                .bind(event_id).fetch_optional(pool).await?)
        })
    }
}

impl Catalog {
    /// The secret named `name` that catalog-sync keeps for itself (32 random bytes, hex), created
    /// on first use. Processes that start together agree: the first insert wins and every process
    /// reads the stored value back.
    pub async fn sync_secret(&self, name: &str) -> Result<Vec<u8>, CatalogError> {
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let insert = "INSERT INTO catalog_sync.secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        let select = "SELECT value FROM catalog_sync.secrets WHERE name = $1";
        let stored: String = on_pool!(self, pool => {
            sqlx::query(&self.own(insert)).bind(name).bind(&fresh).execute(pool).await?;
            sqlx::query_scalar(&self.own(select)).bind(name).fetch_one(pool).await?
        });
        hex::decode(&stored).map_err(|_| CatalogError::Corrupt {
            id: format!("catalog_sync.secrets.{name}"),
            field: "value".into(),
            reason: "the stored secret is not hex".into(),
        })
    }
}
