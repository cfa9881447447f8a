//! Replay of committed ProductSync and ReconcileCatalog histories: the workflow code must stay able to continue every
//! history a deployed version wrote. A change that breaks this needs a patch (`ctx.patched`).
//!
//! Histories in `tests/histories/` were recorded from real runs with
//! `CATALOG_SYNC_RECORD_HISTORIES=1 cargo test --workspace --test integration -- end_to_end::product_synctest integration -- end_to_end::reconcile`.

use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::{ProductSync, ReconcileCatalog};

#[tokio::test]
async fn committed_histories_replay() {
    let dir = harness::workspace_root().join("tests/histories");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no histories in {}", dir.display());
    for file in files {
        let replayer = WorkflowReplayer::new(
            WorkflowReplayerOptions::new()
                .register_workflow::<ProductSync>()
                .unwrap()
                .register_workflow::<ReconcileCatalog>()
                .unwrap()
                .build(),
        )
        .unwrap();
        let history = WorkflowHistory::from_json(&std::fs::read(&file).unwrap()).unwrap();
        replayer
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("{} no longer replays: {e}", file.display()));
    }
}
