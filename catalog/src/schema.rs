//! catalog-sync's own schema, and the only code that changes it: [`Catalog::migrate`], run by
//! `starter migrate` and by nothing else. Every other process checks the schema at start
//! ([`Catalog::connect`]) and refuses a database that is not migrated, or migrated by a newer
//! catalog-sync, saying what to do.
//!
//! Two tracks of migrations, each a list of steps numbered from 1 and recorded in
//! `catalog_sync.migrations` (SQLite: `catalog_sync_migrations`):
//! - `own`: catalog-sync's tables (outbox, audit ledger, webhook events, secrets, identity, archive
//!   guard, relay heartbeats, the mirror of Stripe's state, bindings to existing Stripe products): on PostgreSQL in the `catalog_sync` schema, on SQLite prefixed
//!   `catalog_sync_` in the one file (a capture trigger can write only to its own file);
//! - `builtin`: the built-in catalog tables (`catalog_products`, `catalog_prices`), applied only
//!   when the catalog uses them (the default). A mapped catalog's tables are the team's: no step
//!   touches them.
//!
//! PostgreSQL applies everything in one transaction under an advisory lock, so two `migrate`s at
//! once serialize and the second finds nothing to do; SQLite's `BEGIN IMMEDIATE` does the same.
//!
//! **Expand, then contract.** A rollout runs the new build's `migrate` while the previous build's
//! workers still run (and restart), so every step says which builds it leaves running: its
//! `compatible_from`, the oldest schema version whose builds still work once it is applied. An
//! *expand* step (a table, a nullable or defaulted column, an index) keeps the previous step's
//! value; a *contract* step (a column dropped, renamed or made required) sets it to the first
//! version that no longer uses what it removes, and ships a release after the expand it completes.
//! The value is recorded with the step in the ledger, so a build that does not know a step still
//! knows whether it may run beside it: [`Catalog::check_schema`] accepts a newer schema whose last
//! step is compatible with this build's version, and refuses one that is not, naming the step.
//! The window starts at own version 3 (builds before it refuse every newer schema).

use std::fmt;

use crate::{Catalog, CatalogError, Db};

/// One step of a track.
struct Migration {
    version: i64,
    name: &'static str,
    /// The oldest schema version of this track whose builds still run once this step is applied:
    /// the previous step's value for an expand step, higher for a contract step.
    compatible_from: i64,
    postgres: &'static str,
    sqlite: &'static str,
}

/// catalog-sync's own tables.
const OWN: &[Migration] = &[
    Migration {
        version: 1,
        name: "catalog-sync's own tables",
        compatible_from: 1,
        postgres: include_str!("../migrations/postgres/own_0001.sql"),
        sqlite: include_str!("../migrations/sqlite/own_0001.sql"),
    },
    Migration {
        version: 2,
        name: "polling capture state",
        compatible_from: 2,
        postgres: include_str!("../migrations/postgres/own_0002.sql"),
        sqlite: include_str!("../migrations/sqlite/own_0002.sql"),
    },
    Migration {
        version: 3,
        name: "the mirror of Stripe's state",
        compatible_from: 3,
        postgres: include_str!("../migrations/postgres/own_0003.sql"),
        sqlite: include_str!("../migrations/sqlite/own_0003.sql"),
    },
    Migration {
        version: 4,
        name: "bindings of catalog rows to existing Stripe products",
        compatible_from: 3,
        postgres: include_str!("../migrations/postgres/own_0004.sql"),
        sqlite: include_str!("../migrations/sqlite/own_0004.sql"),
    },
];

/// The built-in catalog tables.
const BUILTIN: &[Migration] = &[
    Migration {
        version: 1,
        name: "built-in catalog tables (catalog_products, catalog_prices)",
        compatible_from: 1,
        postgres: include_str!("../migrations/postgres/builtin_0001.sql"),
        sqlite: include_str!("../migrations/sqlite/builtin_0001.sql"),
    },
    Migration {
        version: 2,
        name: "shipping, statement and tax fields of products and prices",
        compatible_from: 2,
        postgres: include_str!("../migrations/postgres/builtin_0002.sql"),
        sqlite: include_str!("../migrations/sqlite/builtin_0002.sql"),
    },
    Migration {
        version: 3,
        name: "tiered, multi-currency, pay-what-you-want, packaged and metered prices",
        compatible_from: 3,
        postgres: include_str!("../migrations/postgres/builtin_0003.sql"),
        sqlite: include_str!("../migrations/sqlite/builtin_0003.sql"),
    },
    Migration {
        version: 4,
        name: "the Stripe product a row takes over (stripe_id)",
        compatible_from: 3,
        postgres: include_str!("../migrations/postgres/builtin_0004.sql"),
        sqlite: include_str!("../migrations/sqlite/builtin_0004.sql"),
    },
];

