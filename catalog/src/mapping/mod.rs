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

mod columns;
mod queries;

use serde::Deserialize;

use domain::config_file::ConfigFile;
use domain::fields::{PRODUCT_FIELDS, price_scalars, product_field};

pub(crate) use columns::{MappedColumn, quote_ident};
pub(crate) use queries::{Captured, MappedTables, Queries};

use crate::CatalogError;

/// The `[catalog]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CatalogSection {
    /// Where products come from; with `prices`, replaces the built-in tables.
    pub products: Option<ProductsMapping>,
    /// Where prices come from.
    pub prices: Option<PricesMapping>,
    /// `[[catalog.follow]]`: the further tables a query mapping reads, for log-based capture.
    #[serde(default)]
    pub follow: Vec<Follow>,
}

/// `[[catalog.follow]]`: a table a query mapping reads beyond its `capture_table`s, and how a
/// row of it names its product, for log-based capture (`CATALOG_SYNC_CAPTURE=logical`), which
/// follows every table the mapping's queries read and refuses to start while one is not
/// followed. A row names its product directly (`product`: its column holding the product's
/// id), or through one row of another table (`key`: its column matching `through`'s
/// `through_key`, whose `product` column holds the product's id: a Spree price's `variant_id`
/// names a variant, whose `product_id` names the product).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    /// The table, optionally schema-qualified.
    pub table: String,
    /// The column holding the product's id: of `table`, or with `through` of that table.
    pub product: String,
    /// With `through`: `table`'s column naming a row of `through`.
    pub key: Option<String>,
    /// The table whose row `key` names, optionally schema-qualified.
    pub through: Option<String>,
    /// `through`'s column that `key` matches (default `id`).
    pub through_key: Option<String>,
}

impl Follow {
    /// Refuses `key` without `through` and the reverse.
    fn check(&self) -> Result<(), String> {
        match (&self.key, &self.through, &self.through_key) {
            (None, None, None) | (Some(_), Some(_), _) => Ok(()),
            (Some(key), None, _) => Err(format!(
                "[[catalog.follow]] table = {:?}: key = {key:?} names a row of `through`, and no \
                 through is given",
                self.table
            )),
            (None, Some(through), _) => Err(format!(
                "[[catalog.follow]] table = {:?}: through = {through:?} needs `key`, the column \
                 of {:?} naming a row of it",
                self.table, self.table
            )),
            (None, None, Some(_)) => Err(format!(
                "[[catalog.follow]] table = {:?}: through_key is for `through`, and none is given",
                self.table
            )),
        }
    }
}

/// A team's own catalog: products and prices (both required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Products.
    pub products: ProductsMapping,
    /// Prices.
    pub prices: PricesMapping,
    /// The further tables log-based capture follows.
    pub follow: Vec<Follow>,
}

/// `[catalog.products]`: a column name for each field of a product.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "ProductsSection")]
pub struct ProductsMapping {
    /// A table or view, optionally schema-qualified (`shop.items`).
    pub table: Option<String>,
    /// A `SELECT` of your own, read as a subquery (capture triggers need `table`, or
    /// `capture_table`).
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
    /// The images column holds JSON objects (`[{"url": …, "alt": …}]`), not URLs: the key of each
    /// that holds its URL. Needs `json`/`jsonb` on PostgreSQL (JSON text on SQLite).
    pub image_url: Option<String>,
    /// With `query`: the table whose changes capture triggers follow ([`CaptureSource`]).
    pub capture: Option<CaptureSource>,
    /// The existing Stripe product (`prod_…`) each row takes over (text; NULL: catalog-sync
    /// creates one under the row's id). Read by `starter import`, which binds the row to it;
    /// until then the sync refuses a row naming one.
    pub stripe_id: Option<String>,
}

/// For a query mapping, the table capture triggers go on (`capture_table`), and its column
/// holding the product's id (`capture_key`; unset: the column the mapping names for the id).
/// A change of any row of that table is captured as a change of that product, which the sync
/// then reads through the query (a row the query now leaves out is gone from the product).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSource {
    /// A table, optionally schema-qualified.
    pub table: String,
    /// Its column holding the product's id.
    pub key: String,
}

/// `capture_table` and `capture_key` as written, checked against `table` and `query`.
fn capture_source(
    table: &Option<String>,
    query: &Option<String>,
    capture_table: Option<String>,
    capture_key: Option<String>,
    id: &str,
) -> Result<Option<CaptureSource>, String> {
    match (capture_table, capture_key) {
        (None, None) => Ok(None),
        (None, Some(key)) => Err(format!(
            "capture_key = {key:?} names a column of capture_table, and no capture_table is given"
        )),
        (Some(capture), _) if table.is_some() => Err(format!(
            "capture_table = {capture:?} is for a query mapping: a mapped table's own triggers \
             capture its changes"
        )),
        (Some(capture), _) if query.is_none() => Err(format!(
            "capture_table = {capture:?} is for a query mapping, and no query is given"
        )),
        (Some(table), key) => Ok(Some(CaptureSource {
            table,
            key: key.unwrap_or_else(|| id.to_string()),
        })),
    }
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
    image_url: Option<String>,
    capture_table: Option<String>,
    capture_key: Option<String>,
    stripe_id: Option<String>,
    #[serde(flatten)]
    fields: BTreeMap<String, String>,
}

