//! `starter adopt`: claims for this catalog the Stripe products (and their prices) that
//! catalog-sync made before catalog identities existed. Until a product carries its catalog's
//! identity (`catalog_sync_catalog`), no worker, reconciliation or relay touches it (see
//! `domain::identity`), so an upgrade never hands a live catalog to whichever catalog a worker
//! happens to point at. Adopting is the explicit step that hands it over:
//!
//! - only managed products without an identity are candidates; another catalog's never are;
//! - a candidate is adopted only when this catalog has a row for its id (deleted rows included:
//!   their archive is this catalog's to keep) and the Stripe product was last synced from that
//!   row's content (its `catalog_sync_hash`, with the row live, active or not): a catalog that only
//!   shares ids (another team's, a wrong `CATALOG_DATABASE_URL`) claims nothing. A row changed
//!   since the last sync is listed with `--include-changed` to adopt it after checking; the
//!   others are listed and left alone;
//! - `--dry-run` lists what would be adopted and writes nothing.
//!
//! Requests: one list page per 100 Stripe products (active and archived), then per adopted
//! product one price list and one write for the product and for each managed price.

use anyhow::Context;
use catalog::Catalog;
use clap::Args;
use common::settings::StripeSettings;
use domain::identity::{CatalogIdentity, Claim};
use domain::metadata::{META_CATALOG, META_HASH, META_ID};
use domain::transform;
use stripe::client::{Form, StripeClient, StripeConfig};
use stripe::write_key::{self, Step, WriteKeys};
use workflows::activities::TransformOutput;
use workflows::model::{CatalogProduct, SyncPlan};

/// `starter adopt`.
#[derive(Args)]
pub(crate) struct AdoptArgs {
    #[command(flatten)]
    stripe: StripeSettings,
    /// List what would be adopted; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also adopt products whose content differs from this catalog's row (the row changed since
    /// the last sync): check the dry run's list first, as another catalog sharing ids looks the
    /// same.
    #[arg(long)]
    include_changed: bool,
    /// Stripe requests per second at most (adopting shares the account's budget with the workers).
    #[arg(long, default_value_t = 10)]
    requests_per_second: u32,
}

