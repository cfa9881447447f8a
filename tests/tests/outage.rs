//! Temporal goes away for 30 seconds while the catalog keeps changing: the changes wait in the
//! outbox and all of them reach Stripe once Temporal is back. This binary runs its own dev server
//! (state in a SQLite file), which the test stops and starts.

use std::time::{Duration, Instant};

use harness::{Backend, TestEnv, eventually, restartable_temporal};
use relay::RelayOptions;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_committed_while_temporal_is_down_land_when_it_returns() {
    let temporal = restartable_temporal();
    let env = TestEnv::start(Backend::Sqlite).await;
    let relay = env.spawn_relay(RelayOptions {
        poll_interval: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        ..RelayOptions::default()
    });
    let mut products: Vec<_> = (1..=5).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        env.result_when_settled(&p.id).await;
    }

    tokio::task::block_in_place(|| temporal.stop());
    let down = Instant::now();
    let mut edit = 0;
    while down.elapsed() < Duration::from_secs(30) {
        edit += 1;
        let p = &mut products[edit % 5];
        p.name = format!("Edited during the outage #{edit}");
        env.catalog.save_product(p).await.unwrap();
        if edit % 4 == 0 {
            let mut new = env.sample(5 + edit);
            new.name = format!("Created during the outage #{edit}");
            env.catalog.save_product(&new).await.unwrap();
            products.push(new);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let waiting = env.catalog.outbox_stats().await.unwrap();
    assert!(
        waiting.pending > 0,
        "changes wait in the outbox while Temporal is down"
    );
    assert!(
        waiting.lag() >= Duration::from_secs(20),
        "lag is reported: {waiting:?}"
    );
    for p in &products {
        let stripe = env.sandbox.product(&p.id).await;
        assert!(
            stripe.is_none_or(|s| s["name"] != json!(p.name)),
            "nothing syncs while Temporal is down"
        );
    }

    tokio::task::block_in_place(|| temporal.start());
    for p in &products {
        eventually(
            Duration::from_secs(120),
            &format!("{} at its last edit in Stripe", p.id),
            || async {
                env.sandbox
                    .product(&p.id)
                    .await
                    .filter(|s| s["name"] == json!(p.name))
            },
        )
        .await;
    }
    eventually(Duration::from_secs(30), "the outbox drained", || async {
        (env.catalog.outbox_stats().await.unwrap().pending == 0).then_some(())
    })
    .await;
    relay.stop().await;
}
