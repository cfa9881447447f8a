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

use serde_json::{Map, Value};

use crate::limits::{
    MAX_DESCRIPTION, MAX_IMAGES, MAX_MARKETING_FEATURE_NAME, MAX_MARKETING_FEATURES, MAX_NAME,
    MAX_STATEMENT_DESCRIPTOR, MAX_UNIT_LABEL, TAX_BEHAVIORS,
};
use crate::model::{CatalogPrice, CatalogProduct, DesiredPrice, DesiredProduct, ValidationIssue};

/// How a field's values are read, normalised, sent to Stripe and shown: one per kind of value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Required text, trimmed.
    Name,
    /// Optional text, trimmed; empty is unset. Stripe may answer an expanded object: its `id`.
    Text,
    /// Optional `true`/`false`.
    Flag,
    /// A list of texts, kept as given (`images[0]=…`).
    Texts,
    /// A list of names, trimmed; Stripe holds `[{"name": …}]` (`marketing_features[0][name]=…`).
    Names,
    /// An object of these numbers (`package_dimensions[height]=…`); unset is `null`.
    Numbers(&'static [&'static str]),
}

/// What an unset catalog value asks of Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// Clear Stripe's value (sent empty on an update; not sent on a create).
    Clears,
    /// Leave Stripe's value: Stripe cannot unset it, or unset means "not said".
    LeavesStripe,
}

/// Whether the content hash holds the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashed {
    /// Always: the field was synced from the first release.
    Always,
    /// Only when set: a field added later, so that a product which does not use it keeps the
    /// hash it was synced with (and an upgrade rewrites nothing).
    WhenSet,
}

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
    /// The catalog row's value (as it is, not yet normalised).
    pub catalog: fn(&CatalogProduct) -> Value,
    /// Sets the catalog row's value (read from a column); an error when the value does not fit.
    pub set_catalog: fn(&mut CatalogProduct, Value) -> Result<(), serde_json::Error>,
    /// The value a plan asks for.
    pub desired: fn(&DesiredProduct) -> Value,
    /// Sets the value a plan asks for.
    pub set_desired: fn(&mut DesiredProduct, Value),
}

