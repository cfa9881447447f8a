//! The catalog-sync worker as a library, so tests run the same worker in process that the
//! `worker` binary runs.
#![deny(missing_docs)]

pub mod config;
pub mod search_attributes;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use activities::SyncActivitiesImpl;
use activities::metrics::Metrics;
use activities::ownership::Ownership;
use activities::stripe::{Secret, StripeClient, StripeConfig};
use catalog::Catalog;
use temporalio_client::Client;
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{Worker, WorkerOptions};
use workflows::retry::RetryConfig;
use workflows::{ProductSync, ReconcileCatalog};

/// Workflow-task polls of a worker unless configured.
pub const DEFAULT_WORKFLOW_TASK_POLLERS: usize = 10;

/// Everything a worker needs besides the Temporal client.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Task queue to poll.
    pub task_queue: String,
    /// Catalog database URL (`postgres://…` or `sqlite:…`).
    pub catalog_url: String,
    /// Stripe API base URL.
    pub stripe_base_url: String,
    /// Stripe secret key.
    pub stripe_api_key: Secret,
    /// Per-request timeout for Stripe.
    pub stripe_timeout: Duration,
    /// Stripe requests per second this worker may send (0 = no pacing).
    pub stripe_requests_per_second: u32,
    /// Activity timeouts and retry policies.
    pub retry: RetryConfig,
    /// Concurrent workflow-task polls (half on the shared queue, half on this worker's sticky
    /// queue). Every change starts a new `ProductSync` run, whose first task comes from the
    /// shared queue: with one poll there (the SDK's default) a burst of new runs waits seconds.
    pub workflow_task_pollers: usize,
    /// Which product fields Stripe owns (Dashboard edits kept).
    pub ownership: Ownership,
    /// Where catalog-sync's own metrics go (the meter of the runtime's Prometheus endpoint), if
    /// anywhere.
    pub metrics: Option<Metrics>,
}

/// Builds a worker with every workflow and activity registered.
pub async fn build(
    runtime: &temporalio_sdk::Runtime,
    client: Client,
    settings: &Settings,
) -> anyhow::Result<Worker> {
    let catalog = Catalog::connect(&settings.catalog_url).await?;
    let stripe = StripeClient::new(StripeConfig {
        base_url: settings.stripe_base_url.clone(),
        api_key: settings.stripe_api_key.clone(),
        timeout: settings.stripe_timeout,
        requests_per_second: settings.stripe_requests_per_second,
        metrics: settings.metrics.clone(),
    })?;
    let registered = Arc::new(AtomicBool::new(false));
    tokio::spawn(search_attributes::watch(client.clone(), registered.clone()));
    let options = WorkerOptions::new(settings.task_queue.as_str())
        .register_workflow_with_factory::<ProductSync, _>({
            let retry = settings.retry.clone();
            move || ProductSync::with_retry(retry.clone())
        })?
        .register_workflow_with_factory::<ReconcileCatalog, _>({
            let retry = settings.retry.clone();
            move || ReconcileCatalog::with_retry(retry.clone())
        })?
        .register_activities(
            SyncActivitiesImpl::new(catalog, stripe)
                .with_metrics(settings.metrics.clone())
                .with_ownership(settings.ownership.clone())
                .with_search_attributes(registered),
        )
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(
            settings.workflow_task_pollers.max(2),
        ))
        .nonsticky_to_sticky_poll_ratio(0.5)
        .graceful_shutdown_period(Duration::from_secs(20))
        .build();
    Ok(Worker::new(runtime, client, options)?)
}

/// Runs the worker until `shutdown` resolves, then drains in-flight tasks.
pub async fn run_until(
    mut worker: Worker,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let stop = worker.shutdown_handle();
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => return result.map_err(Into::into),
        () = shutdown => {
            tracing::info!("shutting down: finishing in-flight tasks");
            stop();
        }
    }
    run.await.map_err(Into::into)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM: both drain the worker.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
