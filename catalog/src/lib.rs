//! The catalog database: PostgreSQL in production, SQLite as the embedded default, chosen by one
//! URL (`CATALOG_DATABASE_URL`). The catalog's tables (the built-in `catalog_products` and
//! `catalog_prices` by default) and catalog-sync's own tables (`catalog_sync` schema) live there;
//! migrations for each backend are in `catalog/migrations/`.
//!
//! # Layout
//! - this file: reading and writing products.
//! - `connect`: opening a pool (TLS, fast and redacted connection errors).
//! - `schema`: catalog-sync's own schema, `migrate` and the check every process makes at start.
//! - `outbox`: the change table the triggers fill, claimed and acknowledged by the relay.
//! - `audit`: the audit ledger of syncs and the de-duplication of Stripe webhook events.
//! - `identity`: the catalog's identity, which every Stripe object it creates carries.
//! - `guard`: the live archive budget, and the archives held for confirmation.
//! - `mirror`: the mirror of Stripe's state (products and prices as last seen).
//! - [`seed`]: deterministic sample products for demos and benchmarks.
//!
//! Over 500 lines: connecting, migrating, and the product reads and writes for both backends side
//! by side, so a query and its other dialect are read together. The catalog mapping (issue 14)
//! reshapes this file: reads through the mapping, catalog-sync's own tables apart.
#![deny(missing_docs)]

pub mod seed;

/// The database driver, re-exported for callers that match on its errors.
pub use sqlx;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::fields::{Column, PRODUCT_FIELDS, Stored, price_scalars};
use domain::model::{CatalogPrice, CatalogProduct};
use sqlx::Row;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

/// Errors of the catalog layer.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The database could not be reached or a query failed: usually transient.
    #[error("catalog database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The first connection failed: the database is not there, refuses us, or refuses our TLS.
    /// The URL is redacted.
    #[error("cannot connect to the catalog database at {url} ({setting}): {reason}", setting = connect::DATABASE_URL_SETTING)]
    Unreachable {
        /// The URL, password redacted.
        url: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// catalog-sync's schema in this database is missing, older or newer than this build: the
    /// message says what to run.
    #[error("{0}")]
    Schema(String),
    /// A newer catalog-sync migrated the schema with a step that removed what this build uses
    /// (a contract step): no wait or migration of this build makes it usable.
    #[error("{0}")]
    SchemaTooNew(String),
    /// A row holds data that cannot be read (e.g. `images` is not a JSON array, or SQLite holds
    /// `'yes'` in `active`). Final: a retry reads the same bytes.
    #[error("catalog product {id} is corrupt: {field} {reason}")]
    Corrupt {
        /// Product id.
        id: String,
        /// The column at fault (`active`, `images`, `prices[1].unit_amount`, …).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The catalog mapping is wrong: the setting and what is wrong with it.
    #[error("catalog mapping: {0}")]
    Mapping(String),
    /// A write that only the built-in tables take (seeding, editing, deleting from the CLI).
    #[error(
        "{0}: the catalog is mapped to your own tables, which catalog-sync never writes to; change them with your application"
    )]
    Mapped(&'static str),
    /// Capture triggers cannot be installed or removed: why.
    #[error("capture: {0}")]
    Capture(String),
    /// Write-back was asked for a field the catalog does not take from Stripe.
    #[error("the catalog does not take {0:?} from Stripe")]
    NotWritable(String),
    /// The database URL is not one catalog-sync knows.
    #[error(
        "{setting}={0:?} is not a catalog URL catalog-sync takes: use postgres://… (libpq's \
         key=value form is not taken) or sqlite:…",
        setting = connect::DATABASE_URL_SETTING
    )]
    UnsupportedUrl(String),
    /// No database URL was given: none is assumed, so that no command reads, or migrates, a
    /// database nobody meant.
    #[error(
        "{setting} is not set (nor --database-url): set it to the catalog database, \
         postgres://USER@HOST/DB or sqlite:PATH (scripts/quickstart uses \
         sqlite:.quickstart/catalog.db). No default is assumed, so that no command reads or \
         migrates a database nobody meant",
        setting = connect::DATABASE_URL_SETTING
    )]
    NoUrl,
    /// A binding to an existing Stripe product that cannot be recorded: the row or the product
    /// is bound otherwise already (see [`Catalog::bind`]).
    #[error("{0}")]
    Binding(String),
}

impl CatalogError {
    /// The database refused a value for what it is (PostgreSQL's SQLSTATE class 22, data
    /// exception: a NUL byte, a string too long for its `varchar`, a number out of range): the
    /// same value is refused again, so retrying is pointless.
    pub fn is_data_error(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(sqlx::Error::Database(e))
                if e.code().is_some_and(|code| code.starts_with("22"))
        )
    }
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(e)
    }
}

/// The catalog: a connection pool, and how its products and prices are read (the built-in
/// tables, or a team's own through a [`Mapping`]).
#[derive(Clone, Debug)]
pub struct Catalog {
    db: Db,
    queries: Arc<mapping::Queries>,
}

