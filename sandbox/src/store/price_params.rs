//! The parameters of a price as Stripe parses and checks them: the amount, the recurring
//! settings, the tax behavior, and the billing scheme (tiers, pay what you want, packages, other
//! currencies). `/v1/prices` and a product's `default_price_data` both read them.

use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::form::Params;
use crate::model::{self, MAX_UNIT_AMOUNT};

use super::prices::{CurrencyOption, CustomUnitAmount, Tier};

/// Validates `unit_amount`.
pub(super) fn unit_amount(amount: i64, param: &str) -> Result<i64, ApiError> {
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
/// `recurring[…]` of a new price.
pub(super) struct RecurringParams {
    /// `(interval, interval_count)`.
    pub(super) period: (String, i64),
    /// `metered` or `None` (licensed).
    pub(super) metered: bool,
    /// The Billing Meter of a metered price.
    pub(super) meter: Option<String>,
}

/// Parses `recurring[interval|interval_count|usage_type|meter]`.
pub(super) fn recurring(mut r: Params, param: &str) -> Result<RecurringParams, ApiError> {
    let interval = r
        .string("interval")?
        .ok_or_else(|| ApiError::missing(&format!("{param}[interval]")))?;
    let Some(max) = domain::limits::max_interval_count(&interval) else {
        return Err(ApiError::invalid(
            format!("Invalid {param}[interval]: must be one of day, week, month, or year"),
            Some(format!("{param}[interval]")),
        ));
    };
    let count = r.integer("interval_count")?.unwrap_or(1);
    if !(1..=max).contains(&count) {
        return Err(ApiError::invalid(
            format!(
                "Invalid {param}[interval_count]: must be between 1 and {max} for interval {interval}"
            ),
            Some(format!("{param}[interval_count]")),
        ));
    }
    let metered = match r.string("usage_type")?.as_deref() {
        None | Some("licensed") => false,
        Some("metered") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                format!("Invalid {param}[usage_type]: must be one of licensed or metered"),
                Some(format!("{param}[usage_type]")),
            ));
        }
    };
    let meter = r.string("meter")?;
    r.finish()?;
    match (metered, &meter) {
        (true, None) => {
            return Err(ApiError::invalid(
                "Metered prices must be backed by a meter: set recurring[meter].",
                Some(format!("{param}[meter]")),
            ));
        }
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "A meter can only be set on a price with recurring[usage_type]=metered.",
                Some(format!("{param}[meter]")),
            ));
        }
        _ => {}
    }
    Ok(RecurringParams {
        period: (interval, count),
        metered,
        meter,
    })
}

/// Parses `tax_behavior`.
pub(super) fn tax_behavior(raw: String) -> Result<String, ApiError> {
    if domain::limits::TAX_BEHAVIORS.contains(&raw.as_str()) {
        Ok(raw)
    } else {
        Err(ApiError::invalid(
            "Invalid tax_behavior: must be one of inclusive, exclusive, or unspecified",
            Some("tax_behavior".into()),
        ))
    }
}

/// The pricing scheme of a new price: per unit, tiered or pay what you want; packaging; other
/// currencies. Stripe's rules, checked before anything is stored.
pub(super) struct Scheme {
    pub(super) unit_amount: Option<i64>,
    pub(super) tiers: Vec<Tier>,
    pub(super) tiers_mode: Option<String>,
    pub(super) currency_options: BTreeMap<String, CurrencyOption>,
    pub(super) custom_unit_amount: Option<CustomUnitAmount>,
    pub(super) transform_quantity: Option<(i64, String)>,
}

