//! The activity implementations.

use std::sync::Arc;

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::Instrument;
use workflows::activities::{
    CountInput, FetchInput, FetchOutput, OrphanPageInput, OrphanPageOutput, ReconcilePageInput,
    ReconcilePageOutput, TransformInput, TransformOutput, UpsertInput, UpsertReport,
    definitions as sync_activities,
};

use catalog::Catalog;
use workflows::SyncOutcome;
use workflows::model::SyncPlan;
use workflows::reconcile::DriftKind;

use crate::error::SyncError;
use crate::metrics::Metrics;
use crate::stripe::StripeClient;
use crate::{reconcile, transform, upsert};

/// The activity implementations with their dependencies.
pub struct SyncActivitiesImpl {
    catalog: Catalog,
    stripe: StripeClient,
    metrics: Option<Metrics>,
}

impl SyncActivitiesImpl {
    /// Holds the catalog pool and the Stripe client.
    pub fn new(catalog: Catalog, stripe: StripeClient) -> Self {
        Self {
            catalog,
            stripe,
            metrics: None,
        }
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
            let product = self
                .catalog
                .fetch_product(&input.catalog_id)
                .await
                .map_err(|e| failed(SyncError::from(e)))?;
            Ok(FetchOutput { product })
        }
        .instrument(span)
        .await
    }

    /// `TransformProduct`.
    #[activity(definition = sync_activities::TransformProduct)]
    pub async fn transform_product(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: TransformInput,
    ) -> Result<TransformOutput, ActivityError> {
        let out = transform::transform(&input.catalog_id, input.product.as_ref());
        if matches!(out, TransformOutput::Invalid(_)) {
            self.count_outcome(SyncOutcome::Invalid);
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
            match upsert::apply(&self.stripe, &input.plan).await {
                Ok(report) => {
                    self.count_outcome(report.outcome(archiving));
                    Ok(report)
                }
                Err(e) => {
                    if !e.is_retryable() {
                        self.count_outcome(SyncOutcome::Failed);
                    }
                    Err(failed(SyncError::from(e)))
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
            let out = reconcile::page(&self.catalog, &self.stripe, &input)
                .await
                .map_err(failed)?;
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

    /// `ReconcileOrphanPage`.
    #[activity(definition = sync_activities::ReconcileOrphanPage)]
    pub async fn reconcile_orphan_page(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: OrphanPageInput,
    ) -> Result<OrphanPageOutput, ActivityError> {
        let span = activity_span(&ctx, "orphans");
        async {
            let out = reconcile::orphan_page(&self.catalog, &self.stripe, &input)
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
        attempt = info.attempt,
    )
}

/// Logs the failure (inside the activity's span) and maps it explicitly.
fn failed(e: SyncError) -> ActivityError {
    tracing::warn!(error = %e, "activity attempt failed");
    e.into_activity_error()
}
