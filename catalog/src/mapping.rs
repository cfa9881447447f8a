//! The catalog mapping: which of a team's own tables (or SQL queries) give products and prices,
//! and which column gives each field of catalog-sync's model. Declared in the TOML config
//! (`[catalog.products]`, `[catalog.prices]`); without it, catalog-sync reads its built-in
//! `catalog_products` / `catalog_prices`.
//!
//! A mapping is checked when a process starts ([`crate::Catalog::connect_with`]): every table, query and
//! column it names must exist and hold a type that can give its field, or the process refuses to
//! start with the setting's exact name. It is then compiled into two *relations*, SQL that reads
//! the team's rows as rows of catalog-sync's model (`id, name, …, deleted` and `product_id,
//! currency, …`), which every read of the catalog selects from. Both backends flatten such a
//! subquery into the query around it, so the team's indexes still serve `WHERE id > $1 ORDER BY
//! id` (an id column that is not text is read through `CAST`, which keeps the order consistent
//! but cannot use the index).
//!
//! Nothing here changes a table of the team's: reading needs `SELECT` alone.

use std::collections::BTreeMap;

use serde::Deserialize;
use sqlx::{Column, Executor, TypeInfo};

use domain::fields::{Codec, PRODUCT_FIELDS, price_scalars, product_field};

use crate::{CatalogError, Db};

/// The `[catalog]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CatalogSection {
    /// Where products come from; with `prices`, replaces the built-in tables.
    pub products: Option<ProductsMapping>,
    /// Where prices come from.
    pub prices: Option<PricesMapping>,
}

/// A team's own catalog: products and prices (both required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Products.
    pub products: ProductsMapping,
    /// Prices.
    pub prices: PricesMapping,
}

/// `[catalog.products]`: a column name for each field of a product.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "ProductsSection")]
pub struct ProductsMapping {
    /// A table or view, optionally schema-qualified (`shop.items`).
    pub table: Option<String>,
    /// A `SELECT` of your own, read as a subquery (capture triggers need `table`).
    pub query: Option<String>,
    /// The product's id (text or integer): catalog-sync's id, and Stripe's `metadata.catalog_sync_id`.
    pub id: String,
    /// The column of each product field Stripe holds, by the field's name
    /// ([`domain::fields::PRODUCT_FIELDS`]); `name` is required. Its type follows the field's
    /// kind: text; a boolean (unmapped or NULL leaves Stripe's value); a list as text holding a
    /// JSON array, `json`/`jsonb` or `text[]` (PostgreSQL); an object as JSON text or
    /// `json`/`jsonb`.
    pub fields: BTreeMap<String, String>,
    /// Active (boolean); unmapped: always active.
    pub active: Option<String>,
    /// Metadata: text holding a JSON object of strings, or `json`/`jsonb`.
    pub metadata: Option<String>,
    /// An integer that grows on every change. Unmapped: from `updated_at`, else a hash of the
    /// product's content.
    pub version: Option<String>,
    /// When the row last changed (timestamp; on SQLite text or Unix seconds). Polling capture
    /// follows it; reconciliations' `--since` filters on it.
    pub updated_at: Option<String>,
    /// Soft delete: a boolean (true = deleted) or a timestamp (set = deleted). Unmapped: rows are
    /// deleted for good, and a row that disappears is a deletion.
    pub deleted: Option<String>,
}

/// `[catalog.products]` as written: the product fields' columns among the other keys, each
/// checked against [`domain::fields::PRODUCT_FIELDS`].
#[derive(Deserialize)]
struct ProductsSection {
    table: Option<String>,
    query: Option<String>,
    id: String,
    active: Option<String>,
    metadata: Option<String>,
    version: Option<String>,
    updated_at: Option<String>,
    deleted: Option<String>,
    #[serde(flatten)]
    fields: BTreeMap<String, String>,
}

impl TryFrom<ProductsSection> for ProductsMapping {
    type Error = String;

