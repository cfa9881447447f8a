//! The sweeps of Stripe's side: this catalog's managed products without a catalog row
//! (orphans), and active prices the catalog does not ask for (extra prices).

use super::compare::stray_prices;
use super::*;

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

/// Stripe products, each with its catalog row's id.
type WithRows<'a> = Vec<(&'a Product, String)>;

/// Of `products`, this catalog's managed ones without a catalog row (orphans), and how many are
/// another catalog's.
async fn orphans_among(
    catalog: &Catalog,
    products: &[Product],
    identity: &CatalogIdentity,
) -> Result<OrphanPageOutput, SyncError> {
    // Only this catalog's products can be its orphans: another catalog's (or one not adopted yet)
    // is counted and left alone, whatever this catalog holds.
    let (owned, claimed): (Vec<&Product>, Vec<&Product>) = products
        .iter()
        .filter(|p| stripe::identity::is_managed(&p.metadata))
        .partition(|p| identity.owns(&p.metadata));
    // A product is its catalog row by its own id, or by the binding `starter import` made.
    let rows_of = |products: &[&Product]| {
        let ids: Vec<String> = products.iter().map(|p| p.id.clone()).collect();
        async move { catalog.rows_of_products(&ids).await }
    };
    // Except what this catalog's ledger records writing: its identity metadata was edited by
    // hand, and it is still this catalog's (see `relabelled`).
    let claimed_rows = rows_of(&claimed).await?;
    let written = catalog
        .written_products(identity.as_str(), &claimed_rows)
        .await?;
    let (relabelled, other): (WithRows, WithRows) = claimed
        .into_iter()
        .zip(claimed_rows)
        .partition(|(_, row)| written.contains(row));
    let owned_rows = rows_of(&owned).await?;
    let mut managed: WithRows = owned.into_iter().zip(owned_rows).collect();
    managed.extend(relabelled);
    let ids: Vec<String> = managed.iter().map(|(_, row)| row.clone()).collect();
    let existing = catalog.existing_ids(&ids).await?;
    let orphans = managed
        .into_iter()
        .filter(|(_, row)| !existing.contains(row))
        .map(|(p, row)| Drift {
            catalog_id: row,
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
    // The catalog rows of the managed products on this page, in one read (a product bound by
    // `starter import` is its binding's row).
    let products: Vec<String> = by_product.keys().map(|id| id.to_string()).collect();
    let ids = catalog.rows_of_products(&products).await?;
    let rows = catalog.products_by_ids(&ids).await?;
    let mut extra = Vec::new();
    for product in &rows.products {
        let stripe_id = product.bound_stripe_id.as_deref().unwrap_or(&product.id);
        let Some(prices) = by_product.get(stripe_id) else {
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
