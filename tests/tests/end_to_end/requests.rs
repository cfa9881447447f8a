//! What each kind of sync costs in Stripe requests, by endpoint, as the sandbox records them: a
//! new product with 1, 2 or 3 prices, a name edit, an amount edit, no change, an archive. On a
//! live account Stripe's per-endpoint limiters (25/s for each named operation) set the speed of a
//! backfill, so a change that adds a request is a regression this test names. The same table is
//! in BENCHMARKS.md ("Stripe requests per sync").

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

    // A new product, which the mirror of Stripe's state does not know: no read; created with its
    // first price (`default_price_data`, which also makes it the default), that price given its
    // lookup key (which `default_price_data` cannot carry), and each other price created.
    // (Own lookup keys from the catalog add a check that no other product holds them.)
    let new = |prices: u64| {
        let mut m = mix(&[("POST /v1/products", 1), ("POST /v1/prices/{id}", 1)]);
        if prices > 1 {
            m.insert("POST /v1/prices".into(), prices - 1);
        }
        m
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

/// The sandbox's requests by endpoint that Stripe's limiters refused, and their reasons.
async fn refused(env: &TestEnv) -> (BTreeMap<String, u64>, Vec<String>) {
    let stats = env.sandbox.stats().await;
    let mut by_endpoint = BTreeMap::new();
    let mut reasons = Vec::new();
    for r in stats["rate_limited"].as_array().unwrap() {
        *by_endpoint
            .entry(r["endpoint"].as_str().unwrap().to_string())
            .or_default() += r["count"].as_u64().unwrap();
        reasons.push(r["reason"].as_str().unwrap().to_string());
    }
    (by_endpoint, reasons)
}

/// A request Stripe's rate limiter refuses (429) is sent again once the limiter has room, inside
/// the same attempt: the sync answers with what it read, never reading again, and writes once.
/// An account allowing 2 requests/s refuses the third request of a new product with 2 prices and
/// of an amount edit; each sync still costs, in answered requests, what it costs unrefused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_is_sent_again_without_reading_again() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let mut product = env.sample(1);
    product.prices.truncate(1);
    product.prices.push(domain::model::CatalogPrice {
        currency: "gbp".into(),
        ..product.prices[0].clone()
    });
    env.catalog.save_product(&product).await.unwrap();
    reqwest::Client::new()
        .post(format!("{}/_sandbox/config", env.sandbox.base))
        .json(&serde_json::json!({"rate_limit": 2}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let mut scenarios = vec![(
        "a new product with 2 prices",
        mix(&[
            ("POST /v1/products", 1),
            ("POST /v1/prices/{id}", 1),
            ("POST /v1/prices", 1),
        ]),
    )];
    scenarios.push((
        "an amount edit",
        mix(&[
            ("GET /v1/prices", 1),
            ("POST /v1/prices", 1),
            ("POST /v1/products/{id}", 1),
            ("POST /v1/prices/{id}", 1),
        ]),
    ));
    for (i, (what, unrefused)) in scenarios.into_iter().enumerate() {
        if i == 1 {
            product.prices[0].unit_amount += 100;
            env.catalog.save_product(&product).await.unwrap();
            // The limiter's bucket full again.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        let sent = cost(&env, &product.id, SyncOutcome::Synced).await;
        let (refused, reasons) = refused(&env).await;
        assert!(!refused.is_empty(), "{what}: nothing was refused: {sent:?}");
        assert!(reasons.iter().all(|r| r == "global-rate"), "{reasons:?}");
        let answered: BTreeMap<String, u64> = sent
            .iter()
            .map(|(e, n)| (e.clone(), n - refused.get(e).copied().unwrap_or(0)))
            .collect();
        assert_eq!(answered, unrefused, "{what} ({refused:?} refused)");
    }
    let audit = env.catalog.audit_history(&product.id, 10).await.unwrap();
    assert!(
        audit.iter().all(|r| r.entry.outcome == "synced"),
        "one attempt each: {audit:#?}"
    );
}
