//! Temporal goes away for 30 seconds while the catalog keeps changing: the changes wait in the
//! outbox and all of them reach Stripe once Temporal is back. The test runs a dev server of its own
//! (state in a SQLite file), which the test stops and starts.

use std::time::{Duration, Instant};

use harness::{Backend, RestartableTemporal, TestEnv, eventually};
use relay::RelayOptions;
use relay::http::HttpConfig;
use serde_json::json;

/// `POST /v1/changes` for `id` and a signed Stripe event asking to repair it: their statuses.
async fn deliveries(base: &str, id: &str) -> (u16, u16) {
    let http = reqwest::Client::new();
    let ingest = http
        .post(format!("{base}/v1/changes"))
        .bearer_auth("token-outage")
        .json(&json!({ "product_ids": [id] }))
        .send()
        .await
        .unwrap();
    let event = json!({
        "id": "evt_during_outage", "object": "event", "type": "product.updated",
        "data": { "object": { "id": id, "object": "product",
                              "metadata": { "catalog_sync_managed": "true", "catalog_sync_id": id } },
                  "previous_attributes": { "name": "Edited in the Dashboard" } },
        "request": { "id": null, "idempotency_key": null }
    })
    .to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let webhook = http
        .post(format!("{base}/stripe/webhook"))
        .header(
            "stripe-signature",
            relay::signature::header_value("whsec_outage", now, event.as_bytes()),
        )
        .body(event)
        .send()
        .await
        .unwrap();
    let retry_after = ingest.headers().get("retry-after").is_some();
    let (ingest, webhook) = (ingest.status().as_u16(), webhook.status().as_u16());
    if ingest == 503 {
        assert!(retry_after, "a 503 tells when to retry");
    }
    (ingest, webhook)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_committed_while_temporal_is_down_land_when_it_returns() {
    let temporal = RestartableTemporal::start_new();
    let env = TestEnv::start_on(&temporal.address(), Backend::Sqlite, |_| {}).await;
    let relay = env.spawn_relay(RelayOptions {
        poll_interval: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        ..RelayOptions::default()
    });
    let router = relay::http::router(
        env.catalog.clone(),
        env.signaller(),
        HttpConfig {
            ingest_tokens: vec!["token-outage".into()],
            webhook_secrets: vec!["whsec_outage".into()],
            own_writes: Some(harness::own_writes(&env.catalog).await),
            ..HttpConfig::default()
        },
        None,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut products: Vec<_> = (1..=5).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        env.result_when_settled(&p.id).await;
    }

    tokio::task::block_in_place(|| temporal.stop());
    let down = Instant::now();
    // Ingest and webhooks answer 503 (retry later) while Temporal is away, and lose nothing.
    let during = tokio::spawn({
        let (base, id) = (base.clone(), products[0].id.clone());
        async move { deliveries(&base, &id).await }
    });
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

    assert_eq!(during.await.unwrap(), (503, 503));
    tokio::task::block_in_place(|| temporal.start());
    // Stripe's retry of the same event is handled, not taken for a duplicate.
    let after = eventually(Duration::from_secs(60), "deliveries accepted", || async {
        let statuses = deliveries(&base, &products[0].id).await;
        (statuses == (202, 200)).then_some(statuses)
    })
    .await;
    assert_eq!(after, (202, 200));
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
    env.outbox_drained(Duration::from_secs(30)).await;
    relay.stop().await;
}
