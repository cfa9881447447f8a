//! The catalog-sync worker as a library, so tests run the same worker in process that the
//! `worker` binary runs.
#![deny(missing_docs)]

pub mod budget;
pub mod config;
pub mod deployment;
pub mod health;
pub mod search_attributes;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use activities::SyncActivitiesImpl;
use catalog::{ArchiveBudget, Catalog};
use common::legacy_syncs::LegacySyncs;
use common::metrics::Metrics;
use domain::ownership::Ownership;
use stripe::client::{AccessRefused, StripeClient, StripeConfig};
use stripe::identity::CatalogIdentity;
use stripe::write_key::{self, WriteKeys};
use temporalio_client::Client;
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{Worker, WorkerOptions};
use workflows::queues::stripe_task_queue;
use workflows::retry::RetryConfig;
use workflows::{ProductSync, ReconcileCatalog};

/// Workflow-task polls of a worker unless configured.
pub const DEFAULT_WORKFLOW_TASK_POLLERS: usize = 10;

/// Everything a worker needs besides the Temporal client.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Task queue of the workflows (the Stripe activities poll `{task_queue}-stripe`).
    pub task_queue: String,
    /// Catalog database URL (`postgres://…` or `sqlite:…`).
    pub catalog_url: String,
    /// The mapping of a team's own catalog tables (`[catalog]` in the config); `None`: the
    /// built-in tables.
    pub catalog_mapping: Option<catalog::Mapping>,
    /// Where Stripe is, the key, API version, connected account and request timeout; its
    /// `requests_per_second` is the budget of the whole account, all workers together (0 = no
    /// limit), which each worker's pacer splits with the others (see [`budget`]).
    pub stripe: StripeConfig,
    /// Activity timeouts and retry policies.
    pub retry: RetryConfig,
    /// Concurrent workflow-task polls (half on the shared queue, half on this worker's sticky
    /// queue). Every change starts a new `ProductSync` run, whose first task comes from the
    /// shared queue: with one poll there (the SDK's default) a burst of new runs waits seconds.
    pub workflow_task_pollers: usize,
    /// Which product fields Stripe owns (Dashboard edits kept).
    pub ownership: Ownership,
    /// How many live archives may be made per window before they wait for confirmation.
    pub archive_budget: ArchiveBudget,
    /// Where catalog-sync's own metrics go (the meter of the runtime's Prometheus endpoint), if
    /// anywhere.
    pub metrics: Option<Metrics>,
    /// The Worker Deployment and build this worker belongs to (see [`deployment`]).
    pub deployment: deployment::Deployment,
}

/// A worker process's two Temporal workers: one polls the workflow task queue (workflows and the
/// catalog-side activities), one the Stripe task queue (the Stripe-calling activities, inside
/// the shared budget; see [`budget`]).
pub struct Workers {
    main: Worker,
    stripe: Worker,
    share: Option<budget::BudgetShare>,
    readiness: health::Readiness,
}

impl Workers {
    /// What `/readyz` checks for these workers (see [`health`]).
    pub fn readiness(&self) -> health::Readiness {
        self.readiness.clone()
    }
}

/// Registers workflow implementations on the workflow queue's worker (see [`register_workflows`]).
pub type RegisterWorkflows = fn(&mut WorkerOptions, &Settings) -> anyhow::Result<()>;

/// catalog-sync's workflows: `ProductSync` and `ReconcileCatalog`, with the worker's activity
/// settings and whether it is versioned.
pub fn register_workflows(options: &mut WorkerOptions, settings: &Settings) -> anyhow::Result<()> {
    let (retry, versioned) = (settings.retry.clone(), settings.deployment.is_versioned());
    let product_sync = retry.clone();
    options.register_workflow_with_factory::<ProductSync, _>(move || {
        ProductSync::with_retry(product_sync.clone()).on_versioned_workers(versioned)
    })?;
    options.register_workflow_with_factory::<ReconcileCatalog, _>(move || {
        ReconcileCatalog::with_retry(retry.clone()).on_versioned_workers(versioned)
    })?;
    Ok(())
}

/// Builds the workers with every workflow and activity registered.
pub async fn build(
    runtime: &temporalio_sdk::Runtime,
    client: Client,
    settings: &Settings,
) -> anyhow::Result<Workers> {
    build_with(runtime, client, settings, register_workflows).await
}