    fn try_from(s: ProductsSection) -> Result<Self, String> {
        if let Some(unknown) = s.fields.keys().find(|k| product_field(k).is_none()) {
            return Err(format!(
                "unknown field `{unknown}`, expected one of `table`, `query`, `id`, {}, \
                 `active`, `metadata`, `version`, `updated_at`, `deleted`",
                PRODUCT_FIELDS
                    .iter()
                    .map(|f| format!("`{}`", f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !s.fields.contains_key("name") {
            return Err("missing field `name`".into());
        }
        Ok(Self {
            table: s.table,
            query: s.query,
            id: s.id,
            fields: s.fields,
            active: s.active,
            metadata: s.metadata,
            version: s.version,
            updated_at: s.updated_at,
            deleted: s.deleted,
        })
    }
}

/// `[catalog.prices]`: a column name for each field of a price.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "PricesSection")]
pub struct PricesMapping {
    /// A table or view, optionally schema-qualified.
    pub table: Option<String>,
    /// A `SELECT` of your own, read as a subquery (capture triggers need `table`).
    pub query: Option<String>,
    /// The id of the product the price belongs to (same type as the product id).
    pub product_id: String,
    /// ISO currency code (text).
    pub currency: String,
    /// Amount in the currency's minor unit (integer).
    pub unit_amount: String,
    /// `day`, `week`, `month` or `year` for a recurring price (text).
    pub recurring_interval: Option<String>,
    /// Intervals between charges (integer).
    pub recurring_interval_count: Option<String>,
    /// The column of each price field that is one value, by the field's name
    /// (the scalars of [`domain::fields::PRICE_FIELDS`]; text).
    pub fields: BTreeMap<String, String>,
    /// Metadata of the price: text holding a JSON object of strings, or `json`/`jsonb`.
    pub metadata: Option<String>,
    /// Tiers: a JSON array of `{"up_to", "unit_amount", "flat_amount"}` (`up_to` null or absent
    /// in the last), as text or `json`/`jsonb`.
    pub tiers: Option<String>,
    /// `graduated` or `volume` (text).
    pub tiers_mode: Option<String>,
    /// Other currencies: a JSON object of currency options by currency (`{"eur": {"unit_amount":
    /// 900}}`), each with its amount or tiers and optionally its tax behavior.
    pub currency_options: Option<String>,
    /// Pay what you want: a JSON object `{"minimum", "maximum", "preset"}`.
    pub custom_unit_amount: Option<String>,
    /// Packages: a JSON object `{"divide_by", "round"}`.
    pub transform_quantity: Option<String>,
    /// `licensed` or `metered` (text).
    pub usage_type: Option<String>,
    /// The Billing Meter id (`mtr_…`) of a metered price (text).
    pub meter: Option<String>,
    /// The price's own Stripe lookup key (text); unmapped or NULL, catalog-sync derives one.
    pub lookup_key: Option<String>,
    /// The order of a product's prices (the first is the default price); unmapped: by currency
    /// and amount.
    pub order_by: Option<String>,
    /// When the row last changed: polling capture sees price edits through it.
    pub updated_at: Option<String>,
}

/// `[catalog.prices]` as written: the scalar fields' columns among the other keys, each checked
/// against [`domain::fields::PRICE_FIELDS`].
#[derive(Deserialize)]
struct PricesSection {
    table: Option<String>,
    query: Option<String>,
    product_id: String,
    currency: String,
    unit_amount: String,
    recurring_interval: Option<String>,
    recurring_interval_count: Option<String>,
    metadata: Option<String>,
    tiers: Option<String>,
    tiers_mode: Option<String>,
    currency_options: Option<String>,
    custom_unit_amount: Option<String>,
    transform_quantity: Option<String>,
    usage_type: Option<String>,
    meter: Option<String>,
    lookup_key: Option<String>,
    order_by: Option<String>,
    updated_at: Option<String>,
    #[serde(flatten)]
    fields: BTreeMap<String, String>,
}

impl TryFrom<PricesSection> for PricesMapping {
    type Error = String;

    fn try_from(s: PricesSection) -> Result<Self, String> {
        if let Some(unknown) = s
            .fields
            .keys()
            .find(|k| !price_scalars().any(|(name, _)| name == k.as_str()))
        {
            return Err(format!(
                "unknown field `{unknown}`, expected one of {}",
                [
                    "table",
                    "query",
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
                    "order_by",
                    "updated_at"
                ]
                .into_iter()
                .chain(price_scalars().map(|(name, _)| name))
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
            ));
        }
        Ok(Self {
            table: s.table,
            query: s.query,
            product_id: s.product_id,
            currency: s.currency,
            unit_amount: s.unit_amount,
            recurring_interval: s.recurring_interval,
            recurring_interval_count: s.recurring_interval_count,
            fields: s.fields,
            metadata: s.metadata,
            tiers: s.tiers,
            tiers_mode: s.tiers_mode,
            currency_options: s.currency_options,
            custom_unit_amount: s.custom_unit_amount,
            transform_quantity: s.transform_quantity,
            usage_type: s.usage_type,
            meter: s.meter,
            lookup_key: s.lookup_key,
            order_by: s.order_by,
            updated_at: s.updated_at,
        })
    }
}

impl CatalogSection {
    /// The mapping this section declares: `None` for the built-in tables; an error when only one
    /// of products and prices is given.
    pub fn mapping(&self) -> Result<Option<Mapping>, CatalogError> {
        match (&self.products, &self.prices) {
            (None, None) => Ok(None),
            (Some(products), Some(prices)) => Ok(Some(Mapping {
                products: products.clone(),
                prices: prices.clone(),
            })),
            (Some(_), None) => Err(mapping_error(
                "catalog.prices",
                "is missing: a mapped catalog names its price table too",
            )),
            (None, Some(_)) => Err(mapping_error(
                "catalog.products",
                "is missing: a mapped catalog names its product table too",
            )),
        }
    }
}

/// The mapping in the config file at `path` (`CATALOG_SYNC_CONFIG`), if any: `None` without a
/// file or without a `[catalog]` section (the built-in tables).
pub fn load(path: Option<&std::path::Path>) -> Result<Option<Mapping>, CatalogError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        CatalogError::Mapping(format!(
            "reading {} (CATALOG_SYNC_CONFIG): {e}",
            path.display()
        ))
    })?;
    from_toml(&text)
}

/// Reads the `[catalog]` section of a TOML config (other sections are left to their readers).
pub fn from_toml(text: &str) -> Result<Option<Mapping>, CatalogError> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        catalog: CatalogSection,
    }
    let file: File = toml::from_str(text)
        .map_err(|e| mapping_error("catalog", &format!("cannot be read: {e}")))?;
    file.catalog.mapping()
}

