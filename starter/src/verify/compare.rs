//! What differs between a catalog product and Stripe's, field by field, as `verify` prints it:
//! the product fields by their entries in the field table, the active prices by what each
//! describes (amount, period, scalars, metadata, scheme), the catalog's own lookup keys.

use std::collections::{BTreeMap, BTreeSet};

use domain::fields::{PRODUCT_FIELDS, TAX_BEHAVIOR, Unset, is_unset, price_scalars};
use domain::metadata::{META_ID, META_MANAGED, RESERVED_PREFIX};
use serde_json::{Value, json};
use workflows::model::{
    CatalogProduct, CurrencyOption, CustomUnitAmount, PriceTier, TransformQuantity,
};

/// A list as a person reads it: `[a, b]`, or `(none)`.
pub(super) fn listed(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        format!("[{}]", items.join(", "))
    }
}

/// `usd 1200 per 3 months` with its scalar fields (`tax_behavior "exclusive"`) and metadata
/// (`{channel=web}`): a price as the catalog or Stripe has it.
pub(super) fn price_text(
    (currency, amount, interval, count, scalars, metadata, scheme): &PriceKey,
) -> String {
    let mut text = format!("{currency} {amount}");
    match (interval, count) {
        (Some(interval), 1) => text.push_str(&format!(" per {interval}")),
        (Some(interval), n) => text.push_str(&format!(" per {n} {interval}s")),
        (None, _) => {}
    }
    for (name, shown) in scalars {
        text.push_str(&format!(" {name} {shown}"));
    }
    if !metadata.is_empty() {
        let pairs: Vec<String> = metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!(" {{{}}}", pairs.join(", ")));
    }
    if !scheme.is_empty() {
        text.push_str(&format!(" ({scheme})"));
    }
    text
}

