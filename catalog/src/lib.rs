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
use domain::fields::{Column, PRODUCT_FIELDS, Stored, price_scalars, product_field};
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

/// The columns of the products relation ([`mapping`]), whatever tables give them: `id`, every
/// field of [`PRODUCT_FIELDS`], then `active`, `metadata` and the bookkeeping.
fn product_columns() -> &'static str {
    static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        std::iter::once("id")
            .chain(PRODUCT_FIELDS.iter().map(|f| f.name))
            .chain(["active", "metadata", "version", "updated_at", "deleted"])
            .collect::<Vec<_>>()
            .join(", ")
    });
    &COLUMNS
}
/// The columns of the prices relation: the structured ones, then the scalars of
/// [`domain::fields::PRICE_FIELDS`].
fn price_columns() -> &'static str {
    static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        [
            "product_id",
            "currency",
            "unit_amount",
            "recurring_interval",
            "recurring_interval_count",
            "metadata",
            "tiers",
            "tiers_mode",
            "currency_options",
            "custom_unit_amount",
            "transform_quantity",
            "usage_type",
            "meter",
            "lookup_key",
        ]
        .into_iter()
        .chain(price_scalars().map(|(name, _)| name))
        .collect::<Vec<_>>()
        .join(", ")
    });
    &COLUMNS
}

/// Which products a reconciliation or backfill covers. All bounds are optional; the empty range is
/// the whole catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdRange {
    /// First id included (inclusive).
    pub from: Option<String>,
    /// Last id included (inclusive).
    pub to: Option<String>,
    /// Only products updated at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// One page of [`Catalog::products_page`].
#[derive(Debug, Default)]
pub struct CatalogPage {
    /// Rows read (decoded or not).
    pub rows: usize,
    /// The last id of the page: where the next page starts.
    pub last_id: Option<String>,
    /// The decoded products, in id order, with their prices.
    pub products: Vec<CatalogProduct>,
    /// Rows that could not be decoded.
    pub corrupt: Vec<CorruptRow>,
}

/// A catalog row that cannot be decoded (e.g. `images` is not a JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRow {
    /// Product id.
    pub id: String,
    /// The column at fault.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Maps a column's decode failure to [`CatalogError::Corrupt`] naming the row and the column; any
/// other failure (the connection, a missing column) stays [`CatalogError::Unavailable`].
fn column_error(id: &str, field: &str, e: sqlx::Error) -> CatalogError {
    match e {
        sqlx::Error::ColumnDecode { source, .. } => CatalogError::Corrupt {
            id: id.to_string(),
            field: field.to_string(),
            reason: format!("holds a value of the wrong type ({source})"),
        },
        sqlx::Error::Decode(source) => CatalogError::Corrupt {
            id: id.to_string(),
            field: field.to_string(),
            reason: format!("cannot be read ({source})"),
        },
        other => CatalogError::Unavailable(other),
    }
}

/// `row.try_get(column)`, with a decode failure reported as the row's corruption.
macro_rules! column {
    ($row:expr, $id:expr, $name:expr) => {
        $row.try_get($name)
            .map_err(|e| column_error($id, $name, e))?
    };
    ($row:expr, $id:expr, $name:expr, $field:expr) => {
        $row.try_get($name)
            .map_err(|e| column_error($id, &$field, e))?
    };
}

/// `$1, $2, …, $n`: the parameters of an `IN (…)` list.
fn placeholders(n: usize) -> String {
    placeholders_after(0, n)
}