/// A connection pool to the catalog database.
#[derive(Clone, Debug)]
pub enum Db {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// Runs the same statement on whichever pool the catalog uses; the body is compiled per backend.
macro_rules! on_pool {
    ($catalog:expr, $pool:ident => $body:expr) => {
        match &$catalog.db {
            $crate::Db::Postgres($pool) => $body,
            $crate::Db::Sqlite($pool) => $body,
        }
    };
}

#[macro_use]
mod rows;

mod audit;
mod bindings;
mod capture;
mod connect;
mod guard;
mod identity;
pub mod logical;
pub mod mapping;
mod mirror;
mod outbox;
mod poll;
mod schema;
mod write;

pub use audit::{AuditEntry, AuditRecord};
pub use bindings::Bound;
pub use capture::{CaptureAction, CaptureState};
pub use connect::{CONNECT_TIMEOUT, DATABASE_URL_SETTING, redact_url, required_url};
pub use guard::{ArchiveBudget, ArchivePermit, HeldArchive};
pub use identity::IdentityDecision;
pub use mapping::Mapping;
pub use mirror::{MirrorCounts, MirrorKind};
pub use outbox::{
    CapturedChange, ChangeListener, FailedChange, OutboxStats, RELAY_HEARTBEAT_INTERVAL,
};
pub use poll::PollPass;
pub use rows::{CatalogPage, CorruptRow, IdRange};
use rows::{
    check_size, column_error, content_version, json_column, optional_json, placeholders,
    price_columns, product_columns,
};
pub(crate) use rows::{placeholders_after, since_value};
pub use schema::{MigrationReport, RecordedStep, SCHEMA_VERSION, SchemaCheck, Tables};

impl Catalog {
    /// Opens the catalog at `url` ([`Catalog::open`]) and checks that catalog-sync's schema is
    /// the one this build needs ([`Catalog::check_schema`]): a database that is not migrated is
    /// refused with `run starter migrate`, never migrated here.
    pub async fn connect(url: &str) -> Result<Self, CatalogError> {
        Self::connect_with(url, None).await
    }

    /// [`Catalog::connect`] for a catalog read through `mapping` (the built-in tables when
    /// `None`): the mapping is checked against the database first, and a table, query or column
    /// it names that is missing or of the wrong type stops here with the setting's name.
    pub async fn connect_with(url: &str, mapping: Option<&Mapping>) -> Result<Self, CatalogError> {
        let catalog = Self::open_mapped(url, mapping).await?;
        if let SchemaCheck::NewerCompatible { last } =
            catalog.check_schema(catalog.tables()).await?
        {
            tracing::info!(
                schema = last.version,
                this_build = SCHEMA_VERSION,
                "catalog-sync's schema was migrated by a newer build ({}: {}); its steps keep this \
                 build running (expand), as during a rollout",
                last.version,
                last.name
            );
        }
        Ok(catalog)
    }

    /// [`Catalog::open`], then checks and compiles `mapping` (if any) against the database,
    /// without looking at catalog-sync's schema: what `starter migrate` opens.
    pub async fn open_mapped(url: &str, mapping: Option<&Mapping>) -> Result<Self, CatalogError> {
        let mut catalog = Self::open(url).await?;
        if let Some(mapping) = mapping {
            catalog.queries = Arc::new(mapping::Queries::compile(&catalog.db, mapping).await?);
        }
        Ok(catalog)
    }

    /// Which tables this catalog reads: the built-in ones, or a team's through a mapping.
    pub fn tables(&self) -> Tables {
        if self.is_mapped() {
            Tables::Mapped
        } else {
            Tables::Builtin
        }
    }

    pub(crate) fn new(db: Db) -> Self {
        Self {
            db,
            queries: Arc::new(mapping::Queries::builtin()),
        }
    }

    /// The connection pool.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Whether products come from a team's own tables (a mapping) rather than the built-in ones.
    pub fn is_mapped(&self) -> bool {
        self.queries.mapped.is_some()
    }

    /// Refuses a write only the built-in tables take.
    fn builtin_only(&self, what: &'static str) -> Result<(), CatalogError> {
        if self.is_mapped() {
            Err(CatalogError::Mapped(what))
        } else {
            Ok(())
        }
    }

    /// Reads one product with its prices (default price first); `None` if no such row. A row
    /// deleted for good that was bound to an existing Stripe product comes back deleted, with
    /// its binding, so that its sync archives that product.
    pub async fn fetch_product(&self, id: &str) -> Result<Option<CatalogProduct>, CatalogError> {
        let product = self.fetch_row(id).await?;
        if product.is_some() {
            return Ok(product);
        }
        let bound = self.stripe_ids_of(&[id.to_string()]).await?;
        Ok(bound.into_values().next().map(|stripe_id| CatalogProduct {
            id: id.to_string(),
            deleted: true,
            bound_stripe_id: Some(stripe_id),
            ..CatalogProduct::default()
        }))
    }

