//! The activity implementations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::Instrument;
use workflows::activities::{
    CountInput, EventCursor, EventsPageInput, EventsPageOutput, FetchInput, FetchOutput,
    OrphanPageInput, OrphanPageOutput, PlanInput, PlanOutput, PricePageInput, PricePageOutput,
    ReconcilePageInput, ReconcilePageOutput, ScanPageInput, ScanPageOutput, TransformInput,
    TransformOutput, UpsertInput, UpsertReport, definitions as sync_activities,
};

use catalog::{ArchiveBudget, AuditEntry, Catalog, CatalogError};
use workflows::SyncOutcome;
use workflows::model::{SyncPlan, ValidationIssue};
use workflows::reconcile::DriftKind;

use crate::error::SyncError;
use crate::{mirror, reconcile, upsert};
use common::legacy_syncs::LegacySyncs;
use common::metrics::Metrics;
use domain::ownership::Ownership;
use domain::transform;
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

#[activities]
impl SyncActivitiesImpl {
    /// `FetchProduct`.
    #[activity(definition = sync_activities::FetchProduct)]
    pub async fn fetch_product(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: FetchInput,
    ) -> Result<FetchOutput, ActivityError> {
        let span = activity_span(&ctx, &input.catalog_id);
        async {
            self.may_run_here(&ctx).await.map_err(failed)?;
            let search_attributes = self.search_attributes.load(Ordering::Relaxed);
            match self.catalog.fetch_product(&input.catalog_id).await {
                Ok(product) => Ok(FetchOutput {
                    product,
                    search_attributes,
                    corrupt: Vec::new(),
                }),
                // Data, not a failure: the sync reports the product invalid, naming the column.
                Err(CatalogError::Corrupt { field, reason, .. }) => {
                    tracing::warn!(field = %field, reason = %reason, "catalog row cannot be read; not synced");
                    self.count_outcome(SyncOutcome::Invalid);
                    let entry = AuditEntry {
                        product_id: input.catalog_id.clone(),
                        outcome: SyncOutcome::Invalid.as_str().to_string(),
                        detail: Some(format!("row unreadable: {field} {reason}")),
                        ..AuditEntry::default()
                    };
                    self.audit(&ctx, entry).await;
                    Ok(FetchOutput {
                        product: None,
                        search_attributes,
                        corrupt: vec![ValidationIssue {
                            reason: format!("row unreadable: {field} {reason}"),
                            field,
                        }],
                    })
                }
                Err(e) => Err(failed(SyncError::from(e))),
            }
        }
        .instrument(span)
        .await
    }

    /// `TransformProduct`.
    #[activity(definition = sync_activities::TransformProduct)]
    pub async fn transform_product(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TransformInput,
    ) -> Result<TransformOutput, ActivityError> {
        let out = transform::transform(&input.catalog_id, input.product.as_ref());
        if let TransformOutput::Invalid(issues) = &out {
            self.count_outcome(SyncOutcome::Invalid);
            let reasons: Vec<String> = issues.iter().map(ToString::to_string).collect();
            let entry = AuditEntry {
                product_id: input.catalog_id.clone(),
                catalog_version: input.product.as_ref().map(|p| p.version),
                outcome: SyncOutcome::Invalid.as_str().to_string(),
                detail: Some(reasons.join("; ")),
                ..AuditEntry::default()
            };
            self.audit(&ctx, entry).await;
        }
        Ok(out)
    }

