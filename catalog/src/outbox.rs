//! The outbox: `catalog_sync.changes`, filled by triggers in the writer's own transaction (`catalog/migrations`) and drained by the relay.
//!
//! A relay *claims* a batch under a lease (`claimed_by`, `claimed_until`), signals Temporal, then
//! *acknowledges* (deletes) the rows it holds. A relay that dies leaves its lease to expire and
//! another relay takes the rows over: delivery is at least once. On PostgreSQL the claim skips rows
//! another transaction is claiming (`FOR UPDATE SKIP LOCKED`); on SQLite writers are serialized, so
//! the claim is atomic as it is. Either way, two relays never hold one row at the same time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgListener;

use crate::{Catalog, CatalogError, Db, placeholders_after};

/// The PostgreSQL channel the capture trigger notifies.
pub(crate) const CHANNEL: &str = "catalog_changes";

/// The cursor (`catalog_sync.cursors`) naming the capture mode the last relay started with.
const CAPTURE_MODE: &str = "capture_mode";
/// The cursor holding when a relay last handed a change to Temporal.
const LAST_RELAYED: &str = "last_relayed";

/// One captured change of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedChange {
    /// Position in the outbox (grows with every change).
    pub seq: i64,
    /// Catalog id of the product.
    pub product_id: String,
    /// `insert`, `update` or `delete`.
    pub op: String,
    /// The product's version after the change (`None` for a delete).
    pub version: Option<i64>,
    /// When the change was committed (the database's clock).
    pub changed_at: DateTime<Utc>,
    /// Claims so far, including the current one.
    pub attempts: i32,
}

/// A change Temporal refused for good, kept aside with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedChange {
    /// The change.
    pub change: CapturedChange,
    /// Why it was refused.
    pub error: String,
}

/// The state of the outbox, for lag metrics and `starter status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Changes waiting to be relayed.
    pub pending: i64,
    /// Changes set aside because Temporal refused them.
    pub failed: i64,
    /// Commit time of the oldest change waiting.
    pub oldest: Option<DateTime<Utc>>,
    /// The database's clock now, so lag is measured on one clock.
    pub now: DateTime<Utc>,
}

