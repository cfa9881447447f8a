//! Catalog product → the Stripe state it asks for. Pure: no I/O, no clock, so it is unit-tested
//! here and its output is the same on every replay.
//!
//! | catalog | Stripe product | rule |
//! |---|---|---|
//! | `id` | `id` | verbatim; letters, digits, `_`, `-`; at most 100 characters |
//! | `active` and not deleted | `active` | soft-deleted or missing rows archive the product |
//! | name, description, images, … | the same | one entry each in [`crate::fields::PRODUCT_FIELDS`], with its rule |
//! | `metadata` | `metadata` | at most 46 keys (4 are catalog-sync's), keys ≤ 40 chars without `[` `]`, values ≤ 500 chars, no `catalog_sync_` prefix |
//! | — | `metadata.catalog_sync_managed` | `"true"`: catalog-sync owns this product |
//! | `id` | `metadata.catalog_sync_id` | the catalog id |
//! | `version` | `metadata.catalog_sync_version` | the catalog version synced |
//! | (content) | `metadata.catalog_sync_hash` | hash of all synced content except the version |
//!
//! | catalog price | Stripe price | rule |
//! |---|---|---|
//! | `currency` | `currency` | a Stripe-supported ISO 4217 code, lowercased |
//! | `unit_amount` | `unit_amount` | integer minor units, 0 ..= 99,999,999 |
//! | `recurring_interval[_count]` | `recurring` | day/week/month/year; count 1..=1095 days, 156 weeks, 36 months, 3 years |
//! | the nickname and the tax behavior | the same | one entry each in [`crate::fields::PRICE_FIELDS`], with its rule (the tax behavior: `inclusive`, `exclusive` or `unspecified`; unset leaves Stripe's value) |
//! | `tiers`, `tiers_mode` | `billing_scheme=tiered`, `tiers`, `tiers_mode` | `graduated` or `volume`; `up_to` increasing, the last unset (`inf`); each tier a unit or flat amount; `unit_amount` 0 |
//! | `currency_options` | `currency_options` | other supported currencies than the price's; each a `unit_amount` (or the same tiers' amounts), optional tax behavior |
//! | `custom_unit_amount` | `custom_unit_amount[enabled]=true` | one-off prices only; minimum ≤ preset ≤ maximum; `unit_amount` 0 |
//! | `transform_quantity` | `transform_quantity` | `divide_by` ≥ 1, `round` up or down; not with tiers |
//! | `usage_type`, `meter` | `recurring[usage_type]=metered`, `recurring[meter]` | metered prices are recurring and name their Billing Meter (`mtr_…`) |
//! | `metadata` | `metadata` | as the product's, plus catalog-sync's two marker keys |
//! | `lookup_key`, or (product, currency, period) | `lookup_key` | the catalog's own key (at most 200 characters, not `cs:…`; refused at sync time if a price of another product holds it), else `cs:{id}:{currency}:{interval}x{count}` or `…:one_time`; one price per key |
//! | first price | product `default_price` | |

use std::collections::BTreeMap;

use crate::model::{
    CatalogPrice, CatalogProduct, DERIVED_LOOKUP_KEY_PREFIX, DesiredPrice, DesiredProduct,
    PriceTier, Recurring, SyncPlan, TransformOutput, ValidationIssue,
};
use sha2::{Digest, Sha256};

use crate::fields::{Hashed, PRODUCT_FIELDS, TAX_BEHAVIOR, is_unset, price_scalars};

pub use crate::limits::{
    CURRENCIES, MAX_AMOUNT, MAX_DESCRIPTION, MAX_ID, MAX_IMAGES, MAX_LOOKUP_KEY,
    MAX_MARKETING_FEATURE_NAME, MAX_MARKETING_FEATURES, MAX_NAME, MAX_STATEMENT_DESCRIPTOR,
    MAX_UNIT_LABEL, TAX_BEHAVIORS,
};
pub use crate::metadata::{
    META_CATALOG, META_HASH, META_ID, META_MANAGED, META_VERSION, RESERVED_PREFIX,
};