    /// `UpsertProduct`.
    #[activity(definition = sync_activities::UpsertProduct)]
    pub async fn upsert_product(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: UpsertInput,
    ) -> Result<UpsertReport, ActivityError> {
        let span = activity_span(&ctx, input.plan.catalog_id());
        async {
            let archiving = matches!(input.plan, SyncPlan::Archive { .. });
            // Every attempt of this activity execution is one intent: its keys replay; the next
            // sync's are new.
            let info = ctx.info();
            let intent_id = format!(
                "{}/{}/{}",
                info.workflow_id.as_deref().unwrap_or("-"),
                info.workflow_run_id.as_deref().unwrap_or("-"),
                info.activity_id
            );
            // Only the order of the upsert's reads depends on the mirror.
            let likely_in_stripe = self
                .catalog
                .mirror_known_products(std::slice::from_ref(&input.plan.catalog_id().to_string()))
                .await
                .is_ok_and(|known| !known.is_empty());
            let intent = upsert::Intent {
                likely_in_stripe,
                ledger: Some(&self.catalog),
                catalog: &self.identity,
                archives: if input.archive_approved {
                    upsert::ArchiveGate::Approved(&self.catalog)
                } else {
                    upsert::ArchiveGate::Budget(&self.catalog, &self.archive_budget)
                },
                keys: &self.write_keys,
                id: &intent_id,
                minted: info.scheduled_time.unwrap_or_else(std::time::SystemTime::now),
            };
            let (applied, result) =
                upsert::apply_recorded(&self.stripe, intent, &input.plan, &self.ownership).await;
            match result {
                Ok(()) => {
                    let (report, seen) = (applied.report, applied.seen);
                    // A cache: a sync never fails for it (the next scan rewrites it).
                    if let Err(e) = mirror::record(&self.catalog, &seen).await {
                        tracing::warn!(error = %e, "mirror of Stripe's state not updated");
                    }
                    let outcome = report.outcome(archiving);
                    self.count_outcome(outcome);
                    if let Some(why) = &report.other_catalog {
                        tracing::warn!(reason = %why, "Stripe product is not this catalog's; not synced");
                    }
                    let entry = AuditEntry {
                        operations: report.operations.clone(),
                        request_ids: report.request_ids.clone(),
                        detail: report.other_catalog.clone().or(report.archive_held.clone()),
                        ..audit_entry(&input.plan, outcome)
                    };
                    self.audit(&ctx, entry).await;
                    Ok(report)
                }
                Err(e) => {
                    // What the attempt wrote before it failed is in Stripe (a retry finds it done
                    // and writes nothing): the ledger records it with this attempt.
                    let (report, seen) = (&applied.report, &applied.seen);
                    if let Err(e) = mirror::record(&self.catalog, seen).await {
                        tracing::warn!(error = %e, "mirror of Stripe's state not updated");
                    }
                    let unanswered = applied.unanswered.as_deref().map(|op| {
                        format!("; sent without an answer (Stripe may have applied it): {op}")
                    });
                    let detail = format!("{e}{}", unanswered.unwrap_or_default());
                    let wrote = !report.operations.is_empty() || applied.unanswered.is_some();
                    let outcome = if is_final_attempt(&ctx, e.is_retryable()) {
                        self.count_outcome(SyncOutcome::Failed);
                        Some(SyncOutcome::Failed.as_str())
                    } else {
                        wrote.then_some(INTERRUPTED)
                    };
                    if let Some(outcome) = outcome {
                        let entry = AuditEntry {
                            outcome: outcome.to_string(),
                            operations: report.operations.clone(),
                            request_ids: report.request_ids.clone(),
                            detail: Some(detail),
                            ..audit_entry(&input.plan, SyncOutcome::Failed)
                        };
                        self.audit(&ctx, entry).await;
                    }
                    Err(failed(e))
                }
            }
        }
        .instrument(span)
        .await
    }

    /// `CountCatalog`.
    #[activity(definition = sync_activities::CountCatalog)]
    pub async fn count_catalog(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CountInput,
    ) -> Result<u64, ActivityError> {
        reconcile::count(&self.catalog, &input)
            .await
            .map_err(failed)
    }

    /// `ReconcilePage`.
    #[activity(definition = sync_activities::ReconcilePage)]
    pub async fn reconcile_page(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ReconcilePageInput,
    ) -> Result<ReconcilePageOutput, ActivityError> {
        let span = activity_span(&ctx, &format!("after {:?}", input.after));
        async {
            let mut out = reconcile::page(
                &self.catalog,
                &self.stripe,
                &input,
                &self.identity,
                &self.ownership,
            )
            .await
            .map_err(failed)?;
            out.search_attributes = self.search_attributes.load(Ordering::Relaxed);
            if let Some(m) = &self.metrics {
                for d in &out.drift {
                    m.drift(d.kind.as_str(), 1);
                }
            }
            tracing::info!(
                scanned = out.scanned,
                in_sync = out.in_sync,
                drift = out.drift.len(),
                invalid = out.invalid.len(),
                stripe_requests = out.stripe_requests,
                "reconciled a catalog page"
            );
            Ok(out)
        }
        .instrument(span)
        .await
    }

    /// `PlanReconcile`.
    #[activity(definition = sync_activities::PlanReconcile)]
    pub async fn plan_reconcile(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: PlanInput,
    ) -> Result<PlanOutput, ActivityError> {
        let span = activity_span(&ctx, "plan");
        async {
            let mut out = reconcile::plan(&self.catalog, &input)
                .await
                .map_err(failed)?;
            // The repairs run under this catalog's workflow ids.
            out.catalog = Some(self.identity.as_str().to_string());
            tracing::info!(method = out.method.as_str(), reason = %out.reason, "reconciliation method");
            Ok(out)
        }
        .instrument(span)
        .await
    }

    /// `ScanStripePage`.
    #[activity(definition = sync_activities::ScanStripePage)]
    pub async fn scan_stripe_page(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ScanPageInput,
    ) -> Result<ScanPageOutput, ActivityError> {
        let span = activity_span(&ctx, "scan");
        async {
            mirror::scan_page(&self.catalog, &self.stripe, &input)
                .await
                .map_err(failed)
        }
        .instrument(span)
        .await
    }

