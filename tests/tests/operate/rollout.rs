//! Worker Deployment Versioning: the rollout runbook (docs/deploying.md, "Versioned rollout"), end to end,
//! with two builds of the worker on one task queue while syncs and a reconciliation run.
//!
//! v1 is catalog-sync's worker. v2 is the same worker with a changed `ProductSync` that replay
//! could not accept: it schedules an activity v1 never did (a regular `FetchProduct` before the
//! pass), so a v1 history run on v2 code would fail its workflow task with a nondeterminism error.
//! The runbook: v1 current; syncs and a reconciliation in flight on v1 (Stripe slowed down); v2
//! started beside v1; v2 ramping at 50 %; v2 current; v1 drained; rolled back to v1. Checked:
//! runs that started on v1 finish on v1, new ones run on v2, the reconciliation moves to v2 at its
//! next continue-as-new, no workflow task fails anywhere, and `verify` finds 0 differences.

use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};
use harness::temporal::{RestartableTemporal, temporal_cli};
use harness::{Backend, RunningWorker, TestEnv, assert_verify_clean, eventually, unique};
use serde_json::json;
use temporalio_client::tonic;
use temporalio_client::{Client, NamespacedClient, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::error::ActivityExecutionError;
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::enums::v1::{
    TaskQueueType, VersioningBehavior, WorkflowTaskFailedCause,
};
use temporalio_common::protos::temporal::api::history::v1::{HistoryEvent, history_event};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, GetWorkflowExecutionHistoryRequest,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowResult};
use worker::deployment::Deployment;
use workflows::activities::{
    FetchInput, SyncActivities, TransformInput, TransformOutput, UpsertInput,
};
use workflows::input::LenientInput;
use workflows::model::SyncPlan;
use workflows::retry::RetryConfig;
use workflows::{
    ProductChanged, ProductSyncInput, ProductSyncResult, ReconcileCatalog, ReconcileInput,
    ReconcileResult, SyncOutcome, queues,
};

/// v2's `ProductSync`: the same pass as v1 (fetch, transform, upsert on the Stripe queue), after an
/// activity v1 never scheduled.
#[workflow]
#[derive(Default)]
struct ProductSyncV2 {
    retry: RetryConfig,
    pending: u32,
}

#[workflow_methods]
impl ProductSyncV2 {
    #[run(name = "ProductSync")]
    async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: ProductSyncInput,
    ) -> WorkflowResult<ProductSyncResult> {
        let retry = ctx.state(|s| s.retry.clone());
        let catalog_id = input.catalog_id.clone();
        // The incompatible change: a regular activity first.
        ctx.execute_activity(
            SyncActivities::fetch_product,
            FetchInput {
                catalog_id: catalog_id.clone(),
            },
            retry.upsert_options(),
        )
        .await?;
        loop {
            ctx.state_mut(|s| s.pending = 0);
            let fetched = ctx
                .execute_local_activity(
                    SyncActivities::fetch_product,
                    FetchInput {
                        catalog_id: catalog_id.clone(),
                    },
                    retry.fetch_options(),
                )
                .await?;
            let transformed = ctx
                .execute_local_activity(
                    SyncActivities::transform_product,
                    TransformInput {
                        catalog_id: catalog_id.clone(),
                        product: fetched.product,
                    },
                    retry.transform_options(),
                )
                .await?;
            let TransformOutput::Plan(plan) = transformed else {
                panic!("{catalog_id}: the test's products are valid");
            };
            let archiving = matches!(*plan, SyncPlan::Archive { .. });
            let report = match ctx
                .execute_activity(
                    SyncActivities::upsert_product,
                    UpsertInput {
                        plan: *plan,
                        archive_approved: input.archive_approved,
                    },
                    queues::on_stripe_queue(
                        retry.upsert_options(),
                        ctx.task_queue(),
                        queues::LIVE_PRIORITY,
                    ),
                )
                .await
            {
                Ok(report) => report,
                Err(ActivityExecutionError::Failed(f)) => panic!("{catalog_id}: {f}"),
                Err(other) => return Err(other.into()),
            };
            if ctx.state(|s| s.pending) == 0 {
                return Ok(ProductSyncResult {
                    outcome: report.outcome(archiving),
                    catalog_id,
                    report,
                    ..Default::default()
                });
            }
        }
    }

    #[signal(name = "product_changed")]
    fn product_changed(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _change: ProductChanged) {
        self.pending += 1;
    }
}

