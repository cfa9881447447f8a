//! Telling a product's sync that the product changed: signal-with-start of `ProductSync`, so a
//! running sync takes one more pass and an idle product gets a new sync. The one way every change
//! source (outbox, HTTP ingest, Stripe webhooks) reaches Temporal.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use temporalio_client::errors::WorkflowStartError;
use temporalio_client::tonic::Code;
use temporalio_client::{Client, WorkflowStartOptions};
use workflows::{ProductChanged, ProductSync, ProductSyncInput};

/// Why a signal was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignalError {
    /// Temporal did not answer or is overloaded: try again later; nothing is lost meanwhile.
    #[error("Temporal unavailable: {0}")]
    Unavailable(String),
    /// Temporal refused this change for good (e.g. the id makes an invalid workflow id).
    #[error("Temporal refused the change: {0}")]
    Rejected(String),
    /// The product's sync runs on another task queue (started there by hand or by another
    /// deployment): the signal reached that run, which this deployment's workers never see. The
    /// change is not taken as delivered; it waits until that run is ended.
    #[error(
        "{workflow_id} runs on task queue {run_queue}, not on this relay's {task_queue}: the \
         change waits until that run ends (`starter status` lists such runs and how to end them)"
    )]
    Stranded {
        /// The product's workflow id.
        workflow_id: String,
        /// The queue its running run was started on.
        run_queue: String,
        /// The relay's queue.
        task_queue: String,
    },
}

impl SignalError {
    /// Retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected(_))
    }
}

/// Sends `product_changed` signals-with-start on one task queue.
#[derive(Clone)]
pub struct Signaller {
    client: Client,
    /// The catalog's identity: its syncs' workflow ids carry it.
    catalog: String,
    task_queue: String,
    timeout: Duration,
    /// Runs already seen on this relay's task queue (a run never changes queue): a signal to one
    /// of them needs no second look.
    on_queue: Arc<Mutex<HashSet<String>>>,
}

/// Runs remembered as being on the relay's queue before the memory starts over.
const RUNS_REMEMBERED: usize = 10_000;

impl Signaller {
    /// Temporal answers for the task queue (readiness): `Err` with the reason when it does not
    /// within the signal timeout.
    pub async fn check_temporal(&self) -> Result<(), String> {
        let described = tokio::time::timeout(
            self.timeout,
            common::temporal::describe_task_queue(
                &self.client,
                &self.task_queue,
                temporalio_common::protos::temporal::api::enums::v1::TaskQueueType::Workflow,
                false,
            ),
        )
        .await;
        match described {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("Temporal: {}", e.message())),
            Err(_) => Err(format!("Temporal: no answer within {:?}", self.timeout)),
        }
    }

    /// Signals the syncs of `catalog` (its identity) on `task_queue`; each call gives up after
    /// `timeout` (Temporal unavailable).
    pub fn new(
        client: Client,
        catalog: impl Into<String>,
        task_queue: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            client,
            catalog: catalog.into(),
            task_queue: task_queue.into(),
            timeout,
            on_queue: Arc::default(),
        }
    }

    /// The product changed (to `version`, when known), as seen by `source`.
    pub async fn product_changed(
        &self,
        catalog_id: &str,
        version: Option<i64>,
        source: &str,
    ) -> Result<(), SignalError> {
        use opentelemetry::KeyValue;
        use opentelemetry::trace::{
            FutureExt as _, SpanKind, Status, TraceContextExt as _, Tracer as _,
        };
        // The trace of this change starts here (see common::traces); the SDK's plugin makes the
        // signal-with-start its child and carries the context into the workflow.
        let tracer = opentelemetry::global::tracer(common::traces::SCOPE);
        let span = tracer
            .span_builder("catalog change")
            .with_kind(SpanKind::Producer)
            .with_attributes([
                KeyValue::new("catalog.product_id", catalog_id.to_string()),
                KeyValue::new("catalog.change_source", source.to_string()),
                KeyValue::new("catalog.version", version.unwrap_or_default()),
            ])
            .start(&tracer);
        let trace = opentelemetry::Context::current_with_span(span);
        let result = self
            .signal(catalog_id, version, source)
            .with_context(trace.clone())
            .await;
        if let Err(e) = &result {
            trace.span().set_status(Status::error(e.to_string()));
        }
        trace.span().end();
        result
    }

    async fn signal(
        &self,
        catalog_id: &str,
        version: Option<i64>,
        source: &str,
    ) -> Result<(), SignalError> {
        let call = self.client.signal_with_start_workflow(
            ProductSync::run,
            ProductSyncInput {
                catalog_id: catalog_id.to_string(),
                ..Default::default()
            },
            ProductSync::product_changed,
            ProductChanged {
                catalog_version: version,
                source: source.to_string(),
            },
            WorkflowStartOptions::new(
                self.task_queue.as_str(),
                workflows::product_sync_id(&self.catalog, catalog_id),
            )
            .build(),
        );
        let handle = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => return Err(classify(e)),
            Err(_) => return Err(self.no_answer()),
        };
        let run_id = handle.run_id().unwrap_or_default();
        self.check_queue(&handle.info().workflow_id, run_id).await
    }

    /// Temporal accepts a signal for a run on any task queue. Taking that as delivered would drop
    /// the change when the run is on a queue this deployment's workers do not poll: the run that
    /// got it may never run (a queue nobody polls) or belongs to another deployment.
    async fn check_queue(&self, workflow_id: &str, run_id: &str) -> Result<(), SignalError> {
        if lock(&self.on_queue).contains(run_id) {
            return Ok(());
        }
        let described = tokio::time::timeout(
            self.timeout,
            common::temporal::run_task_queue(&self.client, workflow_id, run_id),
        )
        .await;
        let run_queue = match described {
            Ok(Ok(queue)) => queue,
            Ok(Err(status)) => return Err(SignalError::Unavailable(status.message().to_string())),
            Err(_) => return Err(self.no_answer()),
        };
        if run_queue != self.task_queue {
            return Err(SignalError::Stranded {
                workflow_id: workflow_id.to_string(),
                run_queue,
                task_queue: self.task_queue.clone(),
            });
        }
        let mut seen = lock(&self.on_queue);
        if seen.len() >= RUNS_REMEMBERED {
            seen.clear();
        }
        seen.insert(run_id.to_string());
        Ok(())
    }

    fn no_answer(&self) -> SignalError {
        SignalError::Unavailable(format!("no answer within {:?}", self.timeout))
    }
}

fn lock(runs: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    runs.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Only an invalid request is refused for good; every other error (unavailable, overloaded,
/// unauthenticated, namespace missing) is the deployment's and passes: the change waits.
fn classify(e: WorkflowStartError) -> SignalError {
    match e {
        WorkflowStartError::Rpc(status) if status.code() == Code::InvalidArgument => {
            SignalError::Rejected(status.message().to_string())
        }
        WorkflowStartError::PayloadConversion(e) => SignalError::Rejected(e.to_string()),
        other => SignalError::Unavailable(other.to_string()),
    }
}
