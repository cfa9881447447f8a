//! Account state: products and prices per API key, with Stripe's list ordering (newest first),
//! pagination, lookup-key uniqueness and the product/price invariants.
//!
//! Over 500 lines: one `Account` holds both objects because Stripe's invariants cross them (a
//! product's default price is one of its prices; lookup keys are unique across all prices); split
//! by object, each such rule would live in two files.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::http::StatusCode;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::form::Params;

mod endpoints;
mod events;
mod meters;
mod price_params;
mod price_requests;
mod prices;
mod products;
pub use endpoints::{EVENT_TYPES, Target};
pub use events::RETENTION_SECS;
pub use prices::Price;
pub use products::Product;

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
    /// Each product's prices (sequence numbers), for `GET /v1/prices?product=…` without a scan of
    /// the account; rebuilt on load ([`Account::reindex`]).
    #[serde(skip)]
    prices_by_product: HashMap<String, BTreeSet<u64>>,
    lookup_keys: HashMap<String, String>,
    #[serde(default)]
    endpoints: Ordered<endpoints::WebhookEndpoint>,
    /// The account's events, oldest first (`events`).
    #[serde(default)]
    events: Ordered<events::StoredEvent>,
    /// Billing Meters (`billing.meter`).
    #[serde(default)]
    meters: Ordered<meters::Meter>,
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
    /// Rebuilds the indexes a state file does not keep.
    pub fn reindex(&mut self) {
        self.prices_by_product.clear();
        for (&seq, price) in &self.prices.by_seq {
            self.prices_by_product
                .entry(price.product.clone())
                .or_default()
                .insert(seq);
        }
    }

    /// Adds a new price (a price never changes its product).
    fn insert_price(&mut self, seq: u64, price: Price) {
        self.prices_by_product
            .entry(price.product.clone())
            .or_default()
            .insert(seq);
        self.prices.insert(seq, price.id.clone(), price);
    }

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
    fn render_price(&self, price: &Price, expand_product: bool, includes: Includes) -> Value {
        let mut out = price.to_json_with(includes);
        if expand_product && let Some(product) = self.products.get(&price.product) {
            out["product"] = self.render_product(product, false, Includes::default());
        }
        out
    }

    /// Product JSON with `default_price` expanded on request.
    fn render_product(&self, product: &Product, expand_price: bool, includes: Includes) -> Value {
        let expanded = expand_price
            .then_some(product.default_price.as_deref())
            .flatten()
            .and_then(|id| self.prices.get(id))
            .map(|price| price.to_json_with(includes));
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
}

/// Which expansions were requested.
#[derive(Default)]
struct Expand {
    default_price: bool,
    data_default_price: bool,
    product: bool,
    data_product: bool,
    /// The fields of the prices shown that Stripe includes only on request.
    includes: Includes,
}

/// A price's fields that Stripe leaves out unless expanded (`tiers`, `currency_options`, also
/// under `data.` and `[data.]default_price.`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Includes {
    /// `tiers`.
    pub tiers: bool,
    /// `currency_options`.
    pub currency_options: bool,
}

fn expand_flags(p: &mut Params) -> Result<Expand, ApiError> {
    let mut out = Expand::default();
    for path in p.string_list("expand")?.unwrap_or_default() {
        match path.as_str() {
            "default_price" => out.default_price = true,
            "data.default_price" => out.data_default_price = true,
            "product" => out.product = true,
            "data.product" => out.data_product = true,
            other
                if ["", "data.", "default_price.", "data.default_price."]
                    .iter()
                    .any(|prefix| other == format!("{prefix}tiers")) =>
            {
                out.includes.tiers = true;
            }
            other
                if ["", "data.", "default_price.", "data.default_price."]
                    .iter()
                    .any(|prefix| other == format!("{prefix}currency_options")) =>
            {
                out.includes.currency_options = true;
            }
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
