//! The product fields catalog-sync syncs, one entry each with everything about it (in the spirit
//! of ripgrep's flag definitions): Stripe's parameter, which is also the catalog's column and the
//! name settings use (`CATALOG_SYNC_STRIPE_OWNED_FIELDS`, `[catalog.products]`); how its values
//! are read, compared, sent and shown ([`Codec`]); what an unset value asks of Stripe
//! ([`Unset`]); whether the content hash always holds it ([`Hashed`]); and Stripe's rule for it.
//!
//! The transform, the product form, ownership, write-back, `verify` and the catalog's columns
//! read [`PRODUCT_FIELDS`]. Adding a product field is one entry here, the field in
//! [`crate::model`]'s `CatalogProduct` and `DesiredProduct` (and Stripe's wire type), and its
//! tests; a new kind of value adds a [`Codec`]. Every field here may be Stripe-owned. `active`,
//! `metadata` and the prices have rules of their own (the transform, the product form).
//!
//! Values travel as JSON ([`serde_json::Value`]) between the typed structs and the rules:
//! normalised, a catalog value and Stripe's value of the same field compare equal exactly when
//! Stripe needs no write.
//!
//! # Layout
//! - here: [`PRODUCT_FIELDS`], what reads one product field, and each field's rule (the
//!   `check_` functions the entries name);
//! - `codec`: the kinds of value ([`Codec`]) and what an unset value does;
//! - `price`: [`PRICE_FIELDS`], Stripe's rule for changing each price field;

/// The [`Access`] of a field named the same in the catalog's struct and the plan's.
macro_rules! access {
    ($name:ident) => {
        $crate::fields::Access {
            catalog: |p| $crate::fields::to_value(&p.$name),
            set_catalog: |p, v| {
                p.$name = serde_json::from_value(v)?;
                Ok(())
            },
            desired: |d| $crate::fields::to_value(&d.$name),
            set_desired: |d, v| {
                d.$name = serde_json::from_value(v)?;
                Ok(())
            },
        }
    };
}

mod codec;
mod price;

pub(crate) use codec::to_value;
pub use codec::{Codec, Column, Hashed, Stored, Unset, is_unset};
pub use price::{Mutability, PRICE_FIELDS, PriceField, Scalar, TAX_BEHAVIOR, price_scalars};

use serde_json::Value;

use crate::limits::{
    MAX_DESCRIPTION, MAX_IMAGES, MAX_MARKETING_FEATURE_NAME, MAX_MARKETING_FEATURES, MAX_NAME,
    MAX_STATEMENT_DESCRIPTOR, MAX_UNIT_LABEL,
};
use crate::model::{CatalogProduct, DesiredProduct, ValidationIssue};

/// One product field: everything catalog-sync knows about it.
#[derive(Debug, Clone, Copy)]
pub struct ProductField {
    /// Stripe's parameter, the catalog's column and the name in settings.
    pub name: &'static str,
    /// How values are read, compared, sent and shown.
    pub codec: Codec,
    /// What an unset value asks of Stripe.
    pub unset: Unset,
    /// Whether the content hash always holds it.
    pub hashed: Hashed,
    /// Stripe's rule for a normalised value: the issues, each naming the field (or a part).
    pub check: fn(&Value, &mut Vec<ValidationIssue>),
    /// Its value in a catalog row and in a plan.
    pub access: Access<CatalogProduct, DesiredProduct>,
}

/// How a field's value is read from and written to the typed structs, as JSON: `C` the catalog's
/// row, `D` the plan.
#[derive(Debug)]
pub struct Access<C: 'static, D: 'static> {
    /// The catalog row's value (as it is, not yet normalised).
    pub catalog: fn(&C) -> Value,
    /// Sets the catalog row's value (read from a column); an error when the value does not fit.
    pub set_catalog: fn(&mut C, Value) -> Result<(), serde_json::Error>,
    /// The value a plan asks for.
    pub desired: fn(&D) -> Value,
    /// Sets the value a plan asks for; an error (and nothing set) when the value does not fit.
    pub set_desired: fn(&mut D, Value) -> Result<(), serde_json::Error>,
}