/// A mapping error: the setting and what is wrong with it.
fn mapping_error(setting: &str, reason: &str) -> CatalogError {
    CatalogError::Mapping(format!("{setting} {reason}"))
}

/// The type of a column, as far as the mapping cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Integer,
    Bool,
    Time,
    Json,
    TextArray,
    Uuid,
    /// SQLite: a column declared without a type, whose values may be anything.
    Untyped,
    Other,
}

fn kind_of(db: &Db, type_name: &str) -> Kind {
    let upper = type_name.to_ascii_uppercase();
    match db {
        Db::Postgres(_) => match upper.as_str() {
            "TEXT" | "VARCHAR" | "BPCHAR" | "CHAR" | "NAME" | "CITEXT" => Kind::Text,
            "INT2" | "INT4" | "INT8" => Kind::Integer,
            "BOOL" => Kind::Bool,
            "TIMESTAMPTZ" | "TIMESTAMP" | "DATE" => Kind::Time,
            "JSON" | "JSONB" => Kind::Json,
            "TEXT[]" | "VARCHAR[]" => Kind::TextArray,
            "UUID" => Kind::Uuid,
            _ => Kind::Other,
        },
        Db::Sqlite(_) => match upper.as_str() {
            "TEXT" => Kind::Text,
            "INTEGER" | "INT4" | "INT8" => Kind::Integer,
            "BOOLEAN" => Kind::Bool,
            "DATETIME" | "DATE" | "TIME" => Kind::Time,
            "NULL" => Kind::Untyped,
            _ => Kind::Other,
        },
    }
}

/// What a field needs of its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// Ids: text, integer or uuid, read as text.
    Id,
    Text,
    Integer,
    Bool,
    Time,
    Images,
    Metadata,
    /// Structured values: JSON as text, or `json`/`jsonb`.
    Json,
    /// Soft delete: a boolean or a timestamp.
    Deleted,
    /// Anything orderable.
    Order,
}

impl Field {
    /// What a column of a product field of this kind must hold.
    fn of(codec: Codec) -> Self {
        match codec {
            Codec::Name | Codec::Text => Field::Text,
            Codec::Flag => Field::Bool,
            Codec::Texts | Codec::Names => Field::Images,
            Codec::Numbers(_) => Field::Json,
        }
    }

    fn accepts(self, kind: Kind) -> bool {
        use Kind as K;
        if kind == K::Untyped {
            return true;
        }
        match self {
            Field::Id => matches!(kind, K::Text | K::Integer | K::Uuid),
            Field::Text => kind == K::Text,
            Field::Integer => kind == K::Integer,
            Field::Bool => matches!(kind, K::Bool | K::Integer),
            Field::Time => matches!(kind, K::Time | K::Text | K::Integer),
            Field::Images => matches!(kind, K::Text | K::Json | K::TextArray),
            Field::Metadata | Field::Json => matches!(kind, K::Text | K::Json),
            Field::Deleted => matches!(kind, K::Bool | K::Integer | K::Time | K::Text),
            Field::Order => true,
        }
    }

