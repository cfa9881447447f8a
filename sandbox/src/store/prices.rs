//! Stripe's Price object: its fields and its JSON; the requests are in `price_requests`, the
//! parameters in `price_params`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Includes;

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
    /// Amount in minor units; `None` for tiered and pay-what-you-want prices.
    pub unit_amount: Option<i64>,
    /// Tiers (`billing_scheme=tiered`), lowest first.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// `graduated` or `volume`.
    #[serde(default)]
    pub tiers_mode: Option<String>,
    /// Other currencies.
    #[serde(default)]
    pub currency_options: BTreeMap<String, CurrencyOption>,
    /// Pay-what-you-want bounds.
    #[serde(default)]
    pub custom_unit_amount: Option<CustomUnitAmount>,
    /// `(divide_by, round)`.
    #[serde(default)]
    pub transform_quantity: Option<(i64, String)>,
    /// The Billing Meter of a metered recurring price (`usage_type=metered`).
    #[serde(default)]
    pub meter: Option<String>,
}

/// One tier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tier {
    /// Last quantity; `None` is `inf`.
    pub up_to: Option<i64>,
    /// Per unit.
    pub unit_amount: Option<i64>,
    /// For the tier.
    pub flat_amount: Option<i64>,
}

impl Tier {
    fn to_json(&self) -> Value {
        json!({
            "flat_amount": self.flat_amount,
            "flat_amount_decimal": self.flat_amount.map(|a| a.to_string()),
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": self.unit_amount.map(|a| a.to_string()),
            "up_to": self.up_to,
        })
    }
}

/// The price in another currency.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurrencyOption {
    /// Per unit.
    pub unit_amount: Option<i64>,
    /// Tiers in this currency.
    pub tiers: Vec<Tier>,
    /// `inclusive`, `exclusive` or `unspecified`.
    pub tax_behavior: String,
}

/// Pay-what-you-want bounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomUnitAmount {
    /// Least.
    pub minimum: Option<i64>,
    /// Most.
    pub maximum: Option<i64>,
    /// Starting amount.
    pub preset: Option<i64>,
}

impl CustomUnitAmount {
    fn to_json(&self) -> Value {
        json!({"maximum": self.maximum, "minimum": self.minimum, "preset": self.preset})
    }
}

impl Price {
    /// The wire form, without the fields Stripe includes only on request.
    pub fn to_json(&self) -> Value {
        self.to_json_with(Includes::default())
    }

    /// The wire form with `tiers` and `currency_options` when `includes` asks for them (the
    /// price's own currency is one of its currency options, as Stripe shows them).
    pub fn to_json_with(&self, includes: Includes) -> Value {
        let mut out = self.base_json();
        if includes.tiers && !self.tiers.is_empty() {
            out["tiers"] = self.tiers.iter().map(Tier::to_json).collect();
        }
        if includes.currency_options {
            let mut options = serde_json::Map::new();
            let own = CurrencyOption {
                unit_amount: self.unit_amount,
                tiers: self.tiers.clone(),
                tax_behavior: self.tax_behavior.clone(),
            };
            for (code, option) in
                std::iter::once((&self.currency, &own)).chain(&self.currency_options)
            {
                let mut o = json!({
                    "custom_unit_amount": self.custom_unit_amount.as_ref().map(CustomUnitAmount::to_json),
                    "tax_behavior": option.tax_behavior,
                    "unit_amount": option.unit_amount,
                    "unit_amount_decimal": option.unit_amount.map(|a| a.to_string()),
                });
                if includes.tiers && !option.tiers.is_empty() {
                    o["tiers"] = option.tiers.iter().map(Tier::to_json).collect();
                }
                options.insert(code.clone(), o);
            }
            out["currency_options"] = Value::Object(options);
        }
        out
    }

    fn base_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "price",
            "active": self.active,
            "billing_scheme": if self.tiers.is_empty() { "per_unit" } else { "tiered" },
            "created": self.created,
            "currency": self.currency,
            "custom_unit_amount": self.custom_unit_amount.as_ref().map(CustomUnitAmount::to_json),
            "livemode": false,
            "lookup_key": self.lookup_key,
            "metadata": self.metadata,
            "nickname": self.nickname,
            "product": self.product,
            "recurring": self.recurring.as_ref().map(|(interval, count)| json!({
                "interval": interval,
                "interval_count": count,
                "meter": self.meter,
                "trial_period_days": null,
                "usage_type": if self.meter.is_some() { "metered" } else { "licensed" },
            })),
            "tax_behavior": self.tax_behavior,
            "tiers_mode": self.tiers_mode,
            "transform_quantity": self.transform_quantity.as_ref().map(|(divide_by, round)| json!({
                "divide_by": divide_by,
                "round": round,
            })),
            "type": if self.recurring.is_some() { "recurring" } else { "one_time" },
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": self.unit_amount.map(|a| a.to_string()),
        })
    }
}
