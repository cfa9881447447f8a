//! The `worker` binary's logs as a log pipeline reads them: with `CATALOG_SYNC_LOG_FORMAT=json`
//! every line is one JSON object, and a Stripe write carries the fields of its activity's span
//! (kind, workflow id, run id, product) beside its own (operation, Stripe request id). In the
//! default text format, written to a file, no colour codes.

use std::process::Stdio;
use std::time::Duration;

use harness::{
    Backend, Running, Sandbox, eventually, fresh_catalog, temporal_client, unique, worker_command,
};
use serde_json::Value;
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::{ProductChanged, ProductSync, ProductSyncInput, SyncOutcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_activity_span_and_text_logs_have_no_colour_in_files() {
    let sandbox = Sandbox::start().await;
    let (catalog_url, catalog) = fresh_catalog(Backend::Sqlite).await;
    let product = workflows::model::CatalogProduct {
        id: unique("log"),
        ..catalog::seed::sample_product(1, 7)
    };
    catalog
        .save_products(std::slice::from_ref(&product))
        .await
        .unwrap();
    let identity = catalog.identity().await.unwrap();
    let sync_id = workflows::product_sync_id(&identity, &product.id);
    let dir = std::env::temp_dir().join(unique("catalog-sync-logs"));
    std::fs::create_dir_all(&dir).unwrap();

    // JSON: a sync through the binary.
    let task_queue = unique("logs");
    let json_log = dir.join("worker.json.log");
    let worker = Running(
        worker_command(&catalog_url, &sandbox, &task_queue)
            .env("CATALOG_SYNC_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&json_log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = temporal_client().await;
    client
        .signal_with_start_workflow(
            ProductSync::run,
            ProductSyncInput {
                catalog_id: product.id.clone(),
                ..ProductSyncInput::default()
            },
            ProductSync::product_changed,
            ProductChanged {
                catalog_version: None,
                source: "test".into(),
            },
            WorkflowStartOptions::new(task_queue.as_str(), sync_id.as_str()).build(),
        )
        .await
        .unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        client
            .get_workflow_handle::<ProductSync>(sync_id.as_str())
            .get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the sync finished in time")
    .unwrap();
    assert_eq!(result.outcome, SyncOutcome::Synced);

    let write = eventually(Duration::from_secs(10), "a `stripe write` line", || async {
        let text = std::fs::read_to_string(&json_log).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        assert!(
            lines.iter().any(|l| l["message"] == "worker started"),
            "{text}"
        );
        lines.into_iter().find(|l| l["message"] == "stripe write")
    })
    .await;
    drop(worker);
    let span = &write["span"];
    assert_eq!(span["name"], "activity", "{write:#}");
    assert_eq!(span["kind"], "UpsertProduct", "{write:#}");
    assert_eq!(span["product"], product.id.as_str(), "{write:#}");
    assert_eq!(span["workflow_id"], sync_id.as_str(), "{write:#}");
    assert!(
        span["run_id"].as_str().is_some_and(|r| r.len() > 8),
        "{write:#}"
    );
    assert_eq!(write["level"], "INFO");
    assert!(
        write["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_")),
        "the Stripe request id: {write:#}"
    );
    assert!(write["op"].is_string(), "{write:#}");

    // Text, to a file: readable, and no terminal colour codes.
    let text_log = dir.join("worker.text.log");
    let worker = Running(
        worker_command(&catalog_url, &sandbox, &unique("logs"))
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&text_log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let text = eventually(Duration::from_secs(30), "the worker started", || async {
        let text = std::fs::read_to_string(&text_log).unwrap();
        text.contains("worker started").then_some(text)
    })
    .await;
    drop(worker);
    assert!(!text.contains('\u{1b}'), "colour codes in a file: {text:?}");
    assert!(!text.trim_start().starts_with('{'), "{text}");
}
