//! The price fields: Stripe's rule for changing each ([`Mutability`]) and, for a field that is one
//! value, everything else about it ([`Scalar`]).

use serde_json::Value;

use super::Access;
use super::codec::{Codec, Unset, is_unset};
use super::{issue, text};
use crate::limits::TAX_BEHAVIORS;
use crate::model::{CatalogPrice, DesiredPrice, ValidationIssue};

/// How Stripe lets a price field change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// `POST /v1/prices/{id}` changes it.
    InPlace,
    /// Changes in place while Stripe holds `unspecified` (or nothing); fixed once set.
    InPlaceWhileUnspecified,
    /// Fixed at creation: another value needs a new price.
    NewPrice,
    /// Currencies are added and their amounts changed in place; a currency removed, or a tax
    /// behavior already set changed, needs a new price.
    InPlaceUnlessRemoved,
}

/// One price field catalog-sync writes: Stripe's rule for changing it and, for a field that is
/// one text value, everything else about it ([`Scalar`]). The others (amounts, the billing period,
/// tiers, other currencies, metadata) are structured values compared by their own rules in the
/// comparison ([`crate::prices::compare`]).
#[derive(Debug, Clone, Copy)]
pub struct PriceField {
    /// Stripe's parameter (and, for a scalar, the catalog's column and mapping key).
    pub name: &'static str,
    /// Stripe's rule for changing it.
    pub change: Mutability,
    /// For a field that is one value: how it is read, compared, sent and checked.
    pub scalar: Option<Scalar>,
    /// `default_price_data` of `POST /v1/products` carries it, so that a new product's first
    /// price is created with the product (see [`crate::prices::default_price_data`]).
    pub with_product: bool,
}

/// A price field that is one value, read, compared, sent and checked by its entry.
#[derive(Debug, Clone, Copy)]
pub struct Scalar {
    /// How values are read, compared, sent and shown.
    pub codec: Codec,
    /// What an unset value asks of Stripe.
    pub unset: Unset,
    /// Stripe's rule for a normalised value; issues name the field relative to the price
    /// (`tax_behavior`), the caller puts the price's place before it.
    pub check: fn(&Value, &mut Vec<ValidationIssue>),
    /// Its value in a catalog row and in a plan.
    pub access: Access<CatalogPrice, DesiredPrice>,
}

macro_rules! scalar {
    ($name:ident, $change:ident, $with_product:expr, $codec:ident, $unset:ident, $check:expr) => {
        PriceField {
            name: stringify!($name),
            change: Mutability::$change,
            with_product: $with_product,
            scalar: Some(Scalar {
                codec: Codec::$codec,
                unset: Unset::$unset,
                check: $check,
                access: access!($name),
            }),
        }
    };
}

const fn structured(name: &'static str, change: Mutability, with_product: bool) -> PriceField {
    PriceField {
        name,
        change,
        scalar: None,
        with_product,
    }
}

/// Every price field catalog-sync writes, with Stripe's rule for changing it:
///
/// | field | change |
/// |---|---|
/// | `currency`, `unit_amount`, `recurring` (interval, count, usage type and meter) | new price |
/// | `tiers`, `tiers_mode` (billing scheme), `custom_unit_amount`, `transform_quantity` | new price |
/// | `currency_options` | in place for a currency added or an amount changed; new price for a currency removed or a set tax behavior changed |
/// | the tax behavior | in place while Stripe has `unspecified` (or none); new price once set |
/// | the nickname, `metadata`, `active` | in place (metadata keys the catalog no longer has are removed; a kept price is re-activated) |
///
/// A product's `default_price_data` carries all of them but tiers, packaging, a metered period
/// and the nickname (Stripe's API, 2026-09-30); nor does it carry the lookup key.
pub const PRICE_FIELDS: &[PriceField] = &[
    structured("currency", Mutability::NewPrice, true),
    structured("unit_amount", Mutability::NewPrice, true),
    structured("recurring", Mutability::NewPrice, true),
    structured("tiers", Mutability::NewPrice, false),
    structured("custom_unit_amount", Mutability::NewPrice, true),
    structured("transform_quantity", Mutability::NewPrice, false),
    structured("currency_options", Mutability::InPlaceUnlessRemoved, true),
    scalar!(nickname, InPlace, false, Text, Clears, |_, _| {}),
    scalar!(
        tax_behavior,
        InPlaceWhileUnspecified,
        true,
        Text,
        LeavesStripe,
        check_tax_behavior
    ),
    structured("metadata", Mutability::InPlace, true),
    structured("active", Mutability::InPlace, true),
];

/// The price fields that are one value each, with their entries.
pub fn price_scalars() -> impl Iterator<Item = (&'static str, &'static Scalar)> {
    PRICE_FIELDS
        .iter()
        .filter_map(|f| f.scalar.as_ref().map(|s| (f.name, s)))
}

/// The tax behavior's entry (its rule also judges each of a price's other currencies).
pub const TAX_BEHAVIOR: &PriceField = &PRICE_FIELDS[8];

impl Scalar {
    /// The catalog row's value, normalised as a plan holds it.
    pub fn from_catalog(&self, price: &CatalogPrice) -> Value {
        self.codec.normalize((self.access.catalog)(price))
    }

    /// The issues of a normalised value, each field put after `prefix` (`prices[1].`).
    pub fn issues(&self, prefix: &str, value: &Value) -> Vec<ValidationIssue> {
        let mut issues = Vec::new();
        (self.check)(value, &mut issues);
        for issue in &mut issues {
            issue.field = format!("{prefix}{}", issue.field);
        }
        issues
    }

    /// Whether Stripe's value `current` must change to give `desired`: they differ, and an
    /// unset desired value does not leave Stripe's.
    pub fn differs(&self, desired: &Value, current: &Value) -> bool {
        desired != current && !(is_unset(desired) && self.unset == Unset::LeavesStripe)
    }
}

fn check_tax_behavior(value: &Value, issues: &mut Vec<ValidationIssue>) {
    if let Some(behavior) = text(value)
        && !TAX_BEHAVIORS.contains(&behavior)
    {
        issues.push(issue(
            "tax_behavior",
            format!("must be inclusive, exclusive or unspecified, got {behavior:?}"),
        ));
    }
}
