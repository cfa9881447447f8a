//! Reading the catalog's rows: the columns of the products and prices relations, decoding a row
//! into catalog-sync's model on either backend (a value of the wrong type is a corrupt row naming
//! its column), and pages of products with their prices.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::fields::{PRODUCT_FIELDS, price_scalars};
use domain::model::CatalogProduct;

use crate::CatalogError;

/// The columns of the products relation ([`mapping`]), whatever tables give them: `id`, every
/// field of [`PRODUCT_FIELDS`], then `active`, `metadata`, the bookkeeping and `stripe_id` (the
/// existing Stripe product the row names, or NULL).
pub(crate) fn product_columns() -> &'static str {
    static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        std::iter::once("id")
            .chain(PRODUCT_FIELDS.iter().map(|f| f.name))
            .chain([
                "active",
                "metadata",
                "version",
                "updated_at",
                "deleted",
                "stripe_id",
            ])
            .collect::<Vec<_>>()
            .join(", ")
    });
    &COLUMNS
}
/// The columns of the prices relation: those of the built-in table ([`stored_price_columns`]),
/// then `unit_amount_major`: the amount as text in the currency's major unit when a mapping
/// reads amounts so (`amount_unit = "major"`, `unit_amount` then 0), else NULL.
pub(crate) fn price_columns() -> &'static str {
    static COLUMNS: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{}, unit_amount_major", stored_price_columns()));
    &COLUMNS
}

/// The columns of the built-in price table: the structured ones, then the scalars of
/// [`domain::fields::PRICE_FIELDS`].
pub(crate) fn stored_price_columns() -> &'static str {
    static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        STRUCTURED_PRICE_COLUMNS
            .iter()
            .copied()
            .chain(price_scalars().map(|(name, _)| name))
            .collect::<Vec<_>>()
            .join(", ")
    });
    &COLUMNS
}

/// `unit_amount_major` where a relation has no such amount (typed, so that PostgreSQL decodes it).
pub(crate) const NO_MAJOR_AMOUNT: &str = "CAST(NULL AS TEXT) AS unit_amount_major";

/// The prices relation's columns other than the scalars: the owning product and the price
/// fields that are more than one value. `[catalog.prices]` takes each as a key.
pub(crate) const STRUCTURED_PRICE_COLUMNS: &[&str] = &[
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
];

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

/// One page of [`crate::Catalog::products_page`].
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
pub(crate) fn column_error(id: &str, field: &str, e: sqlx::Error) -> CatalogError {
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
pub(crate) fn placeholders(n: usize) -> String {
    placeholders_after(0, n)
}

/// `$k+1, …, $k+n`: the parameters of an `IN (…)` list that follows `k` other parameters.
pub(crate) fn placeholders_after(k: usize, n: usize) -> String {
    (k + 1..=k + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How each backend compares `updated_at`: PostgreSQL as a timestamp, SQLite as the text the
/// triggers write (`%Y-%m-%dT%H:%M:%fZ`), whose text order is time order.
pub(crate) trait SinceEncoding: sqlx::Database {
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
pub(crate) fn since_value<DB: SinceEncoding>(
    _pool: &sqlx::Pool<DB>,
    t: DateTime<Utc>,
) -> DB::Since {
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
            stripe_id: column!(row, &id, "stripe_id"),
            bound_stripe_id: column!(row, &id, "bound_stripe_id"),
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
            (field.access.set_catalog)(&mut product, value)
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
        // A mapping that reads amounts in the currency's major unit (`amount_unit = "major"`).
        let major: Option<String> = column!(row, &id, "unit_amount_major", field("unit_amount"));
        if let Some(major) = major {
            let minor =
                domain::limits::minor_units(&major, &price.1.currency).map_err(|reason| {
                    CatalogError::Corrupt {
                        id: id.clone(),
                        field: field("unit_amount"),
                        reason: format!(
                            "{reason} (read in the major unit: amount_unit = \"major\")"
                        ),
                    }
                })?;
            price.1.unit_amount = minor;
        }
        for (name, scalar) in price_scalars() {
            let corrupt = |reason: String| CatalogError::Corrupt {
                id: id.clone(),
                field: field(name),
                reason,
            };
            let stored = Column::Text(column!(row, &id, name, field(name)));
            let value = scalar.codec.from_column(stored).map_err(corrupt)?;
            (scalar.access.set_catalog)(&mut price.1, value)
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

/// The version of a product read from tables with neither a version nor an `updated_at` column:
/// a hash of everything catalog-sync reads of it (positive, so it never reads as "no row").
pub(crate) fn content_version(product: &CatalogProduct) -> i64 {
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
pub(crate) fn check_size(product: &CatalogProduct) -> Result<(), CorruptRow> {
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

/// A JSON column decoded, or [`CatalogError::Corrupt`] naming the field.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
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
pub(crate) fn optional_json<T: serde::de::DeserializeOwned>(
    id: &str,
    field: &str,
    raw: Option<String>,
    shape: &str,
) -> Result<Option<T>, CatalogError> {
    raw.map(|raw| json_column(id, field, raw, shape))
        .transpose()
}
