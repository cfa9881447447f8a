//! How a price as Stripe has it differs from the catalog's, and the forms that create or update
//! it. Stripe fixes most of a price at creation. [`PRICE_FIELDS`] is the rule for every field
//! catalog-sync writes, and [`compare`] applies it: a difference in a field updated in place is a
//! `POST /v1/prices/{id}`; a difference in any other field makes a new price that takes the lookup
//! key over (`transfer_lookup_key=true`), becomes the default if it replaces the default, and the
//! old price is archived. The fields that are one value are compared and sent by their entries;
//! the structured ones (amounts, tiers, currency options, recurring, metadata) here. Pure: the
//! `stripe` crate sends the forms and turns its wire objects into [`CurrentPrice`].

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fields::{Mutability, PRICE_FIELDS, TAX_BEHAVIOR, is_unset, price_scalars};
use crate::form::Form;
use crate::model::{CurrencyOption, CustomUnitAmount, DesiredPrice, PriceTier, TransformQuantity};

/// A price as Stripe has it, in the catalog's shapes: what [`compare`] reads. The `stripe` crate
/// makes it from its wire object (`stripe::objects::Price::current`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurrentPrice {
    /// Stripe's JSON of the price: the one-value fields are read from it by their entries.
    pub json: Value,
    /// Currency.
    pub currency: String,
    /// Amount in minor units (none for tiered and pay-what-you-want prices).
    pub unit_amount: Option<i64>,
    /// `graduated` or `volume` for tiered prices.
    pub tiers_mode: Option<String>,
    /// Tiers (empty when per unit).
    pub tiers: Vec<PriceTier>,
    /// Pay-what-you-want bounds.
    pub custom_unit_amount: Option<CustomUnitAmount>,
    /// Packaged quantities.
    pub transform_quantity: Option<TransformQuantity>,
    /// The other currencies than the price's own.
    pub currency_options: BTreeMap<String, CurrencyOption>,
    /// Recurring settings.
    pub recurring: Option<CurrentRecurring>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Active.
    pub active: bool,
}

/// A price's recurring settings as Stripe has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurrentRecurring {
    /// Interval.
    pub interval: String,
    /// Interval count.
    pub interval_count: i64,
    /// `licensed` or `metered`.
    pub usage_type: Option<String>,
    /// The Billing Meter of a metered price.
    pub meter: Option<String>,
}

/// How an existing price differs from the desired one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceChanges {
    /// Fields that differ and cannot change in place: a new price is needed.
    pub new_price: Vec<&'static str>,
    /// The in-place update that makes the price match (empty when nothing else differs).
    pub update: Form,
}

impl PriceChanges {
    /// The price matches.
    pub fn is_empty(&self) -> bool {
        self.new_price.is_empty() && self.update.is_empty()
    }

    /// The fields that differ, for a report.
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.new_price.clone();
        for name in self.update.field_names() {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }
}

