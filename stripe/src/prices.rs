//! Stripe's Price object: the fields catalog-sync reads, how each may change, and its requests
//! (`/v1/prices`).
//!
//! # What can change in place
//! Stripe fixes most of a price at creation. [`PRICE_FIELDS`] is the rule for every field
//! catalog-sync writes, and [`compare`] applies it: a difference in a field updated in place is a
//! `POST /v1/prices/{id}`; a difference in any other field makes a new price that takes the
//! lookup key over (`transfer_lookup_key=true`), becomes the default if it replaces the default,
//! and the old price is archived.
//!
//! | field | change |
//! |---|---|
//! | `currency` | new price |
//! | `unit_amount` | new price |
//! | `recurring` (interval, count) | new price |
//! | `tax_behavior` | in place while Stripe has `unspecified` (or none); new price once set |
//! | `nickname` | in place |
//! | `metadata` | in place (keys the catalog no longer has are removed) |
//! | `active` | in place (a kept price is re-activated) |

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;

use domain::model::DesiredPrice;

use crate::client::{Form, StripeClient, StripeError, path_segment};
use crate::envelope::{Expandable, List, Response};
use crate::products::Product;

/// How Stripe lets a price field change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// `POST /v1/prices/{id}` changes it.
    InPlace,
    /// Changes in place while Stripe holds `unspecified` (or nothing); fixed once set.
    InPlaceWhileUnspecified,
    /// Fixed at creation: another value needs a new price.
    NewPrice,
}

/// Every price field catalog-sync writes, with Stripe's rule for changing it (the table above).
pub const PRICE_FIELDS: &[(&str, Mutability)] = &[
    ("currency", Mutability::NewPrice),
    ("unit_amount", Mutability::NewPrice),
    ("recurring", Mutability::NewPrice),
    ("tax_behavior", Mutability::InPlaceWhileUnspecified),
    ("nickname", Mutability::InPlace),
    ("metadata", Mutability::InPlace),
    ("active", Mutability::InPlace),
];

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
    current: &Price,
    desired: &DesiredPrice,
    marker: &BTreeMap<String, String>,
) -> PriceChanges {
    let mut changes = PriceChanges::default();
    let metadata = desired_metadata(desired, marker);
    for (field, rule) in PRICE_FIELDS {
        let differs = match *field {
            "currency" => current.currency != desired.currency,
            "unit_amount" => current.unit_amount != Some(desired.unit_amount),
            "recurring" => {
                current
                    .recurring
                    .as_ref()
                    .map(|r| (&r.interval, r.interval_count))
                    != desired
                        .recurring
                        .as_ref()
                        .map(|r| (&r.interval, r.interval_count))
            }
            "tax_behavior" => desired
                .tax_behavior
                .as_ref()
                .is_some_and(|t| current.tax_behavior.as_ref() != Some(t)),
            "nickname" => current.nickname != desired.nickname,
            "metadata" => current.metadata != metadata,
            "active" => !current.active,
            other => unreachable!("PRICE_FIELDS names {other} without a comparison"),
        };
        if !differs {
            continue;
        }
        let in_place = match rule {
            Mutability::InPlace => true,
            Mutability::InPlaceWhileUnspecified => current
                .tax_behavior
                .as_deref()
                .is_none_or(|t| t == "unspecified"),
            Mutability::NewPrice => false,
        };
        if !in_place {
            changes.new_price.push(field);
            continue;
        }
        let form = &mut changes.update;
        match *field {
            "tax_behavior" => {
                form.push_opt("tax_behavior", desired.tax_behavior.as_deref());
            }
            "nickname" => {
                form.push("nickname", desired.nickname.clone().unwrap_or_default());
            }
            "metadata" => {
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
            "active" => {
                form.push("active", "true");
            }
            _ => {}
        }
    }
    changes
}

/// The form of `POST /v1/prices` for `desired` on `product`, taking the lookup key over.
pub fn create_form(
    product: &str,
    desired: &DesiredPrice,
    marker: &BTreeMap<String, String>,
) -> Form {
    let mut form = Form::new();
    form.push("product", product)
        .push("currency", desired.currency.as_str())
        .push("unit_amount", desired.unit_amount.to_string())
        .push("lookup_key", desired.lookup_key.as_str())
        .push("transfer_lookup_key", "true");
    for (k, v) in desired_metadata(desired, marker) {
        form.push(format!("metadata[{k}]"), v);
    }
    if let Some(r) = &desired.recurring {
        form.push("recurring[interval]", r.interval.as_str())
            .push("recurring[interval_count]", r.interval_count.to_string());
    }
    form.push_opt("nickname", desired.nickname.as_deref());
    form.push_opt("tax_behavior", desired.tax_behavior.as_deref());
    form
}

/// Recurring settings of a price.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PriceRecurring {
    /// Interval.
    pub interval: String,
    /// Interval count.
    pub interval_count: i64,
}

