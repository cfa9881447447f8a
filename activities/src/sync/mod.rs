//! The activity implementations: their dependencies here, the activities in `handlers`.

mod handlers;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use temporalio_sdk::activities::ActivityContext;

use catalog::{ArchiveBudget, AuditEntry, Catalog};
use workflows::SyncOutcome;
use workflows::model::SyncPlan;

use crate::error::SyncError;
use common::legacy_syncs::LegacySyncs;
use common::metrics::Metrics;
use domain::ownership::Ownership;
use stripe::client::StripeClient;
use stripe::identity::CatalogIdentity;
use stripe::write_key::WriteKeys;

/// The activity implementations with their dependencies (clones share them).
#[derive(Clone)]
pub struct SyncActivitiesImpl {
    catalog: Catalog,
    identity: CatalogIdentity,
    stripe: StripeClient,
    metrics: Option<Metrics>,
    ownership: Ownership,
    write_keys: WriteKeys,
    archive_budget: ArchiveBudget,
    search_attributes: Arc<AtomicBool>,
    legacy: Option<LegacySyncs>,
}

impl SyncActivitiesImpl {
    /// Holds the catalog pool and its identity (the only Stripe products touched are this
    /// catalog's, see [`stripe::identity`]), the Stripe client and the key maker of its writes
    /// (signed with the catalog's `write_key` secret, see [`stripe::write_key`]).
    pub fn new(
        catalog: Catalog,
        identity: CatalogIdentity,
        stripe: StripeClient,
        write_keys: WriteKeys,
    ) -> Self {
        Self {
            catalog,
            identity,
            stripe,
            write_keys,
            archive_budget: ArchiveBudget::default(),
            metrics: None,
            ownership: Ownership::default(),
            search_attributes: Arc::new(AtomicBool::new(false)),
            legacy: None,
        }
    }

    /// Holds each product's scoped sync back while its legacy run still runs (the move to
    /// catalog-scoped workflow ids, see [`common::legacy_syncs`]).
    pub fn with_legacy_syncs(mut self, legacy: LegacySyncs) -> Self {
        self.legacy = Some(legacy);
        self
    }

    /// `Err` when the sync whose activity this is may not run on this worker now: a run of
    /// another catalog (two catalogs' workers on one task queue), or a scoped run whose product's
    /// legacy run still runs. Retried, so the run waits instead of writing beside another.
    async fn may_run_here(&self, ctx: &ActivityContext) -> Result<(), SyncError> {
        let Some(workflow_id) = ctx.info().workflow_id.clone() else {
            return Ok(());
        };
        let Some(sync) = workflows::SyncId::parse(&workflow_id) else {
            return Ok(());
        };
        match sync.catalog {
            Some(catalog) if catalog != self.identity.as_str() => {
                tracing::warn!(
                    workflow_id = %workflow_id,
                    catalog = %self.identity,
                    "handed back a sync of another catalog: two catalogs' workers poll this task queue"
                );
                return Err(SyncError::Waiting(
                    format!(
                        "{workflow_id} is a sync of catalog {catalog}, and this worker serves \
                         catalog {}: two catalogs' workers poll one task queue. Give each catalog \
                         its own CATALOG_SYNC_TASK_QUEUE",
                        self.identity
                    ),
                    Duration::from_secs(30),
                ));
            }
            Some(_) => {}
            None => return Ok(()),
        }
        let Some(legacy) = &self.legacy else {
            return Ok(());
        };
        match legacy.live_run(sync.product_id).await {
            Ok(None) => Ok(()),
            Ok(Some(run)) => Err(SyncError::Waiting(
                format!(
                    "{run}, this product's sync under its legacy workflow id, still runs: this \
                     sync starts when it ends"
                ),
                Duration::from_secs(5),
            )),
            Err(status) => Err(SyncError::Waiting(
                format!(
                    "could not ask Temporal whether this product's legacy sync still runs: {}",
                    status.message()
                ),
                Duration::from_secs(5),
            )),
        }
    }

    /// Tells the workflows (through `FetchOutput::search_attributes`) whether the namespace has
    /// catalog-sync's search attributes; the worker keeps the flag current.
    pub fn with_search_attributes(mut self, registered: Arc<AtomicBool>) -> Self {
        self.search_attributes = registered;
        self
    }

    /// Leaves the Stripe-owned fields of `ownership` alone in existing products.
    pub fn with_ownership(mut self, ownership: Ownership) -> Self {
        self.ownership = ownership;
        self
    }

    /// Live archives beyond `budget` are held for confirmation (see `catalog::guard`).
    pub fn with_archive_budget(mut self, budget: ArchiveBudget) -> Self {
        self.archive_budget = budget;
        self
    }

    /// Records sync outcomes and drift in `metrics`.
    pub fn with_metrics(mut self, metrics: Option<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Records the sync lag of a pass that wrote a catalog change to Stripe: from the row's
    /// `updated_at` to now (a clock behind the database's counts as no lag).
    fn observe_lag(
        &self,
        desired: &domain::model::DesiredProduct,
        report: &workflows::activities::UpsertReport,
    ) {
        let (Some(m), Some(changed)) = (&self.metrics, &desired.changed_at) else {
            return;
        };
        if report.operations.is_empty() {
            return;
        }
        if let Ok(changed) = chrono::DateTime::parse_from_rfc3339(changed) {
            let lag = chrono::Utc::now().signed_duration_since(changed);
            m.sync_lag(lag.to_std().unwrap_or_default());
        }
    }

    fn count_outcome(&self, outcome: SyncOutcome) {
        if let Some(m) = &self.metrics {
            m.sync_outcome(outcome.as_str());
        }
    }

    /// Appends the pass's row to the audit ledger. The ledger must not undo a sync that happened:
    /// if the catalog cannot take the row, the loss is logged (with what the row said) and the
    /// activity still succeeds; the workflow's history keeps the full report either way.
    async fn audit(&self, ctx: &ActivityContext, mut entry: AuditEntry) {
        let info = ctx.info();
        entry.workflow_id = info.workflow_id.clone();
        entry.run_id = info.workflow_run_id.clone();
        entry.attempt = i32::try_from(info.attempt).ok();
        if let Err(e) = self.catalog.append_audit(&entry).await {
            tracing::error!(error = %e, entry = ?entry, "audit ledger row lost: the catalog refused it");
        }
    }
}

/// The ledger row of an upsert (its outcome filled in by the caller).
/// The ledger's outcome of an attempt that failed after writing (or sending a write): the next
/// attempt goes on, and may find those writes done.
const INTERRUPTED: &str = "interrupted";

fn audit_entry(plan: &SyncPlan, outcome: SyncOutcome) -> AuditEntry {
    let (catalog_version, content_hash) = match plan {
        SyncPlan::Upsert(d) => (Some(d.catalog_version), Some(d.content_hash.clone())),
        SyncPlan::Archive { .. } => (None, None),
    };
    AuditEntry {
        product_id: plan.catalog_id().to_string(),
        catalog_version,
        content_hash,
        outcome: outcome.as_str().to_string(),
        ..AuditEntry::default()
    }
}

/// No attempt follows this one: the error is final, or the retry policy's attempts are used up.
fn is_final_attempt(ctx: &ActivityContext, retryable: bool) -> bool {
    let info = ctx.info();
    let max = info
        .retry_policy
        .as_ref()
        .map_or(0, |policy| policy.maximum_attempts());
    !retryable || (max > 0 && info.attempt >= max)
}
