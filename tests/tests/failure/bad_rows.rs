//! The fault suite, judged by `starter verify` (its own reads of Stripe, not the sync's code).
//!
//! A corpus of bad catalog rows, one per validation rule of `stripe/src/transform.rs` plus an
//! unreadable row, goes through the outbox and the relay with good products between them: each bad
//! row is reported with its reason (the field at fault), none holds up the others, and `verify`
//! finds Stripe exactly as the catalog asks, the unreadable row being the one difference.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use catalog::Catalog;
use harness::{Backend, TestEnv, binary, eventually};
use relay::RelayOptions;
use workflows::model::{CatalogPrice, CatalogProduct};

/// (what is wrong, the field the report must name, the product).
fn corpus(env: &TestEnv) -> Vec<(&'static str, &'static str, CatalogProduct)> {
    let base = |n: usize| env.sample(n);
    let with = |n: usize, f: &dyn Fn(&mut CatalogProduct)| {
        let mut p = base(n);
        f(&mut p);
        p
    };
    let price =
        |currency: &str, amount: i64, interval: Option<&str>, count: Option<i64>| CatalogPrice {
            currency: currency.into(),
            unit_amount: amount,
            recurring_interval: interval.map(String::from),
            recurring_interval_count: count,
            ..Default::default()
        };
    vec![
        ("empty name", "name", with(101, &|p| p.name = "  ".into())),
        (
            "name too long",
            "name",
            with(102, &|p| p.name = "n".repeat(251)),
        ),
        (
            "nine images",
            "images",
            with(103, &|p| {
                p.images = (0..9)
                    .map(|i| format!("https://img.example/{i}.png"))
                    .collect()
            }),
        ),
        (
            "image not https",
            "images[0]",
            with(104, &|p| p.images = vec!["http://img.example/a.png".into()]),
        ),
        (
            "url not a URL",
            "url",
            with(105, &|p| p.url = Some("shop/page".into())),
        ),
        (
            "unit label too long",
            "unit_label",
            with(106, &|p| p.unit_label = Some("x".repeat(13))),
        ),
        (
            "bad tax code",
            "tax_code",
            with(107, &|p| p.tax_code = Some("txcd_12".into())),
        ),
        (
            "47 metadata keys",
            "metadata",
            with(108, &|p| {
                p.metadata = (0..47)
                    .map(|i| (format!("k{i}"), "v".to_string()))
                    .collect()
            }),
        ),
        (
            "metadata key too long",
            "metadata.",
            with(109, &|p| {
                p.metadata = BTreeMap::from([("k".repeat(41), "v".into())])
            }),
        ),
        (
            "metadata key with brackets",
            "metadata.a[b]",
            with(110, &|p| {
                p.metadata = BTreeMap::from([("a[b]".into(), "v".into())])
            }),
        ),
        (
            "reserved metadata prefix",
            "metadata.catalog_sync_x",
            with(111, &|p| {
                p.metadata = BTreeMap::from([("catalog_sync_x".into(), "v".into())])
            }),
        ),
        (
            "metadata value too long",
            "metadata.long",
            with(112, &|p| {
                p.metadata = BTreeMap::from([("long".into(), "v".repeat(501))])
            }),
        ),
        (
            "unknown currency",
            "prices[0].currency",
            with(113, &|p| {
                p.prices = vec![price("doubloons", 100, None, None)]
            }),
        ),
        (
            "negative amount",
            "prices[0].unit_amount",
            with(114, &|p| p.prices = vec![price("usd", -1, None, None)]),
        ),
        (
            "count without interval",
            "prices[0].recurring_interval_count",
            with(115, &|p| p.prices = vec![price("usd", 100, None, Some(2))]),
        ),
        (
            "unknown interval",
            "prices[0].recurring_interval",
            with(116, &|p| {
                p.prices = vec![price("usd", 100, Some("fortnight"), None)]
            }),
        ),
        (
            "interval count out of range",
            "prices[0].recurring_interval_count",
            with(117, &|p| {
                p.prices = vec![price("usd", 100, Some("year"), Some(4))]
            }),
        ),
        (
            "two prices for one currency and period",
            "prices[1].currency",
            with(118, &|p| {
                p.prices = vec![price("usd", 100, None, None), price("USD", 200, None, None)]
            }),
        ),
    ]
}