/// Moves the tables of a database migrated before the own schema existed (by sqlx).
const LEGACY_POSTGRES: &str = include_str!("../migrations/postgres/legacy.sql");
const LEGACY_SQLITE: &str = include_str!("../migrations/sqlite/legacy.sql");

/// PostgreSQL advisory lock key of `migrate` (`cs_migra` in ASCII).
const MIGRATE_LOCK: i64 = 0x6373_5f6d_6967_7261;

/// The schema version this build needs: the last step of the own track.
pub const SCHEMA_VERSION: i64 = OWN[OWN.len() - 1].version;

/// Which tracks a catalog needs: the built-in tables only when it reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// The built-in `catalog_products` / `catalog_prices` (the default mapping).
    Builtin,
    /// The team's own tables, through a mapping: catalog-sync creates none of them.
    Mapped,
}

/// What [`Catalog::migrate`] did, to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Steps applied now, as `track version: name`.
    pub applied: Vec<String>,
    /// A database of the layout before the own schema was moved into it.
    pub moved_legacy: bool,
    /// The catalog's identity (made now if `identity_created`).
    pub identity: String,
    /// The identity was made by this run.
    pub identity_created: bool,
    /// A newer build migrated the schema, with steps this build runs beside: nothing was
    /// applied.
    pub newer: Option<RecordedStep>,
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.moved_legacy {
            writeln!(
                f,
                "moved catalog-sync's tables of an earlier version into its own schema"
            )?;
        }
        if let Some(last) = &self.newer {
            writeln!(
                f,
                "schema at version {} ({}), migrated by a newer build: nothing to do; this \
                 build (version {SCHEMA_VERSION}) runs beside it",
                last.version, last.name
            )?;
        } else if self.applied.is_empty() {
            writeln!(
                f,
                "schema up to date (version {SCHEMA_VERSION}): nothing to do"
            )?;
        }
        for step in &self.applied {
            writeln!(f, "applied {step}")?;
        }
        let made = if self.identity_created { " (new)" } else { "" };
        write!(f, "catalog identity: {}{made}", self.identity)
    }
}

