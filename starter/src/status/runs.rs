//! What `status` asks Temporal about runs: syncs whose activity keeps failing, the running syncs
//! of the queue and those of another catalog on it, syncs that ended without an outcome, and the
//! last reconciliation.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions,
    WorkflowListOptions, WorkflowQueryOptions,
};
use workflows::{ReconcileCatalog, ReconcileResult};

/// Running syncs (at most this many, the newest) looked at for retrying activities.
pub(super) const SYNCS_INSPECTED: usize = 100;

/// Running syncs on `task_queue` whose activity has failed at least `min_attempts` attempts in
/// a row, the highest attempt first: the workflow id, the activity, its attempt and last failure.
pub(super) async fn retrying_syncs(
    client: &Client,
    ids: Vec<String>,
    min_attempts: i32,
) -> Vec<Value> {
    let mut retrying: Vec<Value> = futures::stream::iter(ids)
        .map(|id| async move {
            let handle = client.get_workflow_handle::<workflows::ProductSync>(id.as_str());
            let description = handle
                .describe(WorkflowDescribeOptions::default())
                .await
                .ok()?;
            let stuck = description
                .raw_description
                .pending_activities
                .iter()
                .filter(|a| a.attempt >= min_attempts)
                .max_by_key(|a| a.attempt)?;
            Some(json!({
                "workflow_id": id,
                "activity": stuck.activity_type.as_ref().map(|t| t.name.clone()),
                "attempt": stuck.attempt,
                "last_failure": stuck.last_failure.as_ref().map(|f| f.message.clone()),
            }))
        })
        .buffer_unordered(8)
        .filter_map(|found| async move { found })
        .collect()
        .await;
    retrying.sort_by_key(|r| std::cmp::Reverse(r["attempt"].as_i64()));
    retrying
}

/// The workflow ids of the first [`SYNCS_INSPECTED`] running syncs on `task_queue`.
pub(super) async fn running_syncs(
    client: &Client,
    task_queue: &str,
) -> anyhow::Result<Vec<String>> {
    let query = format!(
        "WorkflowType = 'ProductSync' AND ExecutionStatus = 'Running' AND TaskQueue = '{}'",
        task_queue.replace('\'', "")
    );
    let mut ids = Vec::new();
    let mut runs = client.list_workflows(
        query.as_str(),
        WorkflowListOptions::builder()
            .limit(SYNCS_INSPECTED)
            .build(),
    );
    while let Some(run) = runs.next().await {
        ids.push(run.context("listing running syncs")?.id().to_string());
    }
    Ok(ids)
}

/// Of the running syncs `ids` on `task_queue`, those of other catalogs than `identity`, as the
/// problem `status` reports.
pub(super) fn foreign_syncs(ids: &[String], identity: &str, task_queue: &str) -> Option<String> {
    let mut foreign: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for id in ids {
        if let Some(workflows::SyncId {
            catalog: Some(other),
            ..
        }) = workflows::SyncId::parse(id)
            && other != identity
        {
            foreign.entry(other).or_default().push(id);
        }
    }
    (!foreign.is_empty()).then(|| {
        let catalogs: Vec<String> = foreign
            .iter()
            .map(|(catalog, ids)| format!("{} of catalog {catalog} (e.g. {})", ids.len(), ids[0]))
            .collect();
        format!(
            "syncs of other catalogs run on this catalog's task queue {task_queue}: {}. Two \
             catalogs' workers poll one queue and each hands the other's syncs back, so they wait; \
             give each catalog its own CATALOG_SYNC_TASK_QUEUE (docs/several-catalogs.md)",
            catalogs.join(", ")
        )
    })
}

/// How far back `status` looks for syncs that ended without an outcome.
pub(super) const ENDED_WITHIN: Duration = Duration::from_secs(24 * 3600);

