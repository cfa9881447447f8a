//! The Stripe side of the benchmark: the catalog written into Stripe directly (catalog-sync's own
//! transform and upsert, no Temporal), and the Dashboard edits that make the drift.

use std::time::Instant;

use activities::upsert::Intent;
use anyhow::Context;
use catalog::{Catalog, IdRange};
use domain::ownership::Ownership;
use domain::transform::transform;
use futures::{StreamExt, TryStreamExt};
use stripe::client::StripeClient;
use stripe::identity::CatalogIdentity;
use stripe::write_key::{self, WriteKeys};
use workflows::activities::TransformOutput;

use super::ReconcileBenchArgs;

/// Catalog products one page at a time, in id order (the reconciliation's order).
pub(super) async fn for_each_page(
    catalog: &Catalog,
    page_size: i64,
    mut f: impl AsyncFnMut(Vec<workflows::model::CatalogProduct>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = String::new();
    loop {
        let page = catalog
            .products_page(&after, &IdRange::default(), page_size)
            .await?;
        let Some(last) = page.last_id.clone() else {
            return Ok(());
        };
        let rows = page.rows;
        f(page.products).await?;
        if rows < page_size as usize {
            return Ok(());
        }
        after = last;
    }
}

pub(super) async fn seed_stripe(
    catalog: &Catalog,
    stripe: &StripeClient,
    concurrency: usize,
) -> anyhow::Result<u64> {
    let ownership = Ownership::default();
    // Seeding writes as catalog-sync (signed with the catalog's key) under one intent of its own.
    let keys = WriteKeys::new(&catalog.sync_secret(write_key::SECRET_NAME).await?);
    let identity = CatalogIdentity::new(catalog.identity().await?);
    let started_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let intent_id = format!("bench-seed-{}-{started_ns}", std::process::id());
    let started = Instant::now();
    let mut seeded = 0u64;
    for_each_page(catalog, 1000, async |products| {
        futures::stream::iter(products)
            .map(|product| {
                let ownership = &ownership;
                let intent = Intent {
                    catalog: &identity,
                    archives: activities::upsert::ArchiveGate::Open,
                    keys: &keys,
                    id: &intent_id,
                    minted: std::time::SystemTime::now(),
                    // Seeding makes new products: read each product first.
                    likely_in_stripe: false,
                    ledger: None,
                };
                async move {
                    match transform(&product.id, Some(&product)) {
                        TransformOutput::Plan(plan) => {
                            activities::upsert::apply(stripe, intent, &plan, ownership)
                                .await
                                .map(|_| ())
                                .with_context(|| format!("seeding {}", product.id))
                        }
                        TransformOutput::Invalid(_) => Ok(()),
                    }
                }
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        seeded += 1000;
        if seeded.is_multiple_of(10_000) {
            eprintln!(
                "seeded {seeded} products into Stripe ({:.0}/s)",
                seeded as f64 / started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    })
    .await?;
    Ok(seeded)
}

/// Renames a product in Stripe as the Dashboard would (no idempotency key, no catalog write key).
pub(super) async fn rename_in_stripe(
    http: &reqwest::Client,
    args: &ReconcileBenchArgs,
    id: &str,
    name: &str,
) -> anyhow::Result<()> {
    let response = http
        .post(format!("{}/v1/products/{id}", args.stripe.base()))
        .basic_auth(args.stripe.api_key()?.expose(), None::<&str>)
        .form(&[("name", name)])
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "renaming {id} in Stripe: {}",
        response.status()
    );
    Ok(())
}