impl Catalog {
    /// The name of one of catalog-sync's own tables in this backend's SQL: `catalog_sync.changes`
    /// on PostgreSQL, `catalog_sync_changes` on SQLite. Queries are written with the PostgreSQL
    /// names and go through here.
    pub(crate) fn own<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.db {
            Db::Postgres(_) => sql.into(),
            Db::Sqlite(_) => sql.replace("catalog_sync.", "catalog_sync_").into(),
        }
    }

    /// Applies catalog-sync's migrations (the built-in tables too when `tables` says so) and gives
    /// the catalog its identity if it has none. Idempotent: a second run applies nothing.
    pub async fn migrate(&self, tables: Tables) -> Result<MigrationReport, CatalogError> {
        let mut report = MigrationReport::default();
        let wanted: Vec<(&str, &[Migration])> = match tables {
            Tables::Builtin => vec![("own", OWN), ("builtin", BUILTIN)],
            Tables::Mapped => vec![("own", OWN)],
        };
        match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                report.newer = newer_schema_pg(&mut tx).await?;
                if table_exists_pg(&mut tx, "public._sqlx_migrations").await?
                    && table_exists_pg(&mut tx, "catalog_changes").await?
                {
                    sqlx::raw_sql(LEGACY_POSTGRES).execute(&mut *tx).await?;
                    report.moved_legacy = true;
                }
                sqlx::raw_sql(
                    "CREATE SCHEMA IF NOT EXISTS catalog_sync; \
                     CREATE TABLE IF NOT EXISTS catalog_sync.migrations ( \
                       track TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL, \
                       applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (track, version)); \
                     ALTER TABLE catalog_sync.migrations ADD COLUMN IF NOT EXISTS compatible_from BIGINT",
                )
                .execute(&mut *tx)
                .await?;
                for (track, steps) in wanted {
                    let done: Option<i64> = sqlx::query_scalar(
                        "SELECT MAX(version) FROM catalog_sync.migrations WHERE track = $1",
                    )
                    .bind(track)
                    .fetch_one(&mut *tx)
                    .await?;
                    for step in steps.iter().filter(|s| s.version > done.unwrap_or(0)) {
                        sqlx::raw_sql(step.postgres).execute(&mut *tx).await?;
                        sqlx::query(
                            "INSERT INTO catalog_sync.migrations (track, version, name, compatible_from) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(track)
                        .bind(step.version)
                        .bind(step.name)
                        .bind(step.compatible_from)
                        .execute(&mut *tx)
                        .await?;
                        report.applied.push(step.describe(track));
                    }
                }
                tx.commit().await?;
            }
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // IMMEDIATE: the write lock first, so two migrations never interleave.
                sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let result = async {
                    report.newer = newer_schema_sqlite(&mut conn).await?;
                    let legacy: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                         AND name IN ('_sqlx_migrations', 'catalog_changes')",
                    )
                    .fetch_one(&mut *conn)
                    .await?;
                    if legacy == 2 {
                        sqlx::raw_sql(LEGACY_SQLITE).execute(&mut *conn).await?;
                        report.moved_legacy = true;
                    }
                    sqlx::raw_sql(
                        "CREATE TABLE IF NOT EXISTS catalog_sync_migrations ( \
                           track TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, \
                           applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), \
                           PRIMARY KEY (track, version))",
                    )
                    .execute(&mut *conn)
                    .await?;
                    let has_window: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM pragma_table_info('catalog_sync_migrations') \
                         WHERE name = 'compatible_from'",
                    )
                    .fetch_one(&mut *conn)
                    .await?;
                    if has_window == 0 {
                        sqlx::raw_sql(
                            "ALTER TABLE catalog_sync_migrations ADD COLUMN compatible_from INTEGER",
                        )
                        .execute(&mut *conn)
                        .await?;
                    }
                    for (track, steps) in wanted {
                        let done: Option<i64> = sqlx::query_scalar(
                            "SELECT MAX(version) FROM catalog_sync_migrations WHERE track = $1",
                        )
                        .bind(track)
                        .fetch_one(&mut *conn)
                        .await?;
                        for step in steps.iter().filter(|s| s.version > done.unwrap_or(0)) {
                            sqlx::raw_sql(step.sqlite).execute(&mut *conn).await?;
                            sqlx::query(
                                "INSERT INTO catalog_sync_migrations (track, version, name, compatible_from) \
                                 VALUES ($1, $2, $3, $4)",
                            )
                            .bind(track)
                            .bind(step.version)
                            .bind(step.name)
                            .bind(step.compatible_from)
                            .execute(&mut *conn)
                            .await?;
                            report.applied.push(step.describe(track));
                        }
                    }
                    Ok::<_, CatalogError>(())
                }
                .await;
                match result {
                    Ok(()) => sqlx::raw_sql("COMMIT").execute(&mut *conn).await?,
                    Err(e) => {
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                        return Err(e);
                    }
                };
            }
        }
        report.identity_created = self.ensure_identity().await?;
        report.identity = self.identity().await?;
        Ok(report)
    }

    /// Refuses, with what to do, a database whose schema this build cannot use: not migrated,
    /// migrated by an older catalog-sync (`run starter migrate`), or by a newer one.
    pub async fn check_schema(&self, tables: Tables) -> Result<SchemaCheck, CatalogError> {
        let versions = self.schema_versions().await?;
        let own = versions.own;
        if versions.legacy {
            return Err(CatalogError::Schema(format!(
                "this catalog database was set up by an earlier catalog-sync, with its tables beside \
                 the catalog's: run `starter migrate` to move them into catalog-sync's own schema \
                 (schema version {SCHEMA_VERSION})"
            )));
        }
        let mut check = SchemaCheck::Current;
        if own > SCHEMA_VERSION {
            let last = self.last_step("own").await?;
            if last.compatible_from > SCHEMA_VERSION {
                return Err(newer(&last));
            }
            check = SchemaCheck::NewerCompatible { last };
        }
        if own == 0 {
            return Err(CatalogError::Schema(format!(
                "catalog-sync's tables are not in this database yet: run `starter migrate` \
                 (schema version {SCHEMA_VERSION}; it creates only catalog-sync's own tables{})",
                match tables {
                    Tables::Builtin => " and the built-in catalog_products / catalog_prices",
                    Tables::Mapped => ", never a table of your catalog",
                }
            )));
        }
        if own < SCHEMA_VERSION {
            return Err(CatalogError::Schema(format!(
                "catalog-sync's schema is at version {own}, this build needs {SCHEMA_VERSION}: \
                 run `starter migrate`"
            )));
        }
        let builtin_needed = BUILTIN[BUILTIN.len() - 1].version;
        if tables == Tables::Builtin && versions.builtin < builtin_needed {
            return Err(CatalogError::Schema(format!(
                "the built-in catalog tables are at version {}, this build needs {builtin_needed}: \
                 run `starter migrate` (or map your own tables: docs/own-catalog.md)",
                versions.builtin
            )));
        }
        if tables == Tables::Builtin && versions.builtin > builtin_needed {
            let last = self.last_step("builtin").await?;
            if last.compatible_from > builtin_needed {
                return Err(CatalogError::SchemaTooNew(format!(
                    "the built-in catalog tables are at version {} ({}), which builds before \
                     version {} cannot read; this build knows {builtin_needed}: run a catalog-sync \
                     at least as new as the one that migrated it",
                    last.version, last.name, last.compatible_from
                )));
            }
        }
        Ok(check)
    }

    /// The last step recorded on `track`, with the builds it leaves running (a step recorded before
    /// the ledger had the column counts as compatible with its own version only).
    async fn last_step(&self, track: &str) -> Result<RecordedStep, CatalogError> {
        let sql = self.own(
            "SELECT version, name, COALESCE(compatible_from, version) FROM catalog_sync.migrations \
             WHERE track = $1 ORDER BY version DESC LIMIT 1",
        );
        let (version, name, compatible_from): (i64, String, i64) = match &self.db {
            Db::Postgres(pool) => sqlx::query_as(&sql).bind(track).fetch_one(pool).await?,
            Db::Sqlite(pool) => sqlx::query_as(&sql).bind(track).fetch_one(pool).await?,
        };
        Ok(RecordedStep {
            version,
            name,
            compatible_from,
        })
    }

    /// The versions recorded in the ledger (0 for a track never applied).
    async fn schema_versions(&self) -> Result<Versions, CatalogError> {
        let mut versions = Versions::default();
        match &self.db {
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                if !table_exists_pg(&mut conn, "catalog_sync.migrations").await? {
                    versions.legacy = table_exists_pg(&mut conn, "public._sqlx_migrations").await?
                        && table_exists_pg(&mut conn, "catalog_changes").await?;
                    return Ok(versions);
                }
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT track, MAX(version) FROM catalog_sync.migrations GROUP BY track",
                )
                .fetch_all(&mut *conn)
                .await?;
                versions.read(rows);
            }
            Db::Sqlite(pool) => {
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN \
                     ('catalog_sync_migrations', '_sqlx_migrations', 'catalog_changes')",
                )
                .fetch_all(pool)
                .await?;
                if !tables.iter().any(|t| t == "catalog_sync_migrations") {
                    versions.legacy = tables.len() == 2;
                    return Ok(versions);
                }
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT track, MAX(version) FROM catalog_sync_migrations GROUP BY track",
                )
                .fetch_all(pool)
                .await?;
                versions.read(rows);
            }
        }
        Ok(versions)
    }
}

