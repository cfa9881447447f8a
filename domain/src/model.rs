//! The data that flows between activities: a product as the catalog holds it, and the Stripe
//! state the catalog asks for. Plain serde structs, so fields can be added compatibly
//! (`#[serde(default)]`) and histories recorded today replay tomorrow.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A product row of the catalog with its prices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogProduct {
    /// The catalog's primary key.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Long description.
    pub description: Option<String>,
    /// Whether the product is for sale.
    pub active: bool,
    /// Image URLs, in display order.
    pub images: Vec<String>,
    /// Public product page.
    pub url: Option<String>,
    /// Unit label ("seat", "kg").
    pub unit_label: Option<String>,
    /// Stripe tax code (`txcd_…`).
    pub tax_code: Option<String>,
    /// Free-form key/values, copied to Stripe metadata.
    pub metadata: BTreeMap<String, String>,
    /// Shipped as a physical good (`None`: not said, Stripe's default).
    pub shippable: Option<bool>,
    /// What a card statement shows for this product (at most 22 characters).
    pub statement_descriptor: Option<String>,
    /// Size and weight of the package, for shipping rates.
    pub package_dimensions: Option<PackageDimensions>,
    /// Feature names shown on pricing tables, in order.
    pub marketing_features: Vec<String>,
    /// Grows on every change of the product or its prices.
    pub version: i64,
    /// Last change, RFC 3339.
    pub updated_at: String,
    /// Soft-deleted in the catalog.
    pub deleted: bool,
    /// Prices, default first.
    pub prices: Vec<CatalogPrice>,
    /// The existing Stripe product the row names (a mapped `stripe_id` column, for a shop that
    /// sold on Stripe before catalog-sync): the sync writes to it only once `starter import`
    /// has bound the row to it ([`Self::bound_stripe_id`]), and refuses the row until then.
    /// Absent from histories recorded before it existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_id: Option<String>,
    /// The Stripe product `starter import` bound this row to (catalog-sync's own record, kept
    /// when the row is deleted, so that its archive finds the product): the sync's Stripe id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_stripe_id: Option<String>,
}

/// A price of a catalog product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogPrice {
    /// ISO 4217 code, any case.
    pub currency: String,
    /// Amount in the currency's minor unit.
    pub unit_amount: i64,
    /// `day`, `week`, `month` or `year` for subscriptions; `None` for one-off prices.
    pub recurring_interval: Option<String>,
    /// Intervals between charges (default 1).
    pub recurring_interval_count: Option<i64>,
    /// Internal name.
    pub nickname: Option<String>,
    /// `inclusive`, `exclusive` or `unspecified` (Stripe Tax); `None` leaves Stripe's value.
    pub tax_behavior: Option<String>,
    /// Free-form key/values, copied to the Stripe price's metadata.
    pub metadata: BTreeMap<String, String>,
    /// Tiers, lowest first (`billing_scheme=tiered`; `unit_amount` stays 0).
    pub tiers: Vec<PriceTier>,
    /// `graduated` or `volume`, with tiers.
    pub tiers_mode: Option<String>,
    /// The same price in other currencies, by lowercase ISO code.
    pub currency_options: BTreeMap<String, CurrencyOption>,
    /// Pay what you want (one-off prices; `unit_amount` stays 0).
    pub custom_unit_amount: Option<CustomUnitAmount>,
    /// Sold in packages: the quantity is divided and rounded before the amount applies.
    pub transform_quantity: Option<TransformQuantity>,
    /// `licensed` (the default) or `metered` (recurring prices billed on usage).
    pub usage_type: Option<String>,
    /// The Billing Meter id (`mtr_…`) a metered price reports usage to.
    pub meter: Option<String>,
    /// The price's own lookup key; unset, catalog-sync's (`cs:{id}:{currency}:{period}`).
    pub lookup_key: Option<String>,
}

