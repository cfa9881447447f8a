//! The objects the sandbox stores, and the rules Stripe applies when creating and updating them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::form::{Params, StringMap};

/// Metadata limits, as documented by Stripe.
pub const METADATA_MAX_KEYS: usize = 50;
/// Longest metadata key.
pub const METADATA_MAX_KEY_LEN: usize = 40;
/// Longest metadata value.
pub const METADATA_MAX_VALUE_LEN: usize = 500;
/// Most images on a product.
pub const MAX_IMAGES: usize = 8;
/// Largest `unit_amount` accepted (eight digits, as Stripe's API does).
pub const MAX_UNIT_AMOUNT: i64 = 99_999_999;

/// ISO 4217 currencies Stripe supports for prices (lowercase, as on the wire).
pub const CURRENCIES: &[&str] = &[
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
    "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
    "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
    "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
    "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
    "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
    "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
    "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd",
    "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
];

/// A Stripe Product.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Product {
    /// `prod_…` or a caller-chosen id.
    pub id: String,
    /// Whether the product is available for purchase.
    pub active: bool,
    /// Creation time (unix seconds).
    pub created: i64,
    /// Last update time (unix seconds).
    pub updated: i64,
    /// The default price id.
    pub default_price: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Up to eight image URLs.
    pub images: Vec<String>,
    /// Feature names.
    pub marketing_features: Vec<String>,
    /// Key-value metadata.
    pub metadata: BTreeMap<String, String>,
    /// Display name.
    pub name: String,
    /// Package dimensions, kept as sent.
    pub package_dimensions: Option<BTreeMap<String, f64>>,
    /// Whether the product is shipped.
    pub shippable: Option<bool>,
    /// Statement descriptor.
    pub statement_descriptor: Option<String>,
    /// Tax code id.
    pub tax_code: Option<String>,
    /// Unit label.
    pub unit_label: Option<String>,
    /// Public URL.
    pub url: Option<String>,
}

impl Product {
    /// The wire form; `default_price` is expanded when `expanded_price` is given.
    pub fn to_json(&self, expanded_price: Option<Value>) -> Value {
        json!({
            "id": self.id,
            "object": "product",
            "active": self.active,
            "attributes": [],
            "created": self.created,
            "default_price": expanded_price.unwrap_or_else(|| json!(self.default_price)),
            "description": self.description,
            "images": self.images,
            "livemode": false,
            "marketing_features": self.marketing_features.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
            "metadata": self.metadata,
            "name": self.name,
            "package_dimensions": self.package_dimensions,
            "shippable": self.shippable,
            "statement_descriptor": self.statement_descriptor,
            "tax_code": self.tax_code,
            "type": "service",
            "unit_label": self.unit_label,
            "updated": self.updated,
            "url": self.url,
        })
    }
}

/// A Stripe Price.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Price {
    /// `price_…`.
    pub id: String,
    /// Whether the price can be used for new purchases.
    pub active: bool,
    /// Creation time (unix seconds).
    pub created: i64,
    /// Lowercase ISO currency.
    pub currency: String,
    /// Lookup key, unique per account.
    pub lookup_key: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Nickname.
    pub nickname: Option<String>,
    /// Owning product id.
    pub product: String,
    /// `(interval, interval_count)` for recurring prices.
    pub recurring: Option<(String, i64)>,
    /// `inclusive`, `exclusive` or `unspecified`.
    pub tax_behavior: String,
    /// Amount in minor units.
    pub unit_amount: i64,
}

impl Price {
    /// The wire form.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "price",
            "active": self.active,
            "billing_scheme": "per_unit",
            "created": self.created,
            "currency": self.currency,
            "custom_unit_amount": null,
            "livemode": false,
            "lookup_key": self.lookup_key,
            "metadata": self.metadata,
            "nickname": self.nickname,
            "product": self.product,
            "recurring": self.recurring.as_ref().map(|(interval, count)| json!({
                "interval": interval,
                "interval_count": count,
                "meter": null,
                "trial_period_days": null,
                "usage_type": "licensed",
            })),
            "tax_behavior": self.tax_behavior,
            "tiers_mode": null,
            "transform_quantity": null,
            "type": if self.recurring.is_some() { "recurring" } else { "one_time" },
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": self.unit_amount.to_string(),
        })
    }
}

/// Applies a metadata update with Stripe's limits.
pub fn apply_metadata(
    target: &mut BTreeMap<String, String>,
    update: StringMap,
    param: &str,
) -> Result<(), ApiError> {
    let mut next = if update.cleared {
        BTreeMap::new()
    } else {
        target.clone()
    };
    for (key, value) in update.entries {
        if key.chars().count() > METADATA_MAX_KEY_LEN {
            return Err(ApiError::invalid(
                format!(
                    "Metadata keys can have up to {METADATA_MAX_KEY_LEN} characters, but key '{key}' has {}.",
                    key.chars().count()
                ),
                Some(format!("{param}[{key}]")),
            ));
        }
        if key.contains('[') || key.contains(']') {
            return Err(ApiError::invalid(
                "Metadata keys cannot contain square brackets.",
                Some(format!("{param}[{key}]")),
            ));
        }
        match value {
            Some(v) if v.chars().count() > METADATA_MAX_VALUE_LEN => {
                return Err(ApiError::invalid(
                    format!(
                        "Metadata values can have up to {METADATA_MAX_VALUE_LEN} characters, but the value for '{key}' has {}.",
                        v.chars().count()
                    ),
                    Some(format!("{param}[{key}]")),
                ));
            }
            Some(v) => {
                next.insert(key, v);
            }
            None => {
                next.remove(&key);
            }
        }
    }
    if next.len() > METADATA_MAX_KEYS {
        return Err(ApiError::invalid(
            format!(
                "Metadata can have up to {METADATA_MAX_KEYS} keys, but {} were given.",
                next.len()
            ),
            Some(param.into()),
        ));
    }
    *target = next;
    Ok(())
}

