//! The activities, one method each: the live sync's fetch, transform and upsert, and the
//! reconciliation's pages. Each opens a span, calls the module that does the work and maps its
//! error to Temporal's retryable or non-retryable failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::Instrument;
use workflows::activities::{
    CountInput, EventCursor, EventsPageInput, EventsPageOutput, FetchInput, FetchOutput,
    OrphanPageInput, OrphanPageOutput, PlanInput, PlanOutput, PricePageInput, PricePageOutput,
    ReconcilePageInput, ReconcilePageOutput, ScanPageInput, ScanPageOutput, TransformInput,
    TransformOutput, UpsertInput, UpsertReport, definitions as sync_activities,
};

use catalog::{AuditEntry, CatalogError};
use workflows::SyncOutcome;
use workflows::model::{SyncPlan, ValidationIssue};
use workflows::reconcile::DriftKind;

use crate::error::SyncError;
use crate::{mirror, reconcile, upsert};
use domain::transform;

use super::{INTERRUPTED, SyncActivitiesImpl, audit_entry, is_final_attempt};

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
                .mirror_known_products(std::slice::from_ref(&input.plan.stripe_id().to_string()))
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
                    if let (SyncPlan::Upsert(desired), true) = (&input.plan, applied.catalog_changed) {
                        self.observe_lag(desired, &applied.report);
                    }
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