impl TryFrom<ProductsSection> for ProductsMapping {
    type Error = String;

    fn try_from(s: ProductsSection) -> Result<Self, String> {
        if let Some(unknown) = s.fields.keys().find(|k| product_field(k).is_none()) {
            return Err(format!(
                "unknown field `{unknown}`, expected one of `table`, `query`, `id`, {}, \
                 `active`, `metadata`, `version`, `updated_at`, `deleted`, `image_url`, \
                 `capture_table`, `capture_key`, `stripe_id`",
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
        if let Some(key) = &s.image_url {
            if !s.fields.contains_key("images") {
                return Err(format!(
                    "image_url = {key:?} names the URL's key in each image object, but no \
                     `images` column is mapped"
                ));
            }
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "image_url = {key:?}: a JSON key of letters, digits and underscores"
                ));
            }
        }
        let capture = capture_source(&s.table, &s.query, s.capture_table, s.capture_key, &s.id)?;
        Ok(Self {
            capture,
            table: s.table,
            query: s.query,
            id: s.id,
            fields: s.fields,
            active: s.active,
            metadata: s.metadata,
            version: s.version,
            updated_at: s.updated_at,
            deleted: s.deleted,
            image_url: s.image_url,
            stripe_id: s.stripe_id,
        })
    }
}

/// `[catalog.prices]`: a column name for each field of a price.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "PricesSection")]
pub struct PricesMapping {
    /// A table or view, optionally schema-qualified.
    pub table: Option<String>,
    /// A `SELECT` of your own, read as a subquery (capture triggers need `table`, or
    /// `capture_table`).
    pub query: Option<String>,
    /// The id of the product the price belongs to (same type as the product id).
    pub product_id: String,
    /// ISO currency code (text).
    pub currency: String,
    /// The amount: in the currency's minor unit (an integer: `1999` for $19.99), unless
    /// [`Self::amount_unit`] says the major unit.
    pub unit_amount: String,
    /// What unit `unit_amount` holds: `minor` (the default, as Stripe's API) or `major` (`19.99`
    /// USD, `500` JPY, `1.250` KWD: a numeric, decimal, real, integer or text column), converted
    /// by each currency's decimal places (`domain::limits::currency_decimals`); an amount with
    /// more decimal places than its currency has is that row's error, never rounded. Tiers,
    /// currency options and pay-what-you-want amounts stay in the minor unit, as Stripe writes them.
    pub amount_unit: AmountUnit,
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
    /// Soft delete: a boolean (true = deleted) or a timestamp (set = deleted). A deleted price is
    /// not the catalog's: its Stripe price is archived. A timestamp also tells polling capture
    /// when (a boolean flipped alone is seen by triggers, or the next full scan).
    pub deleted: Option<String>,
    /// Active (boolean; false = not the catalog's, as a deleted price; NULL counts as active, so
    /// a nullable flag left unset archives nothing): the other way round from `deleted`, for a
    /// schema that keeps an active flag. Flipped alone, it is seen by
    /// triggers (polling sees it with `updated_at`, or at the next full scan).
    pub active: Option<String>,
    /// With `query`: the table whose changes capture triggers follow ([`CaptureSource`]; its key
    /// defaults to the `product_id` column's name).
    pub capture: Option<CaptureSource>,
}

/// The unit of `[catalog.prices] unit_amount`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AmountUnit {
    /// Stripe's: cents for USD, yen for JPY.
    #[default]
    Minor,
    /// The currency's major unit: dollars for USD, yen for JPY, dinars for KWD.
    Major,
}

impl std::str::FromStr for AmountUnit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "minor" => Ok(Self::Minor),
            "major" => Ok(Self::Major),
            other => Err(format!(
                "amount_unit = {other:?}: expected \"minor\" (Stripe's unit: 1999 for $19.99) \
                 or \"major\" (19.99)"
            )),
        }
    }
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
    amount_unit: Option<String>,
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
    deleted: Option<String>,
    active: Option<String>,
    capture_table: Option<String>,
    capture_key: Option<String>,
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
                ["table", "query"]
                    .into_iter()
                    .chain(crate::rows::STRUCTURED_PRICE_COLUMNS.iter().copied())
                    .chain([
                        "amount_unit",
                        "order_by",
                        "updated_at",
                        "deleted",
                        "active",
                        "capture_table",
                        "capture_key",
                    ])
                    .chain(price_scalars().map(|(name, _)| name))
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let capture = capture_source(
            &s.table,
            &s.query,
            s.capture_table,
            s.capture_key,
            &s.product_id,
        )?;
        Ok(Self {
            capture,
            table: s.table,
            query: s.query,
            product_id: s.product_id,
            currency: s.currency,
            unit_amount: s.unit_amount,
            amount_unit: s
                .amount_unit
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or_default(),
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
            deleted: s.deleted,
            active: s.active,
        })
    }
}

