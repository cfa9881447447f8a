//! A mapping compiled into the two relations every read of the catalog selects from
//! ([`Queries`]), and the tables it names ([`MappedTables`]: capture and write-back).

use std::collections::BTreeMap;

use domain::fields::{PRODUCT_FIELDS, price_scalars};

use super::columns::{
    Dialect, Field, Kind, MappedColumn, check_column, column_types, describe, source_sql,
};
use super::{AmountUnit, CaptureSource, Mapping, mapping_error, quote_ident};
use crate::{CatalogError, Db};

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
    /// The product table, quoted (`None` when products come from a query): write-back's.
    pub products_table: Option<String>,
    /// Product columns by field name.
    pub product_columns: BTreeMap<&'static str, MappedColumn>,
    /// Where capture triggers go for products: the product table, or a query's `capture_table`
    /// (`None`: a query without one, which triggers cannot follow).
    pub products_capture: Option<Captured>,
    /// The same for prices.
    pub prices_capture: Option<Captured>,
    /// The further tables log-based capture follows (`[[catalog.follow]]`).
    pub follow: Vec<FollowedTable>,
}

/// A `[[catalog.follow]]` table, checked against the database.
#[derive(Debug, Clone)]
pub(crate) struct FollowedTable {
    /// Quoted, possibly schema-qualified.
    pub quoted: String,
    /// As configured.
    pub name: String,
    /// Its column the log is read for: the product's id, or with `lookup` the key of a row of
    /// another table.
    pub key: String,
    /// With `through`: the SQL from those keys (`$1`, a text array) to product ids.
    pub lookup: Option<String>,
}

/// Checks the `[[catalog.follow]]` tables (each exists with the columns named; PostgreSQL
/// only: the log is PostgreSQL's) and compiles their lookups.
async fn followed_tables(
    db: &Db,
    follow: &[super::Follow],
) -> Result<Vec<FollowedTable>, CatalogError> {
    let Db::Postgres(pool) = db else {
        return match follow.first() {
            None => Ok(Vec::new()),
            Some(f) => Err(mapping_error(
                "[[catalog.follow]]",
                &format!(
                    "table = {:?}: following tables is log-based capture's, which reads \
                     PostgreSQL's write-ahead log (SQLite has none)",
                    f.table
                ),
            )),
        };
    };
    // A column's type as SQL names it (to cast the keys to), or why the column is not there.
    let column = |table: String, column: String| async move {
        let setting = format!("[[catalog.follow]] table = {table:?}");
        let quoted = quote_table_or(&setting, &table)?;
        let found: Option<Option<String>> = sqlx::query_scalar(
            "SELECT (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
              WHERE a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 \
                AND NOT a.attisdropped) \
             FROM pg_class c WHERE c.oid = to_regclass($1)",
        )
        .bind(&quoted)
        .bind(&column)
        .fetch_optional(pool)
        .await?;
        match found {
            None => Err(mapping_error(
                &setting,
                &format!("names {table}, which is not a table here"),
            )),
            Some(None) => Err(mapping_error(
                &setting,
                &format!("names column {column:?} of {table}, which has no such column"),
            )),
            Some(Some(type_name)) => Ok::<_, CatalogError>((quoted, type_name)),
        }
    };
    let mut out = Vec::new();
    for f in follow {
        let (quoted, key, lookup) = match (&f.key, &f.through) {
            (Some(key), Some(through)) => {
                let (quoted, _) = column(f.table.clone(), key.clone()).await?;
                let through_key = f.through_key.clone().unwrap_or_else(|| "id".into());
                let (through_quoted, key_type) =
                    column(through.clone(), through_key.clone()).await?;
                column(through.clone(), f.product.clone()).await?;
                let lookup = format!(
                    "SELECT DISTINCT CAST({product} AS TEXT) FROM {through_quoted} \
                     WHERE {through_key} = ANY(CAST($1 AS {key_type}[])) AND {product} IS NOT NULL",
                    product = quote_ident(&f.product),
                    through_key = quote_ident(&through_key),
                );
                (quoted, key.clone(), Some(lookup))
            }
            _ => {
                let (quoted, _) = column(f.table.clone(), f.product.clone()).await?;
                (quoted, f.product.clone(), None)
            }
        };
        out.push(FollowedTable {
            quoted,
            name: f.table.clone(),
            key,
            lookup,
        });
    }
    Ok(out)
}

