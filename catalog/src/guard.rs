//! The live archive guard. A catalog emptied by mistake (a `DELETE` without `WHERE`, a restore
//! gone wrong, a migration that drops rows) sends one delete change per row, and each would
//! archive a live Stripe product. So live syncs archive within a budget: at most the larger of
//! `min` and `percent` % of the catalog's products in any sliding `window` (default: 10 products or
//! 2 %, per hour). An archive beyond it is *held*: nothing is written, the product is listed in
//! `catalog_sync.held_archives` with the reason, and `starter archives confirm` releases it.
//!
//! Archives a reconciliation applies within its own guard (or with `--allow-mass-archive`) are
//! approved by the workflow and do not ask here.
//!
//! The count and the insert happen in one transaction, serialized across processes (an advisory
//! lock on PostgreSQL; SQLite has one writer), so many workers archiving at once never overshoot.
//! Products are counted once per window: a retried attempt (Stripe failed after the guard said
//! yes) takes no second share.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Catalog, CatalogError, Db};

/// A held archive still stands while the catalog has no live row for the product: one restored
/// in the meantime (the deletion was the mistake) is neither listed nor confirmed.
fn still_gone(products: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM {products} \
         WHERE products.id = h.product_id AND products.active AND NOT products.deleted)"
    )
}

/// PostgreSQL advisory lock key of the guard's transaction (`catalog_sync` in ASCII).
const LOCK_KEY: i64 = 0x6361_7461_6c6f_6773;

/// How many archives live syncs may make.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveBudget {
    /// Percent of the catalog's products (rows, deleted or not) per window.
    pub percent: f64,
    /// Archives per window at least.
    pub min: u64,
    /// The sliding window.
    pub window: Duration,
}

impl Default for ArchiveBudget {
    fn default() -> Self {
        Self {
            percent: 2.0,
            min: 10,
            window: Duration::from_secs(3600),
        }
    }
}

impl ArchiveBudget {
    /// The most archives per window for a catalog of `products` rows.
    pub fn limit(&self, products: u64) -> u64 {
        ((products as f64 * self.percent / 100.0).floor() as u64).max(self.min)
    }
}

/// The guard's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchivePermit {
    /// Archive it.
    Granted,
    /// Do not: held for confirmation, for this reason.
    Held(String),
}

/// An archive waiting for confirmation.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldArchive {
    /// Catalog id.
    pub product_id: String,
    /// When it was (last) held.
    pub held_at: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Confirmed, and not yet archived by a sync.
    pub confirmed: bool,
}

impl Catalog {
    /// May a live sync archive `product_id` now? A confirmed hold is released (and counted); else
    /// the archive takes a share of the budget, or is held when none is left.
    pub async fn permit_archive(
        &self,
        product_id: &str,
        budget: &ArchiveBudget,
    ) -> Result<ArchivePermit, CatalogError> {
        let window = budget.window.as_secs_f64();
        // The dialects differ in the clock, the window arithmetic and the lock, nowhere else.
        let (lock, since, now) = match &self.db {
            Db::Postgres(_) => (
                // Serializes the guard's transactions across processes.
                Some("SELECT pg_advisory_xact_lock($1)"),
                "now() - make_interval(secs => $1)",
                "now()",
            ),
            // SQLite has one writer; the first statement below writes, so the transaction holds
            // the write lock before it counts (a read first could not be upgraded once another
            // writer committed).
            Db::Sqlite(_) => (
                None,
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || $1 || ' seconds')",
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            ),
        };
        let release = "DELETE FROM catalog_sync.held_archives \
                       WHERE product_id = $1 AND confirmed_at IS NOT NULL";
        let used = format!(
            "SELECT COUNT(DISTINCT product_id), \
             COALESCE(SUM(CASE WHEN product_id = $2 THEN 1 ELSE 0 END), 0) \
             FROM catalog_sync.archives WHERE archived_at > {since}"
        );
        let record = "INSERT INTO catalog_sync.archives (product_id) VALUES ($1)";
        let hold = format!(
            "INSERT INTO catalog_sync.held_archives (product_id, reason) VALUES ($1, $2) \
             ON CONFLICT (product_id) DO UPDATE SET reason = excluded.reason, held_at = {now}"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(&self.own(lock)).bind(LOCK_KEY).execute(&mut *tx).await?;
            }
            let confirmed = sqlx::query(&self.own(release))
                .bind(product_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            // A retried attempt of an archive already counted in the window takes no new share.
            let (used, again): (i64, i64) = sqlx::query_as(&self.own(&used))
                .bind(window)
                .bind(product_id)
                .fetch_one(&mut *tx)
                .await?;
            let products: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", self.queries.products))
                .fetch_one(&mut *tx)
                .await?;
            let permit = decide(confirmed || again > 0, used, products, budget);
            match &permit {
                ArchivePermit::Granted if again > 0 => {}
                ArchivePermit::Granted => {
                    sqlx::query(&self.own(record)).bind(product_id).execute(&mut *tx).await?;
                }
                ArchivePermit::Held(reason) => {
                    sqlx::query(&self.own(&hold)).bind(product_id).bind(reason).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(permit)
        })
    }