    fn wanted(self) -> &'static str {
        match self {
            Field::Id => "text, integer or uuid",
            Field::Text => "text",
            Field::Integer => "an integer",
            Field::Bool => "a boolean",
            Field::Time => "a timestamp",
            Field::Images => "text holding a JSON array, json/jsonb or text[]",
            Field::Metadata => "text holding a JSON object, or json/jsonb",
            Field::Json => "text holding JSON, or json/jsonb",
            Field::Deleted => "a boolean or a timestamp",
            Field::Order => "any type",
        }
    }
}

/// A column of the team's, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappedColumn {
    /// The column's name, quoted for SQL.
    pub quoted: String,
    /// Its name as configured.
    pub name: String,
    pub kind: Kind,
}

/// What catalog-sync reads: the compiled relations, and for a mapped catalog what capture and
/// write-back need to know of the team's tables.
#[derive(Debug, Clone)]
pub(crate) struct Queries {
    /// `(SELECT … ) AS products`: rows of [`crate::product_columns`].
    pub products: String,
    /// `(SELECT … ) AS prices`: rows of [`crate::price_columns`], `position` and `tiebreak`.
    pub prices: String,
    /// The product's version is a hash of its content (no version or `updated_at` column).
    pub hash_version: bool,
    /// `SELECT product_id, MAX(updated_at) … WHERE updated_at >= $1 GROUP BY product_id` over the
    /// prices, when their `updated_at` is known (polling capture).
    pub price_times: Option<String>,
    /// The team's tables, for a mapped catalog.
    pub mapped: Option<MappedTables>,
}

/// The team's tables behind a mapping (for capture triggers, polling and write-back).
#[derive(Debug, Clone)]
pub(crate) struct MappedTables {
    /// The product table, quoted (`None` when products come from a query).
    pub products_table: Option<String>,
    /// The same, as configured (for messages and trigger names).
    pub products_name: Option<String>,
    /// The price table, quoted (`None` for a query).
    pub prices_table: Option<String>,
    pub prices_name: Option<String>,
    /// Product columns by field name.
    pub product_columns: BTreeMap<&'static str, MappedColumn>,
    /// Price columns by field name.
    pub price_columns: BTreeMap<&'static str, MappedColumn>,
}

impl MappedTables {
    /// `UPDATE … SET <column> = $2 WHERE <id> = $1` for write-back of a Stripe-owned field into
    /// the team's product table: only to a mapped text column of a table (JSON image lists
    /// only to a text column too), never to a query.
    pub(crate) fn write_back_sql(&self, field: &str) -> Result<String, CatalogError> {
        let refuse = |why: &str| CatalogError::NotWritable(format!("{field} ({why})"));
        let table = self
            .products_table
            .as_ref()
            .ok_or_else(|| refuse("products come from a query"))?;
        let column = self
            .product_columns
            .get(field)
            .ok_or_else(|| refuse("the mapping gives it no column"))?;
        if !matches!(column.kind, Kind::Text | Kind::Untyped) {
            return Err(refuse("its column is not text"));
        }
        let id = &self.product_columns["id"];
        let key = match id.kind {
            Kind::Text | Kind::Untyped => id.quoted.clone(),
            _ => format!("CAST({} AS TEXT)", id.quoted),
        };
        Ok(format!(
            "UPDATE {table} SET {} = $2 WHERE {key} = $1",
            column.quoted
        ))
    }
}

impl Queries {
    /// The products relation under another alias (`(SELECT …) AS p`).
    pub(crate) fn products_as(&self, alias: &str) -> String {
        let body = self
            .products
            .strip_suffix(" AS products")
            .expect("the products relation ends with its alias");
        format!("{body} AS {alias}")
    }

