//! `/v1/prices`: create, read, update and list, with the rules Stripe applies (which fields are
//! immutable, lookup-key uniqueness and transfer).

use super::price_params::{Scheme, currency_options};
use super::price_params::{recurring, tax_behavior};
use super::prices::Price;
use super::{Account, Change, Includes, diff, expand_flags, now, random_id};
use crate::error::ApiError;
use crate::form::Params;
use crate::model;
use domain::limits::MAX_LOOKUP_KEY;
use serde_json::{Value, json};
use std::collections::BTreeMap;

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
