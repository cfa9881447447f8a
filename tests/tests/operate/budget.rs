//! One Stripe budget for all workers, and live edits ahead of reconciliation.
//!
//! - Three `worker` processes given one budget of 20 requests/s sync 150 new products against a
//!   sandbox that enforces 20/s: the sandbox's busiest second stays within the budget and it never
//!   answers 429, though each worker alone would send 20/s. `starter status` shows the server-side
//!   limit on the Stripe task queue.
//! - A reconciliation repairing 150 missing products fills the Stripe queue's backlog; a live edit
//!   made meanwhile reaches Stripe while most of the repairs still wait.
//! - Two workers with the live budget under Stripe's live-mode limiters (per account and per
//!   endpoint) backfill 120 products with at most 1 % of the requests refused.

use std::process::{Child, Stdio};
use std::time::Duration;

use harness::{
    Backend, Sandbox, TestEnv, binary, eventually, fresh_catalog, temporal_address,
    temporal_client, unique, worker_command,
};
use serde_json::{Value, json};
use temporalio_client::{WorkflowQueryOptions, WorkflowStartOptions};
use workflows::{ReconcileCatalog, ReconcileInput, ReconcileProgress};

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const BUDGET: u32 = 20;

/// A backfill through `workers` worker processes with one Stripe `budget`: `products` new
/// products saved and signalled at once, until every sync finished (judged through Temporal, not
/// by reading the sandbox: the test's own reads would count against its limits). Returns the
/// workers (still running) and the task queue.
async fn backfill(
    catalog_url: &str,
    catalog: &catalog::Catalog,
    sandbox: &Sandbox,
    workers: usize,
    budget: u32,
    products: &[workflows::model::CatalogProduct],
) -> (Vec<Worker>, String) {
    let client = temporal_client().await;
    let task_queue = unique("tq-budget");
    let running: Vec<Worker> = (0..workers)
        .map(|_| {
            Worker(
                worker_command(catalog_url, sandbox, &task_queue)
                    .env("CATALOG_SYNC_STRIPE_BUDGET", budget.to_string())
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    catalog.save_products(products).await.unwrap();
    harness::signal_all(&client, catalog, &task_queue, products, 16).await;
    let count = |status: &'static str| harness::count_workflows(&client, &task_queue, status);
    eventually(Duration::from_secs(300), "every sync finished", || async {
        (count("Completed").await >= products.len() && count("Running").await == 0).then_some(())
    })
    .await;
    (running, task_queue)
}

/// The requests the sandbox refused with 429, and all it answered.
fn refused_of(stats: &Value) -> (u64, u64) {
    let refused = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 429)
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    (refused, stats["total_requests"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_stay_inside_one_stripe_budget() {
    let (catalog_url, catalog) = fresh_catalog(Backend::Postgres).await;
    let sandbox = Sandbox::start_with(stripe_sandbox::Config {
        limits: stripe_sandbox::limits::Limits {
            global: BUDGET,
            ..stripe_sandbox::limits::Limits::off()
        },
        ..Default::default()
    })
    .await;
    let prefix = unique("budget");
    let products: Vec<_> = (1..=150)
        .map(|n| workflows::model::CatalogProduct {
            id: format!("{prefix}-{n:04}"),
            ..catalog::seed::sample_product(n, 5)
        })
        .collect();
    let (_workers, task_queue) =
        backfill(&catalog_url, &catalog, &sandbox, 3, BUDGET, &products).await;
    let stats = sandbox.stats().await;
    let (rate_limited, _) = refused_of(&stats);
    let peak = stats["peak_requests_per_second"].as_u64().unwrap();
    assert!(
        stats["total_requests"].as_u64().unwrap() >= 3 * products.len() as u64,
        "the load needs many seconds at the budget: {stats}"
    );
    eprintln!(
        "three workers, budget {BUDGET}/s: {} requests, busiest second {peak}, {rate_limited} refused",
        stats["total_requests"]
    );
    assert_eq!(
        rate_limited, 0,
        "no 429 from a sandbox enforcing the budget: {stats}"
    );
    assert!(
        peak <= u64::from(BUDGET),
        "busiest second {peak} requests, budget {BUDGET}: {stats}"
    );
    sandbox.set_rate_limit(0).await;
    for p in &products {
        let stripe = sandbox.product(&p.id).await.expect("in Stripe");
        assert_eq!(stripe["name"], json!(p.name));
        assert!(stripe["default_price"].is_object());
    }

    // `starter status` shows the server-side limit and the three workers on the Stripe queue.
    let output = std::process::Command::new(binary("starter"))
        .args(["status", "--json", "--max-relay-lag", "1000d"])
        .env("TEMPORAL_ADDRESS", temporal_address())
        .env("CATALOG_DATABASE_URL", &catalog_url)
        .env("CATALOG_SYNC_TASK_QUEUE", &task_queue)
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let stripe_queue = &status["task_queues"]["stripe"];
    assert_eq!(
        stripe_queue["rate_limit_per_second"],
        json!(f64::from(BUDGET)),
        "{status}"
    );
    assert!(stripe_queue["pollers"].as_u64().unwrap() >= 3, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edits_go_ahead_of_reconciliation() {
    let env =
        TestEnv::start_configured(Backend::Sqlite, |s| s.stripe.requests_per_second = 10).await;
    let n = 150;
    let missing: Vec<_> = (1..=n).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&missing).await.unwrap();

    // A reconciliation of those products only: every one is missing from Stripe.
    let reconcile_id = unique("reconcile-busy");
    let input = ReconcileInput {
        to: Some(env.id(n)),
        max_in_flight: n as u32,
        page_size: 100,
        ..ReconcileInput::default()
    };
    env.client
        .start_workflow(
            ReconcileCatalog::run,
            input,
            WorkflowStartOptions::new(env.worker.task_queue.as_str(), &reconcile_id).build(),
        )
        .await
        .unwrap();
    let progress = || async {
        env.client
            .get_workflow_handle::<ReconcileCatalog>(&reconcile_id)
            .query(
                ReconcileCatalog::progress,
                (),
                WorkflowQueryOptions::default(),
            )
            .await
            .unwrap()
    };
    // Repairs of the first page under way: their upserts fill the Stripe queue's backlog. (The
    // first page's 100 repairs start together, so the first write means they are all queued;
    // `progress` publishes `in_flight` only between pages, which a loaded machine reaches late.)
    eventually(Duration::from_secs(120), "repairs under way", || async {
        (env.writes().await > 0).then_some(())
    })
    .await;
    let p: ReconcileProgress = progress().await;
    assert!(p.totals.scanned >= 100, "{p:?}");

    // A live edit of a product outside the reconciliation's scope.
    let live = env.sample(n + 1);
    env.catalog
        .save_products(std::slice::from_ref(&live))
        .await
        .unwrap();
    env.signal(&live.id).await;
    eventually(
        Duration::from_secs(120),
        "the live edit in Stripe",
        || async { env.sandbox.product(&live.id).await },
    )
    .await;
    let mut repaired = 0;
    for p in &missing {
        repaired += usize::from(env.sandbox.product(&p.id).await.is_some());
    }
    assert!(
        repaired < n / 2,
        "the live edit waited for {repaired} of {n} repairs"
    );
    eprintln!("the live edit reached Stripe after {repaired} of {n} repairs");
}

/// Stripe's live-mode limiters (100 requests/s per account, 25/s per endpoint) and two `worker`
/// processes with the live budget: a backfill sends one request per product to each of
/// `POST /v1/products` and `POST /v1/prices/{id}`, which the account's budget alone would let
/// each worker send at 50/s. Each paces every endpoint at its share of Stripe's endpoint limit,
/// so the sandbox refuses at most 1 % of the requests (issue 37's bound), and every product is
/// synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_stay_inside_stripes_endpoint_limits() {
    let (catalog_url, catalog) = fresh_catalog(Backend::Postgres).await;
    let sandbox = Sandbox::start_with(stripe_sandbox::Config {
        limits: stripe_sandbox::limits::Limits {
            global: 100,
            per_endpoint: 25,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let prefix = unique("endpoints");
    let products: Vec<_> = (1..=120)
        .map(|n| workflows::model::CatalogProduct {
            id: format!("{prefix}-{n:04}"),
            ..catalog::seed::per_unit_sample(n, 9)
        })
        .collect();
    let _workers = backfill(&catalog_url, &catalog, &sandbox, 2, 100, &products).await;
    let stats = sandbox.stats().await;
    let (refused, total) = refused_of(&stats);
    let creates: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["endpoint"] == "POST /v1/products")
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    eprintln!(
        "two workers, live limits: {total} requests, {creates} to POST /v1/products, {refused} refused"
    );
    assert!(
        creates >= products.len() as u64,
        "every product is created on one endpoint: {stats}"
    );
    assert!(
        refused * 100 <= total,
        "{refused} of {total} requests refused (at most 1 %): {stats}"
    );
    let limits_off = serde_json::json!({"rate_limit": 0, "endpoint_rate_limit": 0});
    reqwest::Client::new()
        .post(format!("{}/_sandbox/config", sandbox.base))
        .json(&limits_off)
        .send()
        .await
        .unwrap();
    for p in &products {
        let stripe = sandbox.product(&p.id).await.expect("in Stripe");
        assert_eq!(stripe["name"], json!(p.name));
    }
}