/// A Stripe object's metadata as strings.
pub(super) fn metadata(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// Empty and absent are the same to Stripe.
pub(super) fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

pub(super) fn opt(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// (currency, amount, interval, count, scalars, metadata, scheme) of a price, as the mapping
/// table has it. The scalars are the price fields that are one value each
/// (`domain::fields::PRICE_FIELDS`), shown, where set; one whose
/// unset value leaves Stripe's is compared only where the catalog sets it. The metadata without
/// catalog-sync's own keys.
pub(super) type PriceKey = (
    String,
    i64,
    Option<String>,
    i64,
    Vec<(&'static str, String)>,
    BTreeMap<String, String>,
    String,
);

/// A price's scheme beyond its amount, as one comparable text: tiers and their mode, the
/// customer's amount, packaging, and the other currencies (their tax behavior only where the
/// catalog sets one).
pub(super) fn scheme_text(
    meter: Option<&str>,
    tiers_mode: Option<&str>,
    tiers: &[PriceTier],
    custom: Option<&CustomUnitAmount>,
    transform: Option<&TransformQuantity>,
    options: &BTreeMap<String, CurrencyOption>,
) -> String {
    let mut parts = Vec::new();
    if let Some(meter) = meter {
        parts.push(format!("metered on {meter}"));
    }
    if let Some(mode) = tiers_mode {
        parts.push(format!("{mode} tiers {}", json!(tiers)));
    }
    if let Some(custom) = custom {
        parts.push(format!("customer's amount {}", json!(custom)));
    }
    if let Some(t) = transform {
        parts.push(format!("per {} rounded {}", t.divide_by, t.round));
    }
    if !options.is_empty() {
        parts.push(format!("also {}", json!(options)));
    }
    parts.join("; ")
}

/// Stripe's tiers (`up_to: null` is the last, open tier) in the catalog's shape.
pub(super) fn stripe_tiers(v: &Value) -> Vec<PriceTier> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| PriceTier {
            up_to: t["up_to"].as_i64(),
            unit_amount: t["unit_amount"].as_i64(),
            flat_amount: t["flat_amount"].as_i64(),
        })
        .collect()
}

/// What differs between a catalog product and its Stripe product and active prices.
pub(super) fn compare(
    product: &CatalogProduct,
    stripe: Option<&Value>,
    prices: &[Value],
    stripe_owned: &BTreeSet<String>,
) -> Vec<String> {
    let live = product.active && !product.deleted;
    let Some(s) = stripe else {
        return if live {
            vec!["missing in Stripe".into()]
        } else {
            Vec::new()
        };
    };
    if s["metadata"][META_MANAGED].as_str() != Some("true") {
        return vec!["a Stripe product with this id is not managed by catalog-sync".into()];
    }
    let mut out = Vec::new();
    // catalog-sync's own metadata names the product by its own id; a hand edit is a difference.
    if let Some(claimed) = s["metadata"][META_ID].as_str()
        && claimed != product.id
    {
        out.push(format!(
            "{META_ID}: Stripe {claimed:?}, not the product's own id (edited by hand?)"
        ));
    }
    if s["active"].as_bool() != Some(live) {
        out.push(format!("active: catalog {live}, Stripe {}", s["active"]));
    }
    if product.deleted {
        return out;
    }
    for field in PRODUCT_FIELDS
        .iter()
        .filter(|f| !stripe_owned.contains(f.name))
    {
        let catalog = field.from_catalog(product);
        // Unset in the catalog leaves Stripe's value for some fields (Stripe cannot unset it).
        if field.unset == Unset::LeavesStripe && is_unset(&catalog) {
            continue;
        }
        let stripe = field.from_stripe(s);
        if catalog != stripe {
            out.push(format!(
                "{}: catalog {}, Stripe {}",
                field.name,
                field.codec.show(&catalog),
                field.codec.show(&stripe)
            ));
        }
    }
    let stripe_metadata: BTreeMap<String, String> = s["metadata"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    if product.metadata != stripe_metadata {
        let pairs = |m: &BTreeMap<String, String>| {
            listed(
                &m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            )
        };
        out.push(format!(
            "metadata: catalog {}, Stripe {}",
            pairs(&product.metadata),
            pairs(&stripe_metadata)
        ));
    }
    if !live {
        return out;
    }
    // The scalar fields the catalog sets, and its currency options' tax behaviors, by
    // (currency, interval, count).
    type Sets = (BTreeSet<&'static str>, BTreeMap<String, Option<String>>);
    let mut catalog_sets: BTreeMap<(String, Option<String>, i64), Sets> = BTreeMap::new();
    let wanted: Vec<PriceKey> = product
        .prices
        .iter()
        .map(|p| {
            let currency = p.currency.trim().to_ascii_lowercase();
            let interval = p
                .recurring_interval
                .as_deref()
                .map(|i| i.trim().to_string());
            let count = p
                .recurring_interval
                .as_ref()
                .map_or(0, |_| p.recurring_interval_count.unwrap_or(1));
            let scalars: Vec<(&'static str, String)> = price_scalars()
                .filter_map(|(name, scalar)| {
                    let value = scalar.from_catalog(p);
                    (!is_unset(&value)).then(|| (name, scalar.codec.show(&value)))
                })
                .collect();
            let options: BTreeMap<String, CurrencyOption> = p
                .currency_options
                .iter()
                .map(|(code, o)| (code.trim().to_ascii_lowercase(), o.clone().normalized()))
                .collect();
            let option_taxes = options
                .iter()
                .map(|(code, o)| (code.clone(), o.tax().map(str::to_string)))
                .collect();
            catalog_sets.insert(
                (currency.clone(), interval.clone(), count),
                (
                    scalars.iter().map(|(name, _)| *name).collect(),
                    option_taxes,
                ),
            );
            let metered = opt(&p.usage_type).as_deref() == Some("metered");
            let scheme = scheme_text(
                metered.then(|| opt(&p.meter)).flatten().as_deref(),
                opt(&p.tiers_mode)
                    .filter(|_| !p.tiers.is_empty())
                    .as_deref(),
                &p.tiers,
                p.custom_unit_amount.as_ref(),
                p.transform_quantity.as_ref(),
                &options,
            );
            (
                currency,
                p.unit_amount,
                interval,
                count,
                scalars,
                p.metadata.clone(),
                scheme,
            )
        })
        .collect();
    let price_key = |p: &Value| -> PriceKey {
        let currency = p["currency"].as_str().unwrap_or_default().to_string();
        let interval = p["recurring"]["interval"].as_str().map(str::to_string);
        let count = interval.as_ref().map_or(0, |_| {
            p["recurring"]["interval_count"].as_i64().unwrap_or(1)
        });
        let (set, option_taxes) = catalog_sets
            .get(&(currency.clone(), interval.clone(), count))
            .cloned()
            .unwrap_or_default();
        let scalars: Vec<(&'static str, String)> = price_scalars()
            .filter(|(name, scalar)| scalar.unset == Unset::Clears || set.contains(name))
            .filter_map(|(name, scalar)| {
                let value = scalar.codec.from_stripe(&p[name]);
                (!is_unset(&value)).then(|| (name, scalar.codec.show(&value)))
            })
            .collect();
        let options: BTreeMap<String, CurrencyOption> = p["currency_options"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(code, _)| **code != currency)
            .map(|(code, o)| {
                let taxed = option_taxes.get(code).cloned().flatten().is_some();
                (
                    code.clone(),
                    CurrencyOption {
                        unit_amount: o["unit_amount"].as_i64(),
                        tiers: stripe_tiers(&o["tiers"]),
                        ..CurrencyOption::default()
                    }
                    .with_tax(taxed.then(|| text(&o[TAX_BEHAVIOR.name])).flatten()),
                )
            })
            .collect();
        let custom: Option<CustomUnitAmount> =
            p["custom_unit_amount"]
                .is_object()
                .then(|| CustomUnitAmount {
                    minimum: p["custom_unit_amount"]["minimum"].as_i64(),
                    maximum: p["custom_unit_amount"]["maximum"].as_i64(),
                    preset: p["custom_unit_amount"]["preset"].as_i64(),
                });
        let transform: Option<TransformQuantity> =
            p["transform_quantity"]
                .is_object()
                .then(|| TransformQuantity {
                    divide_by: p["transform_quantity"]["divide_by"]
                        .as_i64()
                        .unwrap_or_default(),
                    round: p["transform_quantity"]["round"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                });
        let scheme = scheme_text(
            (p["recurring"]["usage_type"] == "metered")
                .then(|| p["recurring"]["meter"].as_str())
                .flatten(),
            p["tiers_mode"].as_str(),
            &stripe_tiers(&p["tiers"]),
            custom.as_ref(),
            transform.as_ref(),
            &options,
        );
        let metadata = metadata(p)
            .into_iter()
            .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
            .collect();
        (
            currency,
            // Tiered and pay-what-you-want prices have none; the catalog says 0.
            p["unit_amount"].as_i64().unwrap_or(0),
            interval,
            count,
            scalars,
            metadata,
            scheme,
        )
    };
    let mut have: Vec<PriceKey> = prices.iter().map(price_key).collect();
    let mut want = wanted.clone();
    have.sort();
    want.sort();
    if have != want {
        let prices = |keys: &[PriceKey]| listed(&keys.iter().map(price_text).collect::<Vec<_>>());
        out.push(format!(
            "active prices: catalog {}, Stripe {}",
            prices(&want),
            prices(&have)
        ));
    }
    // The catalog's own lookup keys (checkout links and apps find prices by them): each held by
    // the active price of this product that the catalog's price describes.
    for (p, want) in product.prices.iter().zip(&wanted) {
        let Some(key) = opt(&p.lookup_key) else {
            continue;
        };
        match prices
            .iter()
            .find(|sp| sp["lookup_key"].as_str() == Some(key.as_str()))
        {
            None => out.push(format!(
                "lookup key {key:?}: no active price of this product holds it"
            )),
            Some(sp) if price_key(sp) != *want => out.push(format!(
                "lookup key {key:?}: held by {} ({}), not the catalog's {}",
                sp["id"].as_str().unwrap_or("?"),
                price_text(&price_key(sp)),
                price_text(want)
            )),
            Some(_) => {}
        }
    }
    let default = s["default_price"]
        .is_object()
        .then(|| price_key(&s["default_price"]));
    if default.as_ref() != wanted.first() {
        out.push(format!(
            "default price: catalog {}, Stripe {}",
            wanted.first().map_or("(none)".into(), price_text),
            default.as_ref().map_or("(none)".into(), price_text)
        ));
    }
    out
}