impl CatalogSection {
    /// The mapping this section declares: `None` for the built-in tables; an error when only one
    /// of products and prices is given.
    pub fn mapping(&self) -> Result<Option<Mapping>, CatalogError> {
        match (&self.products, &self.prices) {
            (None, None) if self.follow.is_empty() => Ok(None),
            (None, None) => Err(mapping_error(
                "[[catalog.follow]]",
                "is for a mapped catalog: the built-in tables are followed already",
            )),
            (Some(products), Some(prices)) => {
                for follow in &self.follow {
                    follow
                        .check()
                        .map_err(|e| CatalogError::Mapping(e.to_string()))?;
                }
                Ok(Some(Mapping {
                    products: products.clone(),
                    prices: prices.clone(),
                    follow: self.follow.clone(),
                }))
            }
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

/// The mapping in the config file's `[catalog]` section, if any: `None` without one (the
/// built-in tables).
pub fn from_config(file: &ConfigFile) -> Result<Option<Mapping>, CatalogError> {
    let Some(section) = &file.catalog else {
        return Ok(None);
    };
    let section: CatalogSection = section
        .clone()
        .try_into()
        .map_err(|e| mapping_error("[catalog] (CATALOG_SYNC_CONFIG):", e.message()))?;
    section.mapping()
}

/// The mapping in a config file's text (see [`from_config`]).
pub fn from_toml(text: &str) -> Result<Option<Mapping>, CatalogError> {
    let file = ConfigFile::parse(text).map_err(|e| CatalogError::Mapping(e.to_string()))?;
    from_config(&file)
}

/// A mapping error: the setting and what is wrong with it.
pub(crate) fn mapping_error(setting: &str, reason: &str) -> CatalogError {
    CatalogError::Mapping(format!("{setting} {reason}"))
}

#[cfg(test)]
mod tests {
    use super::columns::quote_table;
    use super::*;

    #[test]
    fn a_misspelt_section_is_refused_naming_the_known_ones() {
        let err = from_toml("[catlog.products]\ntable = \"items\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown section [catlog]"), "{err}");
        assert!(err.contains("[catalog]"), "{err}");
    }

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
    fn a_capture_table_is_for_a_query_and_its_key_defaults_to_the_id() {
        let mapping = |products: &str| {
            from_toml(&format!(
                "[catalog.products]\nid = \"sku\"\nname = \"title\"\n{products}\n\
                 [catalog.prices]\ntable = \"p\"\nproduct_id = \"item\"\ncurrency = \"c\"\n\
                 unit_amount = \"a\"\n"
            ))
        };
        let query = mapping("query = \"SELECT * FROM items\"\ncapture_table = \"shop.items\"")
            .unwrap()
            .unwrap();
        assert_eq!(
            query.products.capture,
            Some(CaptureSource {
                table: "shop.items".into(),
                key: "sku".into()
            })
        );
        let table = mapping("table = \"items\"\ncapture_table = \"items\"")
            .unwrap_err()
            .to_string();
        assert!(table.contains("is for a query mapping"), "{table}");
        let key_alone = mapping("query = \"SELECT 1\"\ncapture_key = \"sku\"")
            .unwrap_err()
            .to_string();
        assert!(key_alone.contains("no capture_table"), "{key_alone}");
    }

    #[test]
    fn follow_tables_name_their_product_directly_or_through_another() {
        let base = "[catalog.products]\nquery = \"SELECT 1\"\nid = \"id\"\nname = \"n\"\n\
                    [catalog.prices]\nquery = \"SELECT 1\"\nproduct_id = \"p\"\n\
                    currency = \"c\"\nunit_amount = \"a\"\n";
        let mapping = from_toml(&format!(
            "{base}[[catalog.follow]]\ntable = \"spree.variants\"\nproduct = \"product_id\"\n\
             [[catalog.follow]]\ntable = \"spree.prices\"\nkey = \"variant_id\"\n\
             through = \"spree.variants\"\nproduct = \"product_id\"\n"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(mapping.follow.len(), 2);
        assert_eq!(mapping.follow[1].through.as_deref(), Some("spree.variants"));
        assert_eq!(mapping.follow[1].through_key, None);
        let refused = |follow: &str| {
            from_toml(&format!("{base}[[catalog.follow]]\n{follow}"))
                .unwrap_err()
                .to_string()
        };
        let key_alone = refused("table = \"t\"\nproduct = \"p\"\nkey = \"k\"\n");
        assert!(key_alone.contains("no through is given"), "{key_alone}");
        let through_alone = refused("table = \"t\"\nproduct = \"p\"\nthrough = \"v\"\n");
        assert!(through_alone.contains("needs `key`"), "{through_alone}");
        let misspelt = refused("table = \"t\"\nprodcut = \"p\"\n");
        assert!(misspelt.contains("prodcut"), "{misspelt}");
        let builtin = from_toml("[[catalog.follow]]\ntable = \"t\"\nproduct = \"p\"\n")
            .unwrap_err()
            .to_string();
        assert!(builtin.contains("is for a mapped catalog"), "{builtin}");
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
