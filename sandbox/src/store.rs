//! Account state: products and prices per API key, with Stripe's list ordering (newest first),
//! pagination, lookup-key uniqueness and the product/price invariants.
//!
//! Over 500 lines: one `Account` holds both objects because Stripe's invariants cross them (a
//! product's default price is one of its prices; lookup keys are unique across all prices); split
//! by object, each such rule would live in two files.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::form::Params;
use crate::model::{self, Price, Product};

mod endpoints;
mod events;
pub use endpoints::{EVENT_TYPES, Target};
pub use events::RETENTION_SECS;

/// A change that webhooks report: event type, the object after it, and changed attributes.
#[derive(Debug, Clone)]
pub struct Change {
    /// e.g. `product.updated`.
    pub event_type: &'static str,
    /// The object after the change.
    pub object: Value,
    /// For updates: the previous values of the fields that changed.
    pub previous_attributes: Option<Value>,
    /// The id of the object written.
    pub object_id: String,
}

/// Objects kept in creation order; `seq` gives Stripe's newest-first listing.
#[derive(Debug, Serialize, Deserialize)]
struct Ordered<T> {
    by_seq: BTreeMap<u64, T>,
    seq_of: HashMap<String, u64>,
}

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Self {
            by_seq: BTreeMap::new(),
            seq_of: HashMap::new(),
        }
    }
}

impl<T> Ordered<T> {
    fn get(&self, id: &str) -> Option<&T> {
        self.seq_of.get(id).and_then(|s| self.by_seq.get(s))
    }
    fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        let seq = *self.seq_of.get(id)?;
        self.by_seq.get_mut(&seq)
    }
    fn insert(&mut self, seq: u64, id: String, value: T) {
        self.seq_of.insert(id, seq);
        self.by_seq.insert(seq, value);
    }
    fn remove(&mut self, id: &str) -> Option<T> {
        let seq = self.seq_of.remove(id)?;
        self.by_seq.remove(&seq)
    }
    fn len(&self) -> usize {
        self.by_seq.len()
    }
}

/// The data of one API key (or of one connected account of it).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    next_seq: u64,
    products: Ordered<Product>,
    prices: Ordered<Price>,
    lookup_keys: HashMap<String, String>,
    #[serde(default)]
    endpoints: Ordered<endpoints::WebhookEndpoint>,
    /// The account's events, oldest first (`events`).
    #[serde(default)]
    events: Ordered<Value>,
}

/// Pagination and filters shared by list endpoints.
struct Page {
    limit: usize,
    starting_after: Option<u64>,
    ending_before: Option<u64>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..14)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{tail}")
}

impl Account {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Number of products and prices held.
    pub fn counts(&self) -> (usize, usize) {
        (self.products.len(), self.prices.len())
    }

    /// Price JSON with `product` expanded on request (the product as its own JSON, its default
    /// price not expanded, as Stripe does).
    fn render_price(&self, price: &Price, expand_product: bool) -> Value {
        let mut out = price.to_json();
        if expand_product && let Some(product) = self.products.get(&price.product) {
            out["product"] = self.render_product(product, false);
        }
        out
    }

    /// Product JSON with `default_price` expanded on request.
    fn render_product(&self, product: &Product, expand_price: bool) -> Value {
        let expanded = expand_price
            .then_some(product.default_price.as_deref())
            .flatten()
            .and_then(|id| self.prices.get(id))
            .map(Price::to_json);
        product.to_json(expanded)
    }

