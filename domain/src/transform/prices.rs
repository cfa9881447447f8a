//! A catalog product's prices → the prices Stripe should have: each price's rules (currency,
//! amount, period, tiers, other currencies, pay what you want, packages, metered, lookup keys;
//! the fields that are one value by their entries in [`crate::fields::PRICE_FIELDS`]) and its
//! lookup key.

use crate::fields::{TAX_BEHAVIOR, price_scalars};
use crate::limits::{CURRENCIES, MAX_AMOUNT, MAX_LOOKUP_KEY};
use crate::model::{
    CatalogPrice, CatalogProduct, DERIVED_LOOKUP_KEY_PREFIX, DesiredPrice, PriceTier, Recurring,
    ValidationIssue,
};

use super::{check_metadata, issue, lookup_key, non_empty, present};

pub(super) fn check_prices(
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
        let before = issues.len();
        for (name, scalar) in price_scalars() {
            if let Err(e) = (scalar.access.set_desired)(&mut desired, scalar.from_catalog(price)) {
                let reason = format!("is not {}: {e}", scalar.codec.shape());
                issues.push(issue(field(name), reason));
            }
        }
        if issues.len() == before {
            out.push(desired);
        }
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
