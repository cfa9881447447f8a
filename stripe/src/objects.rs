//! Stripe's Product and Price objects as catalog-sync reads them: the wire types, with what they
//! can tell of themselves. How a product or price is made to match the catalog, and the requests,
//! are in `products` and `prices`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use domain::model::{
    CurrencyOption, CustomUnitAmount, PackageDimensions, PriceTier, TransformQuantity,
};

use crate::envelope::Expandable;

/// The product fields catalog-sync reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Product {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Active.
    pub active: bool,
    /// When Stripe last changed it (Unix seconds): orders the mirror's writes
    /// (`catalog::mirror`).
    #[serde(default)]
    pub updated: Option<i64>,
    /// Images.
    #[serde(default)]
    pub images: Vec<String>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Unit label.
    #[serde(default)]
    pub unit_label: Option<String>,
    /// Tax code id.
    #[serde(default)]
    pub tax_code: Option<String>,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Shipped as a physical good.
    #[serde(default)]
    pub shippable: Option<bool>,
    /// Statement descriptor.
    #[serde(default)]
    pub statement_descriptor: Option<String>,
    /// Package dimensions.
    #[serde(default)]
    pub package_dimensions: Option<PackageDimensions>,
    /// Marketing features.
    #[serde(default)]
    pub marketing_features: Vec<MarketingFeature>,
    /// Default price: its id, or the price itself when expanded (`expand[]=data.default_price`).
    #[serde(default)]
    pub default_price: Option<Expandable<Price>>,
}

/// One marketing feature of a product.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MarketingFeature {
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
}

impl Product {
    /// The product as Stripe's JSON, which the field table reads
    /// ([`domain::fields::ProductField::from_stripe`]).
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a product serializes to JSON")
    }

    /// The marketing features' names, in order.
    pub fn marketing_feature_names(&self) -> Vec<String> {
        self.marketing_features
            .iter()
            .filter_map(|f| f.name.clone())
            .collect()
    }

    /// The default price's id, expanded or not.
    pub fn default_price_id(&self) -> Option<&str> {
        self.default_price.as_ref().map(Expandable::id)
    }

    /// The default price, when it was expanded.
    pub fn expanded_default_price(&self) -> Option<&Price> {
        match &self.default_price {
            Some(Expandable::Object(p)) => Some(p),
            _ => None,
        }
    }
}

/// Recurring settings of a price.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PriceRecurring {
    /// Interval.
    pub interval: String,
    /// Interval count.
    pub interval_count: i64,
    /// `licensed` or `metered`.
    #[serde(default)]
    pub usage_type: Option<String>,
    /// The Billing Meter of a metered price.
    #[serde(default)]
    pub meter: Option<String>,
}

/// The price fields catalog-sync reads. `P` is how the owning product comes: its id (the
/// default), or the product itself when the request expanded it ([`PriceOfProduct`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Price<P = String> {
    /// Id.
    pub id: String,
    /// Active.
    pub active: bool,
    /// Currency.
    pub currency: String,
    /// Amount in minor units.
    #[serde(default)]
    pub unit_amount: Option<i64>,
    /// Recurring settings.
    #[serde(default)]
    pub recurring: Option<PriceRecurring>,
    /// Lookup key.
    #[serde(default)]
    pub lookup_key: Option<String>,
    /// Nickname.
    #[serde(default)]
    pub nickname: Option<String>,
    /// `inclusive`, `exclusive` or `unspecified`.
    #[serde(default)]
    pub tax_behavior: Option<String>,
    /// `per_unit` or `tiered`.
    #[serde(default)]
    pub billing_scheme: Option<String>,
    /// `graduated` or `volume` for tiered prices.
    #[serde(default)]
    pub tiers_mode: Option<String>,
    /// Tiers: only in answers that expand them ([`PRICE_EXPANSIONS`]).
    #[serde(default)]
    pub tiers: Option<Vec<StripeTier>>,
    /// Every currency of the price, its own included: only when expanded.
    #[serde(default)]
    pub currency_options: Option<BTreeMap<String, StripeCurrencyOption>>,
    /// Pay-what-you-want bounds.
    #[serde(default)]
    pub custom_unit_amount: Option<CustomUnitAmount>,
    /// Packaged quantities.
    #[serde(default)]
    pub transform_quantity: Option<TransformQuantity>,
    /// Owning product.
    pub product: P,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A tier as Stripe returns it (`up_to: null` is `inf`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StripeTier {
    /// Last quantity of the tier.
    #[serde(default)]
    pub up_to: Option<i64>,
    /// Per unit.
    #[serde(default)]
    pub unit_amount: Option<i64>,
    /// For the tier.
    #[serde(default)]
    pub flat_amount: Option<i64>,
}

impl From<&StripeTier> for PriceTier {
    fn from(t: &StripeTier) -> Self {
        PriceTier {
            up_to: t.up_to,
            unit_amount: t.unit_amount,
            flat_amount: t.flat_amount,
        }
    }
}

/// A currency option as Stripe returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StripeCurrencyOption {
    /// Per unit.
    #[serde(default)]
    pub unit_amount: Option<i64>,
    /// Tax behavior in this currency.
    #[serde(default)]
    pub tax_behavior: Option<String>,
    /// Tiers in this currency.
    #[serde(default)]
    pub tiers: Option<Vec<StripeTier>>,
}

