//! `ProductSync`: one workflow per catalog product (`product-sync-{catalog id}`), started by
//! signal-with-start. Changes that arrive while a pass runs are coalesced into exactly one more
//! pass on the newest version, so one product never has two writers.
//!
//! A pass is: fetch (local activity) → transform (local activity, pure) → upsert (activity). Fetch
//! and transform run as local activities because they are short and local to the worker: each adds
//! one marker event instead of three events and a workflow task, which keeps a live sync within
//! about 14 history events. The upsert talks to Stripe and is a regular activity so that its
//! retries are durable and its task queue can carry a server-side rate limit.

use serde::{Deserialize, Serialize};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::activities::{
    FetchInput, SyncActivities, TransformInput, TransformOutput, UpsertInput, UpsertReport,
};
use crate::model::{SyncPlan, ValidationIssue};
use crate::retry;

/// Input of `ProductSync`. Every field has a default, so `{"catalog_id": "sku-1"}` from the
/// `temporal` CLI is enough.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductSyncInput {
    /// The catalog id of the product to sync.
    pub catalog_id: String,
    /// Continue-as-new after this many passes in one run (0 = the default of 50), bounding history
    /// for a product that changes without pause.
    pub max_passes_per_run: u32,
    /// Carried over continue-as-new: changes arrived that the next run must still sync.
    pub pending_changes: u32,
}

/// The signal that tells a sync that the product changed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductChanged {
    /// The catalog version that caused the signal, if known (informational: each pass reads the
    /// newest version anyway).
    pub catalog_version: Option<i64>,
    /// Where the change came from (`starter`, `outbox`, `webhook`, `reconcile`).
    pub source: String,
}

/// How a sync ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// Stripe was changed to match the catalog.
    Synced,
    /// Stripe already matched: no writes.
    #[default]
    Unchanged,
    /// The catalog product is invalid; reasons are in `issues`.
    Invalid,
    /// The product was archived in Stripe.
    Archived,
    /// A Stripe product with this id exists but was not created by catalog-sync: left alone.
    SkippedUnmanaged,
}

impl SyncOutcome {
    /// The value used in logs and search attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "synced",
            Self::Unchanged => "unchanged",
            Self::Invalid => "invalid",
            Self::Archived => "archived",
            Self::SkippedUnmanaged => "skipped_unmanaged",
        }
    }
}

/// Result of `ProductSync`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductSyncResult {
    /// The catalog id.
    pub catalog_id: String,
    /// Outcome of the last pass.
    pub outcome: SyncOutcome,
    /// Passes run in this workflow run.
    pub passes: u32,
    /// Catalog version the last pass synced (0 when the row is gone).
    pub catalog_version: i64,
    /// Why the product is invalid, when it is.
    pub issues: Vec<ValidationIssue>,
    /// What the last upsert did.
    pub report: UpsertReport,
}

/// Progress visible through the `status` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductSyncStatus {
    /// Changes signalled and not yet picked up by a pass.
    pub pending_changes: u32,
    /// Passes completed in this run.
    pub passes: u32,
    /// Outcome of the last completed pass.
    pub last_outcome: Option<SyncOutcome>,
}

/// The per-product sync workflow.
#[workflow]
#[derive(Default)]
pub struct ProductSync {
    pending_changes: u32,
    passes: u32,
    last_outcome: Option<SyncOutcome>,
}

const DEFAULT_MAX_PASSES: u32 = 50;

#[workflow_methods]
impl ProductSync {
    /// Runs passes until no change is pending.
    #[run(name = "ProductSync")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: ProductSyncInput,
    ) -> WorkflowResult<ProductSyncResult> {
        if input.catalog_id.trim().is_empty() {
            return Err(
                ApplicationFailure::builder("ProductSync needs a non-empty `catalog_id`")
                    .type_name("InvalidWorkflowInput".to_string())
                    .non_retryable(true)
                    .build()
                    .into(),
            );
        }
        let max_passes = match input.max_passes_per_run {
            0 => DEFAULT_MAX_PASSES,
            n => n,
        };
        ctx.state_mut(|s| s.pending_changes += input.pending_changes);
        loop {
            // Everything signalled so far is covered by the pass about to start: it reads the
            // newest version.
            ctx.state_mut(|s| s.pending_changes = 0);
            let result = sync_pass(ctx, &input.catalog_id).await?;
            let passes = ctx.state_mut(|s| {
                s.passes += 1;
                s.last_outcome = Some(result.outcome);
                s.passes
            });
            let pending = ctx.state(|s| s.pending_changes);
            if pending == 0 {
                return Ok(ProductSyncResult { passes, ..result });
            }
            if passes >= max_passes || ctx.continue_as_new_suggested() {
                ctx.continue_as_new(
                    ProductSyncInput {
                        pending_changes: pending,
                        ..input.clone()
                    },
                    ContinueAsNewOptions::default(),
                )?;
            }
        }
    }

    /// A change happened: run one more pass after the current one.
    #[signal(name = "product_changed")]
    pub fn product_changed(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        _change: ProductChanged,
    ) {
        self.pending_changes += 1;
    }

    /// Where the sync stands.
    #[query(name = "status")]
    pub fn status(&self, _ctx: &WorkflowContextView) -> ProductSyncStatus {
        ProductSyncStatus {
            pending_changes: self.pending_changes,
            passes: self.passes,
            last_outcome: self.last_outcome,
        }
    }
}

/// One fetch → transform → upsert pass.
async fn sync_pass(
    ctx: &mut WorkflowContext<ProductSync>,
    catalog_id: &str,
) -> WorkflowResult<ProductSyncResult> {
    let fetched = ctx
        .execute_local_activity(
            SyncActivities::fetch_product,
            FetchInput {
                catalog_id: catalog_id.to_string(),
            },
            retry::fetch_options(),
        )
        .await?;
    let catalog_version = fetched.product.as_ref().map_or(0, |p| p.version);
    let transformed = ctx
        .execute_local_activity(
            SyncActivities::transform_product,
            TransformInput {
                catalog_id: catalog_id.to_string(),
                product: fetched.product,
            },
            retry::transform_options(),
        )
        .await?;
    let plan = match transformed {
        TransformOutput::Invalid(issues) => {
            return Ok(ProductSyncResult {
                catalog_id: catalog_id.to_string(),
                outcome: SyncOutcome::Invalid,
                catalog_version,
                issues,
                ..Default::default()
            });
        }
        TransformOutput::Plan(plan) => *plan,
    };
    let archiving = matches!(plan, SyncPlan::Archive { .. });
    let report = ctx
        .execute_activity(
            SyncActivities::upsert_product,
            UpsertInput { plan },
            retry::upsert_options(),
        )
        .await?;
    let outcome = if report.skipped_unmanaged {
        SyncOutcome::SkippedUnmanaged
    } else if report.unchanged {
        SyncOutcome::Unchanged
    } else if archiving || report.archived {
        SyncOutcome::Archived
    } else {
        SyncOutcome::Synced
    };
    Ok(ProductSyncResult {
        catalog_id: catalog_id.to_string(),
        outcome,
        catalog_version,
        report,
        ..Default::default()
    })
}