async fn corrupt_images(catalog: &Catalog, id: &str) {
    let sql = "UPDATE catalog_products SET images = 'not json' WHERE id = $1";
    match catalog.db() {
        catalog::Db::Sqlite(pool) => {
            sqlx::query(sql).bind(id).execute(pool).await.unwrap();
        }
        catalog::Db::Postgres(pool) => {
            sqlx::query(sql).bind(id).execute(pool).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_row_is_reported_with_its_reason_and_none_blocks_the_others() {
    let env = TestEnv::start(Backend::Postgres).await;
    let relay = env.spawn_relay(RelayOptions::default());
    let bad = corpus(&env);
    let good: Vec<CatalogProduct> = (1..=6).map(|n| env.sample(n)).collect();
    // Good and bad interleaved, in separate transactions, as an application would write them.
    for (i, (_, _, product)) in bad.iter().enumerate() {
        env.catalog.save_product(product).await.unwrap();
        if let Some(g) = good.get(i / 3) {
            env.catalog.save_product(g).await.unwrap();
        }
    }
    let unreadable = env.sample(119);
    env.catalog.save_product(&unreadable).await.unwrap();
    corrupt_images(&env.catalog, &unreadable.id).await;

    for (what, field, product) in &bad {
        let record = eventually(Duration::from_secs(60), what, || async {
            let history = env.catalog.audit_history(&product.id, 5).await.unwrap();
            history
                .into_iter()
                .rev()
                .find(|r| r.entry.outcome == "invalid")
        })
        .await;
        let detail = record.entry.detail.unwrap_or_default();
        assert!(
            detail.starts_with(field) || detail.contains(&format!("; {field}")),
            "{what}: the report names {field}: {detail}"
        );
        assert!(
            env.sandbox.product(&product.id).await.is_none(),
            "{what} reached Stripe"
        );
    }
    for g in &good {
        eventually(Duration::from_secs(60), &g.id, || async {
            env.sandbox.product(&g.id).await
        })
        .await;
    }
    env.outbox_drained(Duration::from_secs(30)).await;

    // `verify` agrees: everything that can be synced is, the invalid rows are counted apart, and
    // the unreadable row is the one difference (it needs a person).
    let out = Command::new(binary("starter"))
        .args(["verify", "--json", "--requests-per-second", "50"])
        .env("CATALOG_DATABASE_URL", &env.catalog_url)
        .env("STRIPE_API_BASE", &env.sandbox.base)
        .env("STRIPE_API_KEY", &env.sandbox.key)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    assert_eq!(report["invalid_not_synced"], bad.len(), "{report:#}");
    assert_eq!(report["compared"], good.len(), "{report:#}");
    assert_eq!(report["differences"], 1, "{report:#}");
    assert_eq!(
        report["list"][0]["product"],
        serde_json::json!(unreadable.id)
    );
    assert!(
        report["list"][0]["difference"]
            .as_str()
            .unwrap()
            .contains("unreadable"),
        "{report:#}"
    );
    relay.stop().await;
}

/// The `worker` binary is SIGKILLed with 1,000 syncs pending and started again: `verify` finds
/// Stripe exactly as the catalog asks, no product has a duplicate price, and the Stripe key is in
/// no workflow history (all of them fetched) and no log line (debug level).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_1000_syncs_pending_loses_nothing_and_leaks_no_secret() {
    use futures::StreamExt;
    use temporalio_client::{UntypedWorkflow, WorkflowListOptions};

    let client = harness::temporal_client().await;
    let (catalog_url, catalog) = harness::fresh_catalog(Backend::Sqlite).await;
    let sandbox = harness::Sandbox::start().await;
    let task_queue = harness::unique("tq-kill");
    let logs = std::env::temp_dir().join(harness::unique("worker-logs"));
    std::fs::create_dir_all(&logs).unwrap();
    let start_worker = |n: usize| {
        let log = std::fs::File::create(logs.join(format!("worker-{n}.log"))).unwrap();
        harness::worker_command(&catalog_url, &sandbox, &task_queue)
            .env("RUST_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let prefix = harness::unique("kill");
    let products: Vec<CatalogProduct> = (1..=1000)
        .map(|n| CatalogProduct {
            id: format!("{prefix}-{n:04}"),
            ..catalog::seed::sample_product(n, 5)
        })
        .collect();
    for chunk in products.chunks(250) {
        catalog.save_products(chunk).await.unwrap();
    }
    let mut worker = start_worker(1);
    harness::signal_all(&client, &catalog, &task_queue, &products, 32).await;
    // Kill it as soon as it is at work: almost all of the 1,000 syncs are still pending.
    eventually(Duration::from_secs(120), "the first writes", || async {
        let writes = sandbox.stats().await["total_writes"].as_u64().unwrap_or(0);
        (writes >= 100).then_some(())
    })
    .await;
    worker.kill().unwrap();
    worker.wait().unwrap();
    let mut worker = start_worker(2);

    let running = |status: &'static str| harness::count_workflows(&client, &task_queue, status);
    eventually(Duration::from_secs(300), "every sync finished", || async {
        (running("Running").await == 0 && running("Completed").await >= 1000).then_some(())
    })
    .await;
    assert_eq!(running("Failed").await, 0);

    harness::assert_verify_clean(&catalog_url, &sandbox, products.len());
    harness::assert_no_duplicate_prices(&sandbox, &products).await;

    // The key in no history and no log line.
    // Every run, listed whole: a page that fails under load (the suite runs beside) is listed
    // again rather than dropped.
    let ids: Vec<String> = eventually(Duration::from_secs(120), "every run listed", || {
        let client = client.clone();
        let query = format!("TaskQueue = '{task_queue}'");
        async move {
            let listed: Vec<_> = client
                .list_workflows(query, WorkflowListOptions::default())
                .collect()
                .await;
            let ids: Option<Vec<String>> = listed
                .into_iter()
                .map(|w| w.ok().map(|w| w.id().to_string()))
                .collect();
            ids.filter(|ids| ids.len() >= 1000)
        }
    })
    .await;
    let key = sandbox.key.as_str();
    let leaks: Vec<String> = futures::stream::iter(ids)
        .map(|id| {
            let client = client.clone();
            async move {
                let json = client
                    .get_workflow_handle::<UntypedWorkflow>(id.clone())
                    .fetch_history(Default::default())
                    .to_json()
                    .await
                    .unwrap();
                harness::decoded_text(&json).contains(key).then_some(id)
            }
        })
        .buffer_unordered(16)
        .filter_map(|leak| async move { leak })
        .collect()
        .await;
    assert!(
        leaks.is_empty(),
        "the Stripe key is in the histories of {leaks:?}"
    );
    worker.kill().unwrap();
    worker.wait().unwrap();
    for n in [1, 2] {
        let log = std::fs::read_to_string(logs.join(format!("worker-{n}.log"))).unwrap();
        assert!(log.contains(&prefix), "worker {n} logged its work");
        assert!(
            !log.contains(&sandbox.key),
            "the Stripe key is in worker {n}'s log"
        );
    }
}