/// The lookup key of a price: stable across amount changes, unique per (product, currency, period).
pub fn lookup_key(catalog_id: &str, currency: &str, recurring: Option<&Recurring>) -> String {
    match recurring {
        Some(r) => format!(
            "cs:{catalog_id}:{currency}:{}x{}",
            r.interval, r.interval_count
        ),
        None => format!("cs:{catalog_id}:{currency}:one_time"),
    }
}

/// Validates the id alone (also used before any fetch).
pub fn check_id(id: &str) -> Option<ValidationIssue> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (!ok).then(|| issue(
        "id",
        format!("must be 1-{MAX_ID} characters of letters, digits, '_' or '-' (Stripe-safe), got {id:?}"),
    ))
}

fn issue(field: impl Into<String>, reason: impl Into<String>) -> ValidationIssue {
    ValidationIssue {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Turns a fetched catalog row into a plan, or every reason it cannot be synced.
pub fn transform(catalog_id: &str, product: Option<&CatalogProduct>) -> TransformOutput {
    if let Some(problem) = check_id(catalog_id) {
        return TransformOutput::Invalid(vec![problem]);
    }
    let product = match product {
        Some(p) if !p.deleted => p,
        _ => {
            return TransformOutput::Plan(Box::new(SyncPlan::Archive {
                stripe_id: catalog_id.to_string(),
                catalog_id: catalog_id.to_string(),
            }));
        }
    };
    let mut desired = DesiredProduct {
        stripe_id: catalog_id.to_string(),
        catalog_id: catalog_id.to_string(),
        active: product.active,
        metadata: product.metadata.clone(),
        catalog_version: product.version,
        ..DesiredProduct::default()
    };
    let mut issues = Vec::new();
    for field in PRODUCT_FIELDS {
        let value = field.from_catalog(product);
        (field.check)(&value, &mut issues);
        (field.set_desired)(&mut desired, value);
    }
    check_metadata("metadata", &product.metadata, &mut issues);
    desired.prices = check_prices(catalog_id, product, &mut issues);
    if !issues.is_empty() {
        return TransformOutput::Invalid(issues);
    }
    desired.content_hash = content_hash(&desired);
    desired.metadata.insert(META_MANAGED.into(), "true".into());
    desired.metadata.insert(META_ID.into(), catalog_id.into());
    desired
        .metadata
        .insert(META_VERSION.into(), product.version.to_string());
    desired
        .metadata
        .insert(META_HASH.into(), desired.content_hash.clone());
    TransformOutput::Plan(Box::new(SyncPlan::Upsert(Box::new(desired))))
}

/// The trimmed text, unless there is none: empty and absent are the same to Stripe.
fn present(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

fn non_empty(v: &Option<String>) -> Option<String> {
    present(v.as_deref()).map(str::to_string)
}

fn check_metadata(
    field: &str,
    metadata: &BTreeMap<String, String>,
    issues: &mut Vec<ValidationIssue>,
) {
    if metadata.len() > 46 {
        issues.push(issue(
            field,
            format!(
                "at most 46 keys (Stripe allows 50, catalog-sync uses 4), has {}",
                metadata.len()
            ),
        ));
    }
    for (key, value) in metadata {
        let field = format!("{field}.{key}");
        if key.is_empty() || key.chars().count() > 40 {
            issues.push(issue(&field, "keys must be 1-40 characters"));
        }
        if key.contains('[') || key.contains(']') {
            issues.push(issue(&field, "keys cannot contain square brackets"));
        }
        if key.starts_with(RESERVED_PREFIX) {
            issues.push(issue(
                &field,
                format!("the prefix {RESERVED_PREFIX} is reserved for catalog-sync"),
            ));
        }
        if value.chars().count() > 500 {
            issues.push(issue(&field, "values must be at most 500 characters"));
        }
    }
}

fn check_prices(
    catalog_id: &str,
    product: &CatalogProduct,
    issues: &mut Vec<ValidationIssue>,
) -> Vec<DesiredPrice> {
    let mut out: Vec<DesiredPrice> = Vec::new();
    for (i, price) in product.prices.iter().enumerate() {
        let field = |f: &str| format!("prices[{i}].{f}");
        let currency = price.currency.trim().to_ascii_lowercase();
        let mut ok = true;
        if !CURRENCIES.contains(&currency.as_str()) {
            issues.push(issue(
                field("currency"),
                format!("{:?} is not a currency Stripe supports", price.currency),
            ));
            ok = false;
        }
        if !(0..=MAX_AMOUNT).contains(&price.unit_amount) {
            issues.push(issue(
                field("unit_amount"),
                format!(
                    "must be between 0 and {MAX_AMOUNT} minor units, got {}",
                    price.unit_amount
                ),
            ));
            ok = false;
        }
        let before = issues.len();
        for (_, scalar) in price_scalars() {
            issues.extend(scalar.issues(&field(""), &scalar.from_catalog(price)));
        }
        check_metadata(&field("metadata"), &price.metadata, issues);
        check_price_scheme(i, price, &currency, issues);
        ok &= issues.len() == before;
        let recurring = match price
            .recurring_interval
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => {
                if price.recurring_interval_count.is_some() {
                    issues.push(issue(
                        field("recurring_interval_count"),
                        "set without recurring_interval",
                    ));
                    ok = false;
                }
                None
            }
            Some(interval) => {
                let count = price.recurring_interval_count.unwrap_or(1);
                let max = crate::limits::max_interval_count(interval);
                match max {
                    None => {
                        issues.push(issue(
                            field("recurring_interval"),
                            format!("must be day, week, month or year, got {interval:?}"),
                        ));
                        ok = false;
                    }
                    Some(max) if !(1..=max).contains(&count) => {
                        issues.push(issue(
                            field("recurring_interval_count"),
                            format!("must be 1-{max} for {interval}, got {count}"),
                        ));
                        ok = false;
                    }
                    Some(_) => {}
                }
                Some(Recurring {
                    interval: interval.to_string(),
                    interval_count: count,
                    meter: (present(price.usage_type.as_deref()) == Some("metered"))
                        .then(|| non_empty(&price.meter))
                        .flatten(),
                })
            }
        };
        let own_key = present(price.lookup_key.as_deref());
        if let Some(key) = own_key {
            if key.chars().count() > MAX_LOOKUP_KEY {
                issues.push(issue(
                    field("lookup_key"),
                    format!("must be at most {MAX_LOOKUP_KEY} characters"),
                ));
                ok = false;
            }
            if key.starts_with(DERIVED_LOOKUP_KEY_PREFIX) {
                issues.push(issue(
                    field("lookup_key"),
                    format!("the prefix {DERIVED_LOOKUP_KEY_PREFIX} is catalog-sync's own"),
                ));
                ok = false;
            }
        }
        if !ok {
            continue;
        }
        let key = match own_key {
            Some(key) => key.to_string(),
            None => lookup_key(catalog_id, &currency, recurring.as_ref()),
        };
        if out.iter().any(|p| p.lookup_key == key) {
            let at = if own_key.is_some() {
                "lookup_key"
            } else {
                "currency"
            };
            issues.push(issue(
                field(at),
                format!("another price of the product already has the lookup key {key:?}"),
            ));
            continue;
        }
        let mut desired = DesiredPrice {
            lookup_key: key,
            currency,
            unit_amount: price.unit_amount,
            recurring,
            metadata: price.metadata.clone(),
            tiers: price.tiers.clone(),
            tiers_mode: non_empty(&price.tiers_mode),
            currency_options: price
                .currency_options
                .iter()
                .map(|(c, o)| (c.trim().to_ascii_lowercase(), o.clone().normalized()))
                .collect(),
            custom_unit_amount: price.custom_unit_amount.clone(),
            transform_quantity: price.transform_quantity.clone(),
            ..DesiredPrice::default()
        };
        for (_, scalar) in price_scalars() {
            (scalar.set_desired)(&mut desired, scalar.from_catalog(price));
        }
        out.push(desired);
    }
    out
}

fn amount_ok(amount: i64) -> bool {
    (0..=MAX_AMOUNT).contains(&amount)
}

/// Tiers, lowest first: increasing `up_to`, the last one open (`up_to` unset, Stripe's `inf`),
/// each with a unit or a flat amount.
fn check_tiers(field: &str, tiers: &[PriceTier], issues: &mut Vec<ValidationIssue>) {
    let mut previous = 0;
    for (t, tier) in tiers.iter().enumerate() {
        let at = |f: &str| format!("{field}[{t}].{f}");
        let last = t + 1 == tiers.len();
        match (tier.up_to, last) {
            (None, true) => {}
            (None, false) => issues.push(issue(
                at("up_to"),
                "only the last tier is open-ended (up_to unset means inf)",
            )),
            (Some(_), true) => issues.push(issue(
                at("up_to"),
                "the last tier must be open-ended: leave up_to unset (inf)",
            )),
            (Some(up_to), false) if up_to <= previous => issues.push(issue(
                at("up_to"),
                format!("must be greater than the previous tier's ({previous}), got {up_to}"),
            )),
            (Some(up_to), false) => previous = up_to,
        }
        if tier.unit_amount.is_none() && tier.flat_amount.is_none() {
            issues.push(issue(
                at("unit_amount"),
                "a tier needs unit_amount or flat_amount",
            ));
        }
        for (name, amount) in [
            ("unit_amount", tier.unit_amount),
            ("flat_amount", tier.flat_amount),
        ] {
            if let Some(amount) = amount
                && !amount_ok(amount)
            {
                issues.push(issue(
                    at(name),
                    format!("must be between 0 and {MAX_AMOUNT} minor units, got {amount}"),
                ));
            }
        }
    }
}

/// Tiers, pay-what-you-want, packages and currency options of price `i` (in `currency`).
fn check_price_scheme(
    i: usize,
    price: &CatalogPrice,
    currency: &str,
    issues: &mut Vec<ValidationIssue>,
) {
    let field = |f: &str| format!("prices[{i}].{f}");
    let tiered = !price.tiers.is_empty();
    let mode = present(price.tiers_mode.as_deref());
    match (tiered, mode) {
        (true, Some("graduated" | "volume")) | (false, None) => {}
        (true, None) => issues.push(issue(
            field("tiers_mode"),
            "graduated or volume is required with tiers",
        )),
        (true, Some(other)) => issues.push(issue(
            field("tiers_mode"),
            format!("must be graduated or volume, got {other:?}"),
        )),
        (false, Some(_)) => issues.push(issue(field("tiers_mode"), "set without tiers")),
    }
    check_tiers(&field("tiers"), &price.tiers, issues);
    if (tiered || price.custom_unit_amount.is_some()) && price.unit_amount != 0 {
        issues.push(issue(
            field("unit_amount"),
            "must be 0 for a tiered or pay-what-you-want price (the tiers or the customer set the amount)",
        ));
    }
    if let Some(custom) = &price.custom_unit_amount {
        if tiered {
            issues.push(issue(
                field("custom_unit_amount"),
                "cannot be combined with tiers",
            ));
        }
        if present(price.recurring_interval.as_deref()).is_some() {
            issues.push(issue(
                field("custom_unit_amount"),
                "only one-off prices take a customer's amount",
            ));
        }
        for (name, amount) in [
            ("minimum", custom.minimum),
            ("maximum", custom.maximum),
            ("preset", custom.preset),
        ] {
            if let Some(amount) = amount
                && !amount_ok(amount)
            {
                issues.push(issue(
                    field(&format!("custom_unit_amount.{name}")),
                    format!("must be between 0 and {MAX_AMOUNT} minor units, got {amount}"),
                ));
            }
        }
        let (low, high) = (
            custom.minimum.unwrap_or(0),
            custom.maximum.unwrap_or(MAX_AMOUNT),
        );
        if low > high {
            issues.push(issue(
                field("custom_unit_amount.minimum"),
                "is above the maximum",
            ));
        }
        if custom.preset.is_some_and(|p| p < low || p > high) {
            issues.push(issue(
                field("custom_unit_amount.preset"),
                "must lie between the minimum and the maximum",
            ));
        }
    }
    let recurring = present(price.recurring_interval.as_deref()).is_some();
    match (
        present(price.usage_type.as_deref()),
        present(price.meter.as_deref()),
    ) {
        (None | Some("licensed"), None) => {}
        (None | Some("licensed"), Some(_)) => issues.push(issue(
            field("meter"),
            "only a metered price (usage_type metered) has a meter",
        )),
        (Some("metered"), _) if !recurring => issues.push(issue(
            field("usage_type"),
            "a metered price must be recurring (set recurring_interval)",
        )),
        (Some("metered"), None) => issues.push(issue(
            field("meter"),
            "a metered price needs its Billing Meter id (mtr_…)",
        )),
        (Some("metered"), Some(meter)) => {
            let ok = meter.strip_prefix("mtr_").is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric())
            });
            if !ok {
                issues.push(issue(
                    field("meter"),
                    format!("must be a Billing Meter id like mtr_61Q…, got {meter:?}"),
                ));
            }
        }
        (Some(other), _) => issues.push(issue(
            field("usage_type"),
            format!("must be licensed or metered, got {other:?}"),
        )),
    }
    if let Some(transform) = &price.transform_quantity {
        if tiered {
            issues.push(issue(
                field("transform_quantity"),
                "cannot be combined with tiers",
            ));
        }
        if transform.divide_by < 1 {
            issues.push(issue(
                field("transform_quantity.divide_by"),
                format!("must be at least 1, got {}", transform.divide_by),
            ));
        }
        if !["up", "down"].contains(&transform.round.as_str()) {
            issues.push(issue(
                field("transform_quantity.round"),
                format!("must be up or down, got {:?}", transform.round),
            ));
        }
    }
    for (code, option) in &price.currency_options {
        let at = |f: &str| field(&format!("currency_options.{code}{f}"));
        let lower = code.trim().to_ascii_lowercase();
        if !CURRENCIES.contains(&lower.as_str()) {
            issues.push(issue(
                at(""),
                format!("{code:?} is not a currency Stripe supports"),
            ));
        } else if lower == currency {
            issues.push(issue(at(""), "is the price's own currency"));
        }
        if tiered {
            if option.unit_amount.is_some() || option.tiers.len() != price.tiers.len() {
                issues.push(issue(
                    at(".tiers"),
                    format!("a tiered price needs the same {} tiers in every currency, and no unit_amount", price.tiers.len()),
                ));
            }
            check_tiers(&at(".tiers"), &option.tiers, issues);
            for (t, (theirs, ours)) in option.tiers.iter().zip(&price.tiers).enumerate() {
                if theirs.up_to != ours.up_to {
                    issues.push(issue(
                        at(&format!(".tiers[{t}].up_to")),
                        "must equal the price's own tier's up_to",
                    ));
                }
            }
        } else if price.custom_unit_amount.is_none() {
            match option.unit_amount {
                Some(amount) if amount_ok(amount) => {}
                Some(amount) => issues.push(issue(
                    at(".unit_amount"),
                    format!("must be between 0 and {MAX_AMOUNT} minor units, got {amount}"),
                )),
                None => issues.push(issue(at(".unit_amount"), "is required")),
            }
            if !option.tiers.is_empty() {
                issues.push(issue(at(".tiers"), "only a tiered price has tiers"));
            }
        }
        // The tax behavior in this currency follows the price's own rule.
        if let Some(scalar) = &TAX_BEHAVIOR.scalar {
            issues.extend(scalar.issues(&at("."), &serde_json::json!(option.tax())));
        }
    }
}