/// The accessors of a field named the same in `CatalogProduct`, `DesiredProduct` and Stripe.
macro_rules! field {
    ($name:ident, $codec:ident $(($($arg:tt)*))?, $unset:ident, $hashed:ident, $check:expr) => {
        ProductField {
            name: stringify!($name),
            codec: Codec::$codec $(($($arg)*))?,
            unset: Unset::$unset,
            hashed: Hashed::$hashed,
            check: $check,
            catalog: |p| to_value(&p.$name),
            set_catalog: |p, v| {
                p.$name = serde_json::from_value(v)?;
                Ok(())
            },
            desired: |d| to_value(&d.$name),
            set_desired: |d, v| d.$name = serde_json::from_value(v).unwrap_or_default(),
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
/// price requests (`stripe::prices::compare`).
#[derive(Debug, Clone, Copy)]
pub struct PriceField {
    /// Stripe's parameter (and, for a scalar, the catalog's column and mapping key).
    pub name: &'static str,
    /// Stripe's rule for changing it.
    pub change: Mutability,
    /// For a field that is one value: how it is read, compared, sent and checked.
    pub scalar: Option<Scalar>,
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
    /// The catalog row's value (as it is).
    pub catalog: fn(&CatalogPrice) -> Value,
    /// Sets the catalog row's value (read from a column).
    pub set_catalog: fn(&mut CatalogPrice, Value) -> Result<(), serde_json::Error>,
    /// The value a plan asks for.
    pub desired: fn(&DesiredPrice) -> Value,
    /// Sets the value a plan asks for.
    pub set_desired: fn(&mut DesiredPrice, Value),
}

macro_rules! scalar {
    ($name:ident, $change:ident, $codec:ident, $unset:ident, $check:expr) => {
        PriceField {
            name: stringify!($name),
            change: Mutability::$change,
            scalar: Some(Scalar {
                codec: Codec::$codec,
                unset: Unset::$unset,
                check: $check,
                catalog: |p| to_value(&p.$name),
                set_catalog: |p, v| {
                    p.$name = serde_json::from_value(v)?;
                    Ok(())
                },
                desired: |d| to_value(&d.$name),
                set_desired: |d, v| d.$name = serde_json::from_value(v).unwrap_or_default(),
            }),
        }
    };
}

const fn structured(name: &'static str, change: Mutability) -> PriceField {
    PriceField {
        name,
        change,
        scalar: None,
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
pub const PRICE_FIELDS: &[PriceField] = &[
    structured("currency", Mutability::NewPrice),
    structured("unit_amount", Mutability::NewPrice),
    structured("recurring", Mutability::NewPrice),
    structured("tiers", Mutability::NewPrice),
    structured("custom_unit_amount", Mutability::NewPrice),
    structured("transform_quantity", Mutability::NewPrice),
    structured("currency_options", Mutability::InPlaceUnlessRemoved),
    scalar!(nickname, InPlace, Text, Clears, |_, _| {}),
    scalar!(
        tax_behavior,
        InPlaceWhileUnspecified,
        Text,
        LeavesStripe,
        check_tax_behavior
    ),
    structured("metadata", Mutability::InPlace),
    structured("active", Mutability::InPlace),
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
        self.codec.normalize((self.catalog)(price))
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
        self.codec.normalize((self.catalog)(product))
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

/// Null, or an empty list: nothing said.
pub fn is_unset(value: &Value) -> bool {
    value.is_null() || value.as_array().is_some_and(Vec::is_empty)
}

impl Codec {
    /// A catalog value as a plan holds it (trimmed texts, empty text unset, numbers as floats).
    pub fn normalize(self, value: Value) -> Value {
        match self {
            Codec::Name => Value::String(value.as_str().unwrap_or_default().trim().to_string()),
            Codec::Text => trimmed(&value),
            Codec::Flag => value.as_bool().map_or(Value::Null, Value::Bool),
            Codec::Texts => strings(&value, |v| v.as_str().map(str::to_string)),
            Codec::Names => strings(&value, |v| v.as_str().map(|s| s.trim().to_string())),
            Codec::Numbers(_) => floats(&value),
        }
    }

    /// Stripe's JSON of a field as a plan holds it.
    pub fn from_stripe(self, value: &Value) -> Value {
        match self {
            Codec::Name => Value::String(value.as_str().unwrap_or_default().to_string()),
            Codec::Text => match value {
                Value::String(s) if !s.is_empty() => value.clone(),
                // An expanded object (a tax code): its id.
                Value::Object(o) => o.get("id").cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            },
            Codec::Flag => value.as_bool().map_or(Value::Null, Value::Bool),
            Codec::Texts => strings(value, |v| v.as_str().map(str::to_string)),
            Codec::Names => strings(value, |v| {
                v.as_str()
                    .or_else(|| v["name"].as_str())
                    .map(str::to_string)
            }),
            Codec::Numbers(_) => floats(value),
        }
    }

    /// The form parameters of a value, in Stripe's bracket dialect; an unset value is sent
    /// empty, which clears it.
    pub fn form(self, name: &str, value: &Value) -> Vec<(String, String)> {
        let empty = || vec![(name.to_string(), String::new())];
        match (self, value) {
            (Codec::Name | Codec::Text, Value::String(s)) => vec![(name.to_string(), s.clone())],
            (Codec::Flag, Value::Bool(b)) => vec![(name.to_string(), b.to_string())],
            (Codec::Texts, Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{name}[{i}]"), v.as_str().unwrap_or("").to_string()))
                .collect(),
            (Codec::Names, Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let text = v.as_str().unwrap_or("").to_string();
                    (format!("{name}[{i}][name]"), text)
                })
                .collect(),
            (Codec::Numbers(_), Value::Object(o)) => o
                .iter()
                .map(|(k, v)| (format!("{name}[{k}]"), number_text(v)))
                .collect(),
            _ => empty(),
        }
    }

    /// A value as a person reads it: `"text"`, `[a, b]`, `true`, or `(none)`.
    pub fn show(self, value: &Value) -> String {
        match value {
            Value::Null => "(none)".into(),
            Value::String(s) => format!("\"{s}\""),
            Value::Array(items) if items.is_empty() => "(none)".into(),
            Value::Array(items) => {
                let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                format!("[{}]", items.join(", "))
            }
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| format!("{k} {}", number_text(v)))
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        }
    }

    /// How a catalog column holds the field.
    pub fn stored(self) -> Stored {
        match self {
            Codec::Name | Codec::Texts | Codec::Names => Stored::Text { required: true },
            Codec::Text | Codec::Numbers(_) => Stored::Text { required: false },
            Codec::Flag => Stored::Flag,
        }
    }

    /// What a JSON column must hold, for a message.
    pub fn shape(self) -> String {
        match self {
            Codec::Texts | Codec::Names => "a JSON array of strings".into(),
            Codec::Numbers(keys) => match keys.split_last() {
                Some((last, rest)) => format!("a JSON object of {} and {last}", rest.join(", ")),
                None => "a JSON object".into(),
            },
            Codec::Name | Codec::Text => "text".into(),
            Codec::Flag => "true or false".into(),
        }
    }

    /// A catalog column's value as JSON (lists and objects parsed from their text); an error
    /// says what the column should hold.
    pub fn from_column(self, column: Column) -> Result<Value, String> {
        match (self, column) {
            (Codec::Flag, Column::Flag(flag)) => Ok(flag.map_or(Value::Null, Value::Bool)),
            (Codec::Name | Codec::Text, Column::Text(text)) => {
                Ok(text.map_or(Value::Null, Value::String))
            }
            (Codec::Texts | Codec::Names | Codec::Numbers(_), Column::Text(None)) => {
                Ok(Value::Null)
            }
            (Codec::Texts | Codec::Names | Codec::Numbers(_), Column::Text(Some(raw))) => {
                serde_json::from_str(&raw).map_err(|e| format!("is not {}: {e}", self.shape()))
            }
            (_, column) => Err(format!("is not {}: {column:?}", self.shape())),
        }
    }

    /// A normalised value as a catalog column stores it: text, a flag, or (lists and objects)
    /// JSON text; `None` for unset.
    pub fn column(self, value: &Value) -> Column {
        match self {
            Codec::Flag => Column::Flag(value.as_bool()),
            Codec::Name => Column::Text(Some(value.as_str().unwrap_or_default().to_string())),
            Codec::Text => Column::Text(value.as_str().map(str::to_string)),
            Codec::Texts | Codec::Names if value.is_array() => {
                Column::Text(Some(value.to_string()))
            }
            Codec::Texts | Codec::Names => Column::Text(Some("[]".into())),
            Codec::Numbers(_) => Column::Text(value.is_object().then(|| value.to_string())),
        }
    }
}

/// How a catalog column holds a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A text column (lists and objects as JSON text); `required`: never NULL.
    Text {
        /// NULL is a corrupt row.
        required: bool,
    },
    /// A boolean column.
    Flag,
}

/// A field's value as a catalog column holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A text column (lists and objects as JSON text).
    Text(Option<String>),
    /// A boolean column.
    Flag(Option<bool>),
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("a product field serializes to JSON")
}

fn trimmed(value: &Value) -> Value {
    match value.as_str().map(str::trim) {
        Some(s) if !s.is_empty() => Value::String(s.to_string()),
        _ => Value::Null,
    }
}

fn strings(value: &Value, item: impl Fn(&Value) -> Option<String>) -> Value {
    Value::Array(
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(item)
            .map(Value::String)
            .collect(),
    )
}

/// An object's numbers as floats (Stripe may answer `1` for the `1.0` it was sent).
fn floats(value: &Value) -> Value {
    match value.as_object() {
        Some(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = v
                        .as_f64()
                        .and_then(serde_json::Number::from_f64)
                        .map_or_else(|| v.clone(), Value::Number);
                    (k.clone(), v)
                })
                .collect::<Map<_, _>>(),
        ),
        None => Value::Null,
    }
}

/// A number as Stripe's forms take it: `2` for 2.0, `2.5` for 2.5.
fn number_text(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| value.to_string(), |f| f.to_string())
}

