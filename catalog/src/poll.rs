//! Polling capture, for teams that may not add triggers to their tables: the relay
//! (`CATALOG_SYNC_CAPTURE=polling`) looks at the mapped tables every interval and appends what
//! changed to the same outbox the triggers fill, so everything after it is the same.
//!
//! - **Edits** are found by `updated_at` (products, and prices when their `updated_at` is mapped):
//!   rows whose time is at or after the cursor minus a lookback, and differs from the time last
//!   seen for that product (`catalog_sync.polled`). The cursor only bounds the scan; what was seen
//!   decides, so a row is enqueued once per change however many passes see it.
//! - **The bound.** An edit is enqueued at the first pass after it commits, if its transaction
//!   commits within the lookback of the `updated_at` it wrote (an application that sets
//!   `updated_at = now()` in a transaction that lasts longer than the lookback is caught by the
//!   next scheduled reconciliation instead).
//! - **Hard deletes** (and rows inserted with an old `updated_at`) are found by the id diff, every
//!   few passes: ids seen before that no longer have a row are enqueued as deletions, ids never
//!   seen as insertions.
//! - **The first pass** records the catalog as it is and enqueues nothing: the first sync of an
//!   existing catalog is a backfill (`starter sync --all` or a reconciliation).
//!
//! - **The clock.** The cursor never passes the database's own `now()`: a row whose `updated_at`
//!   lies in the future is enqueued and reported (`PollPass::from_the_future`), and edits after
//!   it are still seen.
//!
//! Passes of several relays serialize (an advisory lock on PostgreSQL, where a relay finding it
//! taken skips its pass; SQLite's one writer), so a change is enqueued once.

use chrono::{DateTime, Duration as TimeDelta, Utc};
use sqlx::Row;

use crate::{Catalog, CatalogError, Db, placeholders_after, since_value};

/// Appends a change with `op` for each of `seen` to the outbox, 500 rows a statement.
macro_rules! enqueue {
    ($tx:expr, $changes:expr, $seen:expr, $op:expr) => {
        for chunk in $seen.chunks(500) {
            let values = (0..chunk.len())
                .map(|i| format!("(${}, '{}')", i + 1, $op))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO {} (product_id, op) VALUES {values}", $changes);
            let mut query = sqlx::query(&sql);
            for s in chunk {
                query = query.bind(&s.id);
            }
            query.execute(&mut *$tx).await?;
        }
    };
}

