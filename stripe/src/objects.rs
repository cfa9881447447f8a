//! The fields of Stripe's Product and Price objects (and list and response envelopes) that
//! catalog-sync reads.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The product fields catalog-sync reads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    /// Default price: its id, or the price itself when expanded (`expand[]=data.default_price`).
    #[serde(default)]
    pub default_price: Option<Expandable<Price>>,
}

impl Product {
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

/// A field Stripe returns as an id, or as the object when the request expanded it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Expandable<T> {
    /// Not expanded.
    Id(String),
    /// Expanded.
    Object(Box<T>),
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

/// Recurring settings of a price.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PriceRecurring {
    /// Interval.
    pub interval: String,
    /// Interval count.
    pub interval_count: i64,
}

/// The price fields catalog-sync reads. `P` is how the owning product comes: its id (the
/// default), or the product itself when the request expanded it ([`PriceOfProduct`]).
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    /// Owning product.
    pub product: P,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A price listed with its product expanded (`expand[]=data.product`).
pub type PriceOfProduct = Price<Product>;

/// A page of a list.
#[derive(Debug, Deserialize)]
pub struct List<T> {
    /// Items.
    pub data: Vec<T>,
    /// More after the last item.
    pub has_more: bool,
}

/// A response value with the `Request-Id` it came with.
#[derive(Debug)]
pub struct Response<T> {
    /// The decoded body.
    pub value: T,
    /// `Request-Id`.
    pub request_id: Option<String>,
}
