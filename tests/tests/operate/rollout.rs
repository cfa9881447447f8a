//! Worker Deployment Versioning: the rollout runbook of docs/deploying.md ("The runbook"), every
//! command of it as written (read from the document, run by `sh` with the `temporal` CLI and
//! `starter` on the PATH), with two builds of the worker on one task queue while syncs and a
//! reconciliation run.
//!
//! v1 is catalog-sync's worker. v2 is the same worker with a changed `ProductSync` that replay
//! could not accept: it schedules an activity v1 never did (a regular `FetchProduct` before the
//! pass), so a v1 history run on v2 code would fail its workflow task with a nondeterminism error.
//! The runbook: v1 current; syncs and a reconciliation in flight on v1 (Stripe slowed down); v2
//! started beside v1; v2 ramping at 10 %; v2 current; v1 drained (and marked so); rolled back to
//! v1; versioning turned off with an unversioned worker. Checked: runs that started on v1 finish
//! on v1, new ones run on v2, the reconciliation moves to v2 at its next continue-as-new, syncs
//! after versioning is off run unversioned, no workflow task fails anywhere, and `verify` finds 0
//! differences.

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
    VersioningBehavior, WorkflowTaskFailedCause,
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

/// The runbook of docs/deploying.md ("The runbook"), as written: its steps in order, each a label
/// (`0`, `1`, …, `Roll back`, `Versioning off`) and its commands (continued lines joined).
fn runbook() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(harness::workspace_root().join("docs/deploying.md")).unwrap();
    let section = &doc[doc.find("### The runbook").expect("the runbook section")..];
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the runbook's sh block");
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    // Its first line names the deployment and builds, which the test sets itself.
    assert!(block.starts_with("D=catalog-sync V1="), "{block}");
    let mut command = String::new();
    for line in block.lines().skip(1) {
        if let Some(comment) = line.strip_prefix("# ") {
            // A step starts with its label; its comment's next lines are indented.
            if !comment.starts_with(' ') {
                let end = comment.find(['.', ':', '(']).unwrap();
                steps.push((comment[..end].trim().to_string(), Vec::new()));
            }
        } else if !line.is_empty() && !steps.is_empty() {
            command.push_str(line.trim_end_matches('\\'));
            if !line.ends_with('\\') {
                steps
                    .last_mut()
                    .unwrap()
                    .1
                    .push(std::mem::take(&mut command));
            }
        }
    }
    let labels: Vec<&str> = steps.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["0", "1", "2", "3", "4", "Roll back", "Versioning off"],
        "the runbook's steps"
    );
    steps
}

/// Where the runbook's commands run: the test's server, deployment, builds and task queue, the
/// `temporal` CLI and `starter` on the PATH, as an operator has them.
struct Operator {
    steps: Vec<(String, Vec<String>)>,
    env: Vec<(&'static str, String)>,
}

impl Operator {
    fn new(address: &str, deployment: &str, task_queue: &str) -> Self {
        let dirs = [temporal_cli(), harness::binary("starter")]
            .map(|p| p.parent().unwrap().display().to_string());
        let path = format!("{}:{}:{}", dirs[0], dirs[1], std::env::var("PATH").unwrap());
        Self {
            steps: runbook(),
            env: vec![
                ("PATH", path),
                ("TEMPORAL_ADDRESS", address.to_string()),
                ("CATALOG_SYNC_TASK_QUEUE", task_queue.to_string()),
                ("D", deployment.to_string()),
                ("V1", "v1".to_string()),
                ("V2", "v2".to_string()),
                ("RUST_BACKTRACE", "0".to_string()),
            ],
        }
    }

