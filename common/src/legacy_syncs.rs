//! The move from legacy product sync ids (`product-sync-{id}`, one namespace-wide name per
//! product) to catalog-scoped ones (`{catalog}:product-sync:{id}`, see `domain::ids`), without two
//! writers for one product.
//!
//! Relays, starters and new reconciliations start syncs under the scoped id at once. A legacy run
//! still running on the catalog's task queue (started by the previous release) keeps its product:
//! the scoped run's first activity waits, retrying, until it ends, then reads the catalog as it is
//! by then. So a product has one writer at a time and no change is lost: changes sent to the
//! scoped id wait in its run, and the legacy run finishes the pass it was on.
//!
//! Checking each pass costs one describe, so a worker counts the legacy runs on its queue (and the
//! reconciliations planned before scoped ids, which may start more) at most every
//! [`RECOUNT`]; after two empty counts in a row it stops looking, and looks again at every later
//! count.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use temporalio_client::{Client, WorkflowListOptions, tonic};

use crate::temporal::running_task_queue;

/// How often a worker counts the legacy runs on its queue.
pub const RECOUNT: Duration = Duration::from_secs(30);

/// The legacy runs of one catalog's task queue, as one worker sees them.
#[derive(Clone)]
pub struct LegacySyncs {
    client: Client,
    catalog: String,
    task_queue: String,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    counted_at: Option<Instant>,
    /// Counts in a row that found no legacy run.
    empty_counts: u32,
}

impl LegacySyncs {
    /// For the worker of `catalog` (its identity) on `task_queue`.
    pub fn new(client: Client, catalog: impl Into<String>, task_queue: impl Into<String>) -> Self {
        Self {
            client,
            catalog: catalog.into(),
            task_queue: task_queue.into(),
            state: Arc::default(),
        }
    }

    /// The legacy sync of `product_id` running on this queue, if any: while it runs, the
    /// product's scoped sync waits.
    pub async fn live_run(&self, product_id: &str) -> Result<Option<String>, tonic::Status> {
        if self.drained().await? {
            return Ok(None);
        }
        let legacy = domain::ids::legacy_product_sync_id(product_id);
        let queue = running_task_queue(&self.client, &legacy).await?;
        Ok((queue.as_deref() == Some(self.task_queue.as_str())).then_some(legacy))
    }

    /// No legacy run was seen at the last two counts (counted again every [`RECOUNT`]).
    async fn drained(&self) -> Result<bool, tonic::Status> {
        {
            let state = lock(&self.state);
            if state.counted_at.is_some_and(|at| at.elapsed() < RECOUNT) {
                return Ok(state.empty_counts >= 2);
            }
        }
        let legacy = self.count_legacy().await?;
        let mut state = lock(&self.state);
        state.counted_at = Some(Instant::now());
        state.empty_counts = if legacy == 0 {
            state.empty_counts + 1
        } else {
            0
        };
        if legacy > 0 {
            tracing::info!(
                legacy,
                task_queue = %self.task_queue,
                "runs under legacy workflow ids still run: scoped syncs of their products wait for them"
            );
        }
        Ok(state.empty_counts >= 2)
    }

    /// Running legacy syncs, and running reconciliations whose ids are not this catalog's (those
    /// planned before scoped ids start legacy repairs).
    async fn count_legacy(&self) -> Result<usize, tonic::Status> {
        let queue = self.task_queue.replace('\'', "");
        let syncs = format!(
            "WorkflowId STARTS_WITH '{}' AND ExecutionStatus = 'Running' AND TaskQueue = '{queue}'",
            domain::ids::LEGACY_PRODUCT_SYNC_PREFIX
        );
        let count = self
            .client
            .count_workflows(syncs, Default::default())
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?
            .count();
        if count > 0 {
            return Ok(count);
        }
        let reconciles = format!(
            "WorkflowType = 'ReconcileCatalog' AND ExecutionStatus = 'Running' AND TaskQueue = '{queue}'"
        );
        let ours = domain::ids::catalog_prefix(&self.catalog);
        let mut runs = self.client.list_workflows(
            reconciles,
            WorkflowListOptions::builder().limit(100).build(),
        );
        let mut legacy = 0;
        while let Some(run) = runs.next().await {
            let run = run.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            if !run.id().starts_with(&ours) {
                legacy += 1;
            }
        }
        Ok(legacy)
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
