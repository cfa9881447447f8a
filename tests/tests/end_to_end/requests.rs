//! What each kind of sync costs in Stripe requests, by endpoint, as the sandbox records them: a
//! new product with 1, 2 or 3 prices, a name edit, an amount edit, no change, an archive. On a
//! live account Stripe's per-endpoint limiters (25/s for each named operation) set the speed of a
//! backfill, so a change that adds a request is a regression this test names. The same table is
//! in BENCHMARKS.md ("Stripe requests per sync"); issue 37 lowers the new product's.

use std::collections::BTreeMap;

use harness::{Backend, TestEnv};
use workflows::SyncOutcome;

/// The requests the sandbox answered since its last reset, by endpoint (429s included).
async fn requests(env: &TestEnv) -> BTreeMap<String, u64> {
    let stats = env.sandbox.stats().await;
    let mut by_endpoint = BTreeMap::new();
    for r in stats["requests"].as_array().unwrap() {
        *by_endpoint
            .entry(r["endpoint"].as_str().unwrap().to_string())
            .or_default() += r["count"].as_u64().unwrap();
    }
    by_endpoint
}

async fn reset(env: &TestEnv) {
    reqwest::Client::new()
        .post(format!("{}/_sandbox/reset", env.sandbox.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

/// One scenario: reset the counts, sync `id`, return what it cost.
async fn cost(env: &TestEnv, id: &str, outcome: SyncOutcome) -> BTreeMap<String, u64> {
    reset(env).await;
    let result = env.sync(id).await;
    assert_eq!(result.outcome, outcome, "{id}: {result:?}");
    requests(env).await
}

fn mix(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(e, n)| (e.to_string(), *n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_sync_costs_the_requests_recorded_here() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let with_prices = |n: usize, prices: usize| {
        let mut p = env.sample(n);
        let first = p.prices[0].clone();
        p.prices = (0..prices)
            .map(|i| domain::model::CatalogPrice {
                currency: ["usd", "eur", "gbp"][i].into(),
                ..first.clone()
            })
            .collect();
        p
    };
    let products: Vec<_> = (1..=3).map(|n| with_prices(n, n)).collect();
    env.catalog.save_products(&products).await.unwrap();

    // A new product: read it (absent), create it, each price, then set its default price.
    // (Own lookup keys from the catalog add a check that no other product holds them.)
    let new = |prices: u64| {
        mix(&[
            ("GET /v1/products/{id}", 1),
            ("POST /v1/products", 1),
            ("POST /v1/prices", prices),
            ("POST /v1/products/{id}", 1),
        ])
    };
    for (n, product) in products.iter().enumerate() {
        let prices = n as u64 + 1;
        assert_eq!(
            cost(&env, &product.id, SyncOutcome::Synced).await,
            new(prices),
            "a new product with {prices} prices"
        );
    }

    // An edit: one read (the prices with their product expanded), and only the writes that differ.
    let mut edited = products[1].clone();
    edited.name = format!("{} (renamed)", edited.name);
    env.catalog.save_product(&edited).await.unwrap();
    assert_eq!(
        cost(&env, &edited.id, SyncOutcome::Synced).await,
        mix(&[("GET /v1/prices", 1), ("POST /v1/products/{id}", 1)]),
        "a name edit"
    );
    edited.prices[0].unit_amount += 100;
    env.catalog.save_product(&edited).await.unwrap();
    // A new amount is a new price (Stripe fixes amounts), which takes the lookup key, becomes
    // the default, and the old one is archived.
    assert_eq!(
        cost(&env, &edited.id, SyncOutcome::Synced).await,
        mix(&[
            ("GET /v1/prices", 1),
            ("POST /v1/prices", 1),
            ("POST /v1/products/{id}", 1),
            ("POST /v1/prices/{id}", 1),
        ]),
        "an amount edit"
    );
    // Nothing changed: one read.
    assert_eq!(
        cost(&env, &edited.id, SyncOutcome::Unchanged).await,
        mix(&[("GET /v1/prices", 1)]),
        "no change"
    );

    // An archive: read the product, deactivate it (its prices stay as they are: an archived
    // product sells nothing, and its history keeps its prices).
    env.catalog.soft_delete(&products[2].id).await.unwrap();
    assert_eq!(
        cost(&env, &products[2].id, SyncOutcome::Archived).await,
        mix(&[("GET /v1/products/{id}", 1), ("POST /v1/products/{id}", 1)]),
        "an archive"
    );
}