/// `$k+1, …, $k+n`: the parameters of an `IN (…)` list that follows `k` other parameters.
fn placeholders_after(k: usize, n: usize) -> String {
    (k + 1..=k + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How each backend compares `updated_at`: PostgreSQL as a timestamp, SQLite as the text the
/// triggers write (`%Y-%m-%dT%H:%M:%fZ`), whose text order is time order.
trait SinceEncoding: sqlx::Database {
    type Since;
    fn since(t: DateTime<Utc>) -> Self::Since;
}

impl SinceEncoding for sqlx::Postgres {
    type Since = DateTime<Utc>;
    fn since(t: DateTime<Utc>) -> Self::Since {
        t
    }
}

impl SinceEncoding for sqlx::Sqlite {
    type Since = String;
    fn since(t: DateTime<Utc>) -> Self::Since {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// The `since` bound in the form of `_pool`'s backend.
fn since_value<DB: SinceEncoding>(_pool: &sqlx::Pool<DB>, t: DateTime<Utc>) -> DB::Since {
    DB::since(t)
}

/// Binds the bounds of an [`IdRange`] in the order `Catalog::range_filter` numbers them.
macro_rules! bind_range {
    ($query:expr, $range:expr, $pool:expr) => {{
        let mut query = $query;
        if let Some(from) = &$range.from {
            query = query.bind(from);
        }
        if let Some(to) = &$range.to {
            query = query.bind(to);
        }
        if let Some(since) = $range.since {
            query = query.bind(since_value($pool, since));
        }
        query
    }};
}

/// Decodes a row of [`product_columns`] on either backend; a value of the wrong type (SQLite
/// stores any value in any column) is [`CatalogError::Corrupt`] with the column's name.
macro_rules! decode_product {
    ($row:expr) => {{
        let row = $row;
        let id: String = row.try_get("id")?;
        let updated_at: DateTime<Utc> = column!(row, &id, "updated_at");
        let mut product = CatalogProduct {
            id: id.clone(),
            active: column!(row, &id, "active"),
            metadata: json_column(
                &id,
                "metadata",
                column!(row, &id, "metadata"),
                "a JSON object of strings",
            )?,
            version: column!(row, &id, "version"),
            updated_at: updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            deleted: column!(row, &id, "deleted"),
            ..CatalogProduct::default()
        };
        for field in PRODUCT_FIELDS {
            let name = field.name;
            let stored = match field.codec.stored() {
                Stored::Flag => Column::Flag(column!(row, &id, name)),
                Stored::Text { required: true } => Column::Text(Some(column!(row, &id, name))),
                Stored::Text { required: false } => Column::Text(column!(row, &id, name)),
            };
            let corrupt = |reason: String| CatalogError::Corrupt {
                id: id.clone(),
                field: name.to_string(),
                reason,
            };
            let value = field.codec.from_column(stored).map_err(corrupt)?;
            (field.set_catalog)(&mut product, value)
                .map_err(|e| corrupt(format!("is not {}: {e}", field.codec.shape())))?;
        }
        product
    }};
}

/// Decodes a row of [`price_columns`]; `index` is the price's place among its product's prices,
/// for the field name of a corrupt one (`prices[1].unit_amount`).
macro_rules! decode_price {
    ($row:expr, $index:expr) => {{
        let row = $row;
        let id: String = row.try_get("product_id")?;
        let field = |name: &str| format!("prices[{}].{name}", $index);
        let count: Option<i32> = column!(
            row,
            &id,
            "recurring_interval_count",
            field("recurring_interval_count")
        );
        let mut price = (
            id.clone(),
            CatalogPrice {
                currency: column!(row, &id, "currency", field("currency")),
                unit_amount: column!(row, &id, "unit_amount", field("unit_amount")),
                recurring_interval: column!(
                    row,
                    &id,
                    "recurring_interval",
                    field("recurring_interval")
                ),
                recurring_interval_count: count.map(i64::from),
                metadata: json_column(
                    &id,
                    &field("metadata"),
                    column!(row, &id, "metadata", field("metadata")),
                    "a JSON object of strings",
                )?,
                tiers: json_column(
                    &id,
                    &field("tiers"),
                    column!(row, &id, "tiers", field("tiers")),
                    "a JSON array of tiers ({\"up_to\", \"unit_amount\", \"flat_amount\"})",
                )?,
                tiers_mode: column!(row, &id, "tiers_mode", field("tiers_mode")),
                currency_options: json_column(
                    &id,
                    &field("currency_options"),
                    column!(row, &id, "currency_options", field("currency_options")),
                    "a JSON object of currency options ({\"eur\": {\"unit_amount\"}})",
                )?,
                custom_unit_amount: optional_json(
                    &id,
                    &field("custom_unit_amount"),
                    column!(row, &id, "custom_unit_amount", field("custom_unit_amount")),
                    "a JSON object of minimum, maximum and preset",
                )?,
                transform_quantity: optional_json(
                    &id,
                    &field("transform_quantity"),
                    column!(row, &id, "transform_quantity", field("transform_quantity")),
                    "a JSON object of divide_by and round",
                )?,
                usage_type: column!(row, &id, "usage_type", field("usage_type")),
                meter: column!(row, &id, "meter", field("meter")),
                lookup_key: column!(row, &id, "lookup_key", field("lookup_key")),
                ..CatalogPrice::default()
            },
        );
        for (name, scalar) in price_scalars() {
            let corrupt = |reason: String| CatalogError::Corrupt {
                id: id.clone(),
                field: field(name),
                reason,
            };
            let stored = Column::Text(column!(row, &id, name, field(name)));
            let value = scalar.codec.from_column(stored).map_err(corrupt)?;
            (scalar.set_catalog)(&mut price.1, value)
                .map_err(|e| corrupt(format!("is not {}: {e}", scalar.codec.shape())))?;
        }
        price
    }};
}

/// A [`CatalogPage`] from product rows of [`product_columns`] (in id order) on `pool`: decodes
/// each row, then reads the prices of exactly the decoded products in one query. A row or price
/// that cannot be decoded goes to `corrupt` instead of failing the page.
macro_rules! page_from_rows {
    ($pool:expr, $rows:expr, $queries:expr) => {{
        let pool = $pool;
        let queries = &$queries;
        let rows = $rows;
        let mut page = CatalogPage {
            rows: rows.len(),
            ..CatalogPage::default()
        };
        for row in rows {
            page.last_id = Some(row.try_get("id")?);
            match (|| Ok::<_, CatalogError>(decode_product!(row)))() {
                Ok(product) => page.products.push(product),
                Err(CatalogError::Corrupt { id, field, reason }) => {
                    page.corrupt.push(CorruptRow { id, field, reason });
                }
                Err(e) => return Err(e),
            }
        }
        if !page.products.is_empty() {
            // The prices of exactly these products (a sparse `since` page must not read the
            // prices of every product between its first and last id).
            let prices_sql = format!(
                "SELECT {} FROM {} WHERE product_id IN ({}) \
                 ORDER BY product_id, position, tiebreak",
                $crate::price_columns(),
                queries.prices,
                placeholders(page.products.len())
            );
            let mut query = sqlx::query(&prices_sql);
            for product in page.products.iter() {
                query = query.bind(&product.id);
            }
            let prices = query.fetch_all(pool).await?;
            let mut by_product: BTreeMap<String, Vec<CatalogPrice>> = BTreeMap::new();
            let mut corrupt_prices: BTreeMap<String, CorruptRow> = BTreeMap::new();
            for row in &prices {
                let product_id: String = row.try_get("product_id")?;
                let index = by_product.get(&product_id).map_or(0, Vec::len);
                match (|| Ok::<_, CatalogError>(decode_price!(row, index)))() {
                    Ok((id, price)) => by_product.entry(id).or_default().push(price),
                    Err(CatalogError::Corrupt { id, field, reason }) => {
                        corrupt_prices.entry(id.clone()).or_insert(CorruptRow {
                            id,
                            field,
                            reason,
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            // A product with an unreadable price is reported whole: syncing the other prices
            // alone would archive the unreadable one in Stripe.
            page.products
                .retain(|p| !corrupt_prices.contains_key(&p.id));
            page.corrupt.extend(corrupt_prices.into_values());
            page.corrupt.sort_by(|a, b| a.id.cmp(&b.id));
            for product in page.products.iter_mut() {
                product.prices = by_product.remove(&product.id).unwrap_or_default();
                if queries.hash_version {
                    product.version = content_version(product);
                }
            }
            // Too large to carry through Temporal: reported like an unreadable row.
            let mut too_large = Vec::new();
            page.products.retain(|p| match check_size(p) {
                Ok(()) => true,
                Err(row) => {
                    too_large.push(row);
                    false
                }
            });
            if !too_large.is_empty() {
                page.corrupt.extend(too_large);
                page.corrupt.sort_by(|a, b| a.id.cmp(&b.id));
            }
        }
        page
    }};
}

mod audit;
mod capture;
mod connect;
mod guard;
mod identity;
pub mod mapping;
mod mirror;
mod outbox;
mod poll;
mod schema;

pub use audit::{AuditEntry, AuditRecord};
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
pub use schema::{MigrationReport, SCHEMA_VERSION, Tables};

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
        catalog.check_schema(catalog.tables()).await?;
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

    /// Reads one product with its prices (default price first); `None` if no such row.
    pub async fn fetch_product(&self, id: &str) -> Result<Option<CatalogProduct>, CatalogError> {
        let q = &self.queries;
        let product_sql = format!(
            "SELECT {} FROM {} WHERE id = $1",
            product_columns(),
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
            product_columns(),
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
            product_columns(),
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

    /// Inserts or replaces a product and all its prices in one transaction (the version grows).
    pub async fn save_product(&self, p: &CatalogProduct) -> Result<(), CatalogError> {
        self.save_products(std::slice::from_ref(p)).await
    }

    /// Inserts or replaces products and their prices, all in one transaction. A product saved as
    /// it already is keeps its version (no change is captured).
    pub async fn save_products(&self, products: &[CatalogProduct]) -> Result<(), CatalogError> {
        self.builtin_only("writing products")?;
        let upsert = builtin_product_upsert();
        let scalars: Vec<&str> = price_scalars().map(|(name, _)| name).collect();
        let insert_price = format!(
            "INSERT INTO catalog_prices (product_id, position, currency, unit_amount, \
             recurring_interval, recurring_interval_count, metadata, tiers, tiers_mode, \
             currency_options, custom_unit_amount, transform_quantity, usage_type, meter, \
             lookup_key, {}) VALUES ({})",
            scalars.join(", "),
            placeholders(15 + scalars.len())
        );
        let select_prices = format!(
            "SELECT {} FROM catalog_prices WHERE product_id = $1 ORDER BY position, id",
            price_columns()
        );
        fn json<T: serde::Serialize>(value: &T) -> String {
            serde_json::to_string(value).expect("plain data serializes")
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for p in products {
                let metadata = serde_json::to_string(&p.metadata).expect("strings serialize");
                let mut query = sqlx::query(&upsert).bind(&p.id).bind(p.active).bind(metadata);
                for field in PRODUCT_FIELDS {
                    query = match field.codec.column(&(field.catalog)(p)) {
                        Column::Text(text) => query.bind(text),
                        Column::Flag(flag) => query.bind(flag),
                    };
                }
                query.execute(&mut *tx).await?;
                let rows = sqlx::query(&select_prices).bind(&p.id).fetch_all(&mut *tx).await?;
                let mut existing = Vec::with_capacity(rows.len());
                for (index, row) in rows.iter().enumerate() {
                    existing.push(decode_price!(row, index).1);
                }
                // Prices are replaced only when they changed, so an edit of the name alone is one version.
                if existing != p.prices {
                    sqlx::query("DELETE FROM catalog_prices WHERE product_id = $1").bind(&p.id).execute(&mut *tx).await?;
                    for (position, c) in p.prices.iter().enumerate() {
                        let mut query = sqlx::query(&insert_price)
                            .bind(&p.id).bind(position as i32).bind(&c.currency).bind(c.unit_amount)
                            .bind(&c.recurring_interval).bind(c.recurring_interval_count.map(|n| n as i32))
                            .bind(json(&c.metadata)).bind(json(&c.tiers)).bind(&c.tiers_mode)
                            .bind(json(&c.currency_options)).bind(c.custom_unit_amount.as_ref().map(json))
                            .bind(c.transform_quantity.as_ref().map(json)).bind(&c.usage_type)
                            .bind(&c.meter).bind(&c.lookup_key);
                        for (_, scalar) in price_scalars() {
                            query = match scalar.codec.column(&(scalar.catalog)(c)) {
                                Column::Text(text) => query.bind(text),
                                Column::Flag(flag) => query.bind(flag),
                            };
                        }
                        query.execute(&mut *tx).await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether write-back of `field` can succeed here, checked at start so that a field it
    /// cannot write is refused then, with the reason, and not on each Dashboard edit (the
    /// webhook would fail and Stripe retry it for days): built-in tables take every product
    /// field ([`domain::fields::PRODUCT_FIELDS`]); a mapping, a text column of a table.
    pub fn check_write_back(&self, field: &str) -> Result<(), CatalogError> {
        if product_field(field).is_none() {
            return Err(CatalogError::NotWritable(field.to_string()));
        }
        match &self.queries.mapped {
            None => Ok(()),
            Some(mapped) => mapped.write_back_sql(field).map(|_| ()),
        }
    }

    /// Copies a Stripe-owned field's value (as Stripe's JSON has it) into the catalog row, for
    /// write-back of Dashboard edits. The version grows, so the change is captured like any other.
    /// Returns whether the row exists.
    pub async fn write_back_field(
        &self,
        id: &str,
        field: &str,
        value: &serde_json::Value,
    ) -> Result<bool, CatalogError> {
        let field =
            product_field(field).ok_or_else(|| CatalogError::NotWritable(field.to_string()))?;
        let sql = match &self.queries.mapped {
            None => format!(
                "UPDATE catalog_products SET {} = $2 WHERE id = $1",
                field.name
            ),
            Some(mapped) => mapped.write_back_sql(field.name)?,
        };
        // Lists and objects as the JSON text the columns hold (marketing features as names).
        match field.codec.column(&field.codec.from_stripe(value)) {
            Column::Flag(flag) => on_pool!(self, pool => {
                Ok(sqlx::query(&sql).bind(id).bind(flag).execute(pool).await?.rows_affected() > 0)
            }),
            Column::Text(text) => on_pool!(self, pool => {
                Ok(sqlx::query(&sql).bind(id).bind(&text).execute(pool).await?.rows_affected() > 0)
            }),
        }
    }

    /// Soft-deletes a product (`deleted_at` set; the sync archives it in Stripe).
    pub async fn soft_delete(&self, id: &str) -> Result<bool, CatalogError> {
        self.builtin_only("deleting a product")?;
        let sql = match &self.db {
            Db::Postgres(_) => {
                "UPDATE catalog_products SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL"
            }
            Db::Sqlite(_) => {
                "UPDATE catalog_products SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = $1 AND deleted_at IS NULL"
            }
        };
        on_pool!(self, pool => {
            Ok(sqlx::query(sql).bind(id).execute(pool).await?.rows_affected() > 0)
        })
    }

    /// Removes a product row for good (its prices go with it).
    pub async fn hard_delete(&self, id: &str) -> Result<bool, CatalogError> {
        self.builtin_only("deleting a product")?;
        on_pool!(self, pool => {
            Ok(sqlx::query("DELETE FROM catalog_products WHERE id = $1").bind(id).execute(pool).await?.rows_affected() > 0)
        })
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

/// The version of a product read from tables with neither a version nor an `updated_at` column:
/// a hash of everything catalog-sync reads of it (positive, so it never reads as "no row").
fn content_version(product: &CatalogProduct) -> i64 {
    let mut content = product.clone();
    content.version = 0;
    // Without an `updated_at` column the relation reads the time of the read.
    content.updated_at = String::new();
    let json = serde_json::to_string(&content).expect("products serialize");
    // FNV-1a: stable across processes and builds (std's hasher is not).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in json.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 1) as i64
}

/// A product larger, as JSON, than a sync may carry through Temporal
/// ([`domain::limits::MAX_PRODUCT_JSON_BYTES`]), as a row that cannot be synced, naming its
/// largest field: the sync reports it invalid instead of failing its workflow with a payload
/// Temporal refuses, and a row brought back under the limit syncs again.
fn check_size(product: &CatalogProduct) -> Result<(), CorruptRow> {
    use domain::limits::{MAX_DESCRIPTION, MAX_PRODUCT_JSON_BYTES};
    let size = serde_json::to_vec(product).map_or(0, |json| json.len());
    if size <= MAX_PRODUCT_JSON_BYTES {
        return Ok(());
    }
    let (field, field_size) = serde_json::to_value(product)
        .ok()
        .and_then(|value| {
            value.as_object().and_then(|fields| {
                fields
                    .iter()
                    .map(|(name, v)| (name.clone(), v.to_string().len()))
                    .max_by_key(|(_, n)| *n)
            })
        })
        .unwrap_or_default();
    Err(CorruptRow {
        id: product.id.clone(),
        field,
        reason: format!(
            "is {field_size} bytes, which makes the product {size} bytes as JSON: over the \
             {MAX_PRODUCT_JSON_BYTES} a sync carries through Temporal (whose payload limit is \
             2 MB). Stripe takes far less (a description of at most {MAX_DESCRIPTION} \
             characters): shorten it"
        ),
    })
}

/// The built-in table's upsert of a product: `id`, `active`, `metadata`, then every field of
/// [`PRODUCT_FIELDS`] in order; a row is written (and its version grows) only when a value
/// changed or it was deleted.
fn builtin_product_upsert() -> String {
    let columns: Vec<&str> = ["id", "active", "metadata"]
        .into_iter()
        .chain(PRODUCT_FIELDS.iter().map(|f| f.name))
        .collect();
    let set: Vec<String> = columns[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let changed: Vec<String> = columns[1..]
        .iter()
        .map(|c| format!("catalog_products.{c} IS DISTINCT FROM excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO catalog_products ({}) VALUES ({}) \
         ON CONFLICT (id) DO UPDATE SET {}, deleted_at = NULL \
         WHERE {} OR catalog_products.deleted_at IS NOT NULL",
        columns.join(", "),
        placeholders(columns.len()),
        set.join(", "),
        changed.join(" OR "),
    )
}

/// A JSON column decoded, or [`CatalogError::Corrupt`] naming the field.
fn json_column<T: serde::de::DeserializeOwned>(
    id: &str,
    field: &str,
    raw: String,
    shape: &str,
) -> Result<T, CatalogError> {
    serde_json::from_str(&raw).map_err(|e| CatalogError::Corrupt {
        id: id.to_string(),
        field: field.to_string(),
        reason: format!("is not {shape}: {e}"),
    })
}

/// A JSON column that may be NULL.
fn optional_json<T: serde::de::DeserializeOwned>(
    id: &str,
    field: &str,
    raw: Option<String>,
    shape: &str,
) -> Result<Option<T>, CatalogError> {
    raw.map(|raw| json_column(id, field, raw, shape))
        .transpose()
}
