//! Stripe's Price object: its fields, the rules Stripe applies to them (which fields are
//! immutable, lookup-key uniqueness and transfer), and `/v1/prices`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Account, Change, Includes, diff, expand_flags, now, random_id};
use crate::error::ApiError;
use crate::form::Params;
use crate::model::{self, MAX_UNIT_AMOUNT};
use domain::limits::MAX_LOOKUP_KEY;

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
struct Scheme {
    unit_amount: Option<i64>,
    tiers: Vec<Tier>,
    tiers_mode: Option<String>,
    currency_options: BTreeMap<String, CurrencyOption>,
    custom_unit_amount: Option<CustomUnitAmount>,
    transform_quantity: Option<(i64, String)>,
}

impl Scheme {
    fn parse(p: &mut Params, currency: &str, recurring: bool) -> Result<Self, ApiError> {
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
fn parse_tiers(list: Vec<Params>, param: &str) -> Result<Vec<Tier>, ApiError> {
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

fn custom_unit_amount(mut c: Params) -> Result<CustomUnitAmount, ApiError> {
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

fn transform_quantity(mut t: Params) -> Result<(i64, String), ApiError> {
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
fn currency_options(
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

impl Account {
    /// Frees `key` for `claimant` (a new price when `None`): with `transfer`, takes it from the
    /// price that holds it (reported as a change of that price); without, refuses as Stripe does.
    fn release_lookup_key(
        &mut self,
        key: &str,
        claimant: Option<&str>,
        transfer: bool,
    ) -> Result<Vec<Change>, ApiError> {
        let Some(holder) = self.lookup_keys.get(key).cloned() else {
            return Ok(Vec::new());
        };
        if claimant == Some(holder.as_str()) {
            return Ok(Vec::new());
        }
        if !transfer {
            return Err(ApiError::invalid(
                format!("A price (`{holder}`) already uses that lookup key."),
                Some("lookup_key".into()),
            )
            .with_code("lookup_key_already_exists"));
        }
        self.lookup_keys.remove(key);
        let Some(old) = self.prices.get_mut(&holder) else {
            return Ok(Vec::new());
        };
        old.lookup_key = None;
        Ok(vec![Change {
            event_type: "price.updated",
            object: old.to_json(),
            previous_attributes: Some(json!({ "lookup_key": key })),
            object_id: holder,
        }])
    }

    /// `POST /v1/prices`.
    pub fn create_price(&mut self, mut p: Params) -> Result<(Value, Vec<Change>), ApiError> {
        let expand = expand_flags(&mut p)?;
        let product_id = p.required_string("product")?;
        if p.has("product_data") {
            return Err(ApiError::invalid(
                "product_data is not supported by the sandbox; create the product first.",
                Some("product_data".into()),
            ));
        }
        let currency = model::currency(
            p.string("currency")?
                .ok_or_else(|| ApiError::missing("currency"))?,
            "currency",
        )?;
        let recurring = p
            .hash("recurring")?
            .map(|r| recurring(r, "recurring"))
            .transpose()?;
        let scheme = Scheme::parse(&mut p, &currency, recurring.is_some())?;
        let meter = recurring.as_ref().and_then(|r| r.meter.clone());
        if let Some(id) = &meter
            && self.active_meter(id).is_none()
        {
            return Err(ApiError::invalid(
                format!("No such active billing meter: '{id}'"),
                Some("recurring[meter]".into()),
            )
            .with_code("resource_missing"));
        }
        let recurring = recurring.map(|r| r.period);
        let lookup_key = p.nullable_string("lookup_key")?.flatten();
        if lookup_key
            .as_ref()
            .is_some_and(|k| k.chars().count() > MAX_LOOKUP_KEY)
        {
            return Err(ApiError::invalid(
                format!("The lookup_key must be at most {MAX_LOOKUP_KEY} characters."),
                Some("lookup_key".into()),
            ));
        }
        let transfer = p.boolean("transfer_lookup_key")?.unwrap_or(false);
        let nickname = p.nullable_string("nickname")?.flatten();
        let tax_behavior = p.string("tax_behavior")?.map(tax_behavior).transpose()?;
        let active = p.boolean("active")?.unwrap_or(true);
        let mut metadata = BTreeMap::new();
        if let Some(md) = p.string_map("metadata")? {
            model::apply_metadata(&mut metadata, md, "metadata")?;
        }
        p.finish()?;
        if self.products.get(&product_id).is_none() {
            return Err(ApiError::not_found("product", &product_id).with_param("product"));
        }
        let mut changes = match &lookup_key {
            Some(key) => self.release_lookup_key(key, None, transfer)?,
            None => Vec::new(),
        };
        let price = Price {
            id: random_id("price"),
            active,
            created: now(),
            currency,
            lookup_key: lookup_key.clone(),
            metadata,
            nickname,
            product: product_id,
            recurring,
            tax_behavior: tax_behavior.unwrap_or_else(|| "unspecified".into()),
            unit_amount: scheme.unit_amount,
            tiers: scheme.tiers,
            tiers_mode: scheme.tiers_mode,
            currency_options: scheme.currency_options,
            custom_unit_amount: scheme.custom_unit_amount,
            transform_quantity: scheme.transform_quantity,
            meter,
        };
        if let Some(key) = lookup_key {
            self.lookup_keys.insert(key, price.id.clone());
        }
        let seq = self.seq();
        changes.insert(
            0,
            Change {
                event_type: "price.created",
                object: price.to_json(),
                previous_attributes: None,
                object_id: price.id.clone(),
            },
        );
        let out = price.to_json_with(expand.includes);
        self.insert_price(seq, price);
        Ok((out, changes))
    }

    /// `GET /v1/prices/{id}`.
    pub fn get_price(&self, id: &str, mut p: Params) -> Result<Value, ApiError> {
        let expand = expand_flags(&mut p)?;
        p.finish()?;
        self.prices
            .get(id)
            .map(|price| self.render_price(price, expand.product, expand.includes))
            .ok_or_else(|| ApiError::not_found("price", id))
    }

    /// `POST /v1/prices/{id}`: only the fields Stripe lets you change.
    pub fn update_price(
        &mut self,
        id: &str,
        mut p: Params,
    ) -> Result<(Value, Vec<Change>), ApiError> {
        let expand = expand_flags(&mut p)?;
        let before = self
            .prices
            .get(id)
            .ok_or_else(|| ApiError::not_found("price", id))?
            .clone();
        for immutable in [
            "unit_amount",
            "currency",
            "product",
            "recurring",
            "type",
            "billing_scheme",
            "tiers",
            "tiers_mode",
            "custom_unit_amount",
            "transform_quantity",
        ] {
            if p.has(immutable) {
                return Err(ApiError::invalid(
                    format!("Received unknown parameter: {immutable}. Prices cannot be changed once created: create a new price instead."),
                    Some(immutable.into()),
                )
                .with_code("parameter_unknown"));
            }
        }
        let mut price = before.clone();
        if let Some(v) = p.boolean("active")? {
            price.active = v;
        }
        if let Some(md) = p.string_map("metadata")? {
            model::apply_metadata(&mut price.metadata, md, "metadata")?;
        }
        if let Some(v) = p.nullable_string("nickname")? {
            price.nickname = v;
        }
        if let Some(v) = p.string("tax_behavior")? {
            let v = tax_behavior(v)?;
            // Stripe: once inclusive or exclusive, a price's tax behavior is fixed.
            if price.tax_behavior != "unspecified" && v != price.tax_behavior {
                return Err(ApiError::invalid(
                    format!(
                        "The tax_behavior of a price cannot be changed once it is set to `{}`. Create a new price instead.",
                        price.tax_behavior
                    ),
                    Some("tax_behavior".into()),
                ));
            }
            price.tax_behavior = v;
        }
        let transfer = p.boolean("transfer_lookup_key")?.unwrap_or(false);
        let new_key = p.nullable_string("lookup_key")?;
        if p.has("currency_options") && !p.is_hash("currency_options") {
            // `currency_options=` removes them all.
            if p.string("currency_options")?.is_some_and(|v| !v.is_empty()) {
                return Err(ApiError::invalid(
                    "Invalid hash: currency_options must be a hash",
                    Some("currency_options".into()),
                ));
            }
            price.currency_options.clear();
        }
        if let Some(options) = p.hash("currency_options")? {
            let tiered = (!price.tiers.is_empty()).then_some(price.tiers.as_slice());
            for (code, mut option, tax) in currency_options(
                options,
                &price.currency,
                tiered,
                price.custom_unit_amount.is_some(),
            )? {
                let old = price.currency_options.get(&code);
                // Unsent, the tax behavior stays; once set, it cannot change.
                let old_tax = old.map_or("unspecified", |o| o.tax_behavior.as_str());
                option.tax_behavior = tax.clone().unwrap_or_else(|| old_tax.to_string());
                if old_tax != "unspecified" && tax.is_some_and(|t| t != old_tax) {
                    let old = old.expect("a set tax behavior has an option");
                    return Err(ApiError::invalid(
                        format!(
                            "The tax_behavior of a price's currency option cannot be changed once it is set to `{}`.",
                            old.tax_behavior
                        ),
                        Some(format!("currency_options[{code}][tax_behavior]")),
                    ));
                }
                price.currency_options.insert(code, option);
            }
        }
        p.finish()?;
        let mut changes = Vec::new();
        if let Some(new_key) = new_key {
            if let Some(key) = &new_key {
                changes.extend(self.release_lookup_key(key, Some(id), transfer)?);
            }
            if let Some(old_key) = &price.lookup_key {
                self.lookup_keys.remove(old_key);
            }
            if let Some(key) = &new_key {
                self.lookup_keys.insert(key.clone(), id.to_string());
            }
            price.lookup_key = new_key;
        }
        let all = Includes {
            tiers: true,
            currency_options: true,
        };
        let previous = diff(&before.to_json_with(all), &price.to_json_with(all));
        if previous.as_object().is_some_and(|m| !m.is_empty()) {
            changes.insert(
                0,
                Change {
                    event_type: "price.updated",
                    object: price.to_json(),
                    previous_attributes: Some(previous),
                    object_id: id.to_string(),
                },
            );
        }
        let out = price.to_json_with(expand.includes);
        *self.prices.get_mut(id).expect("exists") = price;
        Ok((out, changes))
    }

    /// `GET /v1/prices`.
    pub fn list_prices(&self, mut p: Params) -> Result<Value, ApiError> {
        let expand = expand_flags(&mut p)?;
        let product = p.string("product")?;
        let active = p.boolean("active")?;
        let currency = p.string("currency")?.map(|c| c.to_ascii_lowercase());
        let lookup_keys = p.string_list("lookup_keys")?;
        if lookup_keys.as_ref().is_some_and(|k| k.len() > 10) {
            return Err(ApiError::invalid(
                "You may pass at most 10 lookup_keys.",
                Some("lookup_keys".into()),
            ));
        }
        let kind = p.string("type")?;
        if kind
            .as_ref()
            .is_some_and(|k| k != "one_time" && k != "recurring")
        {
            return Err(ApiError::invalid(
                "Invalid type: must be one of one_time or recurring",
                Some("type".into()),
            ));
        }
        if p.has("recurring") {
            let _ = p.hash("recurring")?;
        }
        let page = self.page(&mut p, &self.prices.seq_of, "price")?;
        p.finish()?;
        let keep = |price: &Price| {
            product.as_ref().is_none_or(|id| &price.product == id)
                && active.is_none_or(|a| price.active == a)
                && currency.as_ref().is_none_or(|c| &price.currency == c)
                && lookup_keys
                    .as_ref()
                    .is_none_or(|keys| price.lookup_key.as_ref().is_some_and(|k| keys.contains(k)))
                && kind
                    .as_ref()
                    .is_none_or(|k| (k == "recurring") == price.recurring.is_some())
        };
        let (items, has_more) = match &lookup_keys {
            // With `lookup_keys[]` (at most 10), look each up directly rather than scanning the
            // whole account.
            Some(keys) => {
                let subset: BTreeMap<u64, &Price> = keys
                    .iter()
                    .filter_map(|key| self.lookup_keys.get(key))
                    .filter_map(|id| self.prices.seq_of.get(id))
                    .filter_map(|&seq| self.prices.by_seq.get(&seq).map(|price| (seq, price)))
                    .collect();
                let (items, more) = Self::paginate(&subset, &page, |price| keep(price));
                (items.into_iter().copied().collect::<Vec<_>>(), more)
            }
            // A product's prices come from its index rather than a scan of the account.
            None => match &product {
                Some(id) => {
                    let subset: BTreeMap<u64, &Price> = self
                        .prices_by_product
                        .get(id)
                        .into_iter()
                        .flatten()
                        .filter_map(|&seq| self.prices.by_seq.get(&seq).map(|price| (seq, price)))
                        .collect();
                    let (items, more) = Self::paginate(&subset, &page, |price| keep(price));
                    (items.into_iter().copied().collect::<Vec<_>>(), more)
                }
                None => Self::paginate(&self.prices.by_seq, &page, keep),
            },
        };
        let data = items
            .into_iter()
            .map(|price| self.render_price(price, expand.data_product, expand.includes))
            .collect();
        Ok(Self::list_json("/v1/prices", data, has_more))
    }
}