/// One tier of a tiered price.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTier {
    /// The last quantity in the tier; `None` for the final tier (Stripe's `up_to=inf`).
    #[serde(default)]
    pub up_to: Option<i64>,
    /// Per unit in the tier, minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_amount: Option<i64>,
    /// For the whole tier, minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat_amount: Option<i64>,
}

/// A price's amount in another currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencyOption {
    /// Minor units of that currency (per-unit prices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_amount: Option<i64>,
    /// Tiers in that currency (tiered prices: the same quantities as the price's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<PriceTier>,
    /// Tax behavior in that currency; unset leaves Stripe's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_behavior: Option<String>,
}

impl CurrencyOption {
    /// The tax behavior in this currency, trimmed; `None` when unset or empty (Stripe's then
    /// stays). The price's own and this one follow one entry, `fields::TAX_BEHAVIOR`.
    pub fn tax(&self) -> Option<&str> {
        self.tax_behavior
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// The option with its tax behavior as [`tax`](Self::tax) reads it.
    pub fn normalized(mut self) -> Self {
        self.tax_behavior = self.tax().map(str::to_string);
        self
    }

    /// The option with this tax behavior.
    pub fn with_tax(mut self, tax: Option<String>) -> Self {
        self.tax_behavior = tax;
        self
    }
}

/// Bounds of a pay-what-you-want price, minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomUnitAmount {
    /// Least a customer may pay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<i64>,
    /// Most a customer may pay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i64>,
    /// Where the amount starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<i64>,
}

/// Packaged quantities: `ceil` or `floor` of quantity / `divide_by`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformQuantity {
    /// Units in a package.
    pub divide_by: i64,
    /// `up` or `down`.
    pub round: String,
}

/// Package dimensions of a shippable product: inches and ounces, as Stripe takes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PackageDimensions {
    /// Height, inches.
    pub height: f64,
    /// Length, inches.
    pub length: f64,
    /// Weight, ounces.
    pub weight: f64,
    /// Width, inches.
    pub width: f64,
}

/// The transform refuses dimensions that are not finite and positive, so equality is total on
/// every value that reaches a plan.
impl Eq for PackageDimensions {}

/// Billing period of a recurring price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurring {
    /// `day`, `week`, `month` or `year`.
    pub interval: String,
    /// Number of intervals between charges.
    pub interval_count: i64,
    /// The Billing Meter (`mtr_…`) of a metered price (`usage_type=metered`); `None` for a
    /// licensed one. Left out of the serialized form when `None`, so content hashes stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
}

/// A price as Stripe should have it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredPrice {
    /// Stable key for this (product, currency, period): the thing that survives amount changes.
    pub lookup_key: String,
    /// Lowercase ISO code.
    pub currency: String,
    /// Minor units.
    pub unit_amount: i64,
    /// Billing period, if recurring.
    pub recurring: Option<Recurring>,
    /// Nickname.
    pub nickname: Option<String>,
    /// Tax behavior; `None` leaves Stripe's. Absent from histories recorded before it existed,
    /// and left out of the serialized form when `None` so that content hashes stay the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_behavior: Option<String>,
    /// The catalog's metadata for the price (catalog-sync adds its own keys when writing).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Tiers (then `unit_amount` is 0 and not sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<PriceTier>,
    /// `graduated` or `volume`, with tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers_mode: Option<String>,
    /// Amounts in other currencies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub currency_options: BTreeMap<String, CurrencyOption>,
    /// Pay what you want (then `unit_amount` is 0 and not sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_unit_amount: Option<CustomUnitAmount>,
    /// Packaged quantities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_quantity: Option<TransformQuantity>,
}

/// The prefix of the lookup keys catalog-sync derives (a catalog's own keys may not use it).
pub const DERIVED_LOOKUP_KEY_PREFIX: &str = "cs:";

