//! What log-based capture needs of the database, and the outbox it writes to: the publication
//! (`catalog_sync`, on the followed tables), the slot (`catalog_sync_<identity>`: slots are the
//! cluster's, so each catalog has its own), `REPLICA IDENTITY FULL` on a followed table whose
//! product column its replica identity does not hold, and the slot's lag.

use std::collections::BTreeSet;

use super::TracedTable;
use crate::{Catalog, CatalogError, Db};

/// The publication's name (publications are the database's).
pub const PUBLICATION: &str = "catalog_sync";

/// The cursor recording the tables `install` gave `REPLICA IDENTITY FULL`, for `uninstall`.
const IDENTITY_SET: &str = "logical_replica_identity_full";

/// A followed table, as the database has it now.
#[derive(Debug, Clone)]
struct Followed {
    table: TracedTable,
    quoted: String,
    /// Its replica identity does not hold the product column: a delete cannot be traced.
    needs_full: bool,
}

/// A row of `pg_replication_slots` as [`Catalog::slot_state`] reads it: active, WAL held, WAL
/// status, lost, and the reader's lag (seconds) from `pg_stat_replication`.
type SlotRow = (bool, Option<i64>, Option<String>, bool, Option<f64>);

/// The replication slot, as `pg_replication_slots` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotState {
    /// Its name.
    pub name: String,
    /// A reader holds it now.
    pub active: bool,
    /// WAL held for it: the distance from its confirmed position to the server's current one.
    pub lag_bytes: i64,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+).
    pub wal_status: Option<String>,
    /// The WAL it needed was removed (`max_slot_wal_keep_size`), or the server invalidated it
    /// otherwise: changes were missed, and the slot can no longer be read.
    pub lost: bool,
    /// How old the oldest change it holds for the relay is, in seconds (0: none waits): while
    /// the relay reads it, the server's measure of how far behind the relay confirms
    /// (`pg_stat_replication`); while nobody does, the commit time of the first transaction
    /// waiting in it ([`Catalog::slot_state_peeked`]). `None`: unknown (not peeked, or the
    /// peek failed or took over 5 s).
    pub age_seconds: Option<f64>,
}

impl Catalog {
    /// The slot's name: `catalog_sync_` and the catalog identity's digits.
    pub async fn logical_slot(&self) -> Result<String, CatalogError> {
        let identity = self.identity().await?;
        Ok(format!(
            "catalog_sync_{}",
            identity.trim_start_matches("cat_").to_ascii_lowercase()
        ))
    }

