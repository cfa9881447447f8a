//! The reconciliation's reads: compare a page of the catalog with Stripe, and find orphans.
//!
//! # Stripe requests
//! For a catalog of `N` products in scope, walked in pages of 100:
//!
//! ```text
//! reads = ⌈N / 100⌉                 one GET /v1/products?ids[]=…&expand[]=data.default_price per page
//!       + Σ ⌈K_page / 10⌉           GET /v1/prices?lookup_keys[]=… (10 keys a request) for the
//!                                   non-default prices of the page's products whose fields and
//!                                   default price already match (K_page such prices in a page)
//!       + max(1, ⌈A / 100⌉)         orphan phase: GET /v1/products?active=true pages, A = active
//!                                   Stripe products (skipped for `since` backfills)
//!       + max(1, ⌈P / 100⌉)         extra-price phase: GET /v1/prices?active=true&expand[]=data.product
//!                                   pages, P = active Stripe prices (skipped for `since` backfills)
//! repairs = Σ over drifted products of (1 price list with the product expanded, + 1 product
//!                                      read if it has no price, + the writes that product needs)
//! ```
//!
//! These are the `ids` method's reads. The `scan` and `events` methods compare with the mirror of
//! Stripe's state instead ([`mirror_page`], [`compare_ids_with_mirror`]; no Stripe request), after
//! `crate::mirror` read Stripe's lists or events into it.
//!
//! A product with one price needs no price read: its default price comes inline with the list.
//! A second reconciliation of a repaired catalog makes `reads` requests and no writes.
//!
//! The catalog pages compare the prices that hold the catalog's lookup keys. An *extra* active
//! price (one made or re-activated by hand, or one whose key the catalog no longer has) is found
//! by the extra-price phase, which walks the account's active prices once, with their products,
//! and reads the catalog rows of the managed ones; its repair (the product's sync) archives it.
//!
//! # Classification (first match wins)
//! | catalog says | Stripe has | kind |
//! |---|---|---|
//! | invalid row | — | reported as invalid, with every reason; never written |
//! | active | this catalog's product for this id, `catalog_sync_managed` removed | `detached` (re-attached) |
//! | any | product without `catalog_sync_managed=true` | unmanaged: never touched |
//! | any | managed product of another catalog, or not adopted ([`stripe::identity`]) | other catalog: never touched |
//! | deleted (or no row) | active product | `should_archive` |
//! | active | no product | `missing` |
//! | inactive | active product | `should_archive` |
//! | fields differ, content hash differs | | `stale` (the catalog changed since the last sync) |
//! | fields differ, content hash matches | | `edited_in_stripe` (e.g. a Dashboard edit) |
//! | a price missing, different, inactive, or not the default | | `price_drift` |
//! | (extra-price phase) an active price holding none of the catalog's lookup keys | | `price_drift` |
//! | (orphan phase) no row | this catalog's active managed product | `orphan` |
//! | otherwise | | in sync |
//!
//! # Layout
//! - `classify`: the pure comparison of one product with Stripe, and its table-driven tests.
//! - this module: the `ids` method's catalog pages, the plan, and the ledger check of relabelled
//!   products.
//! - `compare`: the `scan` and `events` methods' comparison with the mirror of Stripe's state.
//! - `sweeps`: the orphan and extra-price phases.

use std::collections::{BTreeMap, BTreeSet};

use catalog::{Catalog, IdRange};
use chrono::{DateTime, Utc};
use workflows::activities::{
    CountInput, OrphanPageInput, OrphanPageOutput, PlanInput, PlanOutput, PricePageInput,
    PricePageOutput, ReconcilePageInput, ReconcilePageOutput, TransformOutput,
};
use workflows::model::{DesiredProduct, SyncPlan, ValidationIssue};
use workflows::reconcile::method::{self, MethodBasis, ReconcileMethod};
use workflows::reconcile::{Drift, DriftKind, InvalidProduct};

use crate::error::SyncError;
use crate::upsert::price_marker;
use domain::metadata::{META_HASH, META_ID, META_VERSION};
use domain::ownership::Ownership;
use domain::prices::{self, PriceChanges};
use domain::transform;
use stripe::client::{Price, PriceOfProduct, Product, StripeClient};
use stripe::identity::{CatalogIdentity, Claim};
use stripe::mirror;
use stripe::products::product_form;

mod classify;
mod compare;
mod sweeps;