/// The price fields catalog-sync reads. `P` is how the owning product comes: its id (the
/// default), or the product itself when the request expanded it ([`PriceOfProduct`]).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Price<P = String> {
    /// Id.
    pub id: String,
    /// Active.
    pub active: bool,
    /// Currency.
    pub currency: String,
    /// Amount in minor units.
    #[serde(default)]
    pub unit_amount: Option<i64>,
    /// Recurring settings.
    #[serde(default)]
    pub recurring: Option<PriceRecurring>,
    /// Lookup key.
    #[serde(default)]
    pub lookup_key: Option<String>,
    /// Nickname.
    #[serde(default)]
    pub nickname: Option<String>,
    /// `inclusive`, `exclusive` or `unspecified`.
    #[serde(default)]
    pub tax_behavior: Option<String>,
    /// Owning product.
    pub product: P,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A price listed with its product expanded (`expand[]=data.product`).
pub type PriceOfProduct = Price<Product>;

impl Expandable<Price> {
    /// The object's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) => id,
            Self::Object(p) => &p.id,
        }
    }
}

impl StripeClient {
    /// Every price of a product (all pages), and how many requests that took.
    pub async fn list_prices_of(&self, product: &str) -> Result<(Vec<Price>, u32), StripeError> {
        let mut requests = 0;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut form = Form::new();
            form.push("product", product).push("limit", "100");
            form.push_opt("starting_after", after.as_deref());
            let page: Response<List<Price>> =
                self.call(Method::GET, "/v1/prices", &form, None).await?;
            requests += 1;
            let more = page.value.has_more;
            after = page.value.data.last().map(|p| p.id.clone());
            out.extend(page.value.data);
            if !more || after.is_none() {
                return Ok((out, requests));
            }
        }
    }

    /// `GET /v1/prices?lookup_keys[]=…`: the prices holding up to 10 lookup keys, in one request.
    pub async fn list_prices_by_lookup_keys(
        &self,
        keys: &[String],
    ) -> Result<Vec<Price>, StripeError> {
        assert!(keys.len() <= 10, "Stripe takes at most 10 lookup_keys");
        let mut form = Form::new();
        form.push("limit", "100");
        for key in keys {
            form.push("lookup_keys[]", key.as_str());
        }
        let page: Response<List<Price>> = self.call(Method::GET, "/v1/prices", &form, None).await?;
        Ok(page.value.data)
    }

    /// One page (100, newest first) of the account's active prices after `starting_after`, each
    /// with its product (`expand[]=data.product`): the reconciliation's sweep for active prices
    /// the catalog does not ask for.
    pub async fn list_active_prices(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<PriceOfProduct>, StripeError> {
        let mut form = Form::new();
        form.push("active", "true")
            .push("limit", "100")
            .push("expand[]", "data.product");
        form.push_opt("starting_after", starting_after);
        let page: Response<List<PriceOfProduct>> =
            self.call(Method::GET, "/v1/prices", &form, None).await?;
        Ok(page.value)
    }

    /// `POST /v1/prices`.
    pub async fn create_price(
        &self,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<Response<Price>, StripeError> {
        self.call(Method::POST, "/v1/prices", form, Some(idempotency_key))
            .await
    }

    /// `POST /v1/prices/{id}`.
    pub async fn update_price(
        &self,
        id: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<Response<Price>, StripeError> {
        self.call(
            Method::POST,
            &format!("/v1/prices/{}", path_segment(id)),
            form,
            Some(idempotency_key),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::model::Recurring;

    fn marker() -> BTreeMap<String, String> {
        BTreeMap::from([("catalog_sync_managed".to_string(), "true".to_string())])
    }

    fn desired() -> DesiredPrice {
        DesiredPrice {
            lookup_key: "cs:sku:usd:monthx1".into(),
            currency: "usd".into(),
            unit_amount: 1000,
            recurring: Some(Recurring {
                interval: "month".into(),
                interval_count: 1,
            }),
            nickname: Some("Monthly".into()),
            tax_behavior: Some("exclusive".into()),
            metadata: BTreeMap::from([("channel".to_string(), "web".to_string())]),
        }
    }

    /// The Stripe price that `desired()` makes.
    fn synced() -> Price {
        let d = desired();
        Price {
            id: "price_1".into(),
            active: true,
            currency: d.currency.clone(),
            unit_amount: Some(d.unit_amount),
            recurring: Some(PriceRecurring {
                interval: "month".into(),
                interval_count: 1,
            }),
            lookup_key: Some(d.lookup_key.clone()),
            nickname: d.nickname.clone(),
            tax_behavior: d.tax_behavior.clone(),
            product: "sku".into(),
            metadata: desired_metadata(&d, &marker()),
        }
    }

    fn changes(edit: impl FnOnce(&mut Price)) -> PriceChanges {
        let mut current = synced();
        edit(&mut current);
        compare(&current, &desired(), &marker())
    }

    #[test]
    fn a_synced_price_matches() {
        assert!(changes(|_| {}).is_empty());
    }

    #[test]
    fn every_field_of_the_table_is_compared_under_its_rule() {
        let all = changes(|p| {
            p.currency = "eur".into();
            p.unit_amount = Some(900);
            p.recurring.as_mut().unwrap().interval_count = 3;
            p.tax_behavior = Some("inclusive".into());
            p.nickname = None;
            p.metadata.clear();
            p.active = false;
        });
        for (field, rule) in PRICE_FIELDS {
            let new_price = all.new_price.contains(field);
            let in_place = all.update.field_names().contains(field);
            match rule {
                Mutability::NewPrice | Mutability::InPlaceWhileUnspecified => {
                    assert!(new_price && !in_place, "{field}: a new price")
                }
                Mutability::InPlace => assert!(in_place && !new_price, "{field}: in place"),
            }
        }
    }

    #[test]
    fn currency_amount_and_period_make_a_new_price() {
        for (field, edit) in [
            (
                "currency",
                Box::new(|p: &mut Price| p.currency = "eur".into()) as Box<dyn FnOnce(&mut Price)>,
            ),
            (
                "unit_amount",
                Box::new(|p: &mut Price| p.unit_amount = Some(900)),
            ),
            (
                "recurring",
                Box::new(|p: &mut Price| p.recurring.as_mut().unwrap().interval_count = 3),
            ),
            ("recurring", Box::new(|p: &mut Price| p.recurring = None)),
        ] {
            let c = changes(edit);
            assert_eq!(c.new_price, vec![field]);
            assert!(c.update.is_empty(), "{field}: nothing in place");
        }
    }

    #[test]
    fn tax_behavior_changes_in_place_only_while_unspecified() {
        let c = changes(|p| p.tax_behavior = Some("unspecified".into()));
        assert!(c.new_price.is_empty());
        assert_eq!(c.update.encode(), "tax_behavior=exclusive");
        let c = changes(|p| p.tax_behavior = None);
        assert_eq!(c.update.encode(), "tax_behavior=exclusive");
        let c = changes(|p| p.tax_behavior = Some("inclusive".into()));
        assert_eq!(c.new_price, vec!["tax_behavior"]);
        // Unset in the catalog: Stripe's value stays, whatever it is.
        let mut d = desired();
        d.tax_behavior = None;
        let mut current = synced();
        current.tax_behavior = Some("inclusive".into());
        assert!(compare(&current, &d, &marker()).is_empty());
    }

    #[test]
    fn nickname_metadata_and_active_change_in_place() {
        let c = changes(|p| p.nickname = Some("Old".into()));
        assert_eq!(c.update.encode(), "nickname=Monthly");
        let c = changes(|p| p.nickname = None);
        assert_eq!(c.update.encode(), "nickname=Monthly");
        let c = changes(|p| {
            p.metadata.insert("channel".into(), "store".into());
            p.metadata.insert("dashboard".into(), "x".into());
        });
        assert_eq!(
            c.update.encode(),
            "metadata[channel]=web&metadata[dashboard]="
        );
        assert!(c.new_price.is_empty());
        let c = changes(|p| p.active = false);
        assert_eq!(c.update.encode(), "active=true");
    }

    #[test]
    fn a_new_price_carries_every_field() {
        let form = create_form("sku", &desired(), &marker());
        assert_eq!(
            form.encode(),
            "product=sku&currency=usd&unit_amount=1000&lookup_key=cs%3Asku%3Ausd%3Amonthx1\
             &transfer_lookup_key=true&metadata[catalog_sync_managed]=true&metadata[channel]=web\
             &recurring[interval]=month&recurring[interval_count]=1&nickname=Monthly\
             &tax_behavior=exclusive"
        );
    }
}