    /// [`Self::fetch_product`]'s read of the row.
    async fn fetch_row(&self, id: &str) -> Result<Option<CatalogProduct>, CatalogError> {
        let q = &self.queries;
        let product_sql = format!(
            "SELECT {} FROM {} WHERE id = $1",
            self.product_select(),
            q.products
        );
        let prices_sql = format!(
            "SELECT {} FROM {} WHERE product_id = $1 ORDER BY position, tiebreak",
            price_columns(),
            q.prices
        );
        on_pool!(self, pool => {
            let Some(row) = sqlx::query(&product_sql).bind(id).fetch_optional(pool).await? else {
                return Ok(None);
            };
            let mut product = decode_product!(row);
            for (index, row) in sqlx::query(&prices_sql).bind(id).fetch_all(pool).await?.iter().enumerate() {
                product.prices.push(decode_price!(row, index).1);
            }
            if q.hash_version {
                product.version = content_version(&product);
            }
            if let Err(row) = check_size(&product) {
                return Err(CatalogError::Corrupt { id: row.id, field: row.field, reason: row.reason });
            }
            Ok(Some(product))
        })
    }

    /// One page of products with their prices, in id order: ids after `after` (exclusive) within
    /// `range`, at most `limit`. Two queries whatever the page size: the products, then the prices
    /// of the page's id span. This is how reconciliation walks the catalog.
    ///
    /// A row that cannot be decoded does not fail the page: it is returned in
    /// [`CatalogPage::corrupt`] so that the caller reports it and goes on with the others.
    pub async fn products_page(
        &self,
        after: &str,
        range: &IdRange,
        limit: i64,
    ) -> Result<CatalogPage, CatalogError> {
        let filter = Self::range_filter(range, 1);
        let product_sql = format!(
            "SELECT {} FROM {} WHERE id > $1{filter} ORDER BY id LIMIT {limit}",
            self.product_select(),
            self.queries.products
        );
        on_pool!(self, pool => {
            let query = bind_range!(sqlx::query(&product_sql).bind(after), range, pool);
            let rows = query.fetch_all(pool).await?;
            Ok(page_from_rows!(pool, rows, self.queries))
        })
    }

    /// The products of `ids` that have a catalog row, with their prices, as one page (two
    /// queries); unreadable rows are in [`CatalogPage::corrupt`].
    pub async fn products_by_ids(&self, ids: &[String]) -> Result<CatalogPage, CatalogError> {
        if ids.is_empty() {
            return Ok(CatalogPage::default());
        }
        let product_sql = format!(
            "SELECT {} FROM {} WHERE id IN ({}) ORDER BY id",
            self.product_select(),
            self.queries.products,
            placeholders(ids.len())
        );
        on_pool!(self, pool => {
            let mut query = sqlx::query(&product_sql);
            for id in ids {
                query = query.bind(id);
            }
            let rows = query.fetch_all(pool).await?;
            Ok(page_from_rows!(pool, rows, self.queries))
        })
    }

    /// Number of product rows within `range` (including soft-deleted ones).
    pub async fn count_in_range(&self, range: &IdRange) -> Result<i64, CatalogError> {
        let filter = Self::range_filter(range, 0);
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE TRUE{filter}",
            self.queries.products
        );
        on_pool!(self, pool => {
            Ok(bind_range!(sqlx::query_scalar(&sql), range, pool).fetch_one(pool).await?)
        })
    }

    /// Which of `ids` have a catalog row (deleted or not).
    pub async fn existing_ids(&self, ids: &[String]) -> Result<BTreeSet<String>, CatalogError> {
        if ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let sql = format!(
            "SELECT id FROM {} WHERE id IN ({})",
            self.queries.products,
            placeholders(ids.len())
        );
        on_pool!(self, pool => {
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for id in ids {
                query = query.bind(id);
            }
            Ok(query.fetch_all(pool).await?.into_iter().collect())
        })
    }

    /// The SQL conditions of `range`, numbered after the first `bound` parameters; bind
    /// `range.from`, `range.to`, then `range.since`, when present.
    fn range_filter(range: &IdRange, bound: usize) -> String {
        let mut filter = String::new();
        let mut next = bound;
        if range.from.is_some() {
            next += 1;
            filter.push_str(&format!(" AND id >= ${next}"));
        }
        if range.to.is_some() {
            next += 1;
            filter.push_str(&format!(" AND id <= ${next}"));
        }
        if range.since.is_some() {
            next += 1;
            filter.push_str(&format!(" AND updated_at >= ${next}"));
        }
        filter
    }

    /// Product ids in key order after `after`, at most `limit`: the paging the full sync uses.
    pub async fn product_ids(&self, after: &str, limit: i64) -> Result<Vec<String>, CatalogError> {
        let sql = format!(
            "SELECT id FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
            self.queries.products
        );
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar(&sql).bind(after).bind(limit).fetch_all(pool).await?)
        })
    }

    /// One round trip to the database (readiness checks).
    pub async fn ping(&self) -> Result<(), CatalogError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Number of product rows (including soft-deleted ones).
    pub async fn count_products(&self) -> Result<i64, CatalogError> {
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", self.queries.products)).fetch_one(pool).await?)
        })
    }
}
