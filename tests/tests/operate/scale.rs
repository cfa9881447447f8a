//! Horizontal scale: three `worker` processes share one task queue; one is SIGKILLed in the middle
//! of 300 syncs. Its workflow tasks move on when its sticky queue times out and its activities when
//! their start-to-close timeout ends; every product reaches Stripe exactly as the catalog has it,
//! with no duplicate price and no failed workflow.

use std::process::{Child, Stdio};
use std::time::Duration;

use harness::{
    Backend, Sandbox, eventually, fresh_catalog, temporal_client, unique, worker_command,
};
use serde_json::json;

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_and_one_killed_lose_nothing() {
    let client = temporal_client().await;
    let (catalog_url, catalog) = fresh_catalog(Backend::Postgres).await;
    let sandbox = Sandbox::start().await;
    let task_queue = unique("tq-scale");
    let start_worker = || {
        Worker(
            worker_command(&catalog_url, &sandbox, &task_queue)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut workers = vec![start_worker(), start_worker(), start_worker()];

    let prefix = unique("scale");
    let products: Vec<_> = (1..=300)
        .map(|n| workflows::model::CatalogProduct {
            id: format!("{prefix}-{n:04}"),
            ..catalog::seed::sample_product(n, 11)
        })
        .collect();
    catalog.save_products(&products).await.unwrap();
    harness::signal_all(&client, &catalog, &task_queue, &products, 16).await;

    // Kill one worker once the work is well under way.
    eventually(
        Duration::from_secs(120),
        "a third of the syncs done",
        || async {
            let done = sandbox.stats().await["total_writes"].as_u64().unwrap_or(0);
            (done >= 300).then_some(())
        },
    )
    .await;
    let mut killed = workers.remove(1);
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();

    // Every sync ends first: a product shows its default price from its first request on (the
    // price made with it), before its other prices are created.
    let running = eventually(Duration::from_secs(240), "every sync finished", || async {
        let n = harness::count_workflows(&client, &task_queue, "Running").await;
        (n == 0).then_some(n)
    })
    .await;
    assert_eq!(running, 0);
    let failed = harness::count_workflows(&client, &task_queue, "Failed").await;
    assert_eq!(failed, 0);
    for p in &products {
        let stripe = sandbox.product(&p.id).await.expect("in Stripe");
        assert_eq!(stripe["name"], json!(p.name));
        assert!(stripe["default_price"].is_object(), "{}: {stripe}", p.id);
        // Every price ever made, archived ones included: a write done twice would show here.
        let prices = sandbox.prices(&p.id).await;
        assert_eq!(
            prices.len(),
            p.prices.len(),
            "no duplicate price for {}: {prices:#?}",
            p.id
        );
    }
}