/// v2's workflows: the changed `ProductSync` and the unchanged `ReconcileCatalog`.
fn register_v2(options: &mut WorkerOptions, settings: &worker::Settings) -> anyhow::Result<()> {
    let retry = &settings.retry;
    let product_sync = retry.clone();
    options.register_workflow_with_factory::<ProductSyncV2, _>(move || ProductSyncV2 {
        retry: product_sync.clone(),
        pending: 0,
    })?;
    let reconcile = retry.clone();
    options.register_workflow_with_factory::<ReconcileCatalog, _>(move || {
        ReconcileCatalog::with_retry(reconcile.clone()).on_versioned_workers(true)
    })?;
    Ok(())
}

/// A routing change: a build made current, or ramping at a percentage.
#[derive(Clone, Copy)]
enum Route<'a> {
    Current(&'a str),
    Ramping(&'a str, u8),
}

/// A routing change with the `temporal` CLI, retried while the server does not know the version
/// yet (it registers a version once its workers have polled), then waited on until both of the
/// deployment's task queues route by it (as the runbook does). The test's server has one
/// partition per queue, so the queue's view is every partition's.
async fn route(client: &Client, address: &str, deployment: &str, task_queue: &str, to: Route<'_>) {
    let percentage;
    let args: Vec<&str> = match to {
        Route::Current(build) => vec![
            "set-current-version",
            "--deployment-name",
            deployment,
            "--build-id",
            build,
        ],
        Route::Ramping(build, percent) => {
            percentage = percent.to_string();
            vec![
                "set-ramping-version",
                "--deployment-name",
                deployment,
                "--build-id",
                build,
                "--percentage",
                &percentage,
            ]
        }
    };
    deployment_command(address, &args).await;
    let stripe_queue = queues::stripe_task_queue(task_queue);
    let queues = [
        (task_queue, TaskQueueType::Workflow),
        (stripe_queue.as_str(), TaskQueueType::Activity),
    ];
    let what = format!("{} reached both task queues", args.join(" "));
    eventually(Duration::from_secs(120), &what, || async {
        for (queue, kind) in queues {
            let routing = worker::deployment::queue_routing(client, queue, kind)
                .await
                .unwrap();
            let routed = match to {
                Route::Current(build) => {
                    routing.current.as_deref() == Some(build) && routing.ramping.is_none()
                }
                Route::Ramping(build, percent) => routing
                    .ramping
                    .as_ref()
                    .is_some_and(|(b, p)| b == build && *p == f32::from(percent)),
            };
            if !routed {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// `temporal worker deployment …`, retried while the server does not know the version yet.
async fn deployment_command(address: &str, args: &[&str]) {
    let what = args.join(" ");
    eventually(Duration::from_secs(60), &what, || async {
        let out = tokio::process::Command::new(temporal_cli())
            .args(["worker", "deployment"])
            .args(args)
            .args(["--address", address, "--yes"])
            .output()
            .await
            .unwrap();
        if out.status.success() {
            Some(())
        } else {
            eprintln!("{what}: {}", String::from_utf8_lossy(&out.stderr));
            tokio::time::sleep(Duration::from_millis(500)).await;
            None
        }
    })
    .await;
}

/// The build a run is pinned to, and its versioning behaviour.
async fn pinned_build(client: &Client, workflow_id: &str, run_id: &str) -> (String, i32) {
    let response = client
        .connection()
        .workflow_service()
        .describe_workflow_execution(tonic::Request::new(DescribeWorkflowExecutionRequest {
            namespace: client.namespace(),
            execution: Some(WorkflowExecution {
                workflow_id: workflow_id.to_string(),
                run_id: run_id.to_string(),
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    let info = response
        .workflow_execution_info
        .and_then(|i| i.versioning_info)
        .unwrap_or_else(|| panic!("{workflow_id} {run_id} has no versioning info"));
    let build = info
        .deployment_version
        .map(|v| v.build_id)
        .unwrap_or_default();
    (build, info.behavior)
}

/// One run's whole history.
async fn history(client: &Client, workflow_id: &str, run_id: &str) -> Vec<HistoryEvent> {
    let mut events = Vec::new();
    let mut token = Vec::new();
    loop {
        let page = client
            .connection()
            .workflow_service()
            .get_workflow_execution_history(tonic::Request::new(
                GetWorkflowExecutionHistoryRequest {
                    namespace: client.namespace(),
                    execution: Some(WorkflowExecution {
                        workflow_id: workflow_id.to_string(),
                        run_id: run_id.to_string(),
                    }),
                    next_page_token: token,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        events.extend(page.history.map(|h| h.events).unwrap_or_default());
        if page.next_page_token.is_empty() {
            return events;
        }
        token = page.next_page_token;
    }
}

/// Whether the run scheduled v2's added activity (a regular `FetchProduct`).
fn ran_v2_code(events: &[HistoryEvent]) -> bool {
    events.iter().any(|e| match &e.attributes {
        Some(history_event::Attributes::ActivityTaskScheduledEventAttributes(a)) => a
            .activity_type
            .as_ref()
            .is_some_and(|t| t.name == "FetchProduct"),
        _ => false,
    })
}

/// One run of a workflow on the task queue (continue-as-new runs are runs of their own).
struct Run {
    workflow_id: String,
    run_id: String,
    parent: Option<(String, String)>,
    started: SystemTime,
}

/// Every run of every workflow on the task queue.
async fn runs(client: &Client, task_queue: &str) -> Vec<Run> {
    client
        .list_workflows(format!("TaskQueue = '{task_queue}'"), Default::default())
        .map(|w| {
            w.map(|w| Run {
                workflow_id: w.id().to_string(),
                run_id: w.run_id().to_string(),
                parent: w
                    .parent_id()
                    .zip(w.parent_run_id())
                    .map(|(id, run)| (id.to_string(), run.to_string())),
                started: w.start_time().expect("a start time"),
            })
        })
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_rollout_and_its_rollback_keep_every_run_on_the_code_it_started_with() {
    let deployment = unique("catalog-sync");
    let version = |build: &str| Deployment::from_settings(Some(&deployment), Some(build)).unwrap();
    let v1 = version("v1");
    // A server of the test's own, one partition per task queue: routing changes propagate
    // through every queue of the server (on the shared one, under the whole suite's load, that
    // took minutes), and with one partition the queue's own view is the whole of it.
    let temporal = RestartableTemporal::start_new_with(&[
        "matching.numTaskqueueReadPartitions=1",
        "matching.numTaskqueueWritePartitions=1",
    ]);
    let address = temporal.address();
    let env = TestEnv::start_on(&address, Backend::Sqlite, |s| s.deployment = v1).await;
    let task_queue = env.worker.task_queue.clone();
    let n = 24;
    let products: Vec<_> = (1..=n).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();
    route(
        &env.client,
        &address,
        &deployment,
        &task_queue,
        Route::Current("v1"),
    )
    .await;

    // In flight on v1: Stripe writes take a second, four live syncs, and a reconciliation of
    // every product in pages of two, one page a run.
    env.sandbox
        .faults(json!({"latency_ms": 1000, "endpoints": ["POST /v1/products"]}))
        .await;
    for i in 1..=4 {
        env.signal(&env.id(i)).await;
    }
    let reconcile_id = unique("reconcile-rollout");
    env.client
        .start_workflow(
            ReconcileCatalog::run,
            ReconcileInput::from_json(
                json!({"page_size": 2, "pages_per_run": 1, "max_in_flight": 2}),
            ),
            WorkflowStartOptions::new(task_queue.as_str(), &reconcile_id).build(),
        )
        .await
        .unwrap();

    // v2 beside v1, ramping, then current.
    let v2_started = SystemTime::now();
    let v2_worker = RunningWorker::start_build(
        &address,
        &env.catalog_url,
        &env.sandbox,
        |s| {
            s.task_queue = task_queue.clone();
            s.deployment = version("v2");
        },
        register_v2,
    )
    .await;
    route(
        &env.client,
        &address,
        &deployment,
        &task_queue,
        Route::Ramping("v2", 50),
    )
    .await;
    for i in 5..=8 {
        env.signal(&env.id(i)).await;
    }
    route(
        &env.client,
        &address,
        &deployment,
        &task_queue,
        Route::Current("v2"),
    )
    .await;
    let v2_current = SystemTime::now();
    for i in 9..=12 {
        env.signal(&env.id(i)).await;
    }

    // Drained: v1's pinned runs finish while v2 takes the new work and the reconciliation.
    let v1_running = format!(
        "TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running' AND TemporalWorkerDeploymentVersion = '{deployment}:v1'"
    );
    eventually(Duration::from_secs(120), "v1 drained", || async {
        let count = env
            .client
            .count_workflows(v1_running.clone(), Default::default())
            .await
            .unwrap()
            .count();
        (count == 0).then_some(())
    })
    .await;
    let result: ReconcileResult = tokio::time::timeout(
        Duration::from_secs(180),
        env.client
            .get_workflow_handle::<ReconcileCatalog>(&reconcile_id)
            .get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the reconciliation finished")
    .unwrap();
    assert_eq!(result.totals.failed, 0, "{result:#?}");

    // Rolled back: v1 current again; new syncs run on v1 while v2's runs finish on v2.
    route(
        &env.client,
        &address,
        &deployment,
        &task_queue,
        Route::Current("v1"),
    )
    .await;
    let rolled_back = SystemTime::now();
    env.sandbox.clear_faults().await;
    for i in 13..=16 {
        env.signal(&env.id(i)).await;
    }
    env.assert_all_finished_none_failed(Duration::from_secs(120))
        .await;
    v2_worker.stop().await;

    // Where each run ran, and that none of its workflow tasks failed.
    let mut reconcile_runs = Vec::new();
    let all = runs(&env.client, &task_queue).await;
    assert!(all.len() > n, "{} runs", all.len());
    for run in &all {
        let (id, run_id) = (&run.workflow_id, &run.run_id);
        let events = history(&env.client, id, run_id).await;
        // No workflow task failed: no nondeterminism, no panic. (`UnhandledCommand` is not a
        // failure of the code: the server's answer to a completion that raced a new signal, after
        // which the task runs again with the signal in it.)
        let failed: Vec<_> = events
            .iter()
            .filter(|e| match &e.attributes {
                Some(history_event::Attributes::WorkflowTaskFailedEventAttributes(a)) => {
                    a.cause != WorkflowTaskFailedCause::UnhandledCommand as i32
                }
                _ => false,
            })
            .collect();
        assert!(failed.is_empty(), "{id} {run_id}: {failed:#?}");
        let (build, behavior) = pinned_build(&env.client, id, run_id).await;
        assert_eq!(behavior, VersioningBehavior::Pinned as i32, "{id} {run_id}");
        if *id != reconcile_id {
            assert_eq!(
                ran_v2_code(&events),
                build == "v2",
                "{id} {run_id} ran the code of {build}"
            );
        }
        if *id == reconcile_id {
            reconcile_runs.push((run.started, build));
        } else if let Some((parent, parent_run)) = &run.parent {
            // A repair runs on its (pinned) reconciliation run's build.
            let (parent_build, _) = pinned_build(&env.client, parent, parent_run).await;
            assert_eq!(build, parent_build, "repair {id} {run_id}");
        } else if run.started < v2_started || run.started > rolled_back {
            assert_eq!(
                build, "v1",
                "{id} {run_id}: started while only v1 took work"
            );
        } else if run.started > v2_current {
            assert_eq!(build, "v2", "{id} {run_id}: started while v2 was current");
        } else {
            assert!(build == "v1" || build == "v2", "{id}: ramping, {build}");
        }
    }
    reconcile_runs.sort();
    let builds: Vec<&str> = reconcile_runs.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(builds.first(), Some(&"v1"), "started on v1: {builds:?}");
    assert_eq!(
        builds.last(),
        Some(&"v2"),
        "moved to v2 at a continue-as-new: {builds:?}"
    );
    assert!(
        builds.windows(2).all(|w| w[0] <= w[1]),
        "never back to v1 once on v2: {builds:?}"
    );
    // The drain query above names versions as the server does (it matches runs of both).
    for build in ["v1", "v2"] {
        let on_build = format!(
            "TaskQueue = '{task_queue}' AND TemporalWorkerDeploymentVersion = '{deployment}:{build}'"
        );
        let count = env
            .client
            .count_workflows(on_build, Default::default())
            .await
            .unwrap()
            .count();
        assert!(count > 0, "no run found on {build}");
    }

    // Every product synced: each sync's last outcome, and verify against Stripe.
    for i in 1..=n {
        let outcome = env.result(&env.id(i)).await.outcome;
        assert!(
            matches!(outcome, SyncOutcome::Synced | SyncOutcome::Unchanged),
            "product {i}: {outcome:?}"
        );
    }
    assert_verify_clean(&env.catalog_url, &env.sandbox, n);
}