pub use classify::{Verdict, classify};
pub use compare::{compare_ids_with_mirror, mirror_page};
pub use sweeps::{mirror_orphan_page, orphan_page, price_page};

/// Largest page: Stripe lists at most 100 ids per request.
const PAGE_LIMIT: u32 = 100;

/// The catalog range of a reconciliation's scope; a `since` that is not RFC 3339 is invalid input.
fn id_range(
    from: &Option<String>,
    to: &Option<String>,
    since: Option<&str>,
) -> Result<IdRange, SyncError> {
    let since = since
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    SyncError::InvalidInput(format!("`since` {s:?} is not an RFC 3339 time: {e}"))
                })
        })
        .transpose()?;
    Ok(IdRange {
        from: from.clone(),
        to: to.clone(),
        since,
    })
}

/// `CountCatalog`.
pub async fn count(catalog: &Catalog, input: &CountInput) -> Result<u64, SyncError> {
    let range = id_range(&input.from, &input.to, input.since.as_deref())?;
    Ok(catalog.count_in_range(&range).await?.max(0) as u64)
}

/// A catalog page read and transformed: the output so far (counts, invalid rows) and the plans
/// of the valid products, with their Stripe ids.
struct PlannedPage {
    out: ReconcilePageOutput,
    plans: Vec<SyncPlan>,
    ids: Vec<String>,
}

/// Reads one catalog page and transforms it; every invalid or unreadable row is reported.
async fn plan_page(
    catalog: &Catalog,
    input: &ReconcilePageInput,
) -> Result<PlannedPage, SyncError> {
    let limit = match input.limit {
        0 => PAGE_LIMIT,
        n => n.min(PAGE_LIMIT),
    };
    let range = id_range(&input.from, &input.to, input.since.as_deref())?;
    let page = catalog
        .products_page(&input.after, &range, i64::from(limit))
        .await?;
    let mut out = ReconcilePageOutput {
        scanned: page.rows as u32,
        last_id: page.last_id.clone(),
        done: page.rows < limit as usize,
        ..ReconcilePageOutput::default()
    };
    for corrupt in &page.corrupt {
        tracing::warn!(product = %corrupt.id, reason = %corrupt.reason, "catalog row cannot be read; not synced");
        out.invalid.push(unreadable(corrupt));
    }

    let mut plans = Vec::with_capacity(page.products.len());
    for product in &page.products {
        match transform::transform(&product.id, Some(product)) {
            TransformOutput::Plan(plan) => plans.push(*plan),
            TransformOutput::Invalid(issues) => {
                let reasons: Vec<String> = issues
                    .iter()
                    .map(|i| format!("{}: {}", i.field, i.reason))
                    .collect();
                tracing::warn!(product = %product.id, reasons = %reasons.join("; "), "invalid catalog product; not synced");
                out.invalid.push(InvalidProduct {
                    catalog_id: product.id.clone(),
                    issues,
                });
            }
        }
    }
    let ids = plans.iter().map(|p| p.stripe_id().to_string()).collect();
    Ok(PlannedPage { out, plans, ids })
}

/// A catalog row that cannot be decoded, as an invalid product.
fn unreadable(corrupt: &catalog::CorruptRow) -> InvalidProduct {
    InvalidProduct {
        catalog_id: corrupt.id.clone(),
        issues: vec![ValidationIssue {
            reason: format!("row unreadable: {} {}", corrupt.field, corrupt.reason),
            field: corrupt.field.clone(),
        }],
    }
}

/// Counts each final verdict into the page's output.
fn tally(out: &mut ReconcilePageOutput, plans: &[SyncPlan], verdicts: Vec<Verdict>) {
    for (plan, verdict) in plans.iter().zip(verdicts) {
        match verdict {
            Verdict::InSync => out.in_sync += 1,
            Verdict::Unmanaged => out.unmanaged += 1,
            Verdict::OtherCatalog => out.other_catalog += 1,
            Verdict::Drift(kind, detail) => out.drift.push(Drift {
                catalog_id: plan.catalog_id().to_string(),
                kind,
                detail,
            }),
            Verdict::NeedsPrices => unreachable!("prices were given"),
        }
    }
}