/// Records the time seen of each of `seen` in `catalog_sync.polled` (`column`: `updated_at` or
/// `prices_updated_at`).
macro_rules! remember {
    ($tx:expr, $polled:expr, $pool:expr, $seen:expr, $column:literal) => {
        for s in $seen {
            let sql = format!(
                "INSERT INTO {} (product_id, {col}) VALUES ($1, $2) \
                 ON CONFLICT (product_id) DO UPDATE SET {col} = excluded.{col}",
                $polled,
                col = $column
            );
            sqlx::query(&sql)
                .bind(&s.id)
                .bind(s.updated_at.map(|t| since_value($pool, t)))
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// PostgreSQL advisory lock key of a polling pass (`cs_polls` in ASCII).
const POLL_LOCK: i64 = 0x6373_5f70_6f6c_6c73;

/// Rows one pass takes at most (the rest come next pass).
const PASS_LIMIT: i64 = 10_000;

/// What a polling pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollPass {
    /// Another relay held the pass (PostgreSQL): nothing was done.
    pub skipped: bool,
    /// The first pass: the catalog was recorded, nothing enqueued.
    pub initialized: bool,
    /// Products enqueued as changed (edits, insertions).
    pub changed: usize,
    /// Products enqueued as deleted (the id diff).
    pub deleted: usize,
    /// Products seen with an `updated_at` after the database's own clock, with that time: they
    /// are enqueued like any other, but the cursor stays at the database's `now()` (a row from
    /// the future would otherwise move it past every later edit).
    pub from_the_future: Vec<(String, DateTime<Utc>)>,
}

/// A product a pass saw change: its id, its `updated_at` (products) or its prices' newest one.
struct Seen {
    id: String,
    updated_at: Option<DateTime<Utc>>,
}

/// `(id, updated_at)` rows as [`Seen`].
fn seen_rows<R: Row>(rows: &[R]) -> Result<Vec<Seen>, CatalogError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    rows.iter()
        .map(|row| {
            Ok(Seen {
                id: row.try_get("id")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}

impl Catalog {
    /// Whether polling capture can follow this catalog: its products' `updated_at` is known.
    pub fn can_poll(&self) -> Result<(), CatalogError> {
        match &self.queries.mapped {
            Some(mapped) if !mapped.product_columns.contains_key("updated_at") => {
                Err(CatalogError::Capture(
                    "polling capture follows catalog.products.updated_at: map it, or install \
                     capture triggers (starter capture install)"
                        .into(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// One polling pass; with `diff_ids`, the id diff too. See the module's docs.
    pub async fn poll_changes(
        &self,
        lookback: std::time::Duration,
        diff_ids: bool,
    ) -> Result<PollPass, CatalogError> {
        self.can_poll()?;
        let q = &self.queries;
        let polled = self.own("catalog_sync.polled");
        let cursors = self.own("catalog_sync.cursors");
        let changes = self.own("catalog_sync.changes");
        let mut pass = PollPass::default();
        on_pool!(self, pool => {
            let begin = match &self.db {
                Db::Postgres(_) => "BEGIN",
                Db::Sqlite(_) => "BEGIN IMMEDIATE",
            };
            let mut tx = pool.begin_with(begin).await?;
            if let Db::Postgres(_) = &self.db {
                let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(POLL_LOCK)
                    .fetch_one(&mut *tx)
                    .await?;
                if !mine {
                    pass.skipped = true;
                    return Ok(pass);
                }
            }
            // The cursor never passes the database's own clock (SQLite's is this machine's).
            let db_now: DateTime<Utc> = match &self.db {
                Db::Postgres(_) => sqlx::query_scalar("SELECT now()").fetch_one(&mut *tx).await?,
                Db::Sqlite(_) => Utc::now(),
            };
            let cursor: Option<String> =
                sqlx::query_scalar(&format!("SELECT value FROM {cursors} WHERE name = 'products'"))
                    .fetch_optional(&mut *tx)
                    .await?;
            let cursor = cursor.and_then(|c| DateTime::parse_from_rfc3339(&c).ok()).map(|c| c.with_timezone(&Utc));
            let newest = match cursor {
                None => {
                    // The first pass: the catalog as it is.
                    sqlx::query(&format!(
                        "INSERT INTO {polled} (product_id, updated_at) SELECT id, updated_at FROM {} \
                         WHERE TRUE ON CONFLICT (product_id) DO NOTHING",
                        q.products
                    ))
                    .execute(&mut *tx)
                    .await?;
                    if let Some(prices) = &q.price_times {
                        sqlx::query(&format!(
                            "INSERT INTO {polled} (product_id, prices_updated_at) \
                             SELECT t.product_id, t.updated_at FROM ({prices}) AS t WHERE TRUE \
                             ON CONFLICT (product_id) DO UPDATE SET prices_updated_at = excluded.prices_updated_at"
                        ))
                        .bind(since_value(pool, DateTime::UNIX_EPOCH))
                        .execute(&mut *tx)
                        .await?;
                    }
                    pass.initialized = true;
                    let newest: Option<DateTime<Utc>> = sqlx::query_scalar(&format!(
                        "SELECT MAX(updated_at) FROM {}",
                        q.products
                    ))
                    .fetch_one(&mut *tx)
                    .await?;
                    newest.unwrap_or(db_now)
                }
                Some(cursor) => {
                    let since = cursor - TimeDelta::from_std(lookback).unwrap_or_default();
                    // Products whose time differs from the one last seen.
                    let rows = sqlx::query(&format!(
                        "SELECT p.id, p.updated_at FROM {} LEFT JOIN {polled} s ON s.product_id = p.id \
                         WHERE p.updated_at >= $1 AND (s.product_id IS NULL OR s.updated_at IS DISTINCT FROM p.updated_at) \
                         ORDER BY p.updated_at LIMIT {PASS_LIMIT}",
                        q.products_as("p")
                    ))
                    .bind(since_value(pool, since))
                    .fetch_all(&mut *tx)
                    .await?;
                    let seen = seen_rows(&rows)?;
                    let newest = seen.iter().filter_map(|s| s.updated_at).max().unwrap_or(cursor).max(cursor);
                    pass.from_the_future = seen
                        .iter()
                        .filter_map(|s| Some((s.id.clone(), s.updated_at.filter(|t| *t > db_now)?)))
                        .collect();
                    enqueue!(tx, changes, &seen, "update");
                    remember!(tx, polled, pool, &seen, "updated_at");
                    pass.changed += seen.len();
                    // Prices whose newest time differs from the one last seen.
                    if let Some(prices) = &q.price_times {
                        let rows = sqlx::query(&format!(
                            "SELECT t.product_id AS id, t.updated_at FROM ({prices}) AS t \
                             LEFT JOIN {polled} s ON s.product_id = t.product_id \
                             WHERE s.prices_updated_at IS DISTINCT FROM t.updated_at LIMIT {PASS_LIMIT}"
                        ))
                        .bind(since_value(pool, since))
                        .fetch_all(&mut *tx)
                        .await?;
                        let seen = seen_rows(&rows)?;
                        enqueue!(tx, changes, &seen, "update");
                        remember!(tx, polled, pool, &seen, "prices_updated_at");
                        pass.changed += seen.len();
                    }
                    if diff_ids {
                        // Rows gone (hard deletes) and rows never seen.
                        let gone: Vec<String> = sqlx::query_scalar(&format!(
                            "SELECT s.product_id FROM {polled} s WHERE NOT EXISTS \
                             (SELECT 1 FROM {} WHERE products.id = s.product_id) LIMIT {PASS_LIMIT}",
                            q.products
                        ))
                        .fetch_all(&mut *tx)
                        .await?;
                        let gone: Vec<Seen> = gone.into_iter().map(|id| Seen { id, updated_at: None }).collect();
                        enqueue!(tx, changes, &gone, "delete");
                        for chunk in gone.chunks(500) {
                            let sql = format!(
                                "DELETE FROM {polled} WHERE product_id IN ({})",
                                placeholders_after(0, chunk.len())
                            );
                            let mut query = sqlx::query(&sql);
                            for s in chunk {
                                query = query.bind(&s.id);
                            }
                            query.execute(&mut *tx).await?;
                        }
                        pass.deleted += gone.len();
                        let rows = sqlx::query(&format!(
                            "SELECT p.id, p.updated_at FROM {} WHERE NOT EXISTS \
                             (SELECT 1 FROM {polled} s WHERE s.product_id = p.id) LIMIT {PASS_LIMIT}",
                            q.products_as("p")
                        ))
                        .fetch_all(&mut *tx)
                        .await?;
                        let new = seen_rows(&rows)?;
                        enqueue!(tx, changes, &new, "insert");
                        remember!(tx, polled, pool, &new, "updated_at");
                        pass.changed += new.len();
                    }
                    newest
                }
            };
            let newest = newest.min(db_now);
            sqlx::query(&format!(
                "INSERT INTO {cursors} (name, value) VALUES ('products', $1) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ))
            .bind(newest.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .execute(&mut *tx)
            .await?;
            if pass.changed + pass.deleted > 0 && matches!(&self.db, Db::Postgres(_)) {
                sqlx::query("SELECT pg_notify('catalog_changes', '')").execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(pass)
        })
    }
}