impl<C, D> Clone for Access<C, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, D> Copy for Access<C, D> {}

/// An entry of a field named the same in `CatalogProduct`, `DesiredProduct` and Stripe.
macro_rules! field {
    ($name:ident, $codec:ident $(($($arg:tt)*))?, $unset:ident, $hashed:ident, $check:expr) => {
        ProductField {
            name: stringify!($name),
            codec: Codec::$codec $(($($arg)*))?,
            unset: Unset::$unset,
            hashed: Hashed::$hashed,
            check: $check,
            access: access!($name),
        }
    };
}

/// Every product field catalog-sync syncs, in the order Stripe's documentation lists them.
pub const PRODUCT_FIELDS: &[ProductField] = &[
    field!(name, Name, Clears, Always, check_name),
    field!(description, Text, Clears, Always, check_description),
    field!(images, Texts, Clears, Always, check_images),
    field!(url, Text, Clears, Always, check_url),
    field!(unit_label, Text, Clears, Always, check_unit_label),
    field!(tax_code, Text, Clears, Always, check_tax_code),
    field!(shippable, Flag, LeavesStripe, WhenSet, |_, _| {}),
    field!(
        statement_descriptor,
        Text,
        LeavesStripe,
        WhenSet,
        check_statement_descriptor
    ),
    field!(
        package_dimensions,
        Numbers(&["height", "length", "weight", "width"]),
        Clears,
        WhenSet,
        check_package_dimensions
    ),
    field!(
        marketing_features,
        Names,
        Clears,
        WhenSet,
        check_marketing_features
    ),
];

/// The field named `name`.
pub fn product_field(name: &str) -> Option<&'static ProductField> {
    PRODUCT_FIELDS.iter().find(|f| f.name == name)
}

