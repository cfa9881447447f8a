//! Catalog product → the Stripe state it asks for. Pure: no I/O, no clock, so it is unit-tested
//! here and its output is the same on every replay.
//!
//! | catalog | Stripe product | rule |
//! |---|---|---|
//! | `id` | `id` | verbatim; letters, digits, `_`, `-`; at most 100 characters |
//! | `name` | `name` | required, at most 250 characters |
//! | `description` | `description` | empty → unset |
//! | `active` and not deleted | `active` | soft-deleted or missing rows archive the product |
//! | `images` | `images` | at most 8, each an `https://` URL |
//! | `url` | `url` | `http(s)://` URL |
//! | `unit_label` | `unit_label` | at most 12 characters |
//! | `tax_code` | `tax_code` | `txcd_` followed by 8 digits |
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
//! | (product, currency, period) | `lookup_key` | `cs:{id}:{currency}:{interval}x{count}` or `…:one_time`; one price per key |
//! | first price | product `default_price` | |

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use workflows::activities::TransformOutput;
use workflows::model::{
    CatalogProduct, DesiredPrice, DesiredProduct, Recurring, SyncPlan, ValidationIssue,
};

pub use domain::limits::{MAX_AMOUNT, MAX_ID, MAX_NAME};
pub use domain::metadata::{
    META_CATALOG, META_HASH, META_ID, META_MANAGED, META_VERSION, RESERVED_PREFIX,
};

/// ISO 4217 codes Stripe accepts for prices.
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
    let name = product.name.trim();
    let mut issues = check_ownable(&OwnableFields {
        name,
        images: &product.images,
        url: product.url.as_deref(),
        unit_label: product.unit_label.as_deref(),
        tax_code: product.tax_code.as_deref(),
    });
    check_metadata(&product.metadata, &mut issues);
    let prices = check_prices(catalog_id, product, &mut issues);
    if !issues.is_empty() {
        return TransformOutput::Invalid(issues);
    }

    let mut desired = DesiredProduct {
        stripe_id: catalog_id.to_string(),
        catalog_id: catalog_id.to_string(),
        name: name.to_string(),
        description: non_empty(&product.description),
        active: product.active,
        images: product.images.clone(),
        url: non_empty(&product.url),
        unit_label: non_empty(&product.unit_label),
        tax_code: non_empty(&product.tax_code),
        metadata: product.metadata.clone(),
        prices,
        content_hash: String::new(),
        catalog_version: product.version,
    };
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

/// The product fields whose owner can be configured, as values to check (from the catalog, or
/// as Stripe has them).
#[derive(Debug, Clone, Copy)]
pub struct OwnableFields<'a> {
    /// Name (trimmed).
    pub name: &'a str,
    /// Image URLs.
    pub images: &'a [String],
    /// Product page.
    pub url: Option<&'a str>,
    /// Unit label.
    pub unit_label: Option<&'a str>,
    /// Tax code id.
    pub tax_code: Option<&'a str>,
}

/// The rules of the table above for the ownable product fields. The same rules judge a value
/// edited in Stripe before catalog-sync keeps it or writes it back (see [`crate::ownership`]).
pub fn check_ownable(f: &OwnableFields<'_>) -> Vec<ValidationIssue> {
    let mut issues = Vec::new();
    let name = f.name.trim();
    if name.is_empty() {
        issues.push(issue("name", "is required"));
    } else if name.chars().count() > MAX_NAME {
        issues.push(issue(
            "name",
            format!(
                "must be at most {MAX_NAME} characters, has {}",
                name.chars().count()
            ),
        ));
    }
    if f.images.len() > 8 {
        issues.push(issue(
            "images",
            format!("at most 8 images, has {}", f.images.len()),
        ));
    }
    for (i, image) in f.images.iter().enumerate() {
        if !is_url(image, &["https"]) {
            issues.push(issue(
                format!("images[{i}]"),
                format!("must be an https:// URL, got {image:?}"),
            ));
        }
    }
    if let Some(url) = present(f.url)
        && !is_url(url, &["https", "http"])
    {
        issues.push(issue(
            "url",
            format!("must be an http(s):// URL, got {url:?}"),
        ));
    }
    if present(f.unit_label).is_some_and(|label| label.chars().count() > 12) {
        issues.push(issue("unit_label", "must be at most 12 characters"));
    }
    if let Some(code) = present(f.tax_code) {
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
    issues
}

/// The trimmed text, unless there is none: empty and absent are the same to Stripe.
fn present(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

fn non_empty(v: &Option<String>) -> Option<String> {
    present(v.as_deref()).map(str::to_string)
}

fn is_url(raw: &str, schemes: &[&str]) -> bool {
    raw.len() <= 2048
        && url::Url::parse(raw)
            .is_ok_and(|u| schemes.contains(&u.scheme()) && u.host_str().is_some())
}

fn check_metadata(metadata: &BTreeMap<String, String>, issues: &mut Vec<ValidationIssue>) {
    if metadata.len() > 46 {
        issues.push(issue(
            "metadata",
            format!(
                "at most 46 keys (Stripe allows 50, catalog-sync uses 4), has {}",
                metadata.len()
            ),
        ));
    }
    for (key, value) in metadata {
        let field = format!("metadata.{key}");
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
                let max = match interval {
                    "day" => Some(1095),
                    "week" => Some(156),
                    "month" => Some(36),
                    "year" => Some(3),
                    _ => None,
                };
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
                })
            }
        };
        if !ok {
            continue;
        }
        let key = lookup_key(catalog_id, &currency, recurring.as_ref());
        if out.iter().any(|p| p.lookup_key == key) {
            issues.push(issue(
                field("currency"),
                format!("another price already has this currency and billing period ({key})"),
            ));
            continue;
        }
        out.push(DesiredPrice {
            lookup_key: key,
            currency,
            unit_amount: price.unit_amount,
            recurring,
            nickname: non_empty(&price.nickname),
        });
    }
    out
}

/// Hash of the synced content (not the version): equal hashes mean Stripe needs no write.
pub fn content_hash(d: &DesiredProduct) -> String {
    let canonical = serde_json::json!({
        "name": d.name, "description": d.description, "active": d.active, "images": d.images,
        "url": d.url, "unit_label": d.unit_label, "tax_code": d.tax_code,
        "metadata": d.metadata, "prices": d.prices,
    });
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use workflows::model::CatalogPrice;

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
