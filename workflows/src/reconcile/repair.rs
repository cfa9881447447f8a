//! One repair: a `ProductSync` child under the product's own workflow id (or a signal to the
//! live sync holding it), and how its outcome counts.

use temporalio_sdk::{
    ChildWorkflowOptions, ChildWorkflowStartError, ParentClosePolicy, SignalWorkflowOptions,
    StartChildWorkflowExecutionFailedCause, WorkflowContext,
};

use super::{ReconcileCatalog, ReconcileTotals, RepairFailure};
use crate::drift::{Drift, DriftKind};
use crate::product_sync::{ProductChanged, ProductSync, ProductSyncInput, SyncOutcome};

/// What became of one repair.
pub(super) enum RepairOutcome {
    Finished {
        catalog_id: String,
        kind: DriftKind,
        outcome: SyncOutcome,
        stripe_requests: u32,
        error: Option<String>,
    },
    HandedToLiveSync,
    Failed {
        catalog_id: String,
        reason: String,
    },
}

/// One repair: a `ProductSync` child under the product's own workflow id in `catalog` (the
/// legacy id for reconciliations planned before catalog-scoped ids), or a signal to the live one
/// that holds that id.
pub(super) async fn repair(
    ctx: &WorkflowContext<ReconcileCatalog>,
    drift: Drift,
    catalog: Option<String>,
    approve_archives: bool,
) -> RepairOutcome {
    let workflow_id = match catalog {
        Some(catalog) => crate::product_sync_id(&catalog, &drift.catalog_id),
        None => crate::legacy_product_sync_id(&drift.catalog_id),
    };
    let options = ChildWorkflowOptions::builder()
        .workflow_id(workflow_id.clone())
        .parent_close_policy(ParentClosePolicy::Abandon)
        .static_summary(format!("reconcile: {}", drift.kind.as_str()))
        .build();
    let input = ProductSyncInput {
        catalog_id: drift.catalog_id.clone(),
        drift: Some(drift.kind),
        // The run's archive guard has passed (or was lifted) when an archive reaches a repair.
        archive_approved: approve_archives && drift.kind.archives(),
        ..ProductSyncInput::default()
    };
    match ctx
        .start_child_workflow(ProductSync::run, input, options)
        .await
    {
        Ok(started) => match started.result().await {
            Ok(result) => RepairOutcome::Finished {
                catalog_id: drift.catalog_id,
                kind: drift.kind,
                outcome: result.outcome,
                stripe_requests: result.report.stripe_requests,
                error: result.error.or(result.report.archive_held),
            },
            Err(e) => RepairOutcome::Failed {
                catalog_id: drift.catalog_id,
                reason: e.to_string(),
            },
        },
        Err(ChildWorkflowStartError::StartFailed {
            cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
            ..
        }) => {
            let change = ProductChanged {
                catalog_version: None,
                source: "reconcile".to_string(),
            };
            match ctx
                .external_workflow(workflow_id, None)
                .signal(
                    ProductSync::product_changed,
                    change,
                    SignalWorkflowOptions::default(),
                )
                .await
            {
                Ok(()) => RepairOutcome::HandedToLiveSync,
                // It finished between the start attempt and the signal: its last pass read a
                // version at least as new as the one this page compared.
                Err(_) => RepairOutcome::HandedToLiveSync,
            }
        }
        Err(e) => RepairOutcome::Failed {
            catalog_id: drift.catalog_id,
            reason: e.to_string(),
        },
    }
}

/// Counts one finished repair into `totals`.
pub(super) fn record(totals: &mut ReconcileTotals, outcome: RepairOutcome, sample_size: usize) {
    let fail = |totals: &mut ReconcileTotals, catalog_id: String, reason: String| {
        totals.failed += 1;
        if totals.failures.len() < sample_size {
            totals.failures.push(RepairFailure { catalog_id, reason });
        }
    };
    match outcome {
        RepairOutcome::HandedToLiveSync => totals.handed_to_live_sync += 1,
        RepairOutcome::Failed { catalog_id, reason } => fail(totals, catalog_id, reason),
        RepairOutcome::Finished {
            catalog_id,
            kind,
            outcome,
            stripe_requests,
            error,
        } => {
            totals.stripe_requests += u64::from(stripe_requests);
            totals.repair_stripe_requests += u64::from(stripe_requests);
            match outcome {
                SyncOutcome::Synced => totals.repaired += 1,
                SyncOutcome::Archived => {
                    totals.repaired += 1;
                    if kind == DriftKind::Orphan {
                        totals.orphans_archived += 1;
                    }
                }
                SyncOutcome::Unchanged => totals.already_repaired += 1,
                SyncOutcome::SkippedUnmanaged => totals.unmanaged += 1,
                SyncOutcome::SkippedOtherCatalog => totals.other_catalog += 1,
                SyncOutcome::ArchiveHeld => fail(
                    totals,
                    catalog_id,
                    error.unwrap_or_else(|| "the archive was held".into()),
                ),
                SyncOutcome::Invalid => totals.invalid += 1,
                SyncOutcome::Failed => fail(
                    totals,
                    catalog_id,
                    error.unwrap_or_else(|| "Stripe refused the repair".into()),
                ),
            }
        }
    }
}