impl OutboxStats {
    /// Age of the oldest change waiting: the relay's lag (zero when nothing waits).
    pub fn lag(&self) -> Duration {
        self.oldest
            .map(|oldest| (self.now - oldest).to_std().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// How often a running relay records that it is alive (`catalog_sync.relays`); `starter status`
/// counts a relay as gone after six of these without a word.
pub const RELAY_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

const CHANGE_COLUMNS: &str = "seq, product_id, op, version, changed_at, attempts";

macro_rules! decode_change {
    ($row:expr) => {{
        let row = $row;
        CapturedChange {
            seq: row.try_get("seq")?,
            product_id: row.try_get("product_id")?,
            op: row.try_get("op")?,
            version: row.try_get("version")?,
            changed_at: row.try_get("changed_at")?,
            attempts: row.try_get("attempts")?,
        }
    }};
}

impl Catalog {
    /// Claims up to `limit` of the oldest unclaimed (or lease-expired) changes for `relay`, holding
    /// them for `lease`. Returned in commit order.
    pub async fn claim_changes(
        &self,
        relay: &str,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<CapturedChange>, CatalogError> {
        let mut claimed = match &self.db {
            Db::Postgres(pool) => {
                let sql = format!(
                    "UPDATE catalog_sync.changes SET claimed_by = $1, attempts = attempts + 1, \
                       claimed_until = clock_timestamp() + $2 * interval '1 millisecond' \
                     WHERE seq IN (SELECT seq FROM catalog_sync.changes \
                        WHERE failed_at IS NULL AND (claimed_until IS NULL OR claimed_until < clock_timestamp()) \
                        ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING {CHANGE_COLUMNS}"
                );
                let rows = sqlx::query(&self.own(&sql))
                    .bind(relay)
                    .bind(lease.as_millis() as f64)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.into_iter()
                    .map(|row| Ok::<_, CatalogError>(decode_change!(row)))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Db::Sqlite(pool) => {
                let sql = format!(
                    "UPDATE catalog_sync.changes SET claimed_by = $1, attempts = attempts + 1, \
                       claimed_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', $2) \
                     WHERE seq IN (SELECT seq FROM catalog_sync.changes \
                        WHERE failed_at IS NULL AND (claimed_until IS NULL \
                          OR claimed_until < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
                        ORDER BY seq LIMIT $3) \
                     RETURNING {CHANGE_COLUMNS}"
                );
                let rows = sqlx::query(&self.own(&sql))
                    .bind(relay)
                    .bind(format!("+{:.3} seconds", lease.as_secs_f64()))
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.into_iter()
                    .map(|row| Ok::<_, CatalogError>(decode_change!(row)))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        claimed.sort_by_key(|c| c.seq);
        Ok(claimed)
    }

    /// Deletes changes `relay` holds: Temporal has them. Returns how many were still held (a
    /// change whose lease expired and was taken over is left to its new holder).
    pub async fn ack_changes(&self, relay: &str, seqs: &[i64]) -> Result<u64, CatalogError> {
        self.update_held(relay, seqs, "DELETE FROM catalog_sync.changes", None)
            .await
    }

    /// Gives changes back (Temporal was unavailable): the next claim takes them again.
    pub async fn release_changes(&self, relay: &str, seqs: &[i64]) -> Result<u64, CatalogError> {
        self.update_held(
            relay,
            seqs,
            "UPDATE catalog_sync.changes SET claimed_by = NULL, claimed_until = NULL",
            None,
        )
        .await
    }

    /// Sets changes aside with the reason Temporal refused them; they are no longer claimed.
    pub async fn fail_changes(
        &self,
        relay: &str,
        seqs: &[i64],
        error: &str,
    ) -> Result<u64, CatalogError> {
        let now = match &self.db {
            Db::Postgres(_) => "clock_timestamp()",
            Db::Sqlite(_) => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        };
        let sql = format!(
            "UPDATE catalog_sync.changes SET claimed_by = NULL, claimed_until = NULL, failed_at = {now}, last_error = $2"
        );
        self.update_held(relay, seqs, &sql, Some(error)).await
    }

    /// Runs `statement` (binding `relay` as `$1` and `extra`, if any, as `$2`) on the rows of
    /// `seqs` that `relay` holds.
    async fn update_held(
        &self,
        relay: &str,
        seqs: &[i64],
        statement: &str,
        extra: Option<&str>,
    ) -> Result<u64, CatalogError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let bound = 1 + usize::from(extra.is_some());
        let sql = format!(
            "{statement} WHERE claimed_by = $1 AND seq IN ({})",
            placeholders_after(bound, seqs.len())
        );
        let sql = self.own(&sql);
        on_pool!(self, pool => {
            let mut query = sqlx::query(&sql).bind(relay);
            if let Some(extra) = extra {
                query = query.bind(extra);
            }
            for seq in seqs {
                query = query.bind(seq);
            }
            Ok(query.execute(pool).await?.rows_affected())
        })
    }

    /// Records how changes are captured (`triggers` or `polling`), as a starting relay does, for
    /// `starter status`.
    pub async fn record_capture_mode(&self, mode: &str) -> Result<(), CatalogError> {
        self.set_cursor(CAPTURE_MODE, mode).await
    }

    /// Records when a relay last handed a change to Temporal, for `starter status`.
    pub async fn record_relayed_at(&self, at: DateTime<Utc>) -> Result<(), CatalogError> {
        self.set_cursor(
            LAST_RELAYED,
            &at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .await
    }

    /// What the relays recorded of capture: the mode the last one started with, and when a
    /// change was last relayed.
    pub async fn capture_record(
        &self,
    ) -> Result<(Option<String>, Option<DateTime<Utc>>), CatalogError> {
        let mode = self.cursor(CAPTURE_MODE).await?;
        let relayed = self
            .cursor(LAST_RELAYED)
            .await?
            .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
            .map(|at| at.with_timezone(&Utc));
        Ok((mode, relayed))
    }

    /// Records that relay `relay_id` is alive (every [`RELAY_HEARTBEAT_INTERVAL`] while it runs).
    pub async fn relay_heartbeat(&self, relay_id: &str) -> Result<(), CatalogError> {
        let sql = match &self.db {
            Db::Postgres(_) => {
                "INSERT INTO catalog_sync.relays (relay_id) VALUES ($1) \
                 ON CONFLICT (relay_id) DO UPDATE SET seen_at = now()"
            }
            Db::Sqlite(_) => {
                "INSERT INTO catalog_sync.relays (relay_id) VALUES ($1) \
                 ON CONFLICT (relay_id) DO UPDATE SET seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
            }
        };
        on_pool!(self, pool => {
            sqlx::query(&self.own(sql)).bind(relay_id).execute(pool).await?;
        });
        Ok(())
    }

    /// Relays seen alive within `within` (by the database's clock).
    pub async fn live_relays(&self, within: Duration) -> Result<i64, CatalogError> {
        let sql = match &self.db {
            Db::Postgres(_) => {
                "SELECT COUNT(*) FROM catalog_sync.relays \
                 WHERE seen_at > now() - make_interval(secs => $1)"
            }
            Db::Sqlite(_) => {
                "SELECT COUNT(*) FROM catalog_sync.relays WHERE seen_at > \
                 strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || $1 || ' seconds')"
            }
        };
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar(&self.own(sql)).bind(within.as_secs_f64()).fetch_one(pool).await?)
        })
    }

    /// Pending and failed counts and the oldest pending change.
    pub async fn outbox_stats(&self) -> Result<OutboxStats, CatalogError> {
        let sql = match &self.db {
            Db::Postgres(_) => {
                "SELECT COUNT(*) FILTER (WHERE failed_at IS NULL) AS pending, \
                        COUNT(*) FILTER (WHERE failed_at IS NOT NULL) AS failed, \
                        MIN(changed_at) FILTER (WHERE failed_at IS NULL) AS oldest, \
                        clock_timestamp() AS now FROM catalog_sync.changes"
            }
            Db::Sqlite(_) => {
                "SELECT COALESCE(SUM(failed_at IS NULL), 0) AS pending, \
                        COALESCE(SUM(failed_at IS NOT NULL), 0) AS failed, \
                        MIN(CASE WHEN failed_at IS NULL THEN changed_at END) AS oldest, \
                        strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS now FROM catalog_sync.changes"
            }
        };
        on_pool!(self, pool => {
            let row = sqlx::query(&self.own(sql)).fetch_one(pool).await?;
            Ok(OutboxStats {
                pending: row.try_get("pending")?,
                failed: row.try_get("failed")?,
                oldest: row.try_get("oldest")?,
                now: row.try_get("now")?,
            })
        })
    }

    /// The changes set aside, oldest first, at most `limit`.
    pub async fn failed_changes(&self, limit: i64) -> Result<Vec<FailedChange>, CatalogError> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS}, last_error FROM catalog_sync.changes \
             WHERE failed_at IS NOT NULL ORDER BY seq LIMIT $1"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(&self.own(&sql)).bind(limit).fetch_all(pool).await?;
            rows.into_iter()
                .map(|row| {
                    let error: Option<String> = row.try_get("last_error")?;
                    Ok(FailedChange { change: decode_change!(row), error: error.unwrap_or_default() })
                })
                .collect()
        })
    }

    /// Puts the changes set aside back in line (after the cause was fixed). Returns how many.
    pub async fn retry_failed_changes(&self) -> Result<u64, CatalogError> {
        on_pool!(self, pool => {
            Ok(sqlx::query(&self.own(
                "UPDATE catalog_sync.changes SET failed_at = NULL, last_error = NULL WHERE failed_at IS NOT NULL",
            ))
            .execute(pool)
            .await?
            .rows_affected())
        })
    }

    /// Something that wakes the relay when changes are committed: `LISTEN` on PostgreSQL; on
    /// SQLite (no notifications) it only waits, and the relay polls.
    pub async fn change_listener(&self) -> Result<ChangeListener, CatalogError> {
        match &self.db {
            Db::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(CHANNEL).await?;
                Ok(ChangeListener {
                    listener: Some(listener),
                })
            }
            Db::Sqlite(_) => Ok(ChangeListener { listener: None }),
        }
    }
}

/// See [`Catalog::change_listener`].
pub struct ChangeListener {
    listener: Option<PgListener>,
}

impl ChangeListener {
    /// Waits for a notification or `timeout`, whichever comes first; `true` if notified. A lost
    /// connection is re-established on the next call (changes committed meanwhile are found by
    /// the next claim, which does not depend on notifications).
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        let Some(listener) = &mut self.listener else {
            tokio::time::sleep(timeout).await;
            return false;
        };
        match tokio::time::timeout(timeout, listener.recv()).await {
            Ok(Ok(_)) => {
                // Drain what else arrived, so one burst wakes the relay once.
                while listener.next_buffered().is_some() {}
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "LISTEN connection lost; polling until it is back");
                tokio::time::sleep(timeout).await;
                false
            }
            Err(_) => false,
        }
    }

    /// Whether notifications wake this listener (PostgreSQL) or only the poll interval does.
    pub fn is_notified(&self) -> bool {
        self.listener.is_some()
    }
}