/// A schema a newer build migrated: `None` when it is not newer; its last step when this build
/// may run beside it (an older build's `migrate` then has nothing to do: a pod of the previous
/// build that migrates at start keeps starting during a rollout); refused when it may not.
/// A ledger a newer build wrote has the `compatible_from` column (every build that knows a
/// version after this one's adds it).
async fn newer_schema_pg(
    conn: &mut sqlx::PgConnection,
) -> Result<Option<RecordedStep>, CatalogError> {
    if !table_exists_pg(conn, "catalog_sync.migrations").await? {
        return Ok(None);
    }
    let last: Option<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT version, name, compatible_from FROM catalog_sync.migrations WHERE track = 'own' \
         AND version > $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(SCHEMA_VERSION)
    .fetch_optional(&mut *conn)
    .await?;
    newer_step(last)
}

/// [`newer_schema_pg`] on SQLite.
async fn newer_schema_sqlite(
    conn: &mut sqlx::SqliteConnection,
) -> Result<Option<RecordedStep>, CatalogError> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'catalog_sync_migrations'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if exists == 0 {
        return Ok(None);
    }
    let last: Option<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT version, name, compatible_from FROM catalog_sync_migrations WHERE track = 'own' \
         AND version > $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(SCHEMA_VERSION)
    .fetch_optional(&mut *conn)
    .await?;
    newer_step(last)
}