    /// The built-in tables.
    pub(crate) fn builtin() -> Self {
        Self {
            products: format!(
                "(SELECT id, {}, active, metadata, version, updated_at, \
                 deleted_at IS NOT NULL AS deleted FROM catalog_products) AS products",
                PRODUCT_FIELDS
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            prices: format!(
                "(SELECT {}, position, id AS tiebreak FROM catalog_prices) AS prices",
                crate::price_columns()
            ),
            hash_version: false,
            price_times: None,
            mapped: None,
        }
    }

    /// Checks `mapping` against the database and compiles it.
    pub(crate) async fn compile(db: &Db, mapping: &Mapping) -> Result<Self, CatalogError> {
        let products = &mapping.products;
        let prices = &mapping.prices;
        let (products_from, products_table, products_name) =
            source_sql("catalog.products", &products.table, &products.query)?;
        let (prices_from, prices_table, prices_name) =
            source_sql("catalog.prices", &prices.table, &prices.query)?;
        let product_types = column_types(db, "catalog.products", &products_from).await?;
        let price_types = column_types(db, "catalog.prices", &prices_from).await?;

        let mut product_columns = BTreeMap::new();
        let product_fields: Vec<(&'static str, Option<&String>, Field)> =
            std::iter::once(("id", Some(&products.id), Field::Id))
                .chain(
                    PRODUCT_FIELDS
                        .iter()
                        .map(|f| (f.name, products.fields.get(f.name), Field::of(f.codec))),
                )
                .chain([
                    ("active", products.active.as_ref(), Field::Bool),
                    ("metadata", products.metadata.as_ref(), Field::Metadata),
                    ("version", products.version.as_ref(), Field::Integer),
                    ("updated_at", products.updated_at.as_ref(), Field::Time),
                    ("deleted", products.deleted.as_ref(), Field::Deleted),
                ])
                .collect();
        for (field, column, wants) in product_fields {
            if let Some(column) = column {
                let checked = check_column(
                    "catalog.products",
                    field,
                    column,
                    wants,
                    &product_types,
                    products_name.as_deref(),
                )?;
                product_columns.insert(field, checked);
            }
        }
        let mut price_columns = BTreeMap::new();
        let mut price_fields: Vec<(&'static str, Option<&String>, Field)> = vec![
            ("product_id", Some(&prices.product_id), Field::Id),
            ("currency", Some(&prices.currency), Field::Text),
            ("unit_amount", Some(&prices.unit_amount), Field::Integer),
            (
                "recurring_interval",
                prices.recurring_interval.as_ref(),
                Field::Text,
            ),
            (
                "recurring_interval_count",
                prices.recurring_interval_count.as_ref(),
                Field::Integer,
            ),
            ("metadata", prices.metadata.as_ref(), Field::Metadata),
            ("tiers", prices.tiers.as_ref(), Field::Json),
            ("tiers_mode", prices.tiers_mode.as_ref(), Field::Text),
            (
                "currency_options",
                prices.currency_options.as_ref(),
                Field::Json,
            ),
            (
                "custom_unit_amount",
                prices.custom_unit_amount.as_ref(),
                Field::Json,
            ),
            (
                "transform_quantity",
                prices.transform_quantity.as_ref(),
                Field::Json,
            ),
            ("usage_type", prices.usage_type.as_ref(), Field::Text),
            ("meter", prices.meter.as_ref(), Field::Text),
            ("lookup_key", prices.lookup_key.as_ref(), Field::Text),
            ("order_by", prices.order_by.as_ref(), Field::Order),
            ("updated_at", prices.updated_at.as_ref(), Field::Time),
        ];
        price_fields.extend(
            price_scalars().map(|(name, s)| (name, prices.fields.get(name), Field::of(s.codec))),
        );
        for (field, column, wants) in price_fields {
            if let Some(column) = column {
                let checked = check_column(
                    "catalog.prices",
                    field,
                    column,
                    wants,
                    &price_types,
                    prices_name.as_deref(),
                )?;
                price_columns.insert(field, checked);
            }
        }

        let d = Dialect(db);
        let p = |f: &str| product_columns.get(f);
        let updated_at = match p("updated_at") {
            Some(c) => d.time(c),
            None => d.now().to_string(),
        };
        let version = match (p("version"), p("updated_at")) {
            (Some(c), _) => d.integer(c),
            (None, Some(_)) => d.epoch_millis(&updated_at),
            (None, None) => "0".into(),
        };
        let fields: Vec<String> = PRODUCT_FIELDS
            .iter()
            .map(|f| format!("{} AS {}", d.field(f.codec, p(f.name)), f.name))
            .collect();
        let products_sql = format!(
            "(SELECT {id} AS id, {fields}, {active} AS active, {metadata} AS metadata, \
             {version} AS version, {updated_at} AS updated_at, {deleted} AS deleted \
             FROM {products_from}) AS products",
            id = d.id(&product_columns["id"]),
            fields = fields.join(", "),
            active = p("active").map_or(d.bool_const(true).into(), |c| d.bool(c)),
            metadata = p("metadata").map_or("'{}'".into(), |c| d.metadata(c)),
            deleted = p("deleted").map_or(d.bool_const(false).into(), |c| d.deleted(c)),
        );
        let q = |f: &str| price_columns.get(f);
        // Prices with no order column are ordered by currency and amount.
        let tiebreak = format!(
            "{} || ':' || CAST({} AS TEXT)",
            d.text(&price_columns["currency"]),
            price_columns["unit_amount"].quoted
        );
        let prices_sql = format!(
            "(SELECT {product_id} AS product_id, {currency} AS currency, {unit_amount} AS unit_amount, \
             {interval} AS recurring_interval, {count} AS recurring_interval_count, \
             {scalars}, {metadata} AS metadata, \
             {tiers} AS tiers, {tiers_mode} AS tiers_mode, {currency_options} AS currency_options, \
             {custom_unit_amount} AS custom_unit_amount, {transform_quantity} AS transform_quantity, \
             {usage_type} AS usage_type, {meter} AS meter, {lookup_key} AS lookup_key, \
             {position} AS position, {tiebreak} AS tiebreak FROM {prices_from}) AS prices",
            product_id = d.id(&price_columns["product_id"]),
            currency = d.text(&price_columns["currency"]),
            unit_amount = d.integer(&price_columns["unit_amount"]),
            interval = q("recurring_interval").map_or("NULL".into(), |c| d.text(c)),
            count = q("recurring_interval_count").map_or("NULL".into(), |c| d.integer32(c)),
            scalars = price_scalars()
                .map(|(name, scalar)| format!("{} AS {name}", d.field(scalar.codec, q(name))))
                .collect::<Vec<_>>()
                .join(", "),
            metadata = q("metadata").map_or("'{}'".into(), |c| d.metadata(c)),
            tiers = q("tiers").map_or("'[]'".into(), |c| d.images(c)),
            tiers_mode = q("tiers_mode").map_or("NULL".into(), |c| d.text(c)),
            currency_options = q("currency_options").map_or("'{}'".into(), |c| d.metadata(c)),
            custom_unit_amount = q("custom_unit_amount").map_or("NULL".into(), |c| d.json_text(c)),
            transform_quantity = q("transform_quantity").map_or("NULL".into(), |c| d.json_text(c)),
            usage_type = q("usage_type").map_or("NULL".into(), |c| d.text(c)),
            meter = q("meter").map_or("NULL".into(), |c| d.text(c)),
            lookup_key = q("lookup_key").map_or("NULL".into(), |c| d.text(c)),
            position = q("order_by").map_or("0".into(), |c| c.quoted.clone()),
        );
        let queries = Self {
            products: products_sql,
            prices: prices_sql,
            hash_version: p("version").is_none() && p("updated_at").is_none(),
            price_times: q("updated_at").map(|c| {
                let product_id = d.id(&price_columns["product_id"]);
                let time = d.time(c);
                format!(
                    "SELECT {product_id} AS product_id, MAX({time}) AS updated_at FROM {prices_from} \
                     WHERE {time} >= $1 GROUP BY {product_id}"
                )
            }),
            mapped: Some(MappedTables {
                products_table,
                products_name,
                prices_table,
                prices_name,
                product_columns,
                price_columns,
            }),
        };
        // The compiled SQL is prepared once here, so an error in it stops the start, not a sync.
        for (setting, sql) in [
            (
                "catalog.products",
                format!(
                    "SELECT {} FROM {} LIMIT 0",
                    crate::product_columns(),
                    queries.products
                ),
            ),
            (
                "catalog.prices",
                format!(
                    "SELECT {}, position, tiebreak FROM {} LIMIT 0",
                    crate::price_columns(),
                    queries.prices
                ),
            ),
        ] {
            describe(db, &sql)
                .await
                .map_err(|e| mapping_error(setting, &format!("cannot be read: {e}")))?;
        }
        Ok(queries)
    }
}

/// The `FROM` of a source, and for a table its quoted and configured names.
fn source_sql(
    setting: &str,
    table: &Option<String>,
    query: &Option<String>,
) -> Result<(String, Option<String>, Option<String>), CatalogError> {
    match (table, query) {
        (Some(table), None) => {
            let quoted = quote_table(table).ok_or_else(|| {
                mapping_error(
                    &format!("{setting}.table"),
                    &format!("= {table:?} is not a table name (name or schema.name)"),
                )
            })?;
            Ok((quoted.clone(), Some(quoted), Some(table.clone())))
        }
        (None, Some(query)) => Ok((format!("({query}) AS source"), None, None)),
        (Some(_), Some(_)) => Err(mapping_error(
            setting,
            "names both `table` and `query`: give one",
        )),
        (None, None) => Err(mapping_error(setting, "needs `table` or `query`")),
    }
}

/// `"schema"."table"` from `schema.table`, or `None` if it is not such a name.
pub(crate) fn quote_table(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(
        parts
            .iter()
            .map(|p| quote_ident(p))
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// A quoted SQL identifier (both backends quote with `"`).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The columns of `from` and their types, by preparing `SELECT * FROM … LIMIT 0`.
async fn column_types(
    db: &Db,
    setting: &str,
    from: &str,
) -> Result<BTreeMap<String, Kind>, CatalogError> {
    let sql = format!("SELECT * FROM {from} LIMIT 0");
    let columns = describe(db, &sql).await.map_err(|e| {
        mapping_error(
            setting,
            &format!(
                "cannot be read: {}",
                e.trim_start_matches("error returned from database: ")
            ),
        )
    })?;
    Ok(columns
        .into_iter()
        .map(|(name, type_name)| {
            let kind = kind_of(db, &type_name);
            (name, kind)
        })
        .collect())
}

/// Column names and type names of a statement, prepared but not run.
async fn describe(db: &Db, sql: &str) -> Result<Vec<(String, String)>, String> {
    match db {
        Db::Postgres(pool) => pool
            .describe(sql)
            .await
            .map(|d| {
                d.columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
                    .collect()
            })
            .map_err(|e| e.to_string()),
        Db::Sqlite(pool) => pool
            .describe(sql)
            .await
            .map(|d| {
                d.columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
                    .collect()
            })
            .map_err(|e| e.to_string()),
    }
}

fn check_column(
    setting: &str,
    field: &str,
    column: &str,
    wants: Field,
    types: &BTreeMap<String, Kind>,
    table: Option<&str>,
) -> Result<MappedColumn, CatalogError> {
    let Some(&kind) = types.get(column) else {
        let names: Vec<&str> = types.keys().map(String::as_str).collect();
        return Err(mapping_error(
            &format!("{setting}.{field}"),
            &format!(
                "= {column:?}: {} has no such column (it has {})",
                table.map_or("the query".to_string(), |t| t.to_string()),
                names.join(", ")
            ),
        ));
    };
    if !wants.accepts(kind) {
        return Err(mapping_error(
            &format!("{setting}.{field}"),
            &format!(
                "= {column:?}: the column's type cannot give this field (it needs {})",
                wants.wanted()
            ),
        ));
    }
    Ok(MappedColumn {
        quoted: quote_ident(column),
        name: column.to_string(),
        kind,
    })
}

/// SQL for reading a column as the type catalog-sync decodes, per backend.
struct Dialect<'a>(&'a Db);

impl Dialect<'_> {
    fn pg(&self) -> bool {
        matches!(self.0, Db::Postgres(_))
    }

    fn id(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::Text => c.quoted.clone(),
            _ => format!("CAST({} AS TEXT)", c.quoted),
        }
    }

    fn text(&self, c: &MappedColumn) -> String {
        if self.pg() && c.kind == Kind::Text {
            // varchar, bpchar, citext and name decode as text only once cast.
            format!("CAST({} AS TEXT)", c.quoted)
        } else {
            c.quoted.clone()
        }
    }

    fn integer(&self, c: &MappedColumn) -> String {
        if self.pg() {
            format!("CAST({} AS BIGINT)", c.quoted)
        } else {
            c.quoted.clone()
        }
    }

    fn integer32(&self, c: &MappedColumn) -> String {
        if self.pg() {
            format!("CAST({} AS INTEGER)", c.quoted)
        } else {
            c.quoted.clone()
        }
    }

    fn bool(&self, c: &MappedColumn) -> String {
        if self.pg() {
            format!("COALESCE({}, FALSE)", c.quoted)
        } else {
            format!("(COALESCE({}, 0) <> 0)", c.quoted)
        }
    }

    /// A boolean that stays NULL when the row has none (a setting left to Stripe).
    fn nullable_bool(&self, c: &MappedColumn) -> String {
        if self.pg() {
            c.quoted.clone()
        } else {
            format!(
                "(CASE WHEN {0} IS NULL THEN NULL ELSE ({0} <> 0) END)",
                c.quoted
            )
        }
    }

    fn null_bool(&self) -> &'static str {
        if self.pg() {
            "CAST(NULL AS BOOLEAN)"
        } else {
            "NULL"
        }
    }