impl DesiredPrice {
    /// The lookup key is the catalog's own, not derived by catalog-sync: it may be held by a
    /// price of any product in the account, so it is checked before it is taken over.
    pub fn has_own_lookup_key(&self) -> bool {
        !self.lookup_key.starts_with(DERIVED_LOOKUP_KEY_PREFIX)
    }

    /// A fixed amount per unit (Stripe's `billing_scheme=per_unit` with a `unit_amount`): not
    /// tiered, not pay-what-you-want.
    pub fn has_unit_amount(&self) -> bool {
        self.tiers.is_empty() && self.custom_unit_amount.is_none()
    }
}

/// A product as Stripe should have it. The fields Stripe holds are read and written through
/// [`crate::fields::PRODUCT_FIELDS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredProduct {
    /// The Stripe product id: the catalog id, or the existing product `starter import` bound
    /// the row to.
    pub stripe_id: String,
    /// The catalog id it came from.
    pub catalog_id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Active flag.
    pub active: bool,
    /// Images.
    pub images: Vec<String>,
    /// URL.
    pub url: Option<String>,
    /// Unit label.
    pub unit_label: Option<String>,
    /// Tax code.
    pub tax_code: Option<String>,
    /// Metadata, including catalog-sync's own keys (catalog id, version, content hash, marker).
    pub metadata: BTreeMap<String, String>,
    /// Shippable; `None` leaves Stripe's value. (This and the fields below are absent from
    /// histories recorded before they existed, hence the defaults.)
    #[serde(default)]
    pub shippable: Option<bool>,
    /// Statement descriptor.
    #[serde(default)]
    pub statement_descriptor: Option<String>,
    /// Package dimensions.
    #[serde(default)]
    pub package_dimensions: Option<PackageDimensions>,
    /// Marketing feature names.
    #[serde(default)]
    pub marketing_features: Vec<String>,
    /// Prices; the first is the default price.
    pub prices: Vec<DesiredPrice>,
    /// Hash of everything above except the catalog version: equal hashes mean equal content.
    pub content_hash: String,
    /// Catalog version this was built from.
    pub catalog_version: i64,
    /// When the catalog row last changed (its `updated_at`, RFC 3339), for the sync-lag metric:
    /// not content, so not in `content_hash` and never sent to Stripe. Absent from histories
    /// recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
}

/// What the transform makes of a catalog product (the output of `TransformProduct`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TransformOutput {
    /// What Stripe should look like.
    Plan(Box<SyncPlan>),
    /// The product cannot be synced; every reason is listed.
    Invalid(Vec<ValidationIssue>),
}

/// What the upsert should do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncPlan {
    /// Make Stripe match this product.
    Upsert(Box<DesiredProduct>),
    /// The catalog row is gone or soft-deleted: archive the Stripe product if catalog-sync manages it.
    Archive {
        /// The Stripe product id.
        stripe_id: String,
        /// The catalog id.
        catalog_id: String,
    },
}

impl SyncPlan {
    /// The catalog id the plan is for.
    pub fn catalog_id(&self) -> &str {
        match self {
            SyncPlan::Upsert(d) => &d.catalog_id,
            SyncPlan::Archive { catalog_id, .. } => catalog_id,
        }
    }

    /// The Stripe product the plan writes to: the catalog id, or the product the row was bound
    /// to by `starter import`.
    pub fn stripe_id(&self) -> &str {
        match self {
            SyncPlan::Upsert(d) => &d.stripe_id,
            SyncPlan::Archive { stripe_id, .. } => stripe_id,
        }
    }
}

/// A reason a catalog product cannot be synced, tied to the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationIssue {
    /// The field, e.g. `name` or `prices[1].currency`.
    pub field: String,
    /// What is wrong, for a person.
    pub reason: String,
}

impl ValidationIssue {
    /// The top-level field at fault: `images` for `images[2]`.
    pub fn top_field(&self) -> &str {
        self.field.split('[').next().unwrap_or(&self.field)
    }
}

impl std::fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}