/// The names of every product field, comma-separated (for messages).
pub fn product_field_names() -> String {
    PRODUCT_FIELDS
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ProductField {
    /// The catalog row's value, normalised as a plan holds it.
    pub fn from_catalog(&self, product: &CatalogProduct) -> Value {
        self.codec.normalize((self.access.catalog)(product))
    }

    /// Stripe's value of the field in a product's JSON, normalised to compare with a plan's.
    pub fn from_stripe(&self, product: &Value) -> Value {
        self.codec.from_stripe(&product[self.name])
    }

    /// The issues of a normalised value.
    pub fn issues(&self, value: &Value) -> Vec<ValidationIssue> {
        let mut issues = Vec::new();
        (self.check)(value, &mut issues);
        issues
    }

    /// The form parameters that make Stripe's value `desired`, given Stripe's current value
    /// (`None` for a product being created); empty when nothing is to be sent.
    pub fn form(&self, desired: &Value, current: Option<&Value>) -> Vec<(String, String)> {
        let unset = is_unset(desired);
        let send = match current {
            None => !unset,
            Some(current) => desired != current && !(unset && self.unset == Unset::LeavesStripe),
        };
        if send {
            self.codec.form(self.name, desired)
        } else {
            Vec::new()
        }
    }
}

pub(crate) fn issue(field: impl Into<String>, reason: impl Into<String>) -> ValidationIssue {
    ValidationIssue {
        field: field.into(),
        reason: reason.into(),
    }
}

pub(crate) fn text(value: &Value) -> Option<&str> {
    value.as_str()
}

fn check_name(value: &Value, issues: &mut Vec<ValidationIssue>) {
    let name = text(value).unwrap_or_default();
    if name.is_empty() {
        issues.push(issue("name", "is required"));
    } else if name.chars().count() > MAX_NAME {
        let length = name.chars().count();
        issues.push(issue(
            "name",
            format!("must be at most {MAX_NAME} characters, has {length}"),
        ));
    }
}

fn check_description(value: &Value, issues: &mut Vec<ValidationIssue>) {
    if let Some(length) = text(value)
        .map(|d| d.chars().count())
        .filter(|n| *n > MAX_DESCRIPTION)
    {
        issues.push(issue(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters, has {length}"),
        ));
    }
}

fn check_images(value: &Value, issues: &mut Vec<ValidationIssue>) {
    let images = value.as_array().map(Vec::as_slice).unwrap_or_default();
    if images.len() > MAX_IMAGES {
        issues.push(issue(
            "images",
            format!("at most {MAX_IMAGES} images, has {}", images.len()),
        ));
    }
    for (i, image) in images.iter().enumerate() {
        let image = image.as_str().unwrap_or_default();
        if !is_url(image, &["https"]) {
            issues.push(issue(
                format!("images[{i}]"),
                format!("must be an https:// URL, got {image:?}"),
            ));
        }
    }
}

fn check_url(value: &Value, issues: &mut Vec<ValidationIssue>) {
    if let Some(url) = text(value)
        && !is_url(url, &["https", "http"])
    {
        issues.push(issue(
            "url",
            format!("must be an http(s):// URL, got {url:?}"),
        ));
    }
}

fn check_unit_label(value: &Value, issues: &mut Vec<ValidationIssue>) {
    if text(value).is_some_and(|label| label.chars().count() > MAX_UNIT_LABEL) {
        issues.push(issue(
            "unit_label",
            format!("must be at most {MAX_UNIT_LABEL} characters"),
        ));
    }
}

fn check_tax_code(value: &Value, issues: &mut Vec<ValidationIssue>) {
    if let Some(code) = text(value) {
        let ok = code
            .strip_prefix("txcd_")
            .is_some_and(|d| d.len() == 8 && d.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            issues.push(issue(
                "tax_code",
                format!("must look like txcd_12345678, got {code:?}"),
            ));
        }
    }
}

fn check_statement_descriptor(value: &Value, issues: &mut Vec<ValidationIssue>) {
    let Some(text) = text(value) else {
        return;
    };
    let field = "statement_descriptor";
    let length = text.chars().count();
    if !(5..=MAX_STATEMENT_DESCRIPTOR).contains(&length) {
        issues.push(issue(
            field,
            format!("must be 5-{MAX_STATEMENT_DESCRIPTOR} characters, has {length}"),
        ));
    }
    if !text.chars().any(|c| c.is_ascii_alphabetic()) {
        issues.push(issue(field, "must contain a letter"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !c.is_ascii() || "<>\\'\"*".contains(*c))
    {
        issues.push(issue(
            field,
            format!("must be Latin characters without < > \\ ' \" *, has {c:?}"),
        ));
    }
}

fn check_package_dimensions(value: &Value, issues: &mut Vec<ValidationIssue>) {
    let Some(dimensions) = value.as_object() else {
        return;
    };
    for name in ["height", "length", "weight", "width"] {
        // A NaN or an infinity serializes as `null`.
        let value = dimensions.get(name).and_then(Value::as_f64);
        if !value.is_some_and(|v| v.is_finite() && v > 0.0) {
            let shown = value.map_or_else(|| "NaN or infinity".to_string(), |v| v.to_string());
            issues.push(issue(
                format!("package_dimensions.{name}"),
                format!("must be a positive number, got {shown}"),
            ));
        }
    }
}

fn check_marketing_features(value: &Value, issues: &mut Vec<ValidationIssue>) {
    let features = value.as_array().map(Vec::as_slice).unwrap_or_default();
    if features.len() > MAX_MARKETING_FEATURES {
        issues.push(issue(
            "marketing_features",
            format!("at most {MAX_MARKETING_FEATURES}, has {}", features.len()),
        ));
    }
    for (i, feature) in features.iter().enumerate() {
        let length = feature.as_str().unwrap_or_default().chars().count();
        if !(1..=MAX_MARKETING_FEATURE_NAME).contains(&length) {
            issues.push(issue(
                format!("marketing_features[{i}]"),
                format!("must be 1-{MAX_MARKETING_FEATURE_NAME} characters, has {length}"),
            ));
        }
    }
}

/// An absolute URL of one of `schemes`, at most 2,048 characters.
pub fn is_url(raw: &str, schemes: &[&str]) -> bool {
    raw.len() <= 2048
        && url::Url::parse(raw)
            .is_ok_and(|u| schemes.contains(&u.scheme()) && u.host_str().is_some())
}

#[cfg(test)]
mod tests;