    /// May an approved archive (a reconciliation's, within its own guard) be made? Approved
    /// archives take no share of the live budget, but a hold the live guard put on the product
    /// stays until a person confirms it, whichever path meets it next: two guards with separate
    /// budgets would otherwise let a `DELETE` of twice the limit through unconfirmed. A confirmed
    /// hold is settled by the archive.
    pub async fn approve_archive(&self, product_id: &str) -> Result<ArchivePermit, CatalogError> {
        let settle = "DELETE FROM catalog_sync.held_archives \
                      WHERE product_id = $1 AND confirmed_at IS NOT NULL";
        let held = "SELECT reason FROM catalog_sync.held_archives WHERE product_id = $1";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(&self.own(settle)).bind(product_id).execute(&mut *tx).await?;
            let reason: Option<String> = sqlx::query_scalar(&self.own(held))
                .bind(product_id)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(match reason {
                None => ArchivePermit::Granted,
                Some(reason) => ArchivePermit::Held(format!(
                    "held by the live archive guard ({reason}); a reconciliation does not archive \
                     it before `starter archives confirm`"
                )),
            })
        })
    }

    /// The archives waiting for confirmation (and those confirmed but not yet made), oldest first.
    pub async fn held_archives(&self, limit: i64) -> Result<Vec<HeldArchive>, CatalogError> {
        let still_gone = still_gone(&self.queries.products);
        let sql = format!(
            "SELECT product_id, held_at, reason, confirmed_at IS NOT NULL AS confirmed \
             FROM catalog_sync.held_archives h WHERE {still_gone} \
             ORDER BY held_at, product_id LIMIT $1"
        );
        let rows = on_pool!(self, pool => {
            sqlx::query(&self.own(&sql)).bind(limit).fetch_all(pool).await?
                .into_iter()
                .map(|row| Ok::<_, CatalogError>(HeldArchive {
                    product_id: row.try_get("product_id")?,
                    held_at: row.try_get("held_at")?,
                    reason: row.try_get("reason")?,
                    confirmed: row.try_get("confirmed")?,
                }))
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Confirms held archives (`ids`, or all of them when `None`): the next sync of each archives
    /// it. Returns the ids confirmed.
    pub async fn confirm_held_archives(
        &self,
        ids: Option<&[String]>,
    ) -> Result<Vec<String>, CatalogError> {
        let still_gone = still_gone(&self.queries.products);
        let now = match &self.db {
            Db::Postgres(_) => "now()",
            Db::Sqlite(_) => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        };
        let mut confirmed = Vec::new();
        match ids {
            None => {
                let sql = format!(
                    "UPDATE catalog_sync.held_archives AS h SET confirmed_at = {now} \
                     WHERE confirmed_at IS NULL AND {still_gone} RETURNING product_id"
                );
                on_pool!(self, pool => {
                    confirmed = sqlx::query_scalar(&self.own(&sql)).fetch_all(pool).await?;
                });
            }
            Some(ids) => {
                let sql = format!(
                    "UPDATE catalog_sync.held_archives AS h SET confirmed_at = {now} \
                     WHERE product_id = $1 AND confirmed_at IS NULL AND {still_gone} \
                     RETURNING product_id"
                );
                for id in ids {
                    on_pool!(self, pool => {
                        confirmed.extend(
                            sqlx::query_scalar::<_, String>(&self.own(&sql)).bind(id).fetch_optional(pool).await?,
                        );
                    });
                }
            }
        }
        confirmed.sort();
        Ok(confirmed)
    }
}

/// The guard's rule, apart from the SQL: `granted` when confirmed, or already counted in the
/// window.
fn decide(granted: bool, used: i64, products: i64, budget: &ArchiveBudget) -> ArchivePermit {
    let limit = budget.limit(products.max(0) as u64);
    if granted || (used.max(0) as u64) < limit {
        return ArchivePermit::Granted;
    }
    ArchivePermit::Held(format!(
        "archive held: live syncs archived {used} products in the last {}, the limit is {limit} \
         (the larger of CATALOG_SYNC_ARCHIVE_LIMIT_MIN={} and CATALOG_SYNC_ARCHIVE_LIMIT_PERCENT={} % \
         of {products} catalog products). If the catalog really lost these products, confirm with \
         `starter archives confirm`; if not, restore the catalog first",
        humantime::format_duration(budget.window),
        budget.min,
        budget.percent
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_the_larger_of_the_floor_and_the_share() {
        let budget = ArchiveBudget::default();
        assert_eq!(budget.limit(0), 10);
        assert_eq!(budget.limit(499), 10);
        assert_eq!(budget.limit(2_000), 40);
        assert_eq!(decide(false, 9, 100, &budget), ArchivePermit::Granted);
        let ArchivePermit::Held(why) = decide(false, 10, 100, &budget) else {
            panic!("the 11th archive of the hour is held");
        };
        assert!(
            why.contains("CATALOG_SYNC_ARCHIVE_LIMIT_MIN=10")
                && why.contains("starter archives confirm"),
            "{why}"
        );
        assert_eq!(decide(true, 1_000, 100, &budget), ArchivePermit::Granted);
    }
}
