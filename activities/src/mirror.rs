//! Keeping the mirror of Stripe's state (`catalog::mirror`) current: what an upsert saw, pages of
//! Stripe's events (each applied by the `mirror` crate, as the relay applies a webhook's), and
//! scans of Stripe's lists.
//!
//! What is mirrored: every product catalog-sync manages (for any catalog), a product of another
//! origin whose id is a catalog id (so a reconciliation tells it apart from a missing one), and
//! every price of a mirrored product.

use std::collections::{BTreeMap, BTreeSet};

use catalog::{Catalog, MirrorKind};
use domain::ownership::Ownership;
use stripe::client::{Price, StripeClient, StripeError};
use stripe::events::EventMark;
use stripe::identity::CatalogIdentity;
use stripe::mirror;
use workflows::activities::{
    EventCursor, EventsPageInput, EventsPageOutput, ScanObject, ScanPageInput, ScanPageOutput,
};

pub use ::mirror::{apply_event, now_ms};

use crate::error::SyncError;
use crate::reconcile;
use crate::upsert::Seen;

/// The name of the event cursor in `catalog_sync.cursors`.
pub const EVENT_CURSOR: &str = "stripe_events";

/// A scan keeps the rows written up to this long before it started (by a writer whose clock is a
/// little behind the workflow's) instead of taking them for gone.
const CLOCK_SKEW_MS: u64 = 60_000;

/// Writes what an upsert read and wrote (the newest of each object).
pub async fn record(catalog: &Catalog, seen: &Seen) -> Result<(), SyncError> {
    let products: BTreeMap<&str, _> = seen
        .products
        .iter()
        .map(|(p, seen_in)| (p.id.as_str(), mirror::product_row(p, seen_in)))
        .collect();
    let prices: BTreeMap<&str, _> = seen
        .prices
        .iter()
        .map(|(p, seen_in)| (p.id.as_str(), mirror::price_row(p, seen_in)))
        .collect();
    let now = now_ms();
    let products: Vec<_> = products.into_values().collect();
    catalog
        .mirror_put(MirrorKind::Products, &products, now)
        .await?;
    let prices: Vec<_> = prices.into_values().collect();
    catalog.mirror_put(MirrorKind::Prices, &prices, now).await?;
    Ok(())
}

/// `ScanStripePage`: one page of Stripe's products or prices into the mirror; after the last
/// page, the rows of that list the scan did not see (and nothing wrote since it started) are
/// deleted.
pub async fn scan_page(
    catalog: &Catalog,
    stripe: &StripeClient,
    input: &ScanPageInput,
) -> Result<ScanPageOutput, SyncError> {
    let now = now_ms();
    let (kind, listed, mirrored, next) = match input.object {
        ScanObject::Products => {
            let page = stripe
                .list_products(None, input.starting_after.as_deref())
                .await?;
            let unmanaged: Vec<String> = page
                .data
                .iter()
                .filter(|p| !stripe::identity::is_managed(&p.metadata))
                .map(|p| p.id.clone())
                .collect();
            let in_catalog = catalog.existing_ids(&unmanaged).await?;
            let rows: Vec<_> = page
                .data
                .iter()
                .filter(|p| stripe::identity::is_managed(&p.metadata) || in_catalog.contains(&p.id))
                .map(|p| mirror::product_row(p, &input.scan))
                .collect();
            catalog.mirror_put(MirrorKind::Products, &rows, now).await?;
            let next = page
                .has_more
                .then(|| page.data.last().map(|p| p.id.clone()));
            (
                MirrorKind::Products,
                page.data.len(),
                rows.len(),
                next.flatten(),
            )
        }
        ScanObject::Prices => {
            let page = stripe.list_prices(input.starting_after.as_deref()).await?;
            let products: Vec<String> = page.data.iter().map(|p| p.product.clone()).collect();
            let known = catalog.mirror_known_products(&products).await?;
            let rows: Vec<_> = page
                .data
                .iter()
                .filter(|p: &&Price| known.contains(&p.product))
                .map(|p| mirror::price_row(p, &input.scan))
                .collect();
            catalog.mirror_put(MirrorKind::Prices, &rows, now).await?;
            let next = page
                .has_more
                .then(|| page.data.last().map(|p| p.id.clone()));
            (
                MirrorKind::Prices,
                page.data.len(),
                rows.len(),
                next.flatten(),
            )
        }
    };
    let pruned = match next {
        Some(_) => 0,
        None => {
            let before = input.started_at_ms.saturating_sub(CLOCK_SKEW_MS) as i64;
            catalog.mirror_prune(kind, before).await?
        }
    };
    let mut out = ScanPageOutput {
        listed: listed as u32,
        mirrored: mirrored as u32,
        pruned,
        next,
        stripe_requests: 1,
        newest_event: None,
    };
    if input.mark_events {
        out.newest_event = stripe.newest_event().await?.map(cursor_at);
        out.stripe_requests += 1;
    }
    Ok(out)
}