impl Scheme {
    pub(super) fn parse(p: &mut Params, currency: &str, recurring: bool) -> Result<Self, ApiError> {
        let billing_scheme = p.string("billing_scheme")?;
        let tiered = match billing_scheme.as_deref() {
            None | Some("per_unit") => false,
            Some("tiered") => true,
            Some(other) => {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid billing_scheme: must be one of per_unit or tiered (got {other})"
                    ),
                    Some("billing_scheme".into()),
                ));
            }
        };
        let tiers_mode = p.string("tiers_mode")?;
        let tiers = match p.hash_list("tiers")? {
            Some(list) => parse_tiers(list, "tiers")?,
            None => Vec::new(),
        };
        let custom = p
            .hash("custom_unit_amount")?
            .map(custom_unit_amount)
            .transpose()?;
        let transform = p
            .hash("transform_quantity")?
            .map(transform_quantity)
            .transpose()?;
        let amount = p.integer("unit_amount")?;
        if tiered {
            if tiers.is_empty() {
                return Err(ApiError::missing("tiers"));
            }
            match tiers_mode.as_deref() {
                Some("graduated" | "volume") => {}
                Some(_) => {
                    return Err(ApiError::invalid(
                        "Invalid tiers_mode: must be one of graduated or volume",
                        Some("tiers_mode".into()),
                    ));
                }
                None => return Err(ApiError::missing("tiers_mode")),
            }
            if amount.is_some() {
                return Err(ApiError::invalid(
                    "You may not set unit_amount when billing_scheme is tiered.",
                    Some("unit_amount".into()),
                ));
            }
            if transform.is_some() {
                return Err(ApiError::invalid(
                    "transform_quantity cannot be combined with tiers.",
                    Some("transform_quantity".into()),
                ));
            }
        } else if !tiers.is_empty() || tiers_mode.is_some() {
            let param = if tiers.is_empty() {
                "tiers_mode"
            } else {
                "tiers"
            };
            return Err(ApiError::invalid(
                format!("{param} can only be set when billing_scheme is tiered."),
                Some(param.into()),
            ));
        }
        if custom.is_some() {
            if amount.is_some() {
                return Err(ApiError::invalid(
                    "You may only specify one of unit_amount and custom_unit_amount.",
                    Some("custom_unit_amount".into()),
                ));
            }
            if recurring || tiered {
                return Err(ApiError::invalid(
                    "custom_unit_amount is only available for one-time prices with billing_scheme=per_unit.",
                    Some("custom_unit_amount".into()),
                ));
            }
        }
        let unit_amount = match amount {
            Some(amount) => Some(unit_amount(amount, "unit_amount")?),
            None if tiered || custom.is_some() => None,
            None => return Err(ApiError::missing("unit_amount")),
        };
        let currency_options = match p.hash("currency_options")? {
            Some(options) => currency_options(
                options,
                currency,
                tiered.then_some(tiers.as_slice()),
                custom.is_some(),
            )?
            .into_iter()
            .map(|(code, mut option, tax)| {
                option.tax_behavior = tax.unwrap_or_else(|| "unspecified".into());
                (code, option)
            })
            .collect(),
            None => BTreeMap::new(),
        };
        Ok(Self {
            unit_amount,
            tiers,
            tiers_mode: tiered.then_some(tiers_mode).flatten(),
            currency_options,
            custom_unit_amount: custom,
            transform_quantity: transform,
        })
    }
}

/// `tiers[i][up_to|unit_amount|flat_amount]`: increasing bounds, the last `inf`.
pub(super) fn parse_tiers(list: Vec<Params>, param: &str) -> Result<Vec<Tier>, ApiError> {
    let count = list.len();
    let mut out: Vec<Tier> = Vec::new();
    for (i, mut t) in list.into_iter().enumerate() {
        let at = |f: &str| format!("{param}[{i}][{f}]");
        let up_to = match t.string("up_to")?.as_deref() {
            None => return Err(ApiError::missing(&at("up_to"))),
            Some("inf") => None,
            Some(raw) => Some(raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::invalid(
                    format!("Invalid {}: must be a positive integer or inf", at("up_to")),
                    Some(at("up_to")),
                )
            })?),
        };
        let unit = t
            .integer("unit_amount")?
            .map(|a| unit_amount(a, &at("unit_amount")))
            .transpose()?;
        let flat = t
            .integer("flat_amount")?
            .map(|a| unit_amount(a, &at("flat_amount")))
            .transpose()?;
        t.finish()?;
        if unit.is_none() && flat.is_none() {
            return Err(ApiError::invalid(
                format!("Each tier needs unit_amount or flat_amount ({param}[{i}])."),
                Some(at("unit_amount")),
            ));
        }
        let last = i + 1 == count;
        let previous = out.last().and_then(|t| t.up_to).unwrap_or(0);
        match up_to {
            None if !last => {
                return Err(ApiError::invalid(
                    "Only the last tier may have up_to=inf.",
                    Some(at("up_to")),
                ));
            }
            Some(_) if last => {
                return Err(ApiError::invalid(
                    "The last tier must have up_to=inf.",
                    Some(at("up_to")),
                ));
            }
            Some(n) if n <= previous => {
                return Err(ApiError::invalid(
                    format!("Tiers must be ordered by up_to, ascending ({n} follows {previous})."),
                    Some(at("up_to")),
                ));
            }
            _ => {}
        }
        out.push(Tier {
            up_to,
            unit_amount: unit,
            flat_amount: flat,
        });
    }
    Ok(out)
}