    /// A field of `codec` in the relation: its column read as the field's kind, or the value an
    /// unmapped field has (unset; an empty list).
    fn field(&self, codec: Codec, column: Option<&MappedColumn>) -> String {
        match (codec, column) {
            (Codec::Name | Codec::Text, Some(c)) => self.text(c),
            (Codec::Flag, Some(c)) => self.nullable_bool(c),
            (Codec::Texts | Codec::Names, Some(c)) => self.images(c),
            (Codec::Numbers(_), Some(c)) => self.json_text(c),
            (Codec::Flag, None) => self.null_bool().into(),
            (Codec::Texts | Codec::Names, None) => "'[]'".into(),
            (Codec::Name | Codec::Text | Codec::Numbers(_), None) => "NULL".into(),
        }
    }

    /// JSON as text, NULL when the row has none.
    fn json_text(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::Json => format!("CAST({} AS TEXT)", c.quoted),
            _ => self.text(c),
        }
    }

    fn bool_const(&self, value: bool) -> &'static str {
        match (self.pg(), value) {
            (true, true) => "TRUE",
            (true, false) => "FALSE",
            (false, true) => "1",
            (false, false) => "0",
        }
    }

    fn images(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::TextArray => format!("COALESCE(CAST(array_to_json({}) AS TEXT), '[]')", c.quoted),
            Kind::Json => format!("COALESCE(CAST({} AS TEXT), '[]')", c.quoted),
            _ => format!("COALESCE({}, '[]')", self.text(c)),
        }
    }

    fn metadata(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::Json => format!("COALESCE(CAST({} AS TEXT), '{{}}')", c.quoted),
            _ => format!("COALESCE({}, '{{}}')", self.text(c)),
        }
    }

    /// A timestamp in the form catalog-sync compares: `timestamptz` on PostgreSQL, the text
    /// `%Y-%m-%dT%H:%M:%fZ` on SQLite (whose text order is time order).
    fn time(&self, c: &MappedColumn) -> String {
        if self.pg() {
            format!("CAST({} AS TIMESTAMPTZ)", c.quoted)
        } else if c.kind == Kind::Integer {
            format!("strftime('%Y-%m-%dT%H:%M:%fZ', {}, 'unixepoch')", c.quoted)
        } else {
            format!("strftime('%Y-%m-%dT%H:%M:%fZ', {})", c.quoted)
        }
    }

    fn now(&self) -> &'static str {
        if self.pg() {
            "now()"
        } else {
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        }
    }

    /// Milliseconds since the epoch of a [`Dialect::time`] expression: the version of a row
    /// with `updated_at` and no version column.
    fn epoch_millis(&self, time: &str) -> String {
        if self.pg() {
            format!("CAST(FLOOR(EXTRACT(EPOCH FROM {time}) * 1000) AS BIGINT)")
        } else {
            format!("CAST(ROUND((julianday({time}) - 2440587.5) * 86400000) AS INTEGER)")
        }
    }

    fn deleted(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::Bool | Kind::Integer => self.bool(c),
            _ => format!("({} IS NOT NULL)", c.quoted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_gives_a_mapping_only_with_both_tables() {
        assert_eq!(
            from_toml("[retry.fetch]\nmaximum_attempts = 3\n").unwrap(),
            None
        );
        let both = from_toml(
            "[catalog.products]\ntable = \"shop.items\"\nid = \"sku\"\nname = \"title\"\n\
             [catalog.prices]\ntable = \"shop.item_prices\"\nproduct_id = \"item_sku\"\n\
             currency = \"ccy\"\nunit_amount = \"amount_minor\"\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(both.products.table.as_deref(), Some("shop.items"));
        assert_eq!(both.prices.unit_amount, "amount_minor");
        let half = from_toml("[catalog.products]\ntable = \"t\"\nid = \"id\"\nname = \"n\"\n")
            .unwrap_err()
            .to_string();
        assert!(half.contains("catalog.prices is missing"), "{half}");
        let typo = from_toml(
            "[catalog.products]\ntable = \"t\"\nid = \"id\"\nname = \"n\"\ndescripton = \"d\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(typo.contains("descripton"), "{typo}");
    }

    #[test]
    fn table_names_are_quoted_and_checked() {
        assert_eq!(quote_table("shop.items").unwrap(), "\"shop\".\"items\"");
        assert_eq!(quote_table("Items").unwrap(), "\"Items\"");
        assert_eq!(quote_table("we\"ird").unwrap(), "\"we\"\"ird\"");
        assert!(quote_table("a.b.c").is_none());
        assert!(quote_table("a.").is_none());
    }
}
