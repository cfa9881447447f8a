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
    CatalogProduct, DesiredProduct, Recurring, SyncPlan, TransformOutput, ValidationIssue,
};
use sha2::{Digest, Sha256};

use crate::fields::{Hashed, PRODUCT_FIELDS, is_unset};

mod prices;
use prices::check_prices;

use crate::limits::MAX_ID;
use crate::metadata::{META_HASH, META_ID, META_MANAGED, META_VERSION, RESERVED_PREFIX};

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
            let bound = product.and_then(|p| p.bound_stripe_id.as_deref());
            return TransformOutput::Plan(Box::new(SyncPlan::Archive {
                stripe_id: bound.unwrap_or(catalog_id).to_string(),
                catalog_id: catalog_id.to_string(),
            }));
        }
    };
    let stripe_id = match stripe_product(catalog_id, product) {
        Ok(id) => id,
        Err(problem) => return TransformOutput::Invalid(vec![problem]),
    };
    let mut desired = DesiredProduct {
        stripe_id,
        catalog_id: catalog_id.to_string(),
        active: product.active,
        metadata: product.metadata.clone(),
        catalog_version: product.version,
        changed_at: Some(product.updated_at.clone()).filter(|t| !t.is_empty()),
        ..DesiredProduct::default()
    };
    let mut issues = Vec::new();
    for field in PRODUCT_FIELDS {
        let value = field.from_catalog(product);
        let before = issues.len();
        (field.check)(&value, &mut issues);
        if issues.len() == before
            && let Err(e) = (field.access.set_desired)(&mut desired, value)
        {
            issues.push(issue(
                field.name,
                format!("is not {}: {e}", field.codec.shape()),
            ));
        }
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

/// The Stripe product a live row writes to: the one `starter import` bound it to, else its
/// own id. A row naming another product (`stripe_id`) that is not bound to it is refused: the
/// sync would otherwise make a second product beside the shop's, or write to one nobody handed
/// over.
fn stripe_product(catalog_id: &str, product: &CatalogProduct) -> Result<String, ValidationIssue> {
    let named = present(product.stripe_id.as_deref());
    match (named, product.bound_stripe_id.as_deref()) {
        (Some(named), Some(bound)) if named != bound => Err(issue(
            "stripe_id",
            format!(
                "names Stripe product {named:?}, but `starter import` bound this row to \
                 {bound:?}: put {bound:?} back, or archive the row and add a new one for {named:?}"
            ),
        )),
        (_, Some(bound)) => Ok(bound.to_string()),
        (Some(named), None) if named != catalog_id => Err(issue(
            "stripe_id",
            format!(
                "names Stripe product {named:?}, which this catalog has not taken over: run \
                 `starter import --dry-run`, then `starter import` (until then nothing is \
                 written for this row)"
            ),
        )),
        _ => Ok(catalog_id.to_string()),
    }
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

/// Hash of the synced content (not the version): equal hashes mean Stripe needs no write.
pub fn content_hash(d: &DesiredProduct) -> String {
    let mut canonical = serde_json::json!({
        "active": d.active, "metadata": d.metadata, "prices": d.prices,
    });
    for field in PRODUCT_FIELDS {
        let value = (field.access.desired)(d);
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
    use crate::limits::*;
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
    fn a_row_writes_to_the_product_it_was_bound_to_and_never_to_one_only_named() {
        let named = |stripe_id: Option<&str>, bound: Option<&str>| CatalogProduct {
            stripe_id: stripe_id.map(str::to_string),
            bound_stripe_id: bound.map(str::to_string),
            ..product()
        };
        assert_eq!(plan(&named(None, None)).stripe_id, "sku-1");
        assert_eq!(plan(&named(Some(" "), None)).stripe_id, "sku-1");
        assert_eq!(plan(&named(Some("sku-1"), None)).stripe_id, "sku-1");
        assert_eq!(
            plan(&named(Some("prod_A"), Some("prod_A"))).stripe_id,
            "prod_A"
        );
        // A binding outlives a cleared column; the lookup keys stay the catalog id's.
        let d = plan(&named(None, Some("prod_A")));
        assert_eq!(
            (d.stripe_id.as_str(), d.catalog_id.as_str()),
            ("prod_A", "sku-1")
        );
        assert_eq!(d.prices[0].lookup_key, "cs:sku-1:usd:one_time");
        for (row, says) in [
            (named(Some("prod_A"), None), "starter import"),
            (
                named(Some("prod_B"), Some("prod_A")),
                "bound this row to \"prod_A\"",
            ),
        ] {
            let TransformOutput::Invalid(issues) = transform("sku-1", Some(&row)) else {
                panic!("{row:?} must be refused");
            };
            assert_eq!(issues[0].field, "stripe_id");
            assert!(issues[0].reason.contains(says), "{}", issues[0].reason);
        }
        // A deleted row archives the product it was bound to.
        let gone = CatalogProduct {
            deleted: true,
            ..named(Some("prod_A"), Some("prod_A"))
        };
        let TransformOutput::Plan(archive) = transform("sku-1", Some(&gone)) else {
            panic!("a deleted row is archived");
        };
        assert_eq!(archive.stripe_id(), "prod_A");
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
