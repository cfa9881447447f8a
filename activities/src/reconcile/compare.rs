//! The `scan` and `events` methods' comparison: catalog products against the mirror of Stripe's
//! state, with no Stripe request.

use super::*;

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

/// The products of `ids` (the catalog ids of the products the events touched) against the mirror: a product whose
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
    let ids: Vec<String> = plans.iter().map(|p| p.stripe_id().to_string()).collect();
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
pub(super) fn stray_prices<'a, P: 'a>(
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