    /// Runs step `label`'s commands in order, each retried until it succeeds (the server knows a
    /// version only once its workers have polled); returns what each printed.
    async fn step(&self, label: &str) -> Vec<String> {
        let (_, commands) = self
            .steps
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no step {label:?} in the runbook: {:?}", self.steps));
        let mut printed = Vec::new();
        for command in commands {
            let out = eventually(Duration::from_secs(120), command, || async {
                let out = tokio::process::Command::new("sh")
                    .args(["-c", command])
                    .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
                    .output()
                    .await
                    .unwrap();
                if out.status.success() {
                    Some(String::from_utf8_lossy(&out.stdout).into_owned())
                } else {
                    eprintln!(
                        "{command}: {}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    None
                }
            })
            .await;
            printed.push(out);
        }
        printed
    }
}

/// The build a run is pinned to, and its versioning behaviour (none for an unversioned run).
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
    let Some(info) = response
        .workflow_execution_info
        .and_then(|i| i.versioning_info)
    else {
        return (String::new(), VersioningBehavior::Unspecified as i32);
    };
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
    // Versions are marked drained seconds after their last run, not minutes (the runbook's step 4).
    let temporal = RestartableTemporal::start_new_with(&[
        "matching.numTaskqueueReadPartitions=1",
        "matching.numTaskqueueWritePartitions=1",
        "matching.wv.VersionDrainageStatusVisibilityGracePeriod=\"2s\"",
        "matching.wv.VersionDrainageStatusRefreshInterval=\"1s\"",
    ]);
    let address = temporal.address();
    let env = TestEnv::start_on(&address, Backend::Sqlite, |s| s.deployment = v1).await;
    let task_queue = env.worker.task_queue.clone();
    let n = 24;
    let products: Vec<_> = (1..=n).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();
    let operator = Operator::new(&address, &deployment, &task_queue);
    operator.step("0").await;

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
    let stripe_queue = queues::stripe_task_queue(&task_queue);
    // Both queues are listed once v2's pollers of each have reached the server.
    eventually(
        Duration::from_secs(60),
        "v2 polling both queues",
        || async {
            let described = operator.step("1").await.remove(0);
            [&task_queue, &stripe_queue]
                .iter()
                .all(|queue| described.contains(queue.as_str()))
                .then_some(())
        },
    )
    .await;
    let ramped = operator.step("2").await.pop().unwrap();
    assert!(
        ramped.contains("current v1, ramping v2 at 10%  routed"),
        "{ramped}"
    );
    for i in 5..=8 {
        env.signal(&env.id(i)).await;
    }
    let current = operator.step("3").await.pop().unwrap();
    assert!(
        current.contains(&format!(
            "task queue {stripe_queue} (activity): current v2  routed"
        )),
        "{current}"
    );
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
    // The runbook's drain check: nothing open on v1, and (seconds later on this server) drained.
    eventually(Duration::from_secs(60), "v1 marked drained", || async {
        let said = operator.step("4").await;
        assert!(said[0].contains("Total: 0"), "{said:?}");
        said[1]
            .contains("version v1: drained (no open run is pinned to it")
            .then_some(())
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
    operator.step("Roll back").await;
    let rolled_back = SystemTime::now();
    env.sandbox.clear_faults().await;
    for i in 13..=16 {
        env.signal(&env.id(i)).await;
    }
    env.assert_all_finished_none_failed(Duration::from_secs(120))
        .await;
    v2_worker.stop().await;

    // Versioning off: an unversioned worker takes the new syncs.
    let unversioned = RunningWorker::start_build(
        &address,
        &env.catalog_url,
        &env.sandbox,
        |s| s.task_queue = task_queue.clone(),
        worker::register_workflows,
    )
    .await;
    let off = operator.step("Versioning off").await.pop().unwrap();
    assert!(off.contains("current unversioned workers  routed"), "{off}");
    let versioning_off = SystemTime::now();
    for i in 17..=20 {
        env.signal(&env.id(i)).await;
    }
    env.assert_all_finished_none_failed(Duration::from_secs(120))
        .await;
    unversioned.stop().await;

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
        if run.started > versioning_off {
            assert_eq!(build, "", "{id} {run_id}: started with versioning off");
            assert!(!ran_v2_code(&events), "{id} {run_id}");
            continue;
        }
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
