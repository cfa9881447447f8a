//! Stripe misbehaves for three minutes while the catalog keeps changing: half a minute of server
//! errors (30 %), latency spikes and connections dropped after the write took effect, half a
//! minute of a 429 storm, then a full two-minute outage. Once Stripe is back, every product is in
//! Stripe at its last edit, `starter verify` finds no difference, no price is duplicated and no
//! workflow failed: no update was lost.

use std::time::{Duration, Instant};

use harness::{Backend, TestEnv, assert_no_duplicate_prices, assert_verify_clean, eventually};
use relay::RelayOptions;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_faults_and_a_two_minute_outage_lose_no_update() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let _relay = env.spawn_relay(RelayOptions {
        poll_interval: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        ..RelayOptions::default()
    });
    let mut products: Vec<_> = (1..=150).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();

    let phases = [
        (
            json!({"seed": 1, "error_rate": 0.3, "drop_rate": 0.05, "drop_after_apply": true,
                   "latency_ms": 20, "jitter_ms": 1500}),
            30,
        ),
        (
            json!({"seed": 2, "rate_limit_rate": 0.8, "jitter_ms": 300}),
            30,
        ),
        (json!({"outage_seconds": 120}), 120),
    ];
    let mut edit = 0;
    for (faults, seconds) in phases {
        env.sandbox.faults(faults).await;
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            edit += 1;
            let p = &mut products[(edit * 7) % 150];
            p.name = format!("Edited under faults #{edit}");
            if edit % 3 == 0 {
                p.prices[0].unit_amount += 100;
            }
            env.catalog.save_product(p).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let stats = env.sandbox.stats().await;
    let refused: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"].as_u64().unwrap_or(0) >= 429)
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert!(refused > 100, "the faults were felt: {stats}");
    env.sandbox.clear_faults().await;

    for p in &products {
        eventually(
            Duration::from_secs(240),
            &format!("{} at its last edit in Stripe", p.id),
            || async {
                env.sandbox.product(&p.id).await.filter(|s| {
                    s["name"] == json!(p.name)
                        && s["default_price"]["unit_amount"] == json!(p.prices[0].unit_amount)
                })
            },
        )
        .await;
    }
    env.outbox_drained(Duration::from_secs(60)).await;
    env.assert_all_finished_none_failed(Duration::from_secs(120))
        .await;
    assert_verify_clean(&env.catalog_url, &env.sandbox, products.len());
    assert_no_duplicate_prices(&env.sandbox, &products).await;
}

/// A price write Stripe applied whose answer was lost (the first price's lookup key, set after the
/// product that carried the price was created): the retry finds it made and does not make it
/// again, nor the product, nor the second price twice; the ledger records the write with the
/// attempt that sent it and why it failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_was_lost_is_in_the_audit() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let mut product = env.sample(1);
    // Two prices: a new product's first comes with it (`default_price_data`), the second on its
    // own (`POST /v1/prices`).
    product.prices.truncate(1);
    product.prices.push(workflows::model::CatalogPrice {
        currency: "gbp".into(),
        ..product.prices[0].clone()
    });
    env.catalog
        .save_products(std::slice::from_ref(&product))
        .await
        .unwrap();
    // Every price write is applied and its answer dropped, until an attempt has failed on one.
    env.sandbox
        .faults(json!({
            "drop_rate": 1.0, "drop_after_apply": true, "endpoints": ["POST /v1/prices"]
        }))
        .await;
    env.signal(&product.id).await;
    eventually(
        Duration::from_secs(60),
        "an interrupted attempt",
        || async {
            let history = env.catalog.audit_history(&product.id, 20).await.unwrap();
            history
                .iter()
                .any(|r| r.entry.outcome == "interrupted")
                .then_some(())
        },
    )
    .await;
    env.sandbox.clear_faults().await;
    let result = env.result(&product.id).await;
    assert!(
        matches!(
            result.outcome,
            workflows::SyncOutcome::Synced | workflows::SyncOutcome::Unchanged
        ),
        "{result:?}"
    );
    let history = env.catalog.audit_history(&product.id, 20).await.unwrap();
    let interrupted: Vec<_> = history
        .iter()
        .filter(|r| r.entry.outcome == "interrupted")
        .collect();
    assert!(!interrupted.is_empty(), "{history:#?}");
    // The first attempt: the product created (with its first price), then the key's write lost.
    let first = &interrupted[0].entry;
    assert!(
        first.operations.iter().any(|op| op == "create_product"),
        "{first:#?}"
    );
    let detail = first.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("sent without an answer") && detail.contains("update_price:"),
        "{detail}"
    );
    assert_no_duplicate_prices(&env.sandbox, std::slice::from_ref(&product)).await;
    assert_verify_clean(&env.catalog_url, &env.sandbox, 1);
}
