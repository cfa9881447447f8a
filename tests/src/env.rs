//! One workflow test's world: a Temporal client, a fresh catalog, a sandbox, an in-process worker on
//! its own task queue, and ids unique to the test (the Temporal server is shared by the tests of a
//! run).

use std::time::Duration;

use catalog::Catalog;
use futures::TryStreamExt;
use relay::{Relay, RelayOptions, Signaller};
use temporalio_client::{Client, UntypedWorkflow, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::protos::temporal::api::enums::v1::{EventType, WorkflowTaskFailedCause};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use workflows::model::CatalogProduct;
use workflows::{ProductChanged, ProductSync, ProductSyncInput, ProductSyncResult};

use temporalio_common::data_converters::DataConverter;

use crate::{Backend, RunningWorker, Sandbox, connect, fresh_catalog, temporal_address, unique};

/// Everything one test needs.
pub struct TestEnv {
    /// Client of the shared dev server.
    pub client: Client,
    /// The test's own catalog.
    pub catalog: Catalog,
    /// The test's own sandbox.
    pub sandbox: Sandbox,
    /// The test's worker.
    pub worker: RunningWorker,
    /// The catalog's URL (for binaries started by the test).
    pub catalog_url: String,
    /// The catalog's identity (its syncs' workflow ids carry it).
    pub identity: String,
    prefix: String,
}

/// A relay running on the test's runtime.
pub struct RunningRelay {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningRelay {
    /// Stops it after the batch in hand.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for RunningRelay {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl TestEnv {
    /// Starts a catalog on `backend`, a sandbox and a worker.
    pub async fn start(backend: Backend) -> Self {
        Self::start_configured(backend, |_| {}).await
    }

    /// As [`TestEnv::start`], with worker settings adjusted by `configure`.
    pub async fn start_configured(
        backend: Backend,
        configure: impl FnOnce(&mut worker::Settings),
    ) -> Self {
        Self::start_on(&temporal_address(), backend, configure).await
    }

    /// As [`TestEnv::start_configured`], against the Temporal server at `temporal` (a server of
    /// the test's own) instead of the shared one.
    pub async fn start_on(
        temporal: &str,
        backend: Backend,
        configure: impl FnOnce(&mut worker::Settings),
    ) -> Self {
        let client = connect(temporal, DataConverter::default()).await;
        let (url, catalog) = fresh_catalog(backend).await;
        let sandbox = Sandbox::start().await;
        let worker = RunningWorker::start_on(temporal, &url, &sandbox, configure).await;
        let identity = catalog.identity().await.unwrap();
        Self {
            identity,
            client,
            catalog,
            sandbox,
            worker,
            catalog_url: url,
            prefix: unique("p"),
        }
    }

    /// A signaller on the worker's task queue.
    pub fn signaller(&self) -> Signaller {
        Signaller::new(
            self.client.clone(),
            self.identity.as_str(),
            self.worker.task_queue.as_str(),
            Duration::from_secs(10),
        )
    }

    /// A relay over the test's catalog, on the worker's task queue (not running).
    pub fn relay(&self, options: RelayOptions) -> Relay {
        Relay::new(self.catalog.clone(), self.signaller(), options)
    }

    /// Runs a relay in the background until the returned handle is stopped or dropped.
    pub fn spawn_relay(&self, options: RelayOptions) -> RunningRelay {
        let relay = self.relay(options);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            relay
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        RunningRelay {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The workflow id of the product's sync in the test's catalog.
    pub fn sync_id(&self, id: &str) -> String {
        workflows::product_sync_id(&self.identity, id)
    }

    /// The test's `n`-th catalog id; ids sort in `n` order.
    pub fn id(&self, n: usize) -> String {
        format!("{}-{n:04}", self.prefix)
    }

    /// Sample product `n` with per-unit prices (the kinds of pricing have their own tests in
    /// `end_to_end::stripe_fields`), with this test's id.
    pub fn sample(&self, n: usize) -> CatalogProduct {
        CatalogProduct {
            id: self.id(n),
            ..catalog::seed::per_unit_sample(n, 7)
        }
    }

    /// Signal-with-start of the product's sync, as `starter sync` does.
    pub async fn signal(&self, id: &str) {
        self.client
            .signal_with_start_workflow(
                ProductSync::run,
                ProductSyncInput {
                    catalog_id: id.to_string(),
                    ..Default::default()
                },
                ProductSync::product_changed,
                ProductChanged {
                    catalog_version: None,
                    source: "test".into(),
                },
                WorkflowStartOptions::new(self.worker.task_queue.as_str(), self.sync_id(id))
                    .build(),
            )
            .await
            .unwrap();
    }

    /// The result of the product's latest sync (waits up to two minutes).
    pub async fn result(&self, id: &str) -> ProductSyncResult {
        let handle = self
            .client
            .get_workflow_handle::<ProductSync>(self.sync_id(id));
        tokio::time::timeout(
            Duration::from_secs(120),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .expect("sync finished in time")
        .unwrap()
    }

    /// Once the outbox is empty (every change handed to Temporal), the result of the product's
    /// latest sync.
    pub async fn result_when_settled(&self, id: &str) -> ProductSyncResult {
        self.outbox_drained(Duration::from_secs(60)).await;
        self.result(id).await
    }

    /// Waits (at most `timeout`) until no change waits in the outbox: all were handed to Temporal.
    pub async fn outbox_drained(&self, timeout: Duration) {
        crate::eventually(timeout, "the outbox drained", || async {
            let stats = self.catalog.outbox_stats().await.unwrap();
            (stats.pending == 0).then_some(())
        })
        .await;
    }

    /// Workflows on the test's task queue whose status is `status` (`Running`, `Failed`, …).
    pub async fn count_workflows(&self, status: &str) -> usize {
        crate::count_workflows(&self.client, &self.worker.task_queue, status).await
    }

    /// Waits until no workflow on the test's task queue runs, then asserts that none failed.
    pub async fn assert_all_finished_none_failed(&self, timeout: Duration) {
        crate::eventually(timeout, "every workflow finished", || async {
            (self.count_workflows("Running").await == 0).then_some(())
        })
        .await;
        assert_eq!(self.count_workflows("Failed").await, 0, "failed workflows");
    }

    /// Signals the product's sync and waits for its result.
    pub async fn sync(&self, id: &str) -> ProductSyncResult {
        self.signal(id).await;
        self.result(id).await
    }

    /// Writes the sandbox has applied so far.
    pub async fn writes(&self) -> u64 {
        self.sandbox.stats().await["total_writes"].as_u64().unwrap()
    }

    /// Every workflow task of the workflow's latest run succeeded: no nondeterminism, no panic.
    /// A task the server turned back because a signal arrived while it completed
    /// (`UnhandledCommand`) is Temporal keeping the signal, not a failure of the workflow: the
    /// worker runs the task again with the signal, as it must.
    pub async fn assert_no_failed_workflow_tasks(&self, workflow_id: &str) {
        let events: Vec<_> = self
            .client
            .get_workflow_handle::<UntypedWorkflow>(workflow_id)
            .fetch_history(Default::default())
            .try_collect()
            .await
            .unwrap();
        let failed: Vec<_> = events
            .iter()
            .filter(|e| e.event_type == EventType::WorkflowTaskFailed as i32)
            .filter(|e| {
                !matches!(
                    &e.attributes,
                    Some(Attributes::WorkflowTaskFailedEventAttributes(a))
                        if a.cause == WorkflowTaskFailedCause::UnhandledCommand as i32
                )
            })
            .collect();
        assert!(failed.is_empty(), "{workflow_id}: {failed:#?}");
    }

    /// With `CATALOG_SYNC_RECORD_HISTORIES=1`, saves the latest run's history as
    /// `tests/histories/{name}.json` for the replay test.
    pub async fn record_history(&self, workflow_id: &str, name: &str) {
        if std::env::var("CATALOG_SYNC_RECORD_HISTORIES").is_err() {
            return;
        }
        let json = self
            .client
            .get_workflow_handle::<UntypedWorkflow>(workflow_id)
            .fetch_history(Default::default())
            .to_json()
            .await
            .unwrap();
        let path = crate::workspace_root().join(format!("tests/histories/{name}.json"));
        std::fs::write(&path, json).unwrap();
    }
}