/// Product fields shared by create and update.
pub fn apply_product_fields(product: &mut Product, p: &mut Params) -> Result<(), ApiError> {
    if let Some(name) = p.string("name")? {
        if name.is_empty() {
            return Err(ApiError::invalid(
                "You must provide a name for the product.",
                Some("name".into()),
            ));
        }
        product.name = name;
    }
    if let Some(v) = p.boolean("active")? {
        product.active = v;
    }
    if let Some(v) = p.nullable_string("description")? {
        product.description = v;
    }
    if let Some(images) = p.string_list("images")? {
        if images.len() > MAX_IMAGES {
            return Err(ApiError::invalid(
                format!("You can provide at most {MAX_IMAGES} images."),
                Some("images".into()),
            ));
        }
        product.images = images;
    }
    if let Some(features) = p.hash_list("marketing_features")? {
        let mut names = Vec::new();
        for mut f in features {
            names.push(f.required_string("name")?);
            f.finish()?;
        }
        product.marketing_features = names;
    }
    if let Some(md) = p.string_map("metadata")? {
        apply_metadata(&mut product.metadata, md, "metadata")?;
    }
    if let Some(mut dims) = p.hash("package_dimensions")? {
        let mut out = BTreeMap::new();
        for key in ["height", "length", "weight", "width"] {
            let raw = dims.required_string(key)?;
            let v = raw.parse::<f64>().map_err(|_| {
                ApiError::invalid(
                    format!("Invalid decimal: {raw}"),
                    Some(format!("package_dimensions[{key}]")),
                )
            })?;
            out.insert(key.to_string(), v);
        }
        dims.finish()?;
        product.package_dimensions = Some(out);
    }
    if let Some(v) = p.boolean("shippable")? {
        product.shippable = Some(v);
    }
    if let Some(v) = p.nullable_string("statement_descriptor")? {
        if v.as_ref().is_some_and(|s| s.chars().count() > 22) {
            return Err(ApiError::invalid(
                "The statement descriptor must be at most 22 characters.",
                Some("statement_descriptor".into()),
            ));
        }
        product.statement_descriptor = v;
    }
    if let Some(v) = p.nullable_string("tax_code")? {
        product.tax_code = v;
    }
    if let Some(v) = p.nullable_string("unit_label")? {
        if v.as_ref().is_some_and(|s| s.chars().count() > 12) {
            return Err(ApiError::invalid(
                "The unit label must be at most 12 characters.",
                Some("unit_label".into()),
            ));
        }
        product.unit_label = v;
    }
    if let Some(v) = p.nullable_string("url")? {
        product.url = v;
    }
    Ok(())
}

/// Validates a currency code.
pub fn currency(raw: String, param: &str) -> Result<String, ApiError> {
    let lower = raw.to_ascii_lowercase();
    if CURRENCIES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ApiError::invalid(
            format!(
                "Invalid currency: {raw}. Stripe currently supports these currencies: {}",
                CURRENCIES.join(", ")
            ),
            Some(param.into()),
        ))
    }
}

/// Validates `unit_amount`.
pub fn unit_amount(amount: i64, param: &str) -> Result<i64, ApiError> {
    if amount < 0 {
        return Err(ApiError::invalid(
            format!("Invalid non-negative integer: {amount}"),
            Some(param.into()),
        )
        .with_code("parameter_invalid_integer"));
    }
    if amount > MAX_UNIT_AMOUNT {
        return Err(ApiError::invalid(
            format!("This value must be less than or equal to {MAX_UNIT_AMOUNT} (it currently is '{amount}')."),
            Some(param.into()),
        )
        .with_code("amount_too_large"));
    }
    Ok(amount)
}

/// Parses `recurring[interval|interval_count]`.
pub fn recurring(mut r: Params, param: &str) -> Result<(String, i64), ApiError> {
    let interval = r
        .string("interval")?
        .ok_or_else(|| ApiError::missing(&format!("{param}[interval]")))?;
    if !["day", "week", "month", "year"].contains(&interval.as_str()) {
        return Err(ApiError::invalid(
            format!("Invalid {param}[interval]: must be one of day, week, month, or year"),
            Some(format!("{param}[interval]")),
        ));
    }
    let count = r.integer("interval_count")?.unwrap_or(1);
    let max = match interval.as_str() {
        "day" => 1095,
        "week" => 156,
        "month" => 36,
        _ => 3,
    };
    if !(1..=max).contains(&count) {
        return Err(ApiError::invalid(
            format!(
                "Invalid {param}[interval_count]: must be between 1 and {max} for interval {interval}"
            ),
            Some(format!("{param}[interval_count]")),
        ));
    }
    r.finish()?;
    Ok((interval, count))
}

/// Parses `tax_behavior`.
pub fn tax_behavior(raw: String) -> Result<String, ApiError> {
    if ["inclusive", "exclusive", "unspecified"].contains(&raw.as_str()) {
        Ok(raw)
    } else {
        Err(ApiError::invalid(
            "Invalid tax_behavior: must be one of inclusive, exclusive, or unspecified",
            Some("tax_behavior".into()),
        ))
    }
}

/// Checks a caller-chosen object id.
pub fn custom_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("Invalid id: {id}. Ids may contain only letters, digits, '_' and '-'."),
            Some("id".into()),
        ))
    }
}