/// Hash of the synced content (not the version): equal hashes mean Stripe needs no write.
pub fn content_hash(d: &DesiredProduct) -> String {
    let mut canonical = serde_json::json!({
        "active": d.active, "metadata": d.metadata, "prices": d.prices,
    });
    for field in PRODUCT_FIELDS {
        let value = (field.desired)(d);
        if field.hashed == Hashed::Always || !is_unset(&value) {
            canonical[field.name] = value;
        }
    }
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CatalogPrice;

    fn product() -> CatalogProduct {
        CatalogProduct {
            id: "sku-1".into(),
            name: "Hat".into(),
            active: true,
            images: vec!["https://img.example/hat.png".into()],
            version: 3,
            prices: vec![
                CatalogPrice {
                    currency: "USD".into(),
                    unit_amount: 1999,
                    ..Default::default()
                },
                CatalogPrice {
                    currency: "jpy".into(),
                    unit_amount: 500,
                    recurring_interval: Some("month".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn plan(p: &CatalogProduct) -> DesiredProduct {
        match transform(&p.id, Some(p)) {
            TransformOutput::Plan(plan) => match *plan {
                SyncPlan::Upsert(d) => *d,
                other => panic!("expected an upsert, got {other:?}"),
            },
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    #[test]
    fn maps_fields_prices_and_marker_metadata() {
        let d = plan(&product());
        assert_eq!(d.stripe_id, "sku-1");
        assert_eq!(d.prices[0].currency, "usd");
        assert_eq!(d.prices[0].lookup_key, "cs:sku-1:usd:one_time");
        assert_eq!(d.prices[1].lookup_key, "cs:sku-1:jpy:monthx1");
        assert_eq!(d.metadata[META_MANAGED], "true");
        assert_eq!(d.metadata[META_VERSION], "3");
        assert_eq!(d.metadata[META_HASH], d.content_hash);
    }

    #[test]
    fn hash_ignores_version_but_not_content() {
        let a = plan(&product());
        let mut p = product();
        p.version = 9;
        assert_eq!(plan(&p).content_hash, a.content_hash);
        p.prices[0].unit_amount = 2099;
        assert_ne!(plan(&p).content_hash, a.content_hash);
    }

    #[test]
    fn products_without_the_later_fields_keep_the_hash_they_were_synced_with() {
        // The hash of this product before shipping, statement, feature, tax-behavior and
        // price-metadata fields existed: an upgrade must not make every product look stale.
        assert_eq!(
            plan(&product()).content_hash,
            "56cd77dc68878f5f71b338a336d8bb67"
        );
        let mut p = product();
        p.shippable = Some(true);
        assert_ne!(plan(&p).content_hash, "56cd77dc68878f5f71b338a336d8bb67");
        let mut p = product();
        p.prices[0].tax_behavior = Some("exclusive".into());
        assert_ne!(plan(&p).content_hash, "56cd77dc68878f5f71b338a336d8bb67");
    }

    #[test]
    fn shipping_statement_and_tax_fields_are_checked() {
        let mut p = product();
        p.statement_descriptor = Some("1234".into());
        p.package_dimensions = Some(crate::model::PackageDimensions {
            height: 1.0,
            length: 0.0,
            weight: f64::NAN,
            width: 2.0,
        });
        p.marketing_features = vec!["ok".into(); 16];
        p.marketing_features[3] = " ".into();
        p.prices[0].tax_behavior = Some("gross".into());
        p.prices[1].metadata.insert("a[b]".into(), "x".into());
        let TransformOutput::Invalid(issues) = transform(&p.id, Some(&p)) else {
            panic!("expected invalid")
        };
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        for expected in [
            "statement_descriptor",
            "package_dimensions.length",
            "package_dimensions.weight",
            "marketing_features",
            "marketing_features[3]",
            "prices[0].tax_behavior",
            "prices[1].metadata.a[b]",
        ] {
            assert!(
                fields.contains(&expected),
                "missing {expected} in {fields:?}"
            );
        }
        assert!(!fields.contains(&"package_dimensions.height"));
        // The longest valid values pass, and are what the plan carries.
        let mut p = product();
        p.statement_descriptor = Some("A".repeat(MAX_STATEMENT_DESCRIPTOR));
        p.marketing_features = vec!["f".repeat(MAX_MARKETING_FEATURE_NAME); MAX_MARKETING_FEATURES];
        p.shippable = Some(false);
        p.prices[0].tax_behavior = Some("inclusive".into());
        let d = plan(&p);
        assert_eq!(d.shippable, Some(false));
        assert_eq!(d.marketing_features.len(), MAX_MARKETING_FEATURES);
        assert_eq!(d.prices[0].tax_behavior.as_deref(), Some("inclusive"));
    }

    #[test]
    fn a_catalogs_own_lookup_keys_are_checked() {
        let mut p = product();
        p.prices[0].lookup_key = Some("hat-usd".into());
        assert_eq!(plan(&p).prices[0].lookup_key, "hat-usd");
        assert!(plan(&p).prices[0].has_own_lookup_key());
        assert!(!plan(&p).prices[1].has_own_lookup_key());
        p.prices[1].lookup_key = Some("hat-usd".into());
        p.prices.push(CatalogPrice {
            currency: "eur".into(),
            unit_amount: 1,
            lookup_key: Some("cs:other:eur:one_time".into()),
            ..Default::default()
        });
        p.prices.push(CatalogPrice {
            currency: "gbp".into(),
            unit_amount: 1,
            lookup_key: Some("k".repeat(MAX_LOOKUP_KEY + 1)),
            ..Default::default()
        });
        let TransformOutput::Invalid(issues) = transform(&p.id, Some(&p)) else {
            panic!("expected invalid")
        };
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "prices[1].lookup_key",
                "prices[2].lookup_key",
                "prices[3].lookup_key"
            ]
        );
    }

    #[test]
    fn every_rule_reports_its_field() {
        let mut p = product();
        p.name = "x".repeat(251);
        p.images = vec!["http://insecure/img.png".into()];
        p.tax_code = Some("bogus".into());
        p.metadata.insert("catalog_sync_id".into(), "x".into());
        p.metadata.insert("k[1]".into(), "x".into());
        p.prices.push(CatalogPrice {
            currency: "xyz".into(),
            unit_amount: -1,
            ..Default::default()
        });
        p.prices.push(CatalogPrice {
            currency: "usd".into(),
            unit_amount: 100_000_000,
            ..Default::default()
        });
        p.prices.push(CatalogPrice {
            currency: "usd".into(),
            unit_amount: 5,
            ..Default::default()
        });
        p.prices.push(CatalogPrice {
            currency: "eur".into(),
            unit_amount: 5,
            recurring_interval: Some("decade".into()),
            ..Default::default()
        });
        let TransformOutput::Invalid(issues) = transform(&p.id, Some(&p)) else {
            panic!("expected invalid")
        };
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        for expected in [
            "name",
            "images[0]",
            "tax_code",
            "metadata.catalog_sync_id",
            "metadata.k[1]",
            "prices[2].currency",
            "prices[2].unit_amount",
            "prices[3].unit_amount",
            "prices[4].currency",
            "prices[5].recurring_interval",
        ] {
            assert!(
                fields.contains(&expected),
                "missing {expected} in {fields:?}"
            );
        }
    }

    #[test]
    fn bad_ids_and_empty_names_are_invalid() {
        let TransformOutput::Invalid(issues) = transform("a b", None) else {
            panic!()
        };
        assert_eq!(issues[0].field, "id");
        let mut p = product();
        p.name = "  ".into();
        assert!(matches!(
            transform(&p.id, Some(&p)),
            TransformOutput::Invalid(_)
        ));
    }

    #[test]
    fn missing_or_deleted_rows_archive() {
        let archives = |out: TransformOutput| matches!(out, TransformOutput::Plan(plan) if matches!(*plan, SyncPlan::Archive { .. }));
        assert!(archives(transform("sku-1", None)));
        let mut p = product();
        p.deleted = true;
        assert!(archives(transform(&p.id, Some(&p))));
    }
}
