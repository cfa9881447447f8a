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
//! Over 500 lines with its unit tests (the code is under 500): the tests sit beside the
//! classification rules they pin down, one table of cases per rule.

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
use stripe::client::{Price, PriceOfProduct, Product, StripeClient};
use stripe::identity::{CatalogIdentity, Claim};
use stripe::mirror;
use stripe::ownership::Ownership;
use stripe::prices::{self, PriceChanges};
use stripe::products::product_form;
use stripe::transform::{self, META_HASH, META_ID, META_VERSION};

/// Largest page: Stripe lists at most 100 ids per request.
const PAGE_LIMIT: u32 = 100;

/// How one product compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Stripe matches.
    InSync,
    /// Stripe differs.
    Drift(DriftKind, String),
    /// A Stripe product with this id exists that catalog-sync does not manage.
    Unmanaged,
    /// A Stripe product with this id is catalog-sync's, for another catalog (or not adopted).
    OtherCatalog,
    /// Product fields match; the prices must be read to tell.
    NeedsPrices,
}

/// Compares a plan with the Stripe product of the same id (default price expanded) and, when
/// known, the prices holding its lookup keys. Pure.
pub fn classify(
    plan: &SyncPlan,
    stripe: Option<&Product>,
    prices: Option<&[Price]>,
    identity: &CatalogIdentity,
    ownership: &Ownership,
) -> Verdict {
    let claim = stripe.map(|s| identity.claim(&s.metadata, plan.catalog_id()));
    match claim {
        Some(Claim::OtherCatalog(_) | Claim::Unadopted) => return Verdict::OtherCatalog,
        Some(Claim::Unmanaged) => return Verdict::Unmanaged,
        Some(Claim::Detached) if matches!(plan, SyncPlan::Archive { .. }) => {
            return Verdict::Unmanaged;
        }
        _ => {}
    }
    let desired = match plan {
        SyncPlan::Archive { .. } => {
            return match stripe {
                Some(s) if s.active => Verdict::Drift(
                    DriftKind::ShouldArchive,
                    "deleted in the catalog, active in Stripe".into(),
                ),
                _ => Verdict::InSync,
            };
        }
        SyncPlan::Upsert(d) => d,
    };
    let Some(current) = stripe else {
        return if desired.active {
            Verdict::Drift(DriftKind::Missing, "not in Stripe".into())
        } else {
            // Inactive and absent: nothing to show, nothing to archive.
            Verdict::InSync
        };
    };
    if claim == Some(Claim::Detached) {
        return Verdict::Drift(
            DriftKind::Detached,
            "catalog_sync_managed was removed in Stripe; the catalog still has the product".into(),
        );
    }
    // A Stripe-owned field may differ: that is not drift. Writes carry the catalog's identity.
    let effective = ownership.effective(&identity.stamp(desired), current);
    let desired = &effective;
    let fields = product_form(desired, Some(current));
    if !fields.is_empty() {
        // The fields a person would recognise: not catalog-sync's own bookkeeping keys.
        let names = fields
            .keys()
            .filter(|k| !k.starts_with("metadata[catalog_sync_"))
            .map(|k| k.split('[').next().unwrap_or(k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ");
        if !desired.active && current.active {
            return Verdict::Drift(
                DriftKind::ShouldArchive,
                "inactive in the catalog, active in Stripe".into(),
            );
        }
        let stripe_hash = current.metadata.get(META_HASH).map(String::as_str);
        return if stripe_hash != Some(desired.content_hash.as_str()) {
            let stripe_version = current
                .metadata
                .get(META_VERSION)
                .map_or("none", String::as_str);
            Verdict::Drift(
                DriftKind::Stale,
                format!(
                    "catalog v{} vs Stripe v{stripe_version}; {}",
                    desired.catalog_version,
                    describe(&names, desired, current)
                ),
            )
        } else {
            Verdict::Drift(
                DriftKind::EditedInStripe,
                describe(&names, desired, current),
            )
        };
    }
    price_verdict(desired, current, prices, &price_marker(identity))
}

/// `name: "Old" → "New"` for the name, field names for the rest.
fn describe(names: &str, desired: &DesiredProduct, current: &Product) -> String {
    if current.name != desired.name {
        format!(
            "differs in {names} (name: {:?} → {:?})",
            current.name, desired.name
        )
    } else if names.is_empty() {
        "catalog-sync's metadata differs (content or prices changed)".into()
    } else {
        format!("differs in {names}")
    }
}

fn price_verdict(
    d: &DesiredProduct,
    current: &Product,
    prices: Option<&[Price]>,
    marker: &BTreeMap<String, String>,
) -> Verdict {
    let drift = |why: String| Verdict::Drift(DriftKind::PriceDrift, why);
    let default = current.expanded_default_price();
    let Some(wanted) = d.prices.first() else {
        return match current.default_price_id() {
            Some(id) => drift(format!("default price {id} set, the catalog has no price")),
            None => Verdict::InSync,
        };
    };
    // The default price must hold the first lookup key and match it in every field.
    match default {
        None => return drift("no default price".into()),
        Some(p) if p.lookup_key.as_deref() != Some(wanted.lookup_key.as_str()) => {
            return drift(format!(
                "default price {} does not hold {}",
                p.id, wanted.lookup_key
            ));
        }
        Some(p) => {
            let changes = prices::compare(p, wanted, marker);
            if !changes.is_empty() {
                return drift(price_difference(
                    &format!("default price {}", p.id),
                    p,
                    wanted,
                    &changes,
                ));
            }
        }
    }
    if d.prices.len() == 1 {
        return Verdict::InSync;
    }
    let Some(prices) = prices else {
        return Verdict::NeedsPrices;
    };
    for want in &d.prices[1..] {
        let Some(p) = prices
            .iter()
            .find(|p| p.lookup_key.as_deref() == Some(want.lookup_key.as_str()))
        else {
            return drift(format!("no price holds {}", want.lookup_key));
        };
        if p.product != d.stripe_id {
            return drift(format!(
                "{} is held by {}'s price {}",
                want.lookup_key, p.product, p.id
            ));
        }
        let changes = prices::compare(p, want, marker);
        if !changes.is_empty() {
            return drift(price_difference(&want.lookup_key, p, want, &changes));
        }
    }
    Verdict::InSync
}

/// `cs:sku:usd:one_time differs in unit_amount (1999 usd active: true → 2499 usd)`.
fn price_difference(
    what: &str,
    current: &Price,
    wanted: &workflows::model::DesiredPrice,
    changes: &PriceChanges,
) -> String {
    format!(
        "{what} differs in {} ({} {} active: {} → {} {})",
        changes.fields().join(", "),
        current.unit_amount.unwrap_or_default(),
        current.currency,
        current.active,
        wanted.unit_amount,
        wanted.currency
    )
}

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
    let ids = plans
        .iter()
        .map(|p| match p {
            SyncPlan::Upsert(d) => d.stripe_id.clone(),
            SyncPlan::Archive { stripe_id, .. } => stripe_id.clone(),
        })
        .collect();
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

/// `ReconcileMirrorPage`: the catalog page against the mirror of Stripe's state, with the same
/// classification as [`page`] and no Stripe request. Every price of a product is in the mirror, so
/// an active price holding none of the catalog's lookup keys is found here too (`price_drift`),
/// which the `ids` method leaves to its extra-price phase. A mirror row that cannot be read counts
/// as not mirrored: the product's repair reads Stripe before it writes.
pub async fn mirror_page(
    catalog: &Catalog,
    input: &ReconcilePageInput,
    identity: &CatalogIdentity,
    ownership: &Ownership,
) -> Result<ReconcilePageOutput, SyncError> {
    let PlannedPage {
        mut out,
        plans,
        ids,
    } = plan_page(catalog, input).await?;
    let verdicts = compare_with_mirror(catalog, &plans, &ids, identity, ownership).await?;
    tally(&mut out, &plans, verdicts);
    Ok(out)
}

/// The verdicts of `plans` (Stripe ids `ids`) against the mirror.
async fn compare_with_mirror(
    catalog: &Catalog,
    plans: &[SyncPlan],
    ids: &[String],
    identity: &CatalogIdentity,
    ownership: &Ownership,
) -> Result<Vec<Verdict>, SyncError> {
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    let product_rows = catalog.mirror_products(ids).await?;
    let price_rows = catalog.mirror_prices_of(ids).await?;
    let mut prices_of: BTreeMap<&str, Vec<Price>> = BTreeMap::new();
    for row in &price_rows {
        match mirror::price_of(row) {
            Ok(price) => prices_of
                .entry(row.product_id.as_str())
                .or_default()
                .push(price),
            Err(e) => tracing::warn!(price = %row.id, error = %e, "mirror row unreadable; ignored"),
        }
    }
    let mut products: BTreeMap<&str, Product> = BTreeMap::new();
    for row in &product_rows {
        let prices = prices_of
            .get(row.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        match mirror::product_of(row, prices) {
            Ok(product) => {
                products.insert(row.id.as_str(), product);
            }
            Err(e) => {
                tracing::warn!(product = %row.id, error = %e, "mirror row unreadable; ignored")
            }
        }
    }
    let mut verdicts: Vec<Verdict> = plans
        .iter()
        .zip(ids)
        .map(|(plan, id)| {
            let prices = prices_of.get(id.as_str()).map_or(&[][..], Vec::as_slice);
            match classify(
                plan,
                products.get(id.as_str()),
                Some(prices),
                identity,
                ownership,
            ) {
                Verdict::InSync => extra_prices(plan, prices).unwrap_or(Verdict::InSync),
                verdict => verdict,
            }
        })
        .collect();
    relabelled(catalog, identity, plans, &mut verdicts).await?;
    Ok(verdicts)
}

/// The products of `ids` (catalog ids the events touched) against the mirror: a product whose
/// row is gone is compared as deleted; one updated at or after `skip_since` is left out (the
/// run's catalog phase checks it).
pub async fn compare_ids_with_mirror(
    catalog: &Catalog,
    ids: &[String],
    skip_since: Option<DateTime<chrono::FixedOffset>>,
    identity: &CatalogIdentity,
    ownership: &Ownership,
) -> Result<ReconcilePageOutput, SyncError> {
    let rows = catalog.products_by_ids(ids).await?;
    let mut out = ReconcilePageOutput {
        scanned: ids.len() as u32,
        ..ReconcilePageOutput::default()
    };
    let mut plans = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(corrupt) = rows.corrupt.iter().find(|c| &c.id == id) {
            out.invalid.push(unreadable(corrupt));
            continue;
        }
        let product = rows.products.iter().find(|p| &p.id == id);
        let updated = product.and_then(|p| DateTime::parse_from_rfc3339(&p.updated_at).ok());
        if let (Some(updated), Some(since)) = (updated, skip_since)
            && updated >= since
        {
            out.scanned -= 1;
            continue;
        }
        match transform::transform(id, product) {
            TransformOutput::Plan(plan) => plans.push(*plan),
            TransformOutput::Invalid(issues) => out.invalid.push(InvalidProduct {
                catalog_id: id.clone(),
                issues,
            }),
        }
    }
    let ids: Vec<String> = plans.iter().map(|p| p.catalog_id().to_string()).collect();
    let verdicts = compare_with_mirror(catalog, &plans, &ids, identity, ownership).await?;
    tally(&mut out, &plans, verdicts);
    Ok(out)
}

/// `price_drift` when one of the product's active prices holds none of the lookup keys the
/// catalog asks for (made by hand, or no longer wanted).
fn extra_prices(plan: &SyncPlan, prices: &[Price]) -> Option<Verdict> {
    let SyncPlan::Upsert(desired) = plan else {
        return None;
    };
    let strays = stray_prices(desired, prices.iter());
    (!strays.is_empty()).then(|| {
        Verdict::Drift(
            DriftKind::PriceDrift,
            format!(
                "active price the catalog does not ask for: {}",
                strays.join(", ")
            ),
        )
    })
}

/// The active prices among `prices` that hold none of `desired`'s lookup keys, described.
fn stray_prices<'a, P: 'a>(
    desired: &DesiredProduct,
    prices: impl Iterator<Item = &'a Price<P>>,
) -> Vec<String> {
    let wanted: BTreeSet<&str> = desired
        .prices
        .iter()
        .map(|p| p.lookup_key.as_str())
        .collect();
    prices
        .filter(|p| p.active && p.lookup_key.as_deref().is_none_or(|k| !wanted.contains(k)))
        .map(|p| {
            format!(
                "{} ({} {})",
                p.id,
                p.unit_amount.unwrap_or_default(),
                p.currency
            )
        })
        .collect()
}

/// `ReconcileMirrorOrphanPage`: this catalog's active products in the mirror, a page in id order,
/// whose catalog row is gone. Their repair reads Stripe before it archives anything.
pub async fn mirror_orphan_page(
    catalog: &Catalog,
    input: &OrphanPageInput,
    identity: &CatalogIdentity,
) -> Result<OrphanPageOutput, SyncError> {
    let rows = catalog
        .mirror_active_products(
            input.starting_after.as_deref().unwrap_or(""),
            input.from.as_deref(),
            input.to.as_deref(),
            i64::from(PAGE_LIMIT),
        )
        .await?;
    let products: Vec<Product> = rows
        .iter()
        .filter_map(|row| mirror::product_of(row, &[]).ok())
        .collect();
    let mut out = orphans_among(catalog, &products, identity).await?;
    out.scanned = rows.len() as u32;
    out.next = (rows.len() == PAGE_LIMIT as usize)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(out)
}

/// Of `products`, this catalog's managed ones without a catalog row (orphans), and how many are
/// another catalog's.
async fn orphans_among(
    catalog: &Catalog,
    products: &[Product],
    identity: &CatalogIdentity,
) -> Result<OrphanPageOutput, SyncError> {
    // Only this catalog's products can be its orphans: another catalog's (or one not adopted yet)
    // is counted and left alone, whatever this catalog holds.
    let (mut managed, claimed): (Vec<&Product>, Vec<&Product>) = products
        .iter()
        .filter(|p| stripe::identity::is_managed(&p.metadata))
        .partition(|p| identity.owns(&p.metadata));
    // Except what this catalog's ledger records writing: its identity metadata was edited by
    // hand, and it is still this catalog's (see `relabelled`).
    let claimed_ids: Vec<String> = claimed.iter().map(|p| p.id.clone()).collect();
    let written = catalog
        .written_products(identity.as_str(), &claimed_ids)
        .await?;
    let (relabelled, other): (Vec<&Product>, Vec<&Product>) =
        claimed.into_iter().partition(|p| written.contains(&p.id));
    managed.extend(relabelled);
    let ids: Vec<String> = managed.iter().map(|p| p.id.clone()).collect();
    let existing = catalog.existing_ids(&ids).await?;
    let orphans = managed
        .into_iter()
        .filter(|p| !existing.contains(&p.id))
        .map(|p| Drift {
            catalog_id: p.id.clone(),
            kind: DriftKind::Orphan,
            detail: format!(
                "managed by catalog-sync (catalog id {}), no catalog row",
                p.metadata.get(META_ID).map_or("?", String::as_str)
            ),
        })
        .collect();
    Ok(OrphanPageOutput {
        orphans,
        other_catalog: other.len() as u32,
        ..OrphanPageOutput::default()
    })
}

/// `id` lies in the inclusive id range of a reconciliation's scope.
fn within(id: &str, from: Option<&str>, to: Option<&str>) -> bool {
    from.is_none_or(|from| id >= from) && to.is_none_or(|to| id <= to)
}

/// `ReconcileOrphanPage`.
pub async fn orphan_page(
    catalog: &Catalog,
    stripe: &StripeClient,
    input: &OrphanPageInput,
    identity: &CatalogIdentity,
) -> Result<OrphanPageOutput, SyncError> {
    let list = stripe
        .list_active_products(input.starting_after.as_deref())
        .await?;
    let in_scope: Vec<Product> = list
        .data
        .iter()
        .filter(|p| within(&p.id, input.from.as_deref(), input.to.as_deref()))
        .cloned()
        .collect();
    let mut out = orphans_among(catalog, &in_scope, identity).await?;
    out.next = if list.has_more {
        list.data.last().map(|p| p.id.clone())
    } else {
        None
    };
    out.scanned = list.data.len() as u32;
    out.stripe_requests = 1;
    Ok(out)
}

/// `ReconcilePricePage`: one page of the account's active prices, products expanded. A managed
/// product in scope with an active price that holds none of the lookup keys its catalog row asks
/// for (a price made by hand, or one catalog-sync no longer wants) is `price_drift`; its repair
/// archives the price. Products whose row is gone, deleted, invalid or unreadable are left to the
/// other phases. One catalog read (two queries) per page.
pub async fn price_page(
    catalog: &Catalog,
    stripe: &StripeClient,
    input: &PricePageInput,
    identity: &CatalogIdentity,
) -> Result<PricePageOutput, SyncError> {
    let list = stripe
        .list_active_prices(input.starting_after.as_deref())
        .await?;
    let in_scope = |id: &str| within(id, input.from.as_deref(), input.to.as_deref());
    let mut by_product: BTreeMap<&str, Vec<&PriceOfProduct>> = BTreeMap::new();
    for price in list
        .data
        .iter()
        .filter(|p| p.active && identity.owns(&p.product.metadata) && in_scope(&p.product.id))
    {
        by_product.entry(&price.product.id).or_default().push(price);
    }
    // The catalog rows of the managed products on this page, in one read.
    let ids: Vec<String> = by_product.keys().map(|id| id.to_string()).collect();
    let rows = catalog.products_by_ids(&ids).await?;
    let mut extra = Vec::new();
    for product in &rows.products {
        let Some(prices) = by_product.get(product.id.as_str()) else {
            continue;
        };
        let product_id = product.id.as_str();
        let TransformOutput::Plan(plan) = transform::transform(product_id, Some(product)) else {
            continue;
        };
        let SyncPlan::Upsert(desired) = *plan else {
            continue;
        };
        let strays = stray_prices(&desired, prices.iter().copied());
        if !strays.is_empty() {
            extra.push(Drift {
                catalog_id: product_id.to_string(),
                kind: DriftKind::PriceDrift,
                detail: format!(
                    "active price the catalog does not ask for: {}",
                    strays.join(", ")
                ),
            });
        }
    }
    Ok(PricePageOutput {
        extra,
        next: if list.has_more {
            list.data.last().map(|p| p.id.clone())
        } else {
            None
        },
        scanned: list.data.len() as u32,
        stripe_requests: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stripe::transform::{META_CATALOG, META_MANAGED};

    fn classify_owned_by_catalog(
        plan: &SyncPlan,
        stripe: Option<&Product>,
        prices: Option<&[Price]>,
    ) -> Verdict {
        classify(plan, stripe, prices, &ours(), &Ownership::default())
    }

    fn ours() -> CatalogIdentity {
        CatalogIdentity::new("cat_ours")
    }
    use stripe::client::{Expandable, PriceRecurring};
    use workflows::model::{CatalogPrice, CatalogProduct};

    fn catalog_product(prices: &[(i64, Option<&str>)]) -> CatalogProduct {
        CatalogProduct {
            id: "sku-1".into(),
            name: "Mug".into(),
            description: Some("A mug".into()),
            active: true,
            version: 3,
            prices: prices
                .iter()
                .map(|(amount, interval)| CatalogPrice {
                    currency: "usd".into(),
                    unit_amount: *amount,
                    recurring_interval: interval.map(String::from),
                    recurring_interval_count: interval.map(|_| 1),
                    ..CatalogPrice::default()
                })
                .collect(),
            ..CatalogProduct::default()
        }
    }

    fn plan(p: &CatalogProduct) -> SyncPlan {
        match transform::transform(&p.id, Some(p)) {
            TransformOutput::Plan(plan) => *plan,
            TransformOutput::Invalid(i) => panic!("{i:?}"),
        }
    }

    /// The Stripe side exactly as a sync would leave it.
    fn synced(plan: &SyncPlan) -> (Product, Vec<Price>) {
        let SyncPlan::Upsert(d) = plan else {
            panic!("upsert plan")
        };
        let prices: Vec<Price> = d
            .prices
            .iter()
            .enumerate()
            .map(|(i, p)| Price {
                id: format!("price_{i}"),
                active: true,
                currency: p.currency.clone(),
                unit_amount: Some(p.unit_amount),
                recurring: p.recurring.as_ref().map(|r| PriceRecurring {
                    interval: r.interval.clone(),
                    interval_count: r.interval_count,
                    usage_type: None,
                    meter: None,
                }),
                lookup_key: Some(p.lookup_key.clone()),
                nickname: p.nickname.clone(),
                tax_behavior: Some(
                    p.tax_behavior
                        .clone()
                        .unwrap_or_else(|| "unspecified".into()),
                ),
                billing_scheme: None,
                tiers_mode: None,
                tiers: None,
                currency_options: None,
                custom_unit_amount: None,
                transform_quantity: None,
                product: d.stripe_id.clone(),
                metadata: prices::desired_metadata(p, &price_marker(&ours())),
            })
            .collect();
        let product = Product {
            id: d.stripe_id.clone(),
            name: d.name.clone(),
            description: d.description.clone(),
            active: d.active,
            updated: None,
            images: d.images.clone(),
            url: d.url.clone(),
            unit_label: d.unit_label.clone(),
            tax_code: d.tax_code.clone(),
            metadata: ours().stamp(d).metadata,
            shippable: d.shippable,
            statement_descriptor: d.statement_descriptor.clone(),
            package_dimensions: d.package_dimensions,
            marketing_features: d
                .marketing_features
                .iter()
                .map(|name| stripe::products::MarketingFeature {
                    name: Some(name.clone()),
                })
                .collect(),
            default_price: prices
                .first()
                .map(|p| Expandable::Object(Box::new(p.clone()))),
        };
        (product, prices)
    }

    fn kind(v: Verdict) -> Option<DriftKind> {
        match v {
            Verdict::Drift(kind, _) => Some(kind),
            _ => None,
        }
    }

    #[test]
    fn a_synced_product_is_in_sync_without_reading_prices() {
        let p = plan(&catalog_product(&[(1200, None)]));
        let (stripe, _) = synced(&p);
        assert_eq!(
            classify_owned_by_catalog(&p, Some(&stripe), None),
            Verdict::InSync
        );
    }

    #[test]
    fn several_prices_need_a_price_read() {
        let p = plan(&catalog_product(&[(1200, None), (900, Some("month"))]));
        let (stripe, prices) = synced(&p);
        assert_eq!(
            classify_owned_by_catalog(&p, Some(&stripe), None),
            Verdict::NeedsPrices
        );
        assert_eq!(
            classify_owned_by_catalog(&p, Some(&stripe), Some(&prices)),
            Verdict::InSync
        );
        let mut archived = prices.clone();
        archived[1].active = false;
        assert_eq!(
            kind(classify_owned_by_catalog(
                &p,
                Some(&stripe),
                Some(&archived)
            )),
            Some(DriftKind::PriceDrift)
        );
        let mut moved = prices.clone();
        moved[1].unit_amount = Some(1);
        assert_eq!(
            kind(classify_owned_by_catalog(&p, Some(&stripe), Some(&moved))),
            Some(DriftKind::PriceDrift)
        );
        assert_eq!(
            kind(classify_owned_by_catalog(
                &p,
                Some(&stripe),
                Some(&prices[..1])
            )),
            Some(DriftKind::PriceDrift),
            "a missing price is drift"
        );
    }

    #[test]
    fn every_kind_of_drift_is_told_apart() {
        let product = catalog_product(&[(1200, None)]);
        let p = plan(&product);
        let (stripe, _) = synced(&p);

        assert_eq!(
            kind(classify_owned_by_catalog(&p, None, None)),
            Some(DriftKind::Missing)
        );

        let mut edited = stripe.clone();
        edited.name = "Mug (edited in the Dashboard)".into();
        let verdict = classify_owned_by_catalog(&p, Some(&edited), None);
        assert_eq!(kind(verdict.clone()), Some(DriftKind::EditedInStripe));
        assert!(format!("{verdict:?}").contains("name"), "{verdict:?}");

        let mut changed = product.clone();
        changed.name = "Mug 2".into();
        changed.version = 4;
        assert_eq!(
            kind(classify_owned_by_catalog(
                &plan(&changed),
                Some(&stripe),
                None
            )),
            Some(DriftKind::Stale)
        );

        let mut repriced = product.clone();
        repriced.prices[0].unit_amount = 1500;
        repriced.version = 4;
        // The content hash covers the prices, so a new price in the catalog shows as stale.
        assert_eq!(
            kind(classify_owned_by_catalog(
                &plan(&repriced),
                Some(&stripe),
                None
            )),
            Some(DriftKind::Stale)
        );
        // A price changed in Stripe behind catalog-sync's back is price drift.
        let mut price_edited = stripe.clone();
        if let Some(Expandable::Object(price)) = &mut price_edited.default_price {
            price.active = false;
        }
        assert_eq!(
            kind(classify_owned_by_catalog(&p, Some(&price_edited), None)),
            Some(DriftKind::PriceDrift)
        );

        let mut deleted = product.clone();
        deleted.deleted = true;
        assert_eq!(
            kind(classify_owned_by_catalog(
                &plan(&deleted),
                Some(&stripe),
                None
            )),
            Some(DriftKind::ShouldArchive)
        );
        let mut inactive = product.clone();
        inactive.active = false;
        assert_eq!(
            kind(classify_owned_by_catalog(
                &plan(&inactive),
                Some(&stripe),
                None
            )),
            Some(DriftKind::ShouldArchive)
        );
        let mut archived = stripe.clone();
        archived.active = false;
        assert_eq!(
            classify_owned_by_catalog(&plan(&deleted), Some(&archived), None),
            Verdict::InSync
        );
        assert_eq!(
            classify_owned_by_catalog(&plan(&deleted), None, None),
            Verdict::InSync
        );
    }

    #[test]
    fn unmanaged_products_are_never_drift() {
        let p = plan(&catalog_product(&[(1200, None)]));
        let (mut stripe, _) = synced(&p);
        stripe.metadata.clear();
        stripe.name = "Someone else's".into();
        assert_eq!(
            classify_owned_by_catalog(&p, Some(&stripe), None),
            Verdict::Unmanaged
        );
        let mut gone = catalog_product(&[]);
        gone.deleted = true;
        assert_eq!(
            classify_owned_by_catalog(&plan(&gone), Some(&stripe), None),
            Verdict::Unmanaged
        );
    }

    #[test]
    fn another_catalogs_products_are_never_drift() {
        let product = catalog_product(&[(1200, None)]);
        let p = plan(&product);
        let (stripe, _) = synced(&p);
        let mut theirs = stripe.clone();
        theirs.name = "Their mug".into();
        theirs
            .metadata
            .insert(META_CATALOG.into(), "cat_theirs".into());
        let mut unadopted = theirs.clone();
        unadopted.metadata.remove(META_CATALOG);
        let mut deleted = product.clone();
        deleted.deleted = true;
        for other in [&theirs, &unadopted] {
            for plan in [&p, &plan(&deleted)] {
                assert_eq!(
                    classify_owned_by_catalog(plan, Some(other), None),
                    Verdict::OtherCatalog,
                    "{plan:?} against {other:?}"
                );
            }
        }
        // Detached from this catalog: re-attached while the catalog has it, never archived.
        let mut detached = stripe.clone();
        detached.metadata.remove(META_MANAGED);
        assert_eq!(
            kind(classify_owned_by_catalog(&p, Some(&detached), None)),
            Some(DriftKind::Detached)
        );
        assert_eq!(
            classify_owned_by_catalog(&plan(&deleted), Some(&detached), None),
            Verdict::Unmanaged
        );
    }

    #[test]
    fn a_stripe_owned_field_edited_in_stripe_is_not_drift() {
        let p = plan(&catalog_product(&[(1200, None)]));
        let (mut edited, _) = synced(&p);
        edited.description = Some("Written by marketing in the Dashboard".into());
        let owned = Ownership::parse("description", false).unwrap();
        assert_eq!(
            classify(&p, Some(&edited), None, &ours(), &owned),
            Verdict::InSync
        );
        assert_eq!(
            kind(classify_owned_by_catalog(&p, Some(&edited), None)),
            Some(DriftKind::EditedInStripe)
        );
    }
}