fn cursor_at(mark: EventMark) -> EventCursor {
    EventCursor {
        event: mark.id,
        created: mark.created,
        catalog_since: None,
    }
}

/// The stored event cursor; one that cannot be read counts as none (the run then scans).
pub async fn stored_cursor(catalog: &Catalog) -> Result<Option<EventCursor>, SyncError> {
    let Some(text) = catalog.cursor(EVENT_CURSOR).await? else {
        return Ok(None);
    };
    match serde_json::from_str(&text) {
        Ok(cursor) => Ok(Some(cursor)),
        Err(e) => {
            tracing::warn!(error = %e, "event cursor unreadable; the next reconciliation scans");
            Ok(None)
        }
    }
}

/// `SaveEventCursor`: stores the cursor unless the stored one is newer (a concurrent run got
/// further).
pub async fn save_cursor(catalog: &Catalog, cursor: &EventCursor) -> Result<(), SyncError> {
    if let Some(stored) = stored_cursor(catalog).await?
        && stored.created > cursor.created
    {
        return Ok(());
    }
    let text = serde_json::to_string(cursor).expect("a cursor serializes");
    catalog.set_cursor(EVENT_CURSOR, &text).await?;
    Ok(())
}

/// `ReconcileEventsPage`: the product and price events after `input.after`, applied to the mirror
/// oldest first; then the catalog products they touch, compared with the mirror. A cursor Stripe
/// no longer has answers `expired`.
pub async fn events_page(
    catalog: &Catalog,
    stripe: &StripeClient,
    input: &EventsPageInput,
    identity: &CatalogIdentity,
    ownership: &Ownership,
) -> Result<EventsPageOutput, SyncError> {
    let (events, has_more) = match stripe.events_after(&input.after).await {
        Ok(page) => page,
        Err(StripeError::Api(e)) if e.status == 404 => {
            return Ok(EventsPageOutput {
                expired: true,
                stripe_requests: 1,
                ..EventsPageOutput::default()
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut touched = BTreeSet::new();
    for event in &events {
        if let Some(product) = apply_event(catalog, event).await? {
            touched.insert(product);
        }
    }
    // The products' rows: a product bound by `starter import` is its binding's row.
    let products: Vec<String> = touched.into_iter().collect();
    let ids = catalog.rows_of_products(&products).await?;
    let since = input
        .catalog_since
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let compared =
        reconcile::compare_ids_with_mirror(catalog, &ids, since, identity, ownership).await?;
    Ok(EventsPageOutput {
        events: events.len() as u32,
        last: events.last().and_then(EventMark::of).map(cursor_at),
        has_more,
        expired: false,
        scanned: compared.scanned,
        in_sync: compared.in_sync,
        drift: compared.drift,
        invalid: compared.invalid,
        stripe_requests: 1,
    })
}