/// The last step of a newer schema, if this build may run beside it.
fn newer_step(
    last: Option<(i64, String, Option<i64>)>,
) -> Result<Option<RecordedStep>, CatalogError> {
    let Some((version, name, compatible_from)) = last else {
        return Ok(None);
    };
    let last = RecordedStep {
        compatible_from: compatible_from.unwrap_or(version),
        version,
        name,
    };
    if last.compatible_from > SCHEMA_VERSION {
        return Err(newer(&last));
    }
    Ok(Some(last))
}

/// The refusal to run beside a newer schema whose last step removed what this build uses.
fn newer(last: &RecordedStep) -> CatalogError {
    CatalogError::SchemaTooNew(format!(
        "catalog-sync's schema is at version {} ({}), which builds before schema version {} \
         cannot use; this build knows {SCHEMA_VERSION}: run a catalog-sync at least as new as the \
         one that migrated it",
        last.version, last.name, last.compatible_from
    ))
}

/// The last step applied on a track, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStep {
    /// Its version.
    pub version: i64,
    /// What it does.
    pub name: String,
    /// The oldest schema version whose builds still run beside it.
    pub compatible_from: i64,
}

/// What [`Catalog::check_schema`] found in a database this build can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaCheck {
    /// Catalog-sync's schema is the version this build needs.
    Current,
    /// A newer build has migrated it with steps this build may run beside (expand steps): the
    /// normal state of a rollout, while the previous build's workers still run.
    NewerCompatible {
        /// The newest step applied.
        last: RecordedStep,
    },
}

impl Migration {
    /// `own 4: a new table (expand: builds from schema 3 keep running)`, to print; a step without
    /// the note stops the builds before it.
    fn describe(&self, track: &str) -> String {
        let mut line = format!("{track} {}: {}", self.version, self.name);
        if self.compatible_from < self.version {
            line += &format!(
                " (expand: builds from schema {} keep running)",
                self.compatible_from
            );
        }
        line
    }
}

#[derive(Debug, Default)]
struct Versions {
    own: i64,
    builtin: i64,
    legacy: bool,
}

impl Versions {
    fn read(&mut self, rows: Vec<(String, i64)>) {
        for (track, version) in rows {
            match track.as_str() {
                "own" => self.own = version,
                "builtin" => self.builtin = version,
                _ => {}
            }
        }
    }
}

/// Whether `name` (optionally schema-qualified; else on the search path) is a table or view.
async fn table_exists_pg(conn: &mut sqlx::PgConnection, name: &str) -> Result<bool, CatalogError> {
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each step's window is a version at or before it, and no later step lets older builds
    /// back in (an expand keeps the window, a contract narrows it).
    #[test]
    fn every_step_names_a_window_that_only_narrows() {
        for (track, steps) in [("own", OWN), ("builtin", BUILTIN)] {
            for (i, step) in steps.iter().enumerate() {
                assert_eq!(step.version, i as i64 + 1, "{track} {}", step.name);
                assert!(
                    (1..=step.version).contains(&step.compatible_from),
                    "{track} {}",
                    step.version
                );
                if let Some(before) = i.checked_sub(1).map(|j| &steps[j]) {
                    assert!(
                        step.compatible_from >= before.compatible_from,
                        "{track} {} lets builds back in",
                        step.version
                    );
                }
            }
        }
    }

    #[test]
    fn an_expand_step_says_which_builds_keep_running() {
        let expand = Migration {
            version: 4,
            name: "a table",
            compatible_from: 3,
            postgres: "",
            sqlite: "",
        };
        assert_eq!(
            expand.describe("own"),
            "own 4: a table (expand: builds from schema 3 keep running)"
        );
        let contract = Migration {
            compatible_from: 4,
            ..expand
        };
        assert_eq!(contract.describe("own"), "own 4: a table");
    }
}