/// The metadata a price of this catalog carries: the catalog's keys and catalog-sync's markers.
pub fn desired_metadata(
    d: &DesiredPrice,
    marker: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = d.metadata.clone();
    out.extend(marker.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Compares `current` (the price holding the lookup key) with `desired`, field by field under
/// [`PRICE_FIELDS`]. `marker` is catalog-sync's metadata for the price (see
/// [`desired_metadata`]).
pub fn compare(
    current: &CurrentPrice,
    desired: &DesiredPrice,
    marker: &BTreeMap<String, String>,
) -> PriceChanges {
    let mut changes = PriceChanges::default();
    let metadata = desired_metadata(desired, marker);
    let current_json = &current.json;
    for field in PRICE_FIELDS {
        let differs = match (&field.scalar, field.name) {
            (Some(scalar), name) => {
                let have = scalar.codec.from_stripe(&current_json[name]);
                scalar.differs(&(scalar.access.desired)(desired), &have)
            }
            (None, "currency") => current.currency != desired.currency,
            (None, "unit_amount") if desired.has_unit_amount() => {
                current.unit_amount != Some(desired.unit_amount)
            }
            (None, "unit_amount") => current.unit_amount.is_some(),
            (None, "tiers") => {
                current.tiers_mode != desired.tiers_mode || current.tiers != desired.tiers
            }
            (None, "custom_unit_amount") => {
                current.custom_unit_amount != desired.custom_unit_amount
            }
            (None, "transform_quantity") => {
                current.transform_quantity != desired.transform_quantity
            }
            (None, "currency_options") => {
                !options_match(&current.currency_options.clone(), &desired.currency_options)
            }
            (None, "recurring") => {
                fn metered(r: &CurrentRecurring) -> Option<Option<&String>> {
                    (r.usage_type.as_deref() == Some("metered")).then_some(r.meter.as_ref())
                }
                current
                    .recurring
                    .as_ref()
                    .map(|r| (&r.interval, r.interval_count, metered(r)))
                    != desired
                        .recurring
                        .as_ref()
                        .map(|r| (&r.interval, r.interval_count, r.meter.as_ref().map(Some)))
            }
            (None, "metadata") => current.metadata != metadata,
            (None, "active") => !current.active,
            (None, other) => unreachable!("PRICE_FIELDS names {other} without a comparison"),
        };
        if !differs {
            continue;
        }
        let in_place = match field.change {
            Mutability::InPlace => true,
            Mutability::InPlaceWhileUnspecified => current_json[field.name]
                .as_str()
                .is_none_or(|t| t == "unspecified"),
            Mutability::NewPrice => false,
            Mutability::InPlaceUnlessRemoved => {
                options_in_place(&current.currency_options.clone(), &desired.currency_options)
            }
        };
        if !in_place {
            changes.new_price.push(field.name);
            continue;
        }
        let form = &mut changes.update;
        match (&field.scalar, field.name) {
            (Some(scalar), name) => {
                for (key, value) in scalar.codec.form(name, &(scalar.access.desired)(desired)) {
                    form.push(key, value);
                }
            }
            (None, "metadata") => {
                for (k, v) in &metadata {
                    if current.metadata.get(k) != Some(v) {
                        form.push(format!("metadata[{k}]"), v.as_str());
                    }
                }
                for k in current
                    .metadata
                    .keys()
                    .filter(|k| !metadata.contains_key(*k))
                {
                    form.push(format!("metadata[{k}]"), "");
                }
            }
            (None, "active") => {
                form.push("active", "true");
            }
            (None, "currency_options") => {
                let current = current.currency_options.clone();
                for (code, option) in &desired.currency_options {
                    if current.get(code).is_none_or(|c| !option_matches(c, option)) {
                        push_option(form, code, option);
                    }
                }
            }
            _ => {}
        }
    }
    changes
}

fn push_tiers(form: &mut Form, prefix: &str, tiers: &[PriceTier]) {
    for (i, tier) in tiers.iter().enumerate() {
        let up_to = tier
            .up_to
            .map_or_else(|| "inf".to_string(), |n| n.to_string());
        form.push(format!("{prefix}[{i}][up_to]"), up_to);
        if let Some(amount) = tier.unit_amount {
            form.push(format!("{prefix}[{i}][unit_amount]"), amount.to_string());
        }
        if let Some(amount) = tier.flat_amount {
            form.push(format!("{prefix}[{i}][flat_amount]"), amount.to_string());
        }
    }
}

fn push_option(form: &mut Form, code: &str, option: &CurrencyOption) {
    if let Some(amount) = option.unit_amount {
        form.push(
            format!("currency_options[{code}][unit_amount]"),
            amount.to_string(),
        );
    }
    push_tiers(
        form,
        &format!("currency_options[{code}][tiers]"),
        &option.tiers,
    );
    form.push_opt(
        &format!("currency_options[{code}][{}]", TAX_BEHAVIOR.name),
        option.tax(),
    );
}

/// A currency option as Stripe has it matches the catalog's (an unset tax behavior matches any).
fn option_matches(current: &CurrencyOption, desired: &CurrencyOption) -> bool {
    current.unit_amount == desired.unit_amount
        && current.tiers == desired.tiers
        && desired.tax().is_none_or(|t| current.tax() == Some(t))
}

fn options_match(
    current: &BTreeMap<String, CurrencyOption>,
    desired: &BTreeMap<String, CurrencyOption>,
) -> bool {
    current.len() == desired.len()
        && desired
            .iter()
            .all(|(code, o)| current.get(code).is_some_and(|c| option_matches(c, o)))
}

/// The difference can be written in place: no currency removed, no set tax behavior changed.
fn options_in_place(
    current: &BTreeMap<String, CurrencyOption>,
    desired: &BTreeMap<String, CurrencyOption>,
) -> bool {
    current.keys().all(|code| desired.contains_key(code))
        && desired.iter().all(|(code, o)| {
            let fixed = current
                .get(code)
                .and_then(CurrencyOption::tax)
                .filter(|t| *t != "unspecified");
            match (fixed, o.tax()) {
                (Some(was), Some(wanted)) => was == wanted,
                _ => true,
            }
        })
}

/// The form of `POST /v1/prices` for `desired` on `product`, taking the lookup key over from
/// the price that holds it when `transfer` (without, Stripe refuses a key another price holds).
pub fn create_form(
    product: &str,
    desired: &DesiredPrice,
    marker: &BTreeMap<String, String>,
    transfer: bool,
) -> Form {
    let mut form = Form::new();
    form.push("product", product)
        .push("currency", desired.currency.as_str());
    if desired.has_unit_amount() {
        form.push("unit_amount", desired.unit_amount.to_string());
    }
    form.push("lookup_key", desired.lookup_key.as_str());
    if transfer {
        form.push("transfer_lookup_key", "true");
    }
    if !desired.tiers.is_empty() {
        form.push("billing_scheme", "tiered");
        form.push_opt("tiers_mode", desired.tiers_mode.as_deref());
        push_tiers(&mut form, "tiers", &desired.tiers);
    }
    if let Some(custom) = &desired.custom_unit_amount {
        form.push("custom_unit_amount[enabled]", "true");
        for (name, amount) in [
            ("minimum", custom.minimum),
            ("maximum", custom.maximum),
            ("preset", custom.preset),
        ] {
            if let Some(amount) = amount {
                form.push(format!("custom_unit_amount[{name}]"), amount.to_string());
            }
        }
    }
    if let Some(t) = &desired.transform_quantity {
        form.push("transform_quantity[divide_by]", t.divide_by.to_string())
            .push("transform_quantity[round]", t.round.as_str());
    }
    for (code, option) in &desired.currency_options {
        push_option(&mut form, code, option);
    }
    for (k, v) in desired_metadata(desired, marker) {
        form.push(format!("metadata[{k}]"), v);
    }
    if let Some(r) = &desired.recurring {
        form.push("recurring[interval]", r.interval.as_str())
            .push("recurring[interval_count]", r.interval_count.to_string());
        if let Some(meter) = &r.meter {
            form.push("recurring[usage_type]", "metered")
                .push("recurring[meter]", meter.as_str());
        }
    }
    for (name, scalar) in price_scalars() {
        let value = (scalar.access.desired)(desired);
        if !is_unset(&value) {
            for (key, value) in scalar.codec.form(name, &value) {
                form.push(key, value);
            }
        }
    }
    form
}

/// A new product's first price as `default_price_data[…]` of `POST /v1/products`: created with
/// the product and made its default in that one request, instead of a `POST /v1/prices` and a
/// `POST /v1/products/{id}`. `None` when a field Stripe fixes at creation cannot travel that way
/// (tiers, packaging, a metered period: see [`PRICE_FIELDS`]'s `with_product`); that price is
/// created on its own. What it does not carry but Stripe changes in place, the lookup key and the
/// nickname, is set after, by `POST /v1/prices/{id}` (the update [`compare`] gives for the price
/// created, and the lookup key).
pub fn default_price_data(
    desired: &DesiredPrice,
    marker: &BTreeMap<String, String>,
) -> Option<Form> {
    let mut data = Form::new();
    for (key, value) in create_form("", desired, marker, false).entries() {
        let (param, rest) = key.split_at(key.find('[').unwrap_or(key.len()));
        let field = match param {
            // Identity, set after (or implied by the product).
            "product" | "lookup_key" | "transfer_lookup_key" => continue,
            "billing_scheme" | "tiers_mode" => "tiers",
            other => other,
        };
        let entry = PRICE_FIELDS.iter().find(|f| f.name == field);
        debug_assert!(
            entry.is_some(),
            "create_form sends {key}, which PRICE_FIELDS does not name"
        );
        // A parameter no entry names: the price is created on its own, as `POST /v1/prices` takes it.
        let entry = entry?;
        // Its recurring takes the interval and count only.
        let metered = param == "recurring" && matches!(rest, "[usage_type]" | "[meter]");
        if entry.with_product && !metered {
            data.push(format!("default_price_data[{param}]{rest}"), value);
        } else if entry.change == Mutability::NewPrice || metered {
            return None;
        }
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PriceTier, Recurring, TransformQuantity};

    fn price() -> DesiredPrice {
        DesiredPrice {
            lookup_key: "cs:mug:usd:month".into(),
            currency: "usd".into(),
            unit_amount: 1200,
            recurring: Some(Recurring {
                interval: "month".into(),
                interval_count: 1,
                meter: None,
            }),
            nickname: Some("Monthly".into()),
            tax_behavior: Some("exclusive".into()),
            metadata: BTreeMap::from([("tier".into(), "gold".into())]),
            currency_options: BTreeMap::from([(
                "eur".into(),
                CurrencyOption {
                    unit_amount: Some(1100),
                    ..CurrencyOption::default()
                },
            )]),
            ..DesiredPrice::default()
        }
    }

    #[test]
    fn default_price_data_carries_what_stripe_takes_with_the_product() {
        let marker = BTreeMap::from([("catalog_sync_managed".into(), "true".into())]);
        let data = default_price_data(&price(), &marker).expect("a per-unit price travels");
        let keys: Vec<&str> = data.keys().collect();
        assert_eq!(
            keys,
            [
                "default_price_data[currency]",
                "default_price_data[unit_amount]",
                "default_price_data[currency_options][eur][unit_amount]",
                "default_price_data[metadata][catalog_sync_managed]",
                "default_price_data[metadata][tier]",
                "default_price_data[recurring][interval]",
                "default_price_data[recurring][interval_count]",
                "default_price_data[tax_behavior]",
            ]
        );
        // The nickname and the lookup key are set after, in place.
        assert!(
            !data
                .keys()
                .any(|k| k.contains("nickname") || k.contains("lookup_key"))
        );
    }

    #[test]
    fn a_price_default_price_data_cannot_carry_is_created_on_its_own() {
        let marker = BTreeMap::new();
        let tiered = DesiredPrice {
            tiers: vec![PriceTier {
                up_to: None,
                unit_amount: Some(100),
                flat_amount: None,
            }],
            tiers_mode: Some("volume".into()),
            ..price()
        };
        let packaged = DesiredPrice {
            transform_quantity: Some(TransformQuantity {
                divide_by: 10,
                round: "up".into(),
            }),
            ..price()
        };
        let metered = DesiredPrice {
            recurring: Some(Recurring {
                meter: Some("mtr_1".into()),
                ..price().recurring.unwrap()
            }),
            ..price()
        };
        for (what, p) in [
            ("tiered", tiered),
            ("packaged", packaged),
            ("metered", metered),
        ] {
            assert_eq!(default_price_data(&p, &marker), None, "{what}");
        }
    }
}
