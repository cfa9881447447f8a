//! ProductSync end to end: a real Temporal dev server, the in-process worker, the Stripe sandbox,
//! and both catalog backends.

use std::time::Duration;

use futures::TryStreamExt;
use harness::{Backend, TestEnv};
use serde_json::{Value, json};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use workflows::model::{CatalogPrice, CatalogProduct};
use workflows::{ProductSync, SyncOutcome};

fn active_prices(prices: &[Value]) -> Vec<&Value> {
    prices
        .iter()
        .filter(|p| p["active"] == json!(true))
        .collect()
}

async fn new_product_reaches_stripe_and_a_second_run_writes_nothing(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let product = env.sample(1);
    env.catalog.save_product(&product).await.unwrap();

    let result = env.sync(&product.id).await;
    assert_eq!(result.outcome, SyncOutcome::Synced, "{result:?}");
    let stripe = env
        .sandbox
        .product(&product.id)
        .await
        .expect("created with the catalog id");
    assert_eq!(stripe["name"], json!(product.name));
    assert_eq!(stripe["description"], json!(product.description));
    assert_eq!(stripe["images"], json!(product.images));
    assert_eq!(stripe["url"], json!(product.url));
    assert_eq!(stripe["metadata"]["catalog_sync_managed"], "true");
    assert_eq!(stripe["metadata"]["catalog_sync_id"], json!(product.id));
    assert_eq!(
        stripe["metadata"]["category"],
        json!(product.metadata["category"])
    );
    let prices = env.sandbox.prices(&product.id).await;
    assert_eq!(prices.len(), product.prices.len());
    let default = &stripe["default_price"];
    assert_eq!(default["unit_amount"], json!(product.prices[0].unit_amount));
    assert_eq!(default["currency"], json!(product.prices[0].currency));
    for p in &product.prices {
        assert!(
            prices.iter().any(|s| s["currency"] == json!(p.currency)
                && s["unit_amount"] == json!(p.unit_amount)
                && s["recurring"]["interval"].as_str() == p.recurring_interval.as_deref()),
            "price {p:?} missing in {prices:?}"
        );
    }
    assert_eq!(
        result.report.request_ids.len(),
        result.report.operations.len()
    );
    if matches!(backend, Backend::Sqlite) {
        env.record_history(&env.sync_id(&product.id), "product_sync_new_product")
            .await;
    }

    let writes = env.writes().await;
    let again = env.sync(&product.id).await;
    assert_eq!(again.outcome, SyncOutcome::Unchanged);
    assert_eq!(
        env.writes().await,
        writes,
        "Stripe already matched: no write at all"
    );
    env.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_product_sqlite() {
    new_product_reaches_stripe_and_a_second_run_writes_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_product_postgres() {
    new_product_reaches_stripe_and_a_second_run_writes_nothing(Backend::Postgres).await;
}

async fn edits_prices_and_deletes(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut product = env.sample(2);
    product.prices = vec![CatalogPrice {
        currency: "usd".into(),
        unit_amount: 1000,
        ..Default::default()
    }];
    env.catalog.save_product(&product).await.unwrap();
    env.sync(&product.id).await;
    let first_price =
        env.sandbox.product(&product.id).await.unwrap()["default_price"]["id"].clone();

    // A name change is one product update; a version bump alone writes nothing.
    product.name = "Renamed".into();
    env.catalog.save_product(&product).await.unwrap();
    let r = env.sync(&product.id).await;
    assert_eq!(r.report.operations, vec!["update_product:name,metadata"]);
    assert_eq!(
        env.sandbox.product(&product.id).await.unwrap()["name"],
        "Renamed"
    );

    // An amount change: new price taking over the lookup key, default moved, old price archived.
    product.prices[0].unit_amount = 1250;
    env.catalog.save_product(&product).await.unwrap();
    let r = env.sync(&product.id).await;
    assert_eq!(r.outcome, SyncOutcome::Synced, "{r:?}");
    let stripe = env.sandbox.product(&product.id).await.unwrap();
    assert_eq!(stripe["default_price"]["unit_amount"], 1250);
    assert_ne!(stripe["default_price"]["id"], first_price);
    assert_eq!(
        stripe["default_price"]["lookup_key"],
        json!(format!("cs:{}:usd:one_time", product.id))
    );
    let prices = env.sandbox.prices(&product.id).await;
    assert_eq!(prices.len(), 2);
    assert_eq!(
        active_prices(&prices).len(),
        1,
        "the old price is archived: {prices:?}"
    );

    // Going back to an amount of an archived price still makes a new price: prices are immutable.
    // Soft delete archives the product and keeps its prices.
    env.catalog.soft_delete(&product.id).await.unwrap();
    let r = env.sync(&product.id).await;
    assert_eq!(r.outcome, SyncOutcome::Archived);
    assert_eq!(
        env.sandbox.product(&product.id).await.unwrap()["active"],
        json!(false)
    );
    // Restoring it brings it back.
    env.catalog.save_product(&product).await.unwrap();
    let r = env.sync(&product.id).await;
    assert_eq!(r.outcome, SyncOutcome::Synced);
    assert_eq!(
        env.sandbox.product(&product.id).await.unwrap()["active"],
        json!(true)
    );
    // A hard delete archives too.
    env.catalog.hard_delete(&product.id).await.unwrap();
    assert_eq!(env.sync(&product.id).await.outcome, SyncOutcome::Archived);
    env.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_prices_and_deletes_sqlite() {
    edits_prices_and_deletes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_prices_and_deletes_postgres() {
    edits_prices_and_deletes(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_products_are_reported_and_do_not_block_others() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let good = env.sample(3);
    let mut bad = env.sample(4);
    bad.name = String::new();
    bad.prices[0].currency = "doubloons".into();
    bad.images = vec!["ftp://nope".into()];
    env.catalog
        .save_products(&[good.clone(), bad.clone()])
        .await
        .unwrap();
    env.signal(&bad.id).await;
    env.signal(&good.id).await;
    let bad_result = env.result(&bad.id).await;
    assert_eq!(bad_result.outcome, SyncOutcome::Invalid);
    let fields: Vec<&str> = bad_result.issues.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(
        fields,
        vec!["name", "images[0]", "prices[0].currency"],
        "{:?}",
        bad_result.issues
    );
    assert_eq!(env.result(&good.id).await.outcome, SyncOutcome::Synced);
    assert!(env.sandbox.product(&bad.id).await.is_none());
    env.record_history(&env.sync_id(&bad.id), "product_sync_invalid")
        .await;
    env.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_catalog_sync_does_not_manage_are_left_alone() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let product = env.sample(5);
    env.sandbox
        .create_product(&format!("id={}&name=Someone+else%27s", product.id))
        .await;
    env.catalog.save_product(&product).await.unwrap();
    let r = env.sync(&product.id).await;
    assert_eq!(r.outcome, SyncOutcome::SkippedUnmanaged);
    assert_eq!(
        env.sandbox.product(&product.id).await.unwrap()["name"],
        "Someone else's"
    );
    env.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_signals_coalesces_into_few_passes() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let mut product = env.sample(6);
    env.catalog.save_product(&product).await.unwrap();
    env.sync(&product.id).await;
    let before = env.writes().await;
    for i in 0..30 {
        product.name = format!("Edit {i}");
        env.catalog.save_product(&product).await.unwrap();
    }
    // 30 change notifications at once, as a burst of webhooks or relayed changes would arrive.
    futures::future::join_all((0..30).map(|_| env.signal(&product.id))).await;
    let r = env.result(&product.id).await;
    env.record_history(&env.sync_id(&product.id), "product_sync_burst")
        .await;
    assert!(
        r.passes <= 3,
        "30 signals must coalesce, took {} passes",
        r.passes
    );
    assert_eq!(
        env.sandbox.product(&product.id).await.unwrap()["name"],
        "Edit 29"
    );
    let writes = env.writes().await - before;
    assert!(
        writes <= 2,
        "a burst of 30 edits caused {writes} Stripe writes"
    );
    env.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_during_a_sync_converge_to_the_last_edit() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let mut product = env.sample(7);
    env.catalog.save_product(&product).await.unwrap();
    for i in 0..15 {
        product.name = format!("Edit {i}");
        product.prices[0].unit_amount = 1000 + i;
        env.catalog.save_product(&product).await.unwrap();
        env.signal(&product.id).await;
    }
    env.result(&product.id).await;
    let stripe = env.sandbox.product(&product.id).await.unwrap();
    assert_eq!(stripe["name"], "Edit 14");
    assert_eq!(stripe["default_price"]["unit_amount"], 1014);
    let prices = env.sandbox.prices(&product.id).await;
    assert_eq!(
        active_prices(&prices).len(),
        product.prices.len(),
        "one active price per lookup key"
    );
    env.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_faults_are_retried_without_duplicates() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let products: Vec<CatalogProduct> = (10..16).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    // For five seconds, half the calls fail, some after taking effect (the client cannot know
    // they did); then Stripe recovers and the retries finish the job.
    env.sandbox
        .faults(
            json!({"seed": 3, "error_rate": 0.3, "drop_rate": 0.2, "drop_after_apply": true,
                       "latency_ms": 5, "jitter_ms": 20, "duration_seconds": 5}),
        )
        .await;
    for p in &products {
        env.signal(&p.id).await;
    }
    for p in &products {
        let r = env.result(&p.id).await;
        // A write whose response was lost is found already done by the retry, so the last
        // attempt may report "unchanged"; Stripe's state below is what counts.
        assert!(
            matches!(r.outcome, SyncOutcome::Synced | SyncOutcome::Unchanged),
            "{}: {r:?}",
            p.id
        );
    }
    env.sandbox.clear_faults().await;
    for p in &products {
        let prices = env.sandbox.prices(&p.id).await;
        assert_eq!(
            prices.len(),
            p.prices.len(),
            "{}: no duplicate prices: {prices:?}",
            p.id
        );
        let stripe = env.sandbox.product(&p.id).await.unwrap();
        assert_eq!(
            stripe["default_price"]["unit_amount"],
            json!(p.prices[0].unit_amount)
        );
    }
    env.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_in_no_workflow_history() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let product = env.sample(20);
    env.catalog.save_product(&product).await.unwrap();
    env.sync(&product.id).await;
    let handle = env
        .client
        .get_workflow_handle::<ProductSync>(env.sync_id(&product.id));
    let history = handle
        .fetch_history(Default::default())
        .to_json()
        .await
        .unwrap();
    let text = harness::decoded_text(&history);
    assert!(text.contains(&product.id), "the history was read");
    assert!(
        !text.contains(&env.sandbox.key),
        "the Stripe key leaked into history"
    );
    env.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_and_a_run_of_500s_are_waited_out() {
    let env = TestEnv::start(Backend::Sqlite).await;
    for (n, faults) in [
        (30, json!({"rate_limit_rate": 1.0, "duration_seconds": 3})),
        (
            31,
            json!({"error_rate": 1.0, "error_statuses": [500], "duration_seconds": 2}),
        ),
    ] {
        let product = env.sample(n);
        env.catalog.save_product(&product).await.unwrap();
        env.sandbox.faults(faults).await;
        let r = env.sync(&product.id).await;
        assert!(
            matches!(r.outcome, SyncOutcome::Synced | SyncOutcome::Unchanged),
            "{r:?}"
        );
        assert_eq!(
            env.sandbox.prices(&product.id).await.len(),
            product.prices.len(),
            "no duplicates"
        );
        assert!(env.sandbox.product(&product.id).await.is_some());
    }
    env.worker.stop().await;
}

/// The search attributes a person filters by in the Web UI: a failed sync, an invalid product and
/// a good one are each found by `SyncOutcome` and `CatalogProductId` (the test server has them
/// registered, as `starter setup` does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_invalid_syncs_are_found_by_search_attributes() {
    use futures::StreamExt;
    use temporalio_client::WorkflowListOptions;

    let env = TestEnv::start(Backend::Sqlite).await;
    let (good, mut invalid, refused) = (env.sample(1), env.sample(2), env.sample(3));
    invalid.name = String::new();
    env.catalog
        .save_products(&[good.clone(), invalid.clone(), refused.clone()])
        .await
        .unwrap();
    env.sandbox
        .faults(
            json!({"error_rate": 1.0, "error_statuses": [400], "endpoints": ["POST /v1/products"]}),
        )
        .await;
    let failed = env.sync(&refused.id).await;
    assert_eq!(failed.outcome, SyncOutcome::Failed, "{failed:?}");
    env.sandbox.clear_faults().await;
    assert_eq!(env.sync(&invalid.id).await.outcome, SyncOutcome::Invalid);
    assert_eq!(env.sync(&good.id).await.outcome, SyncOutcome::Synced);

    for (product, outcome) in [
        (&refused, "failed"),
        (&invalid, "invalid"),
        (&good, "synced"),
    ] {
        let query = format!(
            "SyncOutcome = '{outcome}' AND CatalogProductId = '{}'",
            product.id
        );
        let found = harness::eventually(Duration::from_secs(20), &query, || async {
            let ids: Vec<String> = env
                .client
                .list_workflows(query.as_str(), WorkflowListOptions::default())
                .filter_map(|w| async move { w.ok().map(|w| w.id().to_string()) })
                .collect()
                .await;
            (!ids.is_empty()).then_some(ids)
        })
        .await;
        assert_eq!(found, vec![env.sync_id(&product.id)]);
    }
    // One history event for all of them, in the run's last workflow task.
    let events: Vec<_> = env
        .client
        .get_workflow_handle::<temporalio_client::UntypedWorkflow>(env.sync_id(&good.id))
        .fetch_history(Default::default())
        .try_collect()
        .await
        .unwrap();
    let upserts = events
        .iter()
        .filter(|e| e.event_type == EventType::UpsertWorkflowSearchAttributes as i32)
        .count();
    assert_eq!(upserts, 1);
    assert!(events.len() <= 15, "a live sync is {} events", events.len());
}

/// Stripe shows exactly `p`: its name, one active price per catalog price (currency, amount,
/// period), the first one the default, no other active price.
async fn assert_stripe_shows(env: &TestEnv, p: &CatalogProduct, step: &str) {
    let stripe = env.sandbox.product(&p.id).await.expect("in Stripe");
    assert_eq!(stripe["name"], json!(p.name), "{step}: name");
    let prices = env.sandbox.prices(&p.id).await;
    let active = active_prices(&prices);
    assert_eq!(
        active.len(),
        p.prices.len(),
        "{step}: active prices {active:?}"
    );
    for c in &p.prices {
        assert!(
            active.iter().any(|s| s["currency"] == json!(c.currency)
                && s["unit_amount"] == json!(c.unit_amount)
                && s["recurring"]["interval"].as_str() == c.recurring_interval.as_deref()),
            "{step}: {c:?} not active in {active:?}"
        );
    }
    let default = &stripe["default_price"];
    assert_eq!(default["active"], json!(true), "{step}: default active");
    assert_eq!(
        (&default["currency"], &default["unit_amount"]),
        (
            &json!(p.prices[0].currency),
            &json!(p.prices[0].unit_amount)
        ),
        "{step}: default price"
    );
}

fn price(currency: &str, unit_amount: i64, interval: Option<&str>) -> CatalogPrice {
    CatalogPrice {
        currency: currency.into(),
        unit_amount,
        recurring_interval: interval.map(str::to_string),
        recurring_interval_count: interval.map(|_| 1),
        ..Default::default()
    }
}

/// The edits shops make and undo: a sale and its end (A→B→A), a sale in two steps (A→B→C→A), a
/// currency added and removed, a one-time price turned into a subscription and back, a rename
/// undone; each state synced before the next edit, and Stripe showing each state exactly.
async fn edits_that_go_back_to_an_earlier_state_reach_stripe(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let base = CatalogProduct {
        prices: vec![price("usd", 2500, None)],
        ..env.sample(1)
    };
    let with_prices = |prices: Vec<CatalogPrice>| CatalogProduct {
        prices,
        ..base.clone()
    };
    let renamed = CatalogProduct {
        name: format!("{} (sale)", base.name),
        ..base.clone()
    };
    let sequence = vec![
        ("A", base.clone()),
        ("amount B", with_prices(vec![price("usd", 1999, None)])),
        ("back to A", base.clone()),
        ("amount B", with_prices(vec![price("usd", 1999, None)])),
        ("amount C", with_prices(vec![price("usd", 1499, None)])),
        ("back to A again", base.clone()),
        (
            "eur added",
            with_prices(vec![price("usd", 2500, None), price("eur", 2300, None)]),
        ),
        ("eur removed", base.clone()),
        (
            "monthly",
            with_prices(vec![price("usd", 2500, Some("month"))]),
        ),
        ("one-time again", base.clone()),
        ("renamed", renamed),
        ("name back", base.clone()),
    ];
    for (step, state) in &sequence {
        env.catalog.save_product(state).await.unwrap();
        let result = env.sync(&state.id).await;
        assert!(
            matches!(result.outcome, SyncOutcome::Synced),
            "{step}: {result:?}"
        );
        assert_stripe_shows(&env, state, step).await;
    }
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 1);
    env.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_that_go_back_reach_stripe_sqlite() {
    edits_that_go_back_to_an_earlier_state_reach_stripe(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_that_go_back_reach_stripe_postgres() {
    edits_that_go_back_to_an_earlier_state_reach_stripe(Backend::Postgres).await;
}

/// The longest id validation accepts (100 characters) syncs: its idempotency keys and lookup keys
/// stay within Stripe's limits. One character more is invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_valid_id_syncs_and_one_more_character_is_invalid() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let prefix = env.id(1);
    let longest = format!("{prefix}{}", "x".repeat(100 - prefix.len()));
    assert_eq!(longest.len(), domain::limits::MAX_ID);
    let product = CatalogProduct {
        id: longest.clone(),
        prices: vec![price("usd", 2500, Some("month")), price("eur", 2300, None)],
        ..env.sample(1)
    };
    env.catalog.save_product(&product).await.unwrap();
    let result = env.sync(&longest).await;
    assert_eq!(result.outcome, SyncOutcome::Synced, "{result:?}");
    assert_stripe_shows(&env, &product, "100 characters").await;
    let edited = CatalogProduct {
        prices: vec![price("usd", 2000, Some("month"))],
        ..product.clone()
    };
    env.catalog.save_product(&edited).await.unwrap();
    assert_eq!(env.sync(&longest).await.outcome, SyncOutcome::Synced);
    assert_stripe_shows(&env, &edited, "edited").await;

    let too_long = format!("{longest}y");
    env.catalog
        .save_product(&CatalogProduct {
            id: too_long.clone(),
            ..product
        })
        .await
        .unwrap();
    let result = env.sync(&too_long).await;
    assert_eq!(result.outcome, SyncOutcome::Invalid, "{result:?}");
    assert_eq!(result.issues[0].field, "id");
    assert!(env.sandbox.product(&too_long).await.is_none());
    env.worker.stop().await;
}

/// `temporal workflow start` without `--input` (zero payloads): both workflow types fail at once
/// with `InvalidWorkflowInput` and a reason naming the fix, instead of staying Running with a
/// workflow task that fails forever. So does a reconciliation whose input is out of range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_started_without_input_fail_within_seconds() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let address = harness::temporal_address();
    let cases = [
        ("ProductSync", None, "started without an input"),
        ("ReconcileCatalog", None, "started without an input"),
        (
            "ReconcileCatalog",
            Some(r#"{"page_size": 100000}"#),
            "`page_size` must be at most 100",
        ),
        (
            "ReconcileCatalog",
            Some(r#"{"max_in_flight": 100000}"#),
            "`max_in_flight` must be at most 500",
        ),
    ];
    for (kind, input, reason) in cases {
        let id = harness::unique("no-input");
        let id_for_record = id.clone();
        let task_queue = env.worker.task_queue.clone();
        let address = address.clone();
        let started = std::time::Instant::now();
        let output = tokio::task::spawn_blocking(move || {
            let cli = |args: &[&str]| {
                std::process::Command::new(harness::temporal_cli())
                    .args(args)
                    .args(["--address", &address])
                    .output()
                    .unwrap()
            };
            let mut start = vec![
                "workflow",
                "start",
                "--type",
                kind,
                "--task-queue",
                &task_queue,
                "--workflow-id",
                &id,
            ];
            if let Some(input) = input {
                start.extend(["--input", input]);
            }
            let out = cli(&start);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = cli(&["workflow", "result", "--workflow-id", &id]);
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .await
        .unwrap();
        assert!(output.contains(reason), "{kind} {input:?}: {output}");
        if kind == "ProductSync" {
            env.record_history(&id_for_record, "product_sync_no_input")
                .await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{kind} {input:?} took {:?}",
            started.elapsed()
        );
    }
}

/// An active price made by hand on a managed product (not one of the catalog's) is archived by the
/// next sync, so sync and `verify` agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_active_price_made_by_hand_is_archived_by_the_next_sync() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let product = env.sample(1);
    env.catalog.save_product(&product).await.unwrap();
    assert_eq!(env.sync(&product.id).await.outcome, SyncOutcome::Synced);
    let (status, extra) = env
        .sandbox
        .api_post(
            "/v1/prices",
            &format!("product={}&currency=usd&unit_amount=1", product.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{extra}");
    let result = env.sync(&product.id).await;
    assert_eq!(result.outcome, SyncOutcome::Synced, "{result:?}");
    let extra_id = extra["id"].as_str().unwrap();
    assert!(
        result
            .report
            .operations
            .contains(&format!("archive_price:{extra_id}")),
        "{result:?}"
    );
    assert_stripe_shows(&env, &product, "extra archived").await;
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 1);
}