    async fn followed(&self) -> Result<Vec<Followed>, CatalogError> {
        let Db::Postgres(pool) = &self.db else {
            return Err(not_postgres());
        };
        let mut out = Vec::new();
        for table in self.logical_tables().await? {
            let quoted: String = sqlx::query_scalar("SELECT CAST($1::oid AS regclass)::text")
                .bind(i64::from(table.oid))
                .fetch_one(pool)
                .await?;
            // The columns an old row carries: every one under FULL, else the identity index's.
            let (identity, held): (String, Vec<String>) = sqlx::query_as(
                "SELECT c.relreplident::text, COALESCE(ARRAY(SELECT a.attname::text \
                   FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
                    AND a.attnum = ANY(i.indkey) \
                  WHERE i.indrelid = c.oid AND ((c.relreplident = 'd' AND i.indisprimary) \
                     OR (c.relreplident = 'i' AND i.indisreplident))), '{}') \
                 FROM pg_class c WHERE c.oid = $1::oid",
            )
            .bind(i64::from(table.oid))
            .fetch_one(pool)
            .await?;
            let needs_full = identity != "f" && !held.contains(&table.key);
            out.push(Followed {
                table,
                quoted,
                needs_full,
            });
        }
        Ok(out)
    }

    /// The SQL that sets log-based capture up (`install`) or removes it: the publication, the
    /// replica identities and the slot, as `starter capture install --print` shows them. The
    /// slot is made apart from the rest (PostgreSQL makes it outside a transaction that wrote).
    pub async fn logical_sql(
        &self,
        action: crate::CaptureAction,
    ) -> Result<Vec<String>, CatalogError> {
        let followed = self.followed().await?;
        let slot = self.logical_slot().await?;
        let tables: Vec<&str> = followed.iter().map(|f| f.quoted.as_str()).collect();
        Ok(match action {
            crate::CaptureAction::Install => {
                // Again on a set-up database: the publication follows the mapping as it is now.
                let mut sql = vec![if self.publication_exists().await? {
                    format!(
                        "ALTER PUBLICATION {PUBLICATION} SET TABLE {};",
                        tables.join(", ")
                    )
                } else {
                    format!(
                        "CREATE PUBLICATION {PUBLICATION} FOR TABLE {};",
                        tables.join(", ")
                    )
                }];
                for f in followed.iter().filter(|f| f.needs_full) {
                    sql.push(format!(
                        "-- {}'s deletes carry only its key, not {}: the whole old row is needed\n\
                         ALTER TABLE {} REPLICA IDENTITY FULL;",
                        f.table.name, f.table.key, f.quoted
                    ));
                }
                if self.slot_state().await?.is_none() {
                    sql.push(format!(
                        "SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput');"
                    ));
                }
                sql
            }
            crate::CaptureAction::Uninstall => {
                let mut sql = vec![format!(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE slot_name = '{slot}';"
                )];
                sql.push(format!("DROP PUBLICATION IF EXISTS {PUBLICATION};"));
                let set = self.cursor(IDENTITY_SET).await?.unwrap_or_default();
                let set: BTreeSet<&str> = set.split(',').filter(|t| !t.is_empty()).collect();
                for f in followed.iter().filter(|f| set.contains(f.quoted.as_str())) {
                    sql.push(format!(
                        "ALTER TABLE {} REPLICA IDENTITY DEFAULT;",
                        f.quoted
                    ));
                }
                sql
            }
        })
    }

    /// Runs [`Catalog::logical_sql`], recording the replica identities it set (for
    /// `uninstall`); returns the SQL it ran.
    pub async fn logical_capture(
        &self,
        action: crate::CaptureAction,
    ) -> Result<String, CatalogError> {
        let Db::Postgres(pool) = &self.db else {
            return Err(not_postgres());
        };
        let statements = self.logical_sql(action).await?;
        // The identities set now, with those an earlier install set (uninstall puts them back).
        let set: BTreeSet<String> = match action {
            crate::CaptureAction::Install => {
                let earlier = self.cursor(IDENTITY_SET).await?.unwrap_or_default();
                self.followed()
                    .await?
                    .into_iter()
                    .filter(|f| f.needs_full)
                    .map(|f| f.quoted)
                    .chain(
                        earlier
                            .split(',')
                            .filter(|t| !t.is_empty())
                            .map(String::from),
                    )
                    .collect()
            }
            crate::CaptureAction::Uninstall => BTreeSet::new(),
        };
        for statement in &statements {
            sqlx::raw_sql(statement).execute(pool).await.map_err(|e| {
                CatalogError::Capture(format!(
                    "{e}, running: {statement} (logical capture needs wal_level=logical, and \
                         a role with REPLICATION, or rds_replication on RDS; or run the SQL of \
                         `starter capture install --print` as one that has them)"
                ))
            })?;
        }
        let set: Vec<String> = set.into_iter().collect();
        self.set_cursor(IDENTITY_SET, &set.join(",")).await?;
        Ok(statements.join("\n") + "\n")
    }

    async fn publication_exists(&self) -> Result<bool, CatalogError> {
        let Db::Postgres(pool) = &self.db else {
            return Err(not_postgres());
        };
        let found: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_publication WHERE pubname = $1")
                .bind(PUBLICATION)
                .fetch_one(pool)
                .await?;
        Ok(found > 0)
    }

    /// The slot, if it exists.
    pub async fn slot_state(&self) -> Result<Option<SlotState>, CatalogError> {
        let Db::Postgres(pool) = &self.db else {
            return Err(not_postgres());
        };
        let slot = self.logical_slot().await?;
        // `invalidation_reason` (PostgreSQL 17) and `conflicting` (16) read through JSON, so
        // that older servers, which have neither, answer too.
        let row: Option<SlotRow> = sqlx::query_as(
            "SELECT s.active, (pg_current_wal_lsn() - s.confirmed_flush_lsn)::bigint, \
                    s.wal_status::text, \
                    COALESCE(s.wal_status = 'lost', FALSE) \
                      OR to_jsonb(s) ->> 'invalidation_reason' IS NOT NULL \
                      OR COALESCE((to_jsonb(s) ->> 'conflicting')::boolean, FALSE), \
                    (SELECT EXTRACT(EPOCH FROM GREATEST(r.flush_lag, r.replay_lag))::float8 \
                       FROM pg_stat_replication r WHERE r.pid = s.active_pid) \
             FROM pg_replication_slots s WHERE s.slot_name = $1",
        )
        .bind(&slot)
        .fetch_optional(pool)
        .await?;
        let Some((active, lag, wal_status, lost, reader_lag)) = row else {
            return Ok(None);
        };
        let lag_bytes = lag.unwrap_or(0);
        let age_seconds = if lost {
            None
        } else if active {
            // NULL once the reader has caught up and the server has nothing more to send.
            Some(reader_lag.unwrap_or(0.0))
        } else if lag_bytes <= 0 {
            Some(0.0)
        } else {
            // Dated by peeking (`slot_state_peeked`): a peek holds the slot for its while.
            None
        };
        Ok(Some(SlotState {
            name: slot,
            active,
            lag_bytes,
            wal_status,
            lost,
            age_seconds,
        }))
    }

    /// [`Catalog::slot_state`], and while nobody reads the slot, the age of the oldest change
    /// waiting in it, peeked (for `starter status`; not for a relay, whose own reading a peek
    /// would keep waiting while it holds the slot).
    pub async fn slot_state_peeked(&self) -> Result<Option<SlotState>, CatalogError> {
        let mut state = self.slot_state().await?;
        if let Some(s) = state
            .as_mut()
            .filter(|s| s.age_seconds.is_none() && !s.lost && !s.active)
        {
            s.age_seconds = self.oldest_waiting(&s.name).await;
        }
        Ok(state)
    }

    /// The age of the first transaction waiting in the unread slot `slot`, peeked (not
    /// consumed); `Some(0.0)` when none touches a followed table, `None` when the peek fails
    /// or takes over 5 s (a slot holding much WAL of other tables).
    async fn oldest_waiting(&self, slot: &str) -> Option<f64> {
        let Db::Postgres(pool) = &self.db else {
            return None;
        };
        let peek = async {
            let mut tx = pool.begin().await?;
            sqlx::query("SET LOCAL statement_timeout = '5s'")
                .execute(&mut *tx)
                .await?;
            let first: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, 1, \
                 'proto_version', '1', 'publication_names', $2) LIMIT 1",
            )
            .bind(slot)
            .bind(PUBLICATION)
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            Ok::<_, sqlx::Error>(first)
        };
        match peek.await {
            Ok(None) => Some(0.0),
            Ok(Some(data)) => match super::pgoutput::decode(&data) {
                Ok(super::pgoutput::Message::Begin { commit_time, .. }) => {
                    Some((super::pgoutput::now_micros() - commit_time).max(0) as f64 / 1e6)
                }
                _ => None,
            },
            Err(e) => {
                tracing::debug!(error = %e, %slot, "peeking the replication slot failed");
                None
            }
        }
    }

    /// Answers a lost slot: makes it anew (capture resumes from now), then enqueues every
    /// product, whose syncs read the catalog as it is and so carry every change the lost WAL
    /// held. Does nothing to a slot that is not lost; returns whether it did.
    pub async fn replace_lost_slot(&self) -> Result<bool, CatalogError> {
        let Db::Postgres(pool) = &self.db else {
            return Err(not_postgres());
        };
        if !self.slot_state().await?.is_some_and(|s| s.lost) {
            return Ok(false);
        }
        let slot = self.logical_slot().await?;
        sqlx::query("SELECT pg_drop_replication_slot($1)")
            .bind(&slot)
            .execute(pool)
            .await?;
        sqlx::query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')")
            .bind(&slot)
            .execute(pool)
            .await?;
        self.enqueue_changes(&BTreeSet::new(), true).await?;
        Ok(true)
    }

    /// Refuses to follow the log unless the database is set up for it, saying what to run.
    pub async fn check_logical(&self) -> Result<(), CatalogError> {
        let Db::Postgres(pool) = &self.db else {
            return Err(not_postgres());
        };
        let level: String = sqlx::query_scalar("SHOW wal_level").fetch_one(pool).await?;
        if level != "logical" {
            return Err(CatalogError::Capture(format!(
                "wal_level is {level}: log-based capture needs wal_level=logical (postgresql.conf, \
                 then a restart; on RDS the parameter rds.logical_replication=1)"
            )));
        }
        let untraceable: Vec<String> = self
            .followed()
            .await?
            .into_iter()
            .filter(|f| f.needs_full)
            .map(|f| {
                format!(
                    "{} (its deletes carry its key, not {}: ALTER TABLE {} REPLICA IDENTITY FULL)",
                    f.table.name, f.table.key, f.quoted
                )
            })
            .collect();
        if !untraceable.is_empty() {
            return Err(CatalogError::Capture(format!(
                "the log cannot trace the changes of {} to products: run `starter capture \
                 install` (`--print` shows the SQL)",
                untraceable.join(", ")
            )));
        }
        let publication = self.publication_exists().await?;
        let slot = self.slot_state().await?;
        if !publication || slot.is_none() {
            return Err(CatalogError::Capture(format!(
                "no {} here: run `starter capture install` with CATALOG_SYNC_CAPTURE=logical \
                 (`--print` shows the SQL)",
                if !publication {
                    format!("publication {PUBLICATION}")
                } else {
                    format!("replication slot {}", self.logical_slot().await?)
                }
            )));
        }
        Ok(())
    }

    /// Appends a change of each of `products` to the outbox, in one transaction; `everything`
    /// appends one of every product of the catalog and of every product the mirror holds active
    /// in Stripe (the log could not say which changed, or which went).
    pub async fn enqueue_changes(
        &self,
        products: &BTreeSet<String>,
        everything: bool,
    ) -> Result<(), CatalogError> {
        let Db::Postgres(pool) = &self.db else {
            return Err(not_postgres());
        };
        let mut tx = pool.begin().await?;
        if everything {
            // The catalog's rows, and this catalog's products Stripe still holds active as far
            // as the mirror knows (through their bindings; the mirror holds every catalog's):
            // one whose row went while the log could not say so is archived by its sync, within
            // the live archive guard (`crate::guard`).
            let sql = format!(
                "INSERT INTO catalog_sync.changes (product_id, op) \
                 SELECT id, 'update' FROM {} \
                 UNION SELECT COALESCE(b.catalog_id, m.id), 'update' \
                   FROM catalog_sync.stripe_products m \
                   LEFT JOIN catalog_sync.bindings b ON b.stripe_id = m.id \
                  WHERE m.active AND m.object::jsonb -> 'metadata' ->> $1 = $2",
                self.queries.products
            );
            sqlx::query(&sql)
                .bind(domain::metadata::META_CATALOG)
                .bind(self.identity().await?)
                .execute(&mut *tx)
                .await?;
        }
        let ids: Vec<&String> = products.iter().collect();
        for chunk in ids.chunks(500) {
            let values = (1..=chunk.len())
                .map(|i| format!("(${i}, 'update')"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO catalog_sync.changes (product_id, op) VALUES {values}");
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut *tx).await?;
        }
        // The outbox loop LISTENs: woken at the commit, not at its next poll.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(crate::outbox::CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn not_postgres() -> CatalogError {
    CatalogError::Capture(
        "log-based capture reads PostgreSQL's write-ahead log: SQLite has none (use triggers or \
         polling)"
            .into(),
    )
}