fn quote_table_or(setting: &str, table: &str) -> Result<String, CatalogError> {
    super::columns::quote_table(table).ok_or_else(|| {
        mapping_error(
            setting,
            &format!("{table:?} is not a table name (name or schema.name)"),
        )
    })
}

/// A table capture triggers go on, and how its rows name their product.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    /// Quoted, possibly schema-qualified.
    pub quoted: String,
    /// As configured.
    pub name: String,
    /// Its column holding the product's id.
    pub key: MappedColumn,
    /// Its version column, for a product table with one.
    pub version: Option<MappedColumn>,
}

/// Where a section's changes are captured: its table, or its query's `capture_table` (checked:
/// the table exists and has the key column).
async fn captured(
    db: &Db,
    setting: &str,
    table: (&Option<String>, &Option<String>),
    key: &MappedColumn,
    version: Option<&MappedColumn>,
    capture: &Option<CaptureSource>,
) -> Result<Option<Captured>, CatalogError> {
    if let (Some(quoted), Some(name)) = table {
        return Ok(Some(Captured {
            quoted: quoted.clone(),
            name: name.clone(),
            key: key.clone(),
            version: version.cloned(),
        }));
    }
    let Some(capture) = capture else {
        return Ok(None);
    };
    let (from, quoted, name) = source_sql(
        &format!("{setting}.capture_table"),
        &Some(capture.table.clone()),
        &None,
    )?;
    let types = column_types(db, &format!("{setting}.capture_table"), &from).await?;
    let key = check_column(
        setting,
        "capture_key",
        &capture.key,
        Field::Id,
        &types,
        name.as_deref(),
    )?;
    Ok(Some(Captured {
        quoted: quoted.unwrap_or(from),
        name: name.unwrap_or_else(|| capture.table.clone()),
        key,
        version: None,
    }))
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
                 deleted_at IS NOT NULL AS deleted, stripe_id FROM catalog_products) AS products",
                PRODUCT_FIELDS
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            prices: format!(
                "(SELECT {}, {}, position, id AS tiebreak FROM catalog_prices) AS prices",
                crate::rows::stored_price_columns(),
                crate::rows::NO_MAJOR_AMOUNT
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
                    ("stripe_id", products.stripe_id.as_ref(), Field::Text),
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
        if let (Some(_), Some(images)) = (&products.image_url, product_columns.get("images"))
            && Dialect(db).pg()
            && images.kind != Kind::Json
        {
            return Err(mapping_error(
                "catalog.products.images",
                &format!(
                    "= {:?}: with image_url, the column must be json or jsonb (its JSON is read \
                     by the database)",
                    products.fields["images"]
                ),
            ));
        }
        let mut price_columns = BTreeMap::new();
        let mut price_fields: Vec<(&'static str, Option<&String>, Field)> = vec![
            ("product_id", Some(&prices.product_id), Field::Id),
            ("currency", Some(&prices.currency), Field::Text),
            (
                "unit_amount",
                Some(&prices.unit_amount),
                match prices.amount_unit {
                    AmountUnit::Minor => Field::MinorAmount,
                    AmountUnit::Major => Field::MajorAmount,
                },
            ),
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
            ("deleted", prices.deleted.as_ref(), Field::Deleted),
            ("active", prices.active.as_ref(), Field::Bool),
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
            // Replaced by a hash of the content when read; typed as the other versions are
            // (a bare 0 is an INT4 on PostgreSQL, which a version does not decode from).
            (None, None) if d.pg() => "CAST(0 AS BIGINT)".into(),
            (None, None) => "0".into(),
        };
        let fields: Vec<String> = PRODUCT_FIELDS
            .iter()
            .map(|f| match (f.name, &products.image_url) {
                ("images", Some(key)) => format!(
                    "{} AS images",
                    d.image_urls(&product_columns["images"], key)
                ),
                _ => format!("{} AS {}", d.field(f.codec, p(f.name)), f.name),
            })
            .collect();
        let products_sql = format!(
            "(SELECT {id} AS id, {fields}, {active} AS active, {metadata} AS metadata, \
             {version} AS version, {updated_at} AS updated_at, {deleted} AS deleted, \
             {stripe_id} AS stripe_id FROM {products_from}) AS products",
            id = d.id(&product_columns["id"]),
            stripe_id = p("stripe_id").map_or("CAST(NULL AS TEXT)".into(), |c| d.text(c)),
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
             {unit_amount_major} AS unit_amount_major, {interval} AS recurring_interval, {count} AS recurring_interval_count, \
             {scalars}, {metadata} AS metadata, \
             {tiers} AS tiers, {tiers_mode} AS tiers_mode, {currency_options} AS currency_options, \
             {custom_unit_amount} AS custom_unit_amount, {transform_quantity} AS transform_quantity, \
             {usage_type} AS usage_type, {meter} AS meter, {lookup_key} AS lookup_key, \
             {position} AS position, {tiebreak} AS tiebreak FROM {prices_from}{live}) AS prices",
            product_id = d.id(&price_columns["product_id"]),
            currency = d.text(&price_columns["currency"]),
            unit_amount = match prices.amount_unit {
                AmountUnit::Minor => d.integer(&price_columns["unit_amount"]),
                AmountUnit::Major if d.pg() => "CAST(0 AS BIGINT)".into(),
                AmountUnit::Major => "0".into(),
            },
            // Converted by the currency's decimals when read (`domain::limits::minor_units`).
            unit_amount_major = match prices.amount_unit {
                AmountUnit::Minor => "CAST(NULL AS TEXT)".into(),
                AmountUnit::Major =>
                    format!("CAST({} AS TEXT)", price_columns["unit_amount"].quoted),
            },
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
            // A soft-deleted or inactive price is not the catalog's (its Stripe price is archived).
            live = {
                let conditions: Vec<String> = q("deleted")
                    .map(|c| format!("NOT {}", d.deleted(c)))
                    .into_iter()
                    // Only an explicit false: a nullable flag left NULL archives nothing.
                    .chain(q("active").map(|c| d.bool_or(c, true)))
                    .collect();
                match conditions.is_empty() {
                    true => String::new(),
                    false => format!(" WHERE {}", conditions.join(" AND ")),
                }
            },
        );
        // When a price row last changed, for polling: its `updated_at`, and the time it was
        // soft-deleted when that is a timestamp (set alone, it changes nothing else).
        let deleted_at = q("deleted").filter(|c| d.is_time(c)).map(|c| d.time(c));
        let price_time = match (q("updated_at").map(|c| d.time(c)), deleted_at) {
            (Some(updated), Some(deleted)) => Some(d.latest(&updated, &deleted)),
            (updated, deleted) => updated.or(deleted),
        };
        let products_capture = captured(
            db,
            "catalog.products",
            (&products_table, &products_name),
            &product_columns["id"],
            product_columns.get("version"),
            &products.capture,
        )
        .await?;
        let prices_capture = captured(
            db,
            "catalog.prices",
            (&prices_table, &prices_name),
            &price_columns["product_id"],
            None,
            &prices.capture,
        )
        .await?;
        let queries = Self {
            products: products_sql,
            prices: prices_sql,
            hash_version: p("version").is_none() && p("updated_at").is_none(),
            price_times: price_time.map(|time| {
                let product_id = d.id(&price_columns["product_id"]);
                format!(
                    "SELECT {product_id} AS product_id, MAX({time}) AS updated_at FROM {prices_from} \
                     WHERE {time} >= $1 GROUP BY {product_id}"
                )
            }),
            mapped: Some(MappedTables {
                products_table,
                product_columns,
                products_capture,
                prices_capture,
                follow: followed_tables(db, &mapping.follow).await?,
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