fn issue(field: impl Into<String>, reason: impl Into<String>) -> ValidationIssue {
    ValidationIssue {
        field: field.into(),
        reason: reason.into(),
    }
}

fn text(value: &Value) -> Option<&str> {
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

/// An absolute URL of one of `schemes`, at most 2,048 characters.
pub fn is_url(raw: &str, schemes: &[&str]) -> bool {
    raw.len() <= 2048
        && url::Url::parse(raw)
            .is_ok_and(|u| schemes.contains(&u.scheme()) && u.host_str().is_some())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::PackageDimensions;

    /// A product with every field set, as the catalog holds it (untrimmed where trimming matters).
    fn catalog() -> CatalogProduct {
        CatalogProduct {
            name: " Mug ".into(),
            description: Some("A mug ".into()),
            images: vec!["https://example.com/mug.png".into()],
            url: Some("https://example.com/mug".into()),
            unit_label: Some("cup".into()),
            tax_code: Some("txcd_99999999".into()),
            shippable: Some(true),
            statement_descriptor: Some("MUG SHOP".into()),
            package_dimensions: Some(PackageDimensions {
                height: 4.0,
                length: 5.0,
                weight: 12.5,
                width: 5.0,
            }),
            marketing_features: vec![" Dishwasher safe".into()],
            ..CatalogProduct::default()
        }
    }

    /// The same product as Stripe answers it: an expanded tax code, features as objects, whole
    /// numbers without a fraction.
    fn stripe() -> Value {
        json!({
            "id": "sku-1", "name": "Mug", "description": "A mug",
            "images": ["https://example.com/mug.png"], "url": "https://example.com/mug",
            "unit_label": "cup", "tax_code": {"id": "txcd_99999999", "object": "tax_code"},
            "shippable": true, "statement_descriptor": "MUG SHOP",
            "package_dimensions": {"height": 4, "length": 5, "weight": 12.5, "width": 5},
            "marketing_features": [{"name": "Dishwasher safe"}],
        })
    }

    #[test]
    fn a_synced_product_needs_no_write_in_any_field() {
        for field in PRODUCT_FIELDS {
            let desired = field.from_catalog(&catalog());
            assert!(field.issues(&desired).is_empty(), "{}", field.name);
            assert_eq!(desired, field.from_stripe(&stripe()), "{}", field.name);
            assert!(
                field
                    .form(&desired, Some(&field.from_stripe(&stripe())))
                    .is_empty(),
                "{}",
                field.name
            );
        }
    }

    #[test]
    fn an_unset_value_clears_stripe_or_leaves_it_as_its_entry_says() {
        let empty = CatalogProduct {
            name: "Mug".into(),
            ..CatalogProduct::default()
        };
        for field in PRODUCT_FIELDS.iter().filter(|f| f.name != "name") {
            let desired = field.from_catalog(&empty);
            assert!(is_unset(&desired), "{}", field.name);
            let sent = field.form(&desired, Some(&field.from_stripe(&stripe())));
            match field.unset {
                Unset::Clears => assert_eq!(sent, [(field.name.into(), String::new())]),
                Unset::LeavesStripe => assert!(sent.is_empty(), "{}", field.name),
            }
            // A new product is created without it.
            assert!(field.form(&desired, None).is_empty(), "{}", field.name);
        }
    }

    #[test]
    fn values_are_sent_in_stripes_bracket_dialect() {
        let form: Vec<(String, String)> = PRODUCT_FIELDS
            .iter()
            .flat_map(|f| f.form(&f.from_catalog(&catalog()), None))
            .collect();
        let sent = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(sent("name"), Some("Mug"));
        assert_eq!(sent("description"), Some("A mug"));
        assert_eq!(sent("images[0]"), Some("https://example.com/mug.png"));
        assert_eq!(sent("shippable"), Some("true"));
        assert_eq!(sent("package_dimensions[height]"), Some("4"));
        assert_eq!(sent("package_dimensions[weight]"), Some("12.5"));
        assert_eq!(sent("marketing_features[0][name]"), Some("Dishwasher safe"));
        assert_eq!(form.len(), 13, "{form:?}");
    }

    #[test]
    fn a_column_gives_back_the_value_it_stores() {
        for field in PRODUCT_FIELDS {
            let value = field.from_catalog(&catalog());
            let stored = field.codec.column(&value);
            let mut product = CatalogProduct::default();
            (field.set_catalog)(&mut product, field.codec.from_column(stored).unwrap()).unwrap();
            assert_eq!(field.from_catalog(&product), value, "{}", field.name);
        }
        let images = product_field("images").unwrap();
        assert_eq!(
            images
                .codec
                .from_column(Column::Text(Some("{\"a\": 1}".into())))
                .map(|v| (images.set_catalog)(&mut CatalogProduct::default(), v).is_err()),
            Ok(true)
        );
        assert!(
            images
                .codec
                .from_column(Column::Text(Some("[".into())))
                .unwrap_err()
                .starts_with("is not a JSON array of strings")
        );
    }

    #[test]
    fn the_tax_behaviors_entry_is_the_tax_behavior() {
        assert_eq!(TAX_BEHAVIOR.name, "tax_behavior");
        assert_eq!(TAX_BEHAVIOR.change, Mutability::InPlaceWhileUnspecified);
    }

    #[test]
    fn a_price_scalar_left_unset_clears_or_leaves_stripes_value() {
        let stripe = json!({"nickname": "Monthly", "tax_behavior": "exclusive"});
        let unset = CatalogPrice::default();
        for (name, scalar) in price_scalars() {
            let desired = scalar.from_catalog(&unset);
            let have = scalar.codec.from_stripe(&stripe[name]);
            assert_eq!(
                scalar.differs(&desired, &have),
                scalar.unset == Unset::Clears,
                "{name}"
            );
            assert!(!scalar.differs(&have, &have), "{name}");
        }
        let bad = CatalogPrice {
            tax_behavior: Some(" gross ".into()),
            ..CatalogPrice::default()
        };
        let issues = TAX_BEHAVIOR.scalar.unwrap().issues(
            "prices[1].",
            &TAX_BEHAVIOR.scalar.unwrap().from_catalog(&bad),
        );
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].field, "prices[1].tax_behavior");
    }

    #[test]
    fn every_rule_names_its_field() {
        let bad = CatalogProduct {
            name: "x".repeat(MAX_NAME + 1),
            description: Some("x".repeat(MAX_DESCRIPTION + 1)),
            images: vec!["http://insecure.example.com/a.png".into()],
            url: Some("javascript:alert(1)".into()),
            unit_label: Some("x".repeat(MAX_UNIT_LABEL + 1)),
            tax_code: Some("txcd_1".into()),
            statement_descriptor: Some("1234".into()),
            package_dimensions: Some(PackageDimensions {
                height: 1.0,
                length: 0.0,
                weight: f64::NAN,
                width: 1.0,
            }),
            marketing_features: vec![" ".into()],
            ..CatalogProduct::default()
        };
        for field in PRODUCT_FIELDS.iter().filter(|f| f.name != "shippable") {
            let issues = field.issues(&field.from_catalog(&bad));
            assert!(!issues.is_empty(), "{}", field.name);
            for issue in issues {
                assert!(issue.field.starts_with(field.name), "{issue}");
            }
        }
    }
}