    fn page(
        &self,
        p: &mut Params,
        seq_of: &HashMap<String, u64>,
        object: &str,
    ) -> Result<Page, ApiError> {
        let limit = p.integer("limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid(
                "Invalid limit: must be between 1 and 100",
                Some("limit".into()),
            ));
        }
        let cursor = |p: &mut Params, key: &str| -> Result<Option<u64>, ApiError> {
            match p.string(key)? {
                None => Ok(None),
                Some(id) => seq_of
                    .get(&id)
                    .copied()
                    .map(Some)
                    .ok_or_else(|| ApiError::not_found(object, &id).with_param(key)),
            }
        };
        let starting_after = cursor(p, "starting_after")?;
        let ending_before = cursor(p, "ending_before")?;
        if starting_after.is_some() && ending_before.is_some() {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                None,
            ));
        }
        Ok(Page {
            limit: limit as usize,
            starting_after,
            ending_before,
        })
    }

    /// Newest-first slice of `by_seq` honouring cursors; returns (items, has_more).
    fn paginate<'a, T>(
        by_seq: &'a BTreeMap<u64, T>,
        page: &Page,
        keep: impl Fn(&T) -> bool,
    ) -> (Vec<&'a T>, bool) {
        if let Some(before) = page.ending_before {
            // Objects newer than the cursor, the `limit` closest to it, shown newest first.
            let mut items: Vec<&T> = by_seq
                .range(before + 1..)
                .map(|(_, v)| v)
                .filter(|v| keep(v))
                .take(page.limit + 1)
                .collect();
            let has_more = items.len() > page.limit;
            items.truncate(page.limit);
            items.reverse();
            return (items, has_more);
        }
        let upper = page.starting_after.unwrap_or(u64::MAX);
        let mut items: Vec<&T> = by_seq
            .range(..upper)
            .rev()
            .map(|(_, v)| v)
            .filter(|v| keep(v))
            .take(page.limit + 1)
            .collect();
        let has_more = items.len() > page.limit;
        items.truncate(page.limit);
        (items, has_more)
    }

    fn list_json(url: &str, data: Vec<Value>, has_more: bool) -> Value {
        json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
    }

    // ---- products ----

    /// `POST /v1/products`.
    pub fn create_product(&mut self, mut p: Params) -> Result<(Value, Vec<Change>), ApiError> {
        let expand = expand_flags(&mut p)?;
        let id = match p.string("id")? {
            Some(id) => {
                model::custom_id(&id)?;
                if self.products.get(&id).is_some() {
                    return Err(
                        ApiError::invalid("Product already exists.", Some("id".into()))
                            .with_code("resource_already_exists"),
                    );
                }
                id
            }
            None => random_id("prod"),
        };
        if !p.has("name") {
            return Err(ApiError::missing("name"));
        }
        let t = now();
        let mut product = Product {
            id: id.clone(),
            active: true,
            created: t,
            updated: t,
            default_price: None,
            description: None,
            images: Vec::new(),
            marketing_features: Vec::new(),
            metadata: BTreeMap::new(),
            name: String::new(),
            package_dimensions: None,
            shippable: None,
            statement_descriptor: None,
            tax_code: None,
            unit_label: None,
            url: None,
        };
        model::apply_product_fields(&mut product, &mut p)?;
        let price = match p.hash("default_price_data")? {
            Some(mut d) => {
                let currency = model::currency(
                    d.required_string("currency")?,
                    "default_price_data[currency]",
                )?;
                let amount = d
                    .integer("unit_amount")?
                    .ok_or_else(|| ApiError::missing("default_price_data[unit_amount]"))?;
                let unit_amount = model::unit_amount(amount, "default_price_data[unit_amount]")?;
                let recurring = d
                    .hash("recurring")?
                    .map(|r| model::recurring(r, "default_price_data[recurring]"))
                    .transpose()?;
                let tax_behavior = d
                    .string("tax_behavior")?
                    .map(model::tax_behavior)
                    .transpose()?;
                let mut metadata = BTreeMap::new();
                if let Some(md) = d.string_map("metadata")? {
                    model::apply_metadata(&mut metadata, md, "default_price_data[metadata]")?;
                }
                d.finish()?;
                Some(Price {
                    id: random_id("price"),
                    active: true,
                    created: t,
                    currency,
                    lookup_key: None,
                    metadata,
                    nickname: None,
                    product: id.clone(),
                    recurring,
                    tax_behavior: tax_behavior.unwrap_or_else(|| "unspecified".into()),
                    unit_amount,
                })
            }
            None => None,
        };
        if p.has("default_price") {
            return Err(ApiError::invalid(
                "Received unknown parameter: default_price. Did you mean default_price_data?",
                Some("default_price".into()),
            )
            .with_code("parameter_unknown"));
        }
        p.finish()?;
        let mut changes = Vec::new();
        let seq = self.seq();
        if let Some(price) = &price {
            product.default_price = Some(price.id.clone());
        }
        self.products.insert(seq, id.clone(), product.clone());
        changes.push(Change {
            event_type: "product.created",
            object: product.to_json(None),
            previous_attributes: None,
            object_id: id.clone(),
        });
        if let Some(price) = price {
            let seq = self.seq();
            changes.push(Change {
                event_type: "price.created",
                object: price.to_json(),
                previous_attributes: None,
                object_id: price.id.clone(),
            });
            self.prices.insert(seq, price.id.clone(), price);
        }
        let product = self.products.get(&id).expect("just inserted");
        Ok((self.render_product(product, expand.default_price), changes))
    }

    /// `GET /v1/products/{id}`.
    pub fn get_product(&self, id: &str, mut p: Params) -> Result<Value, ApiError> {
        let expand = expand_flags(&mut p)?;
        p.finish()?;
        let product = self
            .products
            .get(id)
            .ok_or_else(|| ApiError::not_found("product", id))?;
        Ok(self.render_product(product, expand.default_price))
    }

    /// `POST /v1/products/{id}`.
    pub fn update_product(
        &mut self,
        id: &str,
        mut p: Params,
    ) -> Result<(Value, Vec<Change>), ApiError> {
        let expand = expand_flags(&mut p)?;
        let before = self
            .products
            .get(id)
            .ok_or_else(|| ApiError::not_found("product", id))?
            .clone();
        let mut product = before.clone();
        model::apply_product_fields(&mut product, &mut p)?;
        if let Some(price_id) = p.nullable_string("default_price")? {
            if let Some(price_id) = &price_id {
                let price = self.prices.get(price_id).ok_or_else(|| {
                    ApiError::not_found("price", price_id).with_param("default_price")
                })?;
                if price.product != id {
                    return Err(ApiError::invalid(
                        format!("The price `{price_id}` does not belong to product `{id}`."),
                        Some("default_price".into()),
                    ));
                }
                if !price.active {
                    return Err(ApiError::invalid(
                        format!(
                            "The price `{price_id}` is not active and cannot be set as the default price."
                        ),
                        Some("default_price".into()),
                    ));
                }
            }
            product.default_price = price_id;
        }
        p.finish()?;
        let mut changes = Vec::new();
        let previous = diff(&before.to_json(None), &product.to_json(None));
        if previous.as_object().is_some_and(|m| !m.is_empty()) {
            product.updated = now();
            changes.push(Change {
                event_type: "product.updated",
                object: product.to_json(None),
                previous_attributes: Some(previous),
                object_id: id.to_string(),
            });
        }
        *self.products.get_mut(id).expect("exists") = product.clone();
        Ok((self.render_product(&product, expand.default_price), changes))
    }

    /// `DELETE /v1/products/{id}`.
    pub fn delete_product(&mut self, id: &str) -> Result<(Value, Vec<Change>), ApiError> {
        let product = self
            .products
            .get(id)
            .ok_or_else(|| ApiError::not_found("product", id))?;
        if self.prices.by_seq.values().any(|price| price.product == id) {
            return Err(ApiError::invalid(
                "This product cannot be deleted because it has one or more user-created prices.",
                None,
            ));
        }
        let object = product.to_json(None);
        self.products.remove(id);
        Ok((
            json!({ "id": id, "object": "product", "deleted": true }),
            vec![Change {
                event_type: "product.deleted",
                object,
                previous_attributes: None,
                object_id: id.to_string(),
            }],
        ))
    }

    /// `GET /v1/products`.
    pub fn list_products(&self, mut p: Params) -> Result<Value, ApiError> {
        let expand = expand_flags(&mut p)?;
        let active = p.boolean("active")?;
        let shippable = p.boolean("shippable")?;
        let url = p.string("url")?;
        let ids = p.string_list("ids")?;
        if p.has("created") {
            // `created` filters are accepted but, since the sandbox cannot backdate, not narrowing.
            let _ = p.hash("created")?;
        }
        let page = self.page(&mut p, &self.products.seq_of, "product")?;
        p.finish()?;
        let id_seqs: Option<std::collections::HashSet<u64>> = ids.map(|ids| {
            ids.iter()
                .filter_map(|id| self.products.seq_of.get(id).copied())
                .collect()
        });
        let keep = |prod: &Product| {
            active.is_none_or(|a| prod.active == a)
                && shippable.is_none_or(|s| prod.shippable == Some(s))
                && url.as_ref().is_none_or(|u| prod.url.as_ref() == Some(u))
        };
        let (items, has_more) = match &id_seqs {
            // With `ids[]`, look each up directly rather than scanning the whole account.
            Some(seqs) => {
                let mut sorted: Vec<u64> = seqs.iter().copied().collect();
                sorted.sort_unstable();
                let subset: BTreeMap<u64, &Product> = sorted
                    .into_iter()
                    .filter_map(|s| self.products.by_seq.get(&s).map(|p| (s, p)))
                    .collect();
                let (items, more) = Self::paginate(&subset, &page, |p| keep(p));
                (items.into_iter().copied().collect::<Vec<_>>(), more)
            }
            None => Self::paginate(&self.products.by_seq, &page, keep),
        };
        let data = items
            .into_iter()
            .map(|prod| self.render_product(prod, expand.data_default_price))
            .collect();
        Ok(Self::list_json("/v1/products", data, has_more))
    }

    // ---- prices ----

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
        let unit_amount = model::unit_amount(amount, "unit_amount")?;
        let recurring = p
            .hash("recurring")?
            .map(|r| model::recurring(r, "recurring"))
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
        let tax_behavior = p
            .string("tax_behavior")?
            .map(model::tax_behavior)
            .transpose()?;
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
            price.tax_behavior = model::tax_behavior(v)?;
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

/// Which expansions were requested.
#[derive(Default)]
struct Expand {
    default_price: bool,
    data_default_price: bool,
    product: bool,
    data_product: bool,
}

fn expand_flags(p: &mut Params) -> Result<Expand, ApiError> {
    let mut out = Expand::default();
    for path in p.string_list("expand")?.unwrap_or_default() {
        match path.as_str() {
            "default_price" => out.default_price = true,
            "data.default_price" => out.data_default_price = true,
            "product" => out.product = true,
            "data.product" => out.data_product = true,
            "currency_options" | "tiers" => {}
            other => {
                return Err(ApiError::invalid(
                    format!("This property cannot be expanded ({other})."),
                    Some("expand".into()),
                ));
            }
        }
    }
    Ok(out)
}

/// Top-level fields whose values differ, with their previous values.
fn diff(before: &Value, after: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, v) in b {
            if k != "updated" && a.get(k) != Some(v) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

impl ApiError {
    /// Replaces the `param` an error names.
    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.into());
        self
    }
}

/// Status for a successful call.
pub const OK: StatusCode = StatusCode::OK;