/// Builds the workers with the workflow implementations `register` gives: a worker is
/// [`register_workflows`]; the rollout test registers a changed build of `ProductSync` in its
/// place to play the next version of the code.
pub async fn build_with(
    runtime: &temporalio_sdk::Runtime,
    client: Client,
    settings: &Settings,
    register: RegisterWorkflows,
) -> anyhow::Result<Workers> {
    let catalog =
        Catalog::connect_with(&settings.catalog_url, settings.catalog_mapping.as_ref()).await?;
    let stripe = StripeClient::new(
        settings
            .stripe
            .clone()
            .with_metrics(settings.metrics.clone()),
    )?;
    let stripe_budget = settings.stripe.requests_per_second;
    if let Some(m) = &settings.metrics {
        use common::metrics::Counted;
        m.build_info("worker", &settings.deployment.build_id);
        let outcomes = workflows::SyncOutcome::ALL.map(|o| o.as_str());
        m.start_at_zero(Counted::Outcomes, &outcomes);
        let kinds = domain::drift::DriftKind::ALL.map(|k| k.as_str());
        m.start_at_zero(Counted::Drift, &kinds);
    }
    // A wrong key or API version stops the worker here, with the setting's name, instead of
    // failing every sync; an unreachable Stripe is left to the activities' retries.
    match stripe.check_access().await {
        Ok(()) => tracing::info!(
            api_version = stripe.api_version(),
            "Stripe accepted the key"
        ),
        Err(AccessRefused::Setting(why)) => anyhow::bail!(why),
        Err(e @ AccessRefused::Unreachable(_)) => {
            tracing::warn!(error = %e, "going on: syncs retry until Stripe answers")
        }
    }
    let registered = Arc::new(AtomicBool::new(false));
    tokio::spawn(search_attributes::watch(client.clone(), registered.clone()));
    let write_keys = WriteKeys::new(&catalog.sync_secret(write_key::SECRET_NAME).await?);
    let catalog_identity = CatalogIdentity::new(catalog.identity().await?);
    tracing::info!(catalog = %catalog_identity, "serving catalog");
    let readiness_catalog = catalog.clone();
    let activities = SyncActivitiesImpl::new(
        catalog,
        catalog_identity.clone(),
        stripe.clone(),
        write_keys,
    )
    .with_metrics(settings.metrics.clone())
    .with_ownership(settings.ownership.clone())
    .with_archive_budget(settings.archive_budget.clone())
    .with_search_attributes(registered)
    .with_legacy_syncs(LegacySyncs::new(
        client.clone(),
        catalog_identity.as_str(),
        settings.task_queue.as_str(),
    ));

    let stripe_queue = stripe_task_queue(&settings.task_queue);
    let identity = budget::stripe_identity();
    let identity_for_readiness = identity.clone();
    let mut stripe_options = WorkerOptions::new(stripe_queue.as_str())
        .register_activities(activities.clone())
        .client_identity_override(identity.clone())
        .tuner(stripe_tuner(stripe_budget))
        .graceful_shutdown_period(Duration::from_secs(20))
        .deployment_options(settings.deployment.options())
        .build();
    if stripe_budget > 0 {
        stripe_options.max_task_queue_activities_per_second = Some(f64::from(stripe_budget));
    }
    let share = stripe.pacer().map(|pacer| {
        budget::BudgetShare::new(
            client.clone(),
            stripe_queue.clone(),
            identity,
            stripe_budget,
            pacer,
            settings.metrics.clone(),
        )
    });
    let stripe_worker = Worker::new(runtime, client.clone(), stripe_options)?;

    let mut options = WorkerOptions::new(settings.task_queue.as_str())
        // Also here: activities scheduled on this queue before the Stripe queue existed.
        .register_activities(activities)
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(
            settings.workflow_task_pollers.max(2),
        ))
        .nonsticky_to_sticky_poll_ratio(0.5)
        .graceful_shutdown_period(Duration::from_secs(20))
        .deployment_options(settings.deployment.options())
        .build();
    register(&mut options, settings)?;
    let readiness = health::Readiness {
        client: client.clone(),
        catalog: readiness_catalog,
        stripe_queue: stripe_queue.clone(),
        stripe_identity: identity_for_readiness,
    };
    Ok(Workers {
        main: Worker::new(runtime, client, options)?,
        stripe: stripe_worker,
        share,
        readiness,
    })
}

/// Stripe activities one worker runs at once: enough to keep its share of the budget busy at
/// Stripe's latency, few enough that the backlog stays in Temporal, where a live edit's task goes
/// ahead of reconciliation's, instead of in the worker's pacer.
pub fn stripe_activity_slots(budget: u32) -> usize {
    match budget {
        0 => 100,
        budget => (budget as usize / 2).clamp(4, 50),
    }
}

fn stripe_tuner(budget: u32) -> temporalio_sdk::runtime::worker_tuner::WorkerTuner {
    use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
    TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(stripe_activity_slots(budget)))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build()
        .into()
}

/// Runs the workers until `shutdown` resolves (or one of them fails), then drains in-flight
/// tasks.
pub async fn run_until(workers: Workers, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let Workers {
        mut main,
        mut stripe,
        share,
        ..
    } = workers;
    if let Some(share) = share {
        share.join().await;
        tokio::spawn(share.run());
    }
    let stop_main = main.shutdown_handle();
    let stop_stripe = stripe.shutdown_handle();
    let run = async { tokio::try_join!(main.run(), stripe.run()).map(|_| ()) };
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => return result.map_err(Into::into),
        () = shutdown => {
            tracing::info!("shutting down: finishing in-flight tasks");
            stop_main();
            stop_stripe();
        }
    }
    run.await.map_err(Into::into)
}