/// Products on `task_queue` whose latest sync run, closed within [`ENDED_WITHIN`], was
/// terminated, timed out or failed as a workflow (a product's refusal by Stripe is an outcome,
/// `failed`, not this): their workflow id, status and close time.
pub(super) async fn ended_without_outcome(
    client: &Client,
    task_queue: &str,
) -> anyhow::Result<Vec<Value>> {
    let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now() - ENDED_WITHIN);
    let query = format!(
        "WorkflowType = 'ProductSync' AND TaskQueue = '{}' AND ExecutionStatus IN \
         ('Terminated', 'TimedOut', 'Failed') AND CloseTime > '{since}'",
        task_queue.replace('\'', "")
    );
    let runs: Vec<(String, String, String, Option<String>)> = client
        .list_workflows(
            query.as_str(),
            WorkflowListOptions::builder()
                .limit(SYNCS_INSPECTED)
                .build(),
        )
        .filter_map(|run| async move {
            // A product's runs only (a run started by hand under another id names no product).
            let run = run
                .ok()
                .filter(|r| workflows::SyncId::parse(r.id()).is_some())?;
            Some((
                run.id().to_string(),
                run.run_id().to_string(),
                format!("{:?}", run.status()),
                run.close_time()
                    .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            ))
        })
        .collect()
        .await;
    // Only where that run is still the product's latest: a later sync has put things right.
    let mut ended: Vec<Value> = futures::stream::iter(runs)
        .map(|(id, run_id, status, closed)| async move {
            let latest = client
                .get_workflow_handle::<workflows::ProductSync>(id.as_str())
                .describe(WorkflowDescribeOptions::default())
                .await
                .ok()?;
            let latest_run = latest
                .raw_description
                .workflow_execution_info
                .as_ref()
                .and_then(|i| i.execution.as_ref())
                .map(|e| e.run_id.clone());
            (latest_run.as_deref() == Some(run_id.as_str()))
                .then(|| json!({"workflow_id": id, "status": status, "closed": closed}))
        })
        .buffer_unordered(8)
        .filter_map(|found| async move { found })
        .collect()
        .await;
    ended.sort_by(|a, b| a["workflow_id"].as_str().cmp(&b["workflow_id"].as_str()));
    ended.dedup_by(|a, b| a["workflow_id"] == b["workflow_id"]);
    Ok(ended)
}

/// A running reconciliation's activity failing this many attempts in a row is reported as
/// stalled (status is unhealthy): retries that never succeed hold the whole run.
pub(super) const STALLED_AFTER_ATTEMPTS: i32 = 5;

/// The newest `ReconcileCatalog` run on `task_queue`: its result if it finished, its progress
/// (and whether it is stalled) if it runs.
pub(super) async fn last_reconciliation(
    client: &Client,
    task_queue: &str,
) -> anyhow::Result<Value> {
    let query = format!(
        "WorkflowType = 'ReconcileCatalog' AND TaskQueue = '{}'",
        task_queue.replace('\'', "")
    );
    let mut runs = client.list_workflows(
        query.as_str(),
        WorkflowListOptions::builder().limit(1).build(),
    );
    let Some(run) = runs.next().await else {
        return Ok(Value::Null);
    };
    let run = run.context("listing reconciliations")?;
    let started = run.start_time().map(humantime::format_rfc3339_seconds);
    let handle = client.get_workflow_handle::<ReconcileCatalog>(run.id().to_string());
    let mut summary = json!({
        "workflow_id": run.id(),
        "status": format!("{:?}", run.status()),
        "started": started.map(|t| t.to_string()),
    });
    match run.status() {
        WorkflowExecutionStatus::Completed | WorkflowExecutionStatus::ContinuedAsNew => {
            // A continued run's chain ends in a newer run; the handle follows it.
            if let Ok(result) = tokio::time::timeout(
                Duration::from_secs(5),
                handle.get_result(WorkflowGetResultOptions::default()),
            )
            .await
            {
                let result: ReconcileResult = result?;
                summary["result"] = serde_json::to_value(&result)?;
            }
        }
        WorkflowExecutionStatus::Running => {
            // An activity failing attempt after attempt holds the whole run: say which and why.
            if let Ok(description) = handle.describe(WorkflowDescribeOptions::default()).await
                && let Some(stuck) = description
                    .raw_description
                    .pending_activities
                    .iter()
                    .filter(|a| a.attempt >= STALLED_AFTER_ATTEMPTS)
                    .max_by_key(|a| a.attempt)
            {
                summary["stalled"] = json!(format!(
                    "{} at attempt {}: {}",
                    stuck
                        .activity_type
                        .as_ref()
                        .map_or("an activity", |t| t.name.as_str()),
                    stuck.attempt,
                    stuck
                        .last_failure
                        .as_ref()
                        .map_or("no failure recorded", |f| f.message.as_str())
                ));
            }
            if let Ok(progress) = handle
                .query(
                    ReconcileCatalog::progress,
                    (),
                    WorkflowQueryOptions::default(),
                )
                .await
            {
                summary["progress"] = serde_json::to_value(&progress)?;
            }
        }
        _ => {}
    }
    if let Some(close) = run.close_time() {
        summary["closed"] = json!(humantime::format_rfc3339_seconds(close).to_string());
    }
    Ok(summary)
}
