//! The Temporal Web UI, in a real (headless) browser: filtering workflows by
//! `SyncOutcome = "failed"` finds the product whose sync failed, and only it. With
//! `CATALOG_SYNC_SCREENSHOT=docs/webui-failed-syncs.png` the test also saves the page as the
//! README's screenshot.

use std::time::Duration;

use futures::StreamExt;
use harness::{Backend, TestEnv, eventually, headless_chromium, temporal_ui_address};
use serde_json::json;
use temporalio_client::WorkflowListOptions;
use workflows::SyncOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_lists_failed_syncs_by_search_attribute() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let (refused, fine) = (env.sample(1), env.sample(2));
    env.catalog
        .save_products(&[refused.clone(), fine.clone()])
        .await
        .unwrap();
    env.sandbox
        .faults(
            json!({"error_rate": 1.0, "error_statuses": [400], "endpoints": ["POST /v1/products"]}),
        )
        .await;
    assert_eq!(env.sync(&refused.id).await.outcome, SyncOutcome::Failed);
    env.sandbox.clear_faults().await;
    assert_eq!(env.sync(&fine.id).await.outcome, SyncOutcome::Synced);
    let query = format!(
        "SyncOutcome = 'failed' AND CatalogProductId = '{}'",
        refused.id
    );
    eventually(
        Duration::from_secs(20),
        "the failed sync in visibility",
        || async {
            let found = env
                .client
                .list_workflows(query.as_str(), WorkflowListOptions::default())
                .next()
                .await;
            found.is_some().then_some(())
        },
    )
    .await;

    // The README's CLI form of the same filter lists it too.
    let listed = std::process::Command::new(harness::temporal_cli())
        .args(["workflow", "list", "--query", r#"SyncOutcome = "failed""#])
        .args([
            "--address",
            &harness::temporal_address(),
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let failed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{failed}");
    assert!(failed.contains(&env.sync_id(&refused.id)), "{failed}");

    // What an operator types into the Web UI's search box, narrowed to this test's task queue:
    // other tests share the server, and their failed syncs must not push this one off the page.
    let filter = format!(
        "SyncOutcome=\"failed\" AND TaskQueue=\"{}\"",
        env.worker.task_queue
    );
    let url = format!(
        "http://{}/namespaces/default/workflows?query={}",
        temporal_ui_address(),
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    );
    let failed_id = env.sync_id(&refused.id);
    let dom = eventually(
        Duration::from_secs(60),
        "the Web UI lists the failed sync",
        || async {
            let dom = tokio::task::block_in_place(|| headless_chromium(&url, &["--dump-dom"]));
            dom.contains(&failed_id).then_some(dom)
        },
    )
    .await;
    assert!(
        !dom.contains(&env.sync_id(&fine.id)),
        "the filter shows only failed syncs"
    );
    if let Ok(path) = std::env::var("CATALOG_SYNC_SCREENSHOT") {
        let target = harness::workspace_root().join(path);
        let arg = format!("--screenshot={}", target.display());
        tokio::task::block_in_place(|| headless_chromium(&url, &[&arg]));
        assert!(target.exists());
    }
}