/// The expansions every price read asks for, so that tiers and currency options (which
/// Stripe leaves out unless asked) can be compared: for a list, prefix them with `data.`; for a
/// product's expanded default price, with `data.default_price.`.
pub const PRICE_EXPANSIONS: &[&str] = &["tiers", "currency_options"];

impl<P: Serialize> Price<P> {
    /// The price as Stripe's JSON, which the field table reads
    /// (`domain::fields::PRICE_FIELDS`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a price serializes to JSON")
    }
}

impl<P> Price<P> {
    /// The tiers in the catalog's shape (empty when per unit).
    pub fn catalog_tiers(&self) -> Vec<PriceTier> {
        self.tiers.iter().flatten().map(PriceTier::from).collect()
    }

    /// The price in the shapes `domain::prices::compare` reads.
    pub fn current(&self) -> domain::prices::CurrentPrice
    where
        P: Serialize,
    {
        domain::prices::CurrentPrice {
            json: serde_json::to_value(self).expect("a price serializes to JSON"),
            currency: self.currency.clone(),
            unit_amount: self.unit_amount,
            tiers_mode: self.tiers_mode.clone(),
            tiers: self.catalog_tiers(),
            custom_unit_amount: self.custom_unit_amount.clone(),
            transform_quantity: self.transform_quantity.clone(),
            currency_options: self.other_currencies(),
            recurring: self
                .recurring
                .as_ref()
                .map(|r| domain::prices::CurrentRecurring {
                    interval: r.interval.clone(),
                    interval_count: r.interval_count,
                    usage_type: r.usage_type.clone(),
                    meter: r.meter.clone(),
                }),
            metadata: self.metadata.clone(),
            active: self.active,
        }
    }

    /// The other currencies than the price's own, in the catalog's shape.
    pub fn other_currencies(&self) -> BTreeMap<String, CurrencyOption> {
        self.currency_options
            .iter()
            .flatten()
            .filter(|(code, _)| **code != self.currency)
            .map(|(code, o)| {
                (
                    code.clone(),
                    CurrencyOption {
                        unit_amount: o.unit_amount,
                        tiers: o.tiers.iter().flatten().map(PriceTier::from).collect(),
                        tax_behavior: o.tax_behavior.clone(),
                    },
                )
            })
            .collect()
    }
}

/// A price listed with its product expanded (`expand[]=data.product`).
pub type PriceOfProduct = Price<Product>;

impl PriceOfProduct {
    /// The price with its product's id, and the product.
    pub fn split_product(self) -> (Price, Product) {
        let Price {
            id,
            active,
            currency,
            unit_amount,
            recurring,
            lookup_key,
            nickname,
            tax_behavior,
            billing_scheme,
            tiers_mode,
            tiers,
            currency_options,
            custom_unit_amount,
            transform_quantity,
            product,
            metadata,
        } = self;
        let price = Price {
            id,
            active,
            currency,
            unit_amount,
            recurring,
            lookup_key,
            nickname,
            tax_behavior,
            billing_scheme,
            tiers_mode,
            tiers,
            currency_options,
            custom_unit_amount,
            transform_quantity,
            product: product.id.clone(),
            metadata,
        };
        (price, product)
    }
}

impl Expandable<Price> {
    /// The object's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) => id,
            Self::Object(p) => &p.id,
        }
    }
}
