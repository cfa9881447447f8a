//! Stripe's Price object: its fields, the rules Stripe applies to them (which fields are
//! immutable, lookup-key uniqueness and transfer), and `/v1/prices`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Account, Change, diff, expand_flags, now, random_id};
use crate::error::ApiError;
use crate::form::Params;
use crate::model::{self, MAX_UNIT_AMOUNT};

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
pub(super) fn recurring(mut r: Params, param: &str) -> Result<(String, i64), ApiError> {
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
    r.finish()?;
    Ok((interval, count))
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
        expand_flags(&mut p)?;
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
        let amount = p
            .integer("unit_amount")?
            .ok_or_else(|| ApiError::missing("unit_amount"))?;
        let unit_amount = unit_amount(amount, "unit_amount")?;
        let recurring = p
            .hash("recurring")?
            .map(|r| recurring(r, "recurring"))
            .transpose()?;
        let lookup_key = p.nullable_string("lookup_key")?.flatten();
        if lookup_key.as_ref().is_some_and(|k| k.chars().count() > 200) {
            return Err(ApiError::invalid(
                "The lookup_key must be at most 200 characters.",
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
            unit_amount,
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
        let out = price.to_json();
        self.prices.insert(seq, price.id.clone(), price);
        Ok((out, changes))
    }

    /// `GET /v1/prices/{id}`.
    pub fn get_price(&self, id: &str, mut p: Params) -> Result<Value, ApiError> {
        let expand = expand_flags(&mut p)?;
        p.finish()?;
        self.prices
            .get(id)
            .map(|price| self.render_price(price, expand.product))
            .ok_or_else(|| ApiError::not_found("price", id))
    }

    /// `POST /v1/prices/{id}`: only the fields Stripe lets you change.
    pub fn update_price(
        &mut self,
        id: &str,
        mut p: Params,
    ) -> Result<(Value, Vec<Change>), ApiError> {
        expand_flags(&mut p)?;
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
        if p.has("currency_options") {
            let _ = p.hash("currency_options")?;
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
        let previous = diff(&before.to_json(), &price.to_json());
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
        let out = price.to_json();
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
            None => Self::paginate(&self.prices.by_seq, &page, keep),
        };
        let data = items
            .into_iter()
            .map(|price| self.render_price(price, expand.data_product))
            .collect();
        Ok(Self::list_json("/v1/prices", data, has_more))
    }
}