pub(super) fn custom_unit_amount(mut c: Params) -> Result<CustomUnitAmount, ApiError> {
    if c.boolean("enabled")? != Some(true) {
        return Err(ApiError::missing("custom_unit_amount[enabled]"));
    }
    let mut get = |name: &str| -> Result<Option<i64>, ApiError> {
        let param = format!("custom_unit_amount[{name}]");
        c.integer(name)?.map(|a| unit_amount(a, &param)).transpose()
    };
    let out = CustomUnitAmount {
        minimum: get("minimum")?,
        maximum: get("maximum")?,
        preset: get("preset")?,
    };
    c.finish()?;
    let (low, high) = (
        out.minimum.unwrap_or(0),
        out.maximum.unwrap_or(MAX_UNIT_AMOUNT),
    );
    if low > high {
        return Err(ApiError::invalid(
            "custom_unit_amount[minimum] must be less than or equal to custom_unit_amount[maximum].",
            Some("custom_unit_amount[minimum]".into()),
        ));
    }
    if out.preset.is_some_and(|p| p < low || p > high) {
        return Err(ApiError::invalid(
            "custom_unit_amount[preset] must be between the minimum and the maximum.",
            Some("custom_unit_amount[preset]".into()),
        ));
    }
    Ok(out)
}

pub(super) fn transform_quantity(mut t: Params) -> Result<(i64, String), ApiError> {
    let divide_by = t
        .integer("divide_by")?
        .ok_or_else(|| ApiError::missing("transform_quantity[divide_by]"))?;
    if divide_by < 1 {
        return Err(ApiError::invalid(
            "transform_quantity[divide_by] must be at least 1.",
            Some("transform_quantity[divide_by]".into()),
        ));
    }
    let round = t
        .string("round")?
        .ok_or_else(|| ApiError::missing("transform_quantity[round]"))?;
    if round != "up" && round != "down" {
        return Err(ApiError::invalid(
            "Invalid transform_quantity[round]: must be one of up or down",
            Some("transform_quantity[round]".into()),
        ));
    }
    t.finish()?;
    Ok((divide_by, round))
}

/// `currency_options[xxx][unit_amount|tiers|tax_behavior]`, each with the sent tax behavior (if
/// any). A tiered price's options need tiers with its bounds; a per-unit price's an amount.
pub(super) fn currency_options(
    mut options: Params,
    currency: &str,
    tiers: Option<&[Tier]>,
    custom: bool,
) -> Result<Vec<(String, CurrencyOption, Option<String>)>, ApiError> {
    let mut out = Vec::new();
    for key in options.keys() {
        let param = format!("currency_options[{key}]");
        let code = model::currency(key.clone(), &param)?;
        if code == currency {
            return Err(ApiError::invalid(
                format!("{param}: the price's own currency is not a currency option."),
                Some(param),
            ));
        }
        let Some(mut o) = options.hash(&key)? else {
            continue;
        };
        let amount = o
            .integer("unit_amount")?
            .map(|a| unit_amount(a, &format!("{param}[unit_amount]")))
            .transpose()?;
        let option_tiers = match o.hash_list("tiers")? {
            Some(list) => parse_tiers(list, &format!("{param}[tiers]"))?,
            None => Vec::new(),
        };
        let tax = o.string("tax_behavior")?.map(tax_behavior).transpose()?;
        if o.has("custom_unit_amount") {
            let _ = o.hash("custom_unit_amount")?;
        }
        o.finish()?;
        match tiers {
            Some(own) => {
                let same = option_tiers.len() == own.len()
                    && option_tiers
                        .iter()
                        .zip(own)
                        .all(|(a, b)| a.up_to == b.up_to);
                if !same || amount.is_some() {
                    return Err(ApiError::invalid(
                        format!(
                            "{param}[tiers] must have the same up_to values as the price's tiers."
                        ),
                        Some(format!("{param}[tiers]")),
                    ));
                }
            }
            None if custom => {}
            None if amount.is_none() => {
                return Err(ApiError::missing(&format!("{param}[unit_amount]")));
            }
            None => {}
        }
        out.push((
            code,
            CurrencyOption {
                unit_amount: amount,
                tiers: option_tiers,
                tax_behavior: String::new(),
            },
            tax,
        ));
    }
    Ok(out)
}
