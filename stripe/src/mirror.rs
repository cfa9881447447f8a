//! Stripe's objects as rows of the mirror of Stripe's state (`catalog::mirror`), and back; and
//! what an event (a webhook's, or a page of `GET /v1/events`) tells the mirror.
//!
//! A row keeps the fields catalog-sync reads ([`Product`], [`Price`]) as Stripe's JSON; a
//! product's default price is kept as its id and expanded again from the mirrored prices.

use serde_json::Value;

use domain::mirror::MirrorRow;

use crate::envelope::Expandable;
use crate::objects::{Price, Product};

/// A product as a row (its default price as an id).
pub fn product_row(product: &Product, seen_in: &str) -> MirrorRow {
    let mut stored = product.clone();
    if let Some(Expandable::Object(price)) = &stored.default_price {
        stored.default_price = Some(Expandable::Id(price.id.clone()));
    }
    MirrorRow {
        id: product.id.clone(),
        product_id: product.id.clone(),
        active: product.active,
        lookup_key: None,
        updated: product.updated,
        seen_in: seen_in.to_string(),
        object: serde_json::to_string(&stored).expect("a product serializes"),
    }
}

/// A price as a row.
pub fn price_row(price: &Price, seen_in: &str) -> MirrorRow {
    MirrorRow {
        id: price.id.clone(),
        product_id: price.product.clone(),
        active: price.active,
        lookup_key: price.lookup_key.clone(),
        updated: None,
        seen_in: seen_in.to_string(),
        object: serde_json::to_string(price).expect("a price serializes"),
    }
}

/// The product of a row, its default price expanded from `prices` when the mirror has it.
pub fn product_of(row: &MirrorRow, prices: &[Price]) -> Result<Product, serde_json::Error> {
    let mut product: Product = serde_json::from_str(&row.object)?;
    if let Some(Expandable::Id(id)) = &product.default_price
        && let Some(price) = prices.iter().find(|p| &p.id == id)
    {
        product.default_price = Some(Expandable::Object(Box::new(price.clone())));
    }
    Ok(product)
}

/// The price of a row.
pub fn price_of(row: &MirrorRow) -> Result<Price, serde_json::Error> {
    serde_json::from_str(&row.object)
}

/// Fills the fields Stripe leaves out of an answer unless expanded (tiers, currency options:
/// events never expand them) from what was last seen of the same price. Tiers never change on a
/// price; currency options do, and a change the answer leaves out is found by the next scan.
pub fn keep_unexpanded(price: &mut Price, last_seen: Option<&Price>) {
    let Some(seen) = last_seen.filter(|s| s.id == price.id) else {
        return;
    };
    if price.tiers.is_none() {
        price.tiers = seen.tiers.clone();
    }
    if price.currency_options.is_none() {
        price.currency_options = seen.currency_options.clone();
    }
}

/// What an event tells the mirror.
#[derive(Debug, Clone, PartialEq)]
pub enum EventObject {
    /// A product as the event shows it.
    Product(Box<Product>),
    /// A product Stripe deleted.
    ProductDeleted(String),
    /// A price as the event shows it (tiers and currency options left out: see
    /// [`keep_unexpanded`]).
    Price(Box<Price>),
    /// A price Stripe deleted.
    PriceDeleted(String),
    /// Not a product or price event, or one catalog-sync cannot read.
    Other,
}

/// Reads a `product.*` or `price.*` event's object.
pub fn event_object(event: &Value) -> EventObject {
    let kind = event["type"].as_str().unwrap_or_default();
    let object = &event["data"]["object"];
    let id = object["id"].as_str().map(str::to_string);
    match kind {
        "product.deleted" => id.map_or(EventObject::Other, EventObject::ProductDeleted),
        "price.deleted" => id.map_or(EventObject::Other, EventObject::PriceDeleted),
        k if k.starts_with("product.") => serde_json::from_value::<Product>(object.clone())
            .map_or(EventObject::Other, |p| EventObject::Product(Box::new(p))),
        k if k.starts_with("price.") => {
            let mut object = object.clone();
            // A price's product comes as an id in events; an expanded one is read as its id.
            if let Some(product) = object["product"]["id"].as_str().map(str::to_string) {
                object["product"] = Value::String(product);
            }
            serde_json::from_value::<Price>(object)
                .map_or(EventObject::Other, |p| EventObject::Price(Box::new(p)))
        }
        _ => EventObject::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn price(id: &str) -> Price {
        serde_json::from_value(json!({
            "id": id, "active": true, "currency": "usd", "unit_amount": 100,
            "product": "sku-1", "lookup_key": "cs:sku-1:usd", "billing_scheme": "tiered",
            "tiers": [{"up_to": 10, "unit_amount": 100}, {"up_to": null, "unit_amount": 90}],
            "currency_options": {"usd": {"unit_amount": 100}, "eur": {"unit_amount": 95}}
        }))
        .unwrap()
    }

    #[test]
    fn a_product_row_keeps_its_default_price_as_an_id_and_expands_it_again() {
        let p = price("price_1");
        let product: Product = serde_json::from_value(json!({
            "id": "sku-1", "name": "Hat", "active": true, "updated": 1_700_000_000,
            "metadata": {"catalog_sync_managed": "true"},
            "default_price": serde_json::to_value(&p).unwrap()
        }))
        .unwrap();
        let row = product_row(&product, "scan:1");
        assert_eq!(row.updated, Some(1_700_000_000));
        assert!(row.object.contains(r#""default_price":"price_1""#));
        assert_eq!(product_of(&row, std::slice::from_ref(&p)).unwrap(), product);
        // Without the price, the default stays an id (the comparison then reports it).
        let bare = product_of(&row, &[]).unwrap();
        assert_eq!(bare.default_price_id(), Some("price_1"));
        assert!(bare.expanded_default_price().is_none());
    }

    #[test]
    fn a_price_row_round_trips_and_an_event_keeps_what_it_leaves_out() {
        let p = price("price_1");
        let row = price_row(&p, "req_1");
        assert_eq!(row.product_id, "sku-1");
        assert_eq!(row.lookup_key.as_deref(), Some("cs:sku-1:usd"));
        assert_eq!(price_of(&row).unwrap(), p);

        let event = json!({"type": "price.updated", "data": {"object": {
            "id": "price_1", "active": false, "currency": "usd", "unit_amount": 100,
            "product": "sku-1", "lookup_key": "cs:sku-1:usd", "billing_scheme": "tiered"
        }}});
        let EventObject::Price(mut from_event) = event_object(&event) else {
            panic!("a price event")
        };
        assert!(from_event.tiers.is_none());
        keep_unexpanded(&mut from_event, Some(&p));
        assert!(!from_event.active);
        assert_eq!(from_event.tiers, p.tiers);
        assert_eq!(from_event.currency_options, p.currency_options);
        // Another price's tiers are never taken.
        let mut other = price("price_2");
        other.tiers = None;
        keep_unexpanded(&mut other, Some(&p));
        assert!(other.tiers.is_none());
    }

    #[test]
    fn events_name_what_they_change() {
        let deleted = json!({"type": "product.deleted", "data": {"object": {"id": "sku-1"}}});
        assert_eq!(
            event_object(&deleted),
            EventObject::ProductDeleted("sku-1".into())
        );
        let customer = json!({"type": "customer.created", "data": {"object": {"id": "cus_1"}}});
        assert_eq!(event_object(&customer), EventObject::Other);
        let unreadable = json!({"type": "product.updated", "data": {"object": {"id": "x"}}});
        assert_eq!(event_object(&unreadable), EventObject::Other);
    }
}