    /// `ReconcileEventsPage`.
    #[activity(definition = sync_activities::ReconcileEventsPage)]
    pub async fn reconcile_events_page(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: EventsPageInput,
    ) -> Result<EventsPageOutput, ActivityError> {
        let span = activity_span(&ctx, &format!("events after {}", input.after));
        async {
            let out = mirror::events_page(
                &self.catalog,
                &self.stripe,
                &input,
                &self.identity,
                &self.ownership,
            )
            .await
            .map_err(failed)?;
            if let Some(m) = &self.metrics {
                for d in &out.drift {
                    m.drift(d.kind.as_str(), 1);
                }
            }
            tracing::info!(
                events = out.events,
                touched = out.scanned,
                drift = out.drift.len(),
                expired = out.expired,
                "applied a page of Stripe events"
            );
            Ok(out)
        }
        .instrument(span)
        .await
    }

    /// `SaveEventCursor`.
    #[activity(definition = sync_activities::SaveEventCursor)]
    pub async fn save_event_cursor(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: EventCursor,
    ) -> Result<(), ActivityError> {
        mirror::save_cursor(&self.catalog, &input)
            .await
            .map_err(failed)
    }

    /// `ReconcileMirrorPage`.
    #[activity(definition = sync_activities::ReconcileMirrorPage)]
    pub async fn reconcile_mirror_page(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ReconcilePageInput,
    ) -> Result<ReconcilePageOutput, ActivityError> {
        let span = activity_span(&ctx, &format!("after {:?}", input.after));
        async {
            let mut out =
                reconcile::mirror_page(&self.catalog, &input, &self.identity, &self.ownership)
                    .await
                    .map_err(failed)?;
            out.search_attributes = self.search_attributes.load(Ordering::Relaxed);
            if let Some(m) = &self.metrics {
                for d in &out.drift {
                    m.drift(d.kind.as_str(), 1);
                }
            }
            Ok(out)
        }
        .instrument(span)
        .await
    }

    /// `ReconcileMirrorOrphanPage`.
    #[activity(definition = sync_activities::ReconcileMirrorOrphanPage)]
    pub async fn reconcile_mirror_orphan_page(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: OrphanPageInput,
    ) -> Result<OrphanPageOutput, ActivityError> {
        let span = activity_span(&ctx, "orphans");
        async {
            let out = reconcile::mirror_orphan_page(&self.catalog, &input, &self.identity)
                .await
                .map_err(failed)?;
            if let Some(m) = &self.metrics {
                m.drift(DriftKind::Orphan.as_str(), out.orphans.len() as u64);
            }
            Ok(out)
        }
        .instrument(span)
        .await
    }

    /// `ReconcilePricePage`.
    #[activity(definition = sync_activities::ReconcilePricePage)]
    pub async fn reconcile_price_page(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: PricePageInput,
    ) -> Result<PricePageOutput, ActivityError> {
        let span = activity_span(&ctx, "extra prices");
        async {
            let out = reconcile::price_page(&self.catalog, &self.stripe, &input, &self.identity)
                .await
                .map_err(failed)?;
            if let Some(m) = &self.metrics {
                m.drift(DriftKind::PriceDrift.as_str(), out.extra.len() as u64);
            }
            Ok(out)
        }
        .instrument(span)
        .await
    }

    /// `ReconcileOrphanPage`.
    #[activity(definition = sync_activities::ReconcileOrphanPage)]
    pub async fn reconcile_orphan_page(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: OrphanPageInput,
    ) -> Result<OrphanPageOutput, ActivityError> {
        let span = activity_span(&ctx, "orphans");
        async {
            let out = reconcile::orphan_page(&self.catalog, &self.stripe, &input, &self.identity)
                .await
                .map_err(failed)?;
            if let Some(m) = &self.metrics {
                m.drift(DriftKind::Orphan.as_str(), out.orphans.len() as u64);
            }
            Ok(out)
        }
        .instrument(span)
        .await
    }
}

/// Every log line of an activity carries the product, the workflow and the attempt.
fn activity_span(ctx: &ActivityContext, catalog_id: &str) -> tracing::Span {
    let info = ctx.info();
    tracing::info_span!(
        "activity",
        kind = %info.activity_type,
        product = %catalog_id,
        workflow_id = info.workflow_id.as_deref().unwrap_or("-"),
        run_id = info.workflow_run_id.as_deref().unwrap_or("-"),
        attempt = info.attempt,
    )
}

/// Logs the failure (inside the activity's span) and maps it explicitly.
fn failed(e: SyncError) -> ActivityError {
    tracing::warn!(error = %e, "activity attempt failed");
    e.into_activity_error()
}
