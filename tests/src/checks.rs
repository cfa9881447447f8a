//! Assertions and helpers that many tests share.

use std::process::Command;
use std::time::Duration;

use temporalio_client::Client;

use crate::{Sandbox, binary};

/// Runs `starter verify` (its own reads of Stripe) over the catalog at `catalog_url` and the
/// sandbox; asserts it found `products` products and no difference. Returns its report.
pub fn assert_verify_clean(catalog_url: &str, sandbox: &Sandbox, products: usize) -> String {
    let out = Command::new(binary("starter"))
        .args(["verify", "--requests-per-second", "200"])
        .env("CATALOG_DATABASE_URL", catalog_url)
        .env("STRIPE_API_BASE", &sandbox.base)
        .env("STRIPE_API_KEY", &sandbox.key)
        .output()
        .expect("starter verify runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "verify found differences:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{products} products compared, 0 differences")),
        "{text}"
    );
    text
}

/// Every product has exactly the catalog's number of active prices in Stripe (no duplicate from a
/// retried or repeated write).
pub async fn assert_no_duplicate_prices(
    sandbox: &Sandbox,
    products: &[workflows::model::CatalogProduct],
) {
    for p in products {
        let prices = sandbox.prices(&p.id).await;
        let active = prices
            .iter()
            .filter(|price| price["active"] == true)
            .count();
        assert_eq!(
            active,
            p.prices.len(),
            "{}: a duplicate price: {prices:#?}",
            p.id
        );
    }
}

/// Workflows on `task_queue` whose status is `status` (`Running`, `Completed`, `Failed`, …).
pub async fn count_workflows(client: &Client, task_queue: &str, status: &str) -> usize {
    client
        .count_workflows(
            format!("TaskQueue = '{task_queue}' AND ExecutionStatus = '{status}'"),
            Default::default(),
        )
        .await
        .unwrap()
        .count()
}

/// Signal-with-start of every product's sync on `task_queue`, `concurrency` at a time (as the
/// relay does).
pub async fn signal_all(
    client: &Client,
    catalog: &catalog::Catalog,
    task_queue: &str,
    products: &[workflows::model::CatalogProduct],
    concurrency: usize,
) {
    use futures::StreamExt;
    let identity = catalog.identity().await.unwrap();
    let signaller = relay::Signaller::new(
        client.clone(),
        identity,
        task_queue,
        Duration::from_secs(10),
    );
    futures::stream::iter(products)
        .for_each_concurrent(concurrency, |p| {
            let signaller = &signaller;
            async move {
                signaller
                    .product_changed(&p.id, None, "test")
                    .await
                    .unwrap()
            }
        })
        .await;
}
