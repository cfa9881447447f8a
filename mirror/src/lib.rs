//! Keeping catalog-sync's mirror of Stripe's state (`catalog::mirror`, rows made by
//! `stripe::mirror`) current from what Stripe says of its objects: a webhook delivery (the relay)
//! or a page of `GET /v1/events` (the events reconciliation, in `activities`). Both apply an event
//! the same way, here.
//!
//! What is mirrored: every product catalog-sync manages (for any catalog), a product of another
//! origin whose id is a catalog id (so a reconciliation tells it apart from a missing one), and
//! every price of a mirrored product.

use std::time::{SystemTime, UNIX_EPOCH};

use catalog::{Catalog, CatalogError, MirrorKind};
use serde_json::Value;
use stripe::client::Product;
use stripe::mirror::{self, EventObject};

/// Now, in milliseconds since the epoch (the mirror's `seen_at`).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Applies one Stripe event (a webhook's, or one of `GET /v1/events`) to the mirror. Returns the
/// product it is about, when it is one the mirror keeps.
pub async fn apply_event(catalog: &Catalog, event: &Value) -> Result<Option<String>, CatalogError> {
    let event_id = event["id"].as_str().unwrap_or("evt_unknown");
    let now = now_ms();
    match mirror::event_object(event) {
        EventObject::Product(product) => {
            if !keeps_product(catalog, &product).await? {
                return Ok(None);
            }
            let row = mirror::product_row(&product, event_id);
            catalog
                .mirror_put(MirrorKind::Products, &[row], now)
                .await?;
            Ok(Some(product.id))
        }
        EventObject::ProductDeleted(id) => {
            catalog.mirror_delete(MirrorKind::Products, &id).await?;
            Ok(Some(id))
        }
        EventObject::Price(mut price) => {
            let product = price.product.clone();
            if catalog
                .mirror_known_products(std::slice::from_ref(&product))
                .await?
                .is_empty()
            {
                return Ok(None);
            }
            // Events leave tiers and currency options out: keep what was seen of them.
            let stored = catalog
                .mirror_prices(std::slice::from_ref(&price.id))
                .await?;
            let last = stored.first().and_then(|row| mirror::price_of(row).ok());
            mirror::keep_unexpanded(&mut price, last.as_ref());
            let row = mirror::price_row(&price, event_id);
            catalog.mirror_put(MirrorKind::Prices, &[row], now).await?;
            Ok(Some(product))
        }
        EventObject::PriceDeleted(id) => {
            let stored = catalog.mirror_prices(std::slice::from_ref(&id)).await?;
            catalog.mirror_delete(MirrorKind::Prices, &id).await?;
            Ok(stored.into_iter().next().map(|row| row.product_id))
        }
        EventObject::Other => Ok(None),
    }
}

/// Whether the mirror keeps this product: catalog-sync's, or one whose id is a catalog id.
async fn keeps_product(catalog: &Catalog, product: &Product) -> Result<bool, CatalogError> {
    Ok(stripe::identity::is_managed(&product.metadata)
        || !catalog
            .existing_ids(std::slice::from_ref(&product.id))
            .await?
            .is_empty()
        || !catalog
            .mirror_known_products(std::slice::from_ref(&product.id))
            .await?
            .is_empty())
}