pub(crate) async fn run(catalog: &Catalog, args: AdoptArgs) -> anyhow::Result<()> {
    let config = StripeConfig::from_settings(&args.stripe)?;
    anyhow::ensure!(
        args.requests_per_second > 0,
        "--requests-per-second must be at least 1"
    );
    let identity = CatalogIdentity::new(catalog.identity().await?);
    let stripe = StripeClient::new(config.paced(args.requests_per_second))?;
    let keys = WriteKeys::new(&catalog.sync_secret(write_key::SECRET_NAME).await?);
    let minted = std::time::SystemTime::now();
    let started_ns = minted
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let intent = format!("adopt-{}-{started_ns}", std::process::id());
    let verb = if args.dry_run {
        "would adopt"
    } else {
        "adopted"
    };

    let (mut adopted, mut prices_adopted, mut not_in_catalog, mut other_catalogs) = (0, 0, 0, 0);
    let (mut changed, mut mismatched) = (0, 0);
    let mut after: Option<String> = None;
    // How far through the account's products: most are passed over without a line.
    let bar = crate::progress::progress_bar(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {pos} Stripe products ({per_sec})")
            .expect("a valid template"),
    );
    bar.set_message("looked at");
    loop {
        let page = stripe
            .list_products(None, after.as_deref())
            .await
            .context("listing Stripe products")?;
        bar.inc(page.data.len() as u64);
        let mut candidates = Vec::new();
        for product in &page.data {
            match identity.claim(&product.metadata, &product.id) {
                Claim::Unadopted => candidates.push(product),
                Claim::OtherCatalog(_) => other_catalogs += 1,
                _ => {}
            }
        }
        let mut forged = Vec::new();
        candidates.retain(|p| {
            let ok = catalog_id(p).is_some();
            if !ok {
                forged.push(p.id.clone());
            }
            ok
        });
        for id in forged {
            mismatched += 1;
            println!(
                "left     {id}: its catalog_sync_id metadata names another id than its own (edited \
                 by hand?); catalog-sync adopts a product only as its own id"
            );
        }
        let catalog_ids: Vec<String> = candidates.iter().filter_map(|p| catalog_id(p)).collect();
        let rows = catalog.products_by_ids(&catalog_ids).await?;
        for (product, catalog_id) in candidates.into_iter().zip(catalog_ids) {
            let Some(row) = rows.products.iter().find(|r| r.id == catalog_id) else {
                not_in_catalog += 1;
                println!(
                    "left     {}: managed by catalog-sync, but this catalog has no readable row {catalog_id}",
                    product.id
                );
                continue;
            };
            if !synced_from(row, product.metadata.get(META_HASH).map(String::as_str)) {
                changed += 1;
                if !args.include_changed {
                    println!(
                        "left     {}: its content is not this catalog's row {catalog_id} as last \
                         synced (the row changed since, or another catalog made it); check, then \
                         --include-changed",
                        product.id
                    );
                    continue;
                }
            }
            let (_, prices, _) = stripe.list_prices_with_product(&product.id).await?;
            let unclaimed: Vec<_> = prices
                .iter()
                .filter(|p| {
                    stripe::identity::is_managed(&p.metadata)
                        && !p.metadata.contains_key(META_CATALOG)
                })
                .collect();
            if !args.dry_run {
                let mut form = Form::new();
                form.push(format!("metadata[{META_CATALOG}]"), identity.as_str());
                for price in &unclaimed {
                    let key = keys.key(
                        &intent,
                        minted,
                        &product.id,
                        Step::UpdatePrice,
                        &price.id,
                        &form,
                    );
                    stripe
                        .update_price(&price.id, &form, &key)
                        .await
                        .with_context(|| format!("adopting price {}", price.id))?;
                }
                // The product last: a rerun after a failure finds it unadopted and finishes.
                let key = keys.key(&intent, minted, &product.id, Step::UpdateProduct, "", &form);
                stripe
                    .update_product(&product.id, &form, &key)
                    .await
                    .with_context(|| format!("adopting product {}", product.id))?;
            }
            adopted += 1;
            prices_adopted += unclaimed.len();
            println!(
                "{verb} {} ({} prices){}",
                product.id,
                unclaimed.len(),
                if product.active { "" } else { ", archived" }
            );
        }
        match (page.has_more, page.data.last()) {
            (true, Some(last)) => after = Some(last.id.clone()),
            _ => break,
        }
    }
    bar.finish_and_clear();
    println!(
        "adopt: catalog {identity}: {verb} {adopted} products and {prices_adopted} prices; \
         {not_in_catalog} unadopted products have no row in this catalog (left alone); \
         {changed} differ from their row ({}); {mismatched} name another id than their own (left \
         alone); {other_catalogs} belong to other catalogs (left alone)",
        if args.include_changed {
            "included"
        } else {
            "left alone"
        }
    );
    Ok(())
}

/// The Stripe product was last synced from `row`'s content: its content hash is the row's, with
/// the row live (a row deleted or deactivated since the sync keeps the hash of its last sync).
fn synced_from(row: &CatalogProduct, stripe_hash: Option<&str>) -> bool {
    let Some(hash) = stripe_hash else {
        return false;
    };
    [true, false].into_iter().any(|active| {
        let live = CatalogProduct {
            deleted: false,
            active,
            ..row.clone()
        };
        match transform::transform(&row.id, Some(&live)) {
            TransformOutput::Plan(plan) => {
                matches!(*plan, SyncPlan::Upsert(ref d) if d.content_hash == hash)
            }
            TransformOutput::Invalid(_) => false,
        }
    })
}

/// The catalog id a Stripe product was made for.
/// The catalog id a product is adopted as: its own id, the only one catalog-sync gives the
/// products it makes. `None` when its `catalog_sync_id` metadata, which anybody can edit, names
/// another: such a product is left alone.
fn catalog_id(product: &stripe::client::Product) -> Option<String> {
    match product.metadata.get(META_ID) {
        Some(claimed) if *claimed != product.id => None,
        _ => Some(product.id.clone()),
    }
}
