//! The Temporal dev server (state in a SQLite file) is SIGKILLed in the middle of 300 syncs, the
//! catalog keeps changing while it is gone, and it is started again on the same file: every
//! product reaches Stripe at its last edit, `starter verify` finds no difference, no price is
//! duplicated and no workflow failed. The test runs a dev server of its own, which it kills.

use std::time::Duration;

use harness::{
    Backend, RestartableTemporal, TestEnv, assert_no_duplicate_prices, assert_verify_clean,
    eventually,
};
use relay::RelayOptions;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_killed_mid_run_loses_nothing() {
    let temporal = RestartableTemporal::start_new();
    let env = TestEnv::start_on(&temporal.address(), Backend::Sqlite, |_| {}).await;
    let _relay = env.spawn_relay(RelayOptions {
        poll_interval: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        ..RelayOptions::default()
    });
    let mut products: Vec<_> = (1..=300).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();

    // Kill it while the syncs are in full flow.
    eventually(
        Duration::from_secs(120),
        "a third of the writes",
        || async { (env.writes().await >= 300).then_some(()) },
    )
    .await;
    tokio::task::block_in_place(|| temporal.kill());
    let mut not_yet = 0;
    for p in &products {
        not_yet += usize::from(env.sandbox.product(&p.id).await.is_none());
    }
    assert!(not_yet > 0, "the kill came mid-run");
    for (i, p) in products.iter_mut().enumerate().step_by(10) {
        p.name = format!("Edited while Temporal was down #{i}");
        env.catalog.save_product(p).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    tokio::task::block_in_place(|| temporal.start());

    for p in &products {
        eventually(
            Duration::from_secs(240),
            &format!("{} at its last edit in Stripe", p.id),
            || async {
                env.sandbox
                    .product(&p.id)
                    .await
                    .filter(|s| s["name"] == json!(p.name) && s["default_price"].is_object())
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