/// `PlanReconcile`: counts the scope, the catalog and the mirror, and chooses the method.
pub async fn plan(catalog: &Catalog, input: &PlanInput) -> Result<PlanOutput, SyncError> {
    let in_scope = count(catalog, &input.scope).await?;
    let whole =
        input.scope.from.is_none() && input.scope.to.is_none() && input.scope.since.is_none();
    let catalog_total = if whole {
        in_scope
    } else {
        catalog.count_products().await?.max(0) as u64
    };
    let mirrored = catalog.mirror_counts().await?;
    let basis = MethodBasis {
        in_scope,
        catalog_total,
        mirror_products: mirrored.products,
        mirror_prices: mirrored.prices,
        sweeps: input.scope.since.is_none(),
        event_cursor_age_secs: None,
    };
    let cursor = crate::mirror::stored_cursor(catalog).await?;
    let now = chrono::Utc::now().timestamp();
    let basis = MethodBasis {
        event_cursor_age_secs: cursor.as_ref().map(|c| now - c.created),
        ..basis
    };
    let (method, reason) = method::choose(input.method, &basis);
    Ok(PlanOutput {
        basis,
        method,
        reason,
        cursor: cursor.filter(|_| method == ReconcileMethod::Events),
        catalog: None,
    })
}

/// `ReconcilePage`.
pub async fn page(
    catalog: &Catalog,
    stripe: &StripeClient,
    input: &ReconcilePageInput,
    identity: &CatalogIdentity,
    ownership: &Ownership,
) -> Result<ReconcilePageOutput, SyncError> {
    let PlannedPage {
        mut out,
        plans,
        ids,
    } = plan_page(catalog, input).await?;
    if plans.is_empty() {
        return Ok(out);
    }
    let listed = stripe.list_products_by_ids(&ids).await?;
    out.stripe_requests += 1;
    let by_id: BTreeMap<&str, &Product> = listed.iter().map(|p| (p.id.as_str(), p)).collect();

    let mut verdicts: Vec<Verdict> = plans
        .iter()
        .zip(&ids)
        .map(|(plan, id)| {
            let stripe = by_id.get(id.as_str()).copied();
            classify(plan, stripe, None, identity, ownership)
        })
        .collect();

    // The non-default prices of products that match so far: read by lookup key, 10 a request.
    let keys: Vec<String> = plans
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| **v == Verdict::NeedsPrices)
        .filter_map(|(plan, _)| match plan {
            SyncPlan::Upsert(d) => Some(d.prices[1..].iter().map(|p| p.lookup_key.clone())),
            SyncPlan::Archive { .. } => None,
        })
        .flatten()
        .collect();
    let mut prices = Vec::new();
    for chunk in keys.chunks(10) {
        prices.extend(stripe.list_prices_by_lookup_keys(chunk).await?);
        out.stripe_requests += 1;
    }

    for ((plan, id), verdict) in plans.iter().zip(&ids).zip(&mut verdicts) {
        if *verdict == Verdict::NeedsPrices {
            *verdict = classify(
                plan,
                by_id.get(id.as_str()).copied(),
                Some(&prices),
                identity,
                ownership,
            );
        }
    }
    relabelled(catalog, identity, &plans, &mut verdicts).await?;
    tally(&mut out, &plans, verdicts);
    Ok(out)
}

/// Products that Stripe says are another catalog's (or nobody's yet) but that this catalog's
/// ledger records writing: their `catalog_sync_catalog` was edited by hand. That is drift, which
/// the repair restores (the upsert checks the same ledger), not another catalog's product.
async fn relabelled(
    catalog: &Catalog,
    identity: &CatalogIdentity,
    plans: &[SyncPlan],
    verdicts: &mut [Verdict],
) -> Result<(), SyncError> {
    let claimed: Vec<String> = plans
        .iter()
        .zip(verdicts.iter())
        .filter(|(_, v)| **v == Verdict::OtherCatalog)
        .map(|(p, _)| p.catalog_id().to_string())
        .collect();
    let written = catalog
        .written_products(identity.as_str(), &claimed)
        .await?;
    for (plan, verdict) in plans.iter().zip(verdicts.iter_mut()) {
        if *verdict == Verdict::OtherCatalog && written.contains(plan.catalog_id()) {
            *verdict = Verdict::Drift(
                DriftKind::EditedInStripe,
                "catalog-sync's identity metadata (catalog_sync_catalog) was edited in Stripe \
                 on a product this catalog wrote"
                    .into(),
            );
        }
    }
    Ok(())
}
