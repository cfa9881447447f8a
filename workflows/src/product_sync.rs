//! `ProductSync`: one workflow per catalog product (`product-sync-{catalog id}`), started by
//! signal-with-start. Changes that arrive while a pass runs are coalesced into exactly one more
//! pass on the newest version, so one product never has two writers.
//!
//! A pass is: fetch (local activity) → transform (local activity, pure) → upsert (activity). Fetch
//! and transform run as local activities because they are short and local to the worker: each adds
//! one marker event instead of three events and a workflow task, which keeps a live sync within
//! 15 history events (the last one sets the search attributes). The upsert talks to Stripe and is
//! a regular activity so that its retries are durable, on the Stripe task queue whose server-side
//! rate limit keeps all workers inside the account's budget (see [`crate::queues`]). A live edit's
//! upsert goes ahead of reconciliation's repairs there.
//!
//! Changes that arrive during a pass settle before the next pass (no new one for [`SETTLE`], at
//! most [`MAX_SETTLE`]), so a burst costs two writes, not one per pass.

use serde::{Deserialize, Serialize};
use temporalio_common::error::ActivityExecutionError;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::activities::{
    FetchInput, SyncActivities, TransformInput, TransformOutput, UpsertInput, UpsertReport,
};
use crate::drift::DriftKind;
use crate::input::{LenientInput, invalid_workflow_input};
use crate::model::{SyncPlan, ValidationIssue};
use crate::queues;
use crate::retry::RetryConfig;
use crate::search;

/// Input of `ProductSync`. Every field has a default, so `{"catalog_id": "sku-1"}` from the
/// `temporal` CLI is enough, and a bare JSON string is taken as the catalog id. Any other input,
/// or none at all, is accepted by the decoder and turned into a clear workflow failure, rather
/// than a workflow task that fails and retries forever (see [`crate::input`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProductSyncInput {
    /// The catalog id of the product to sync.
    pub catalog_id: String,
    /// Continue-as-new after this many passes in one run (0 = the default of 50), bounding history
    /// for a product that changes without pause.
    pub max_passes_per_run: u32,
    /// Carried over continue-as-new: changes arrived that the next run must still sync.
    pub pending_changes: u32,
    /// The drift a reconciliation started this repair for (set as the `DriftKind` search
    /// attribute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftKind>,
    /// An archive this run makes is approved: by a reconciliation within its archive guard (or
    /// confirmed with `allow_mass_archive`). Without it, a live archive takes a share of the live
    /// archive budget or is held for confirmation (see `catalog::guard`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub archive_approved: bool,
    /// Why the input could not be used, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_input: Option<String>,
}

impl LenientInput for ProductSyncInput {
    const EXAMPLE: &'static str = r#"{"catalog_id": "sku-000001"}"#;

    fn invalid(why: String) -> Self {
        Self {
            invalid_input: Some(why),
            ..Self::default()
        }
    }

    fn from_json(value: serde_json::Value) -> Self {
        use serde_json::Value;
        let invalid = Self::invalid;
        let count = |map: &serde_json::Map<String, Value>, key: &str| match map.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("`{key}` must be a non-negative integer, got {v}")),
        };
        match value {
            Value::String(catalog_id) => Self {
                catalog_id,
                ..Self::default()
            },
            Value::Object(map) => {
                let catalog_id = match map.get("catalog_id") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(id)) => id.clone(),
                    Some(other) => {
                        return invalid(format!("`catalog_id` must be a string, got {other}"));
                    }
                };
                let drift = match map.get("drift") {
                    None | Some(Value::Null) => None,
                    Some(kind) => match serde_json::from_value::<DriftKind>(kind.clone()) {
                        Ok(kind) => Some(kind),
                        Err(_) => {
                            return invalid(format!(
                                "`drift` must be a drift kind such as \"stale\", got {kind}"
                            ));
                        }
                    },
                };
                let archive_approved = match map.get("archive_approved") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(approved)) => *approved,
                    Some(other) => {
                        return invalid(format!(
                            "`archive_approved` must be true or false, got {other}"
                        ));
                    }
                };
                match (
                    count(&map, "max_passes_per_run"),
                    count(&map, "pending_changes"),
                ) {
                    (Ok(max_passes_per_run), Ok(pending_changes)) => Self {
                        catalog_id,
                        max_passes_per_run,
                        pending_changes,
                        drift,
                        archive_approved,
                        invalid_input: None,
                    },
                    (Err(why), _) | (_, Err(why)) => invalid(why),
                }
            }
            other => invalid(format!(
                "expected {{\"catalog_id\": \"…\"}} or a catalog id string, got {other}"
            )),
        }
    }
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
    /// A Stripe product with this id belongs to another catalog (or to none yet: `starter
    /// adopt`): left alone.
    SkippedOtherCatalog,
    /// The archive would exceed the live archive budget: held until an operator confirms it
    /// (`starter archives confirm`); nothing was written.
    ArchiveHeld,
    /// Stripe refused the change for good (e.g. a 4xx); the reason is in `error`.
    Failed,
}

impl SyncOutcome {
    /// Every outcome (the metrics start each at 0).
    pub const ALL: [SyncOutcome; 8] = [
        Self::Synced,
        Self::Unchanged,
        Self::Invalid,
        Self::Archived,
        Self::SkippedUnmanaged,
        Self::SkippedOtherCatalog,
        Self::ArchiveHeld,
        Self::Failed,
    ];

    /// The value used in logs and search attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "synced",
            Self::Unchanged => "unchanged",
            Self::Invalid => "invalid",
            Self::Archived => "archived",
            Self::SkippedUnmanaged => "skipped_unmanaged",
            Self::SkippedOtherCatalog => "skipped_other_catalog",
            Self::ArchiveHeld => "archive_held",
            Self::Failed => "failed",
        }
    }
}

impl UpsertReport {
    /// The outcome of a pass whose upsert reported this (`archiving`: the plan was an archive).
    pub fn outcome(&self, archiving: bool) -> SyncOutcome {
        if self.skipped_unmanaged {
            SyncOutcome::SkippedUnmanaged
        } else if self.other_catalog.is_some() {
            SyncOutcome::SkippedOtherCatalog
        } else if self.archive_held.is_some() {
            SyncOutcome::ArchiveHeld
        } else if self.unchanged {
            SyncOutcome::Unchanged
        } else if archiving || self.archived {
            SyncOutcome::Archived
        } else {
            SyncOutcome::Synced
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
    /// Why the sync failed, when it did.
    pub error: Option<String>,
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
    retry: RetryConfig,
    versioned: bool,
    pending_changes: u32,
    passes: u32,
    last_outcome: Option<SyncOutcome>,
    /// The last fetch said the namespace has catalog-sync's search attributes.
    search_attributes: bool,
    /// A change was signalled (a live edit), so even a reconciliation's repair now syncs at live
    /// priority.
    live_change: bool,
}

impl ProductSync {
    /// A fresh instance with the worker's activity settings (for `register_workflow_with_factory`).
    pub fn with_retry(retry: RetryConfig) -> Self {
        Self {
            retry,
            ..Self::default()
        }
    }

    /// Whether the worker runs it under Worker Deployment Versioning (see
    /// `crate::next_run_options`).
    pub fn on_versioned_workers(mut self, versioned: bool) -> Self {
        self.versioned = versioned;
        self
    }
}

const DEFAULT_MAX_PASSES: u32 = 50;

/// Changes arrived during a pass: wait until none arrives for this long before the next pass, so
/// that a burst of edits costs one more write instead of one per pass.
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(500);
/// …but never longer than this, so a product edited without pause still syncs regularly.
pub const MAX_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);
/// Histories recorded before the settle step replay without it.
const SETTLE_PATCH: &str = "settle-between-passes";

#[workflow_methods]
impl ProductSync {
    /// Runs passes until no change is pending.
    #[run(name = "ProductSync")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: ProductSyncInput,
    ) -> WorkflowResult<ProductSyncResult> {
        if let Some(why) = &input.invalid_input {
            return Err(invalid_workflow_input(why.clone()));
        }
        if input.catalog_id.trim().is_empty() {
            return Err(invalid_workflow_input(
                "ProductSync needs a non-empty `catalog_id`".into(),
            ));
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
            let priority = if input.drift.is_some() && !ctx.state(|s| s.live_change) {
                queues::RECONCILE_PRIORITY
            } else {
                queues::LIVE_PRIORITY
            };
            let result = sync_pass(ctx, &input, priority).await?;
            let passes = ctx.state_mut(|s| {
                s.passes += 1;
                s.last_outcome = Some(result.outcome);
                s.passes
            });
            let pending = ctx.state(|s| s.pending_changes);
            if pending == 0 {
                if ctx.state(|s| s.search_attributes) {
                    set_search_attributes(ctx, &input, result.outcome);
                }
                return Ok(ProductSyncResult { passes, ..result });
            }
            if passes >= max_passes || ctx.continue_as_new_suggested() {
                // A repair that received a live change goes on as a live sync (live priority).
                let live = ctx.state(|s| s.live_change);
                ctx.continue_as_new(
                    ProductSyncInput {
                        pending_changes: pending,
                        drift: input.drift.filter(|_| !live),
                        archive_approved: input.archive_approved && !live,
                        ..input.clone()
                    },
                    crate::next_run_options(ctx.state(|s| s.versioned)),
                )?;
            }
            if ctx.patched(SETTLE_PATCH) {
                settle(ctx).await;
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
        self.live_change = true;
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

/// `CatalogProductId`, `SyncOutcome` and (for a reconciliation's repair) `DriftKind`, in the command
/// that completes the run.
fn set_search_attributes(
    ctx: &mut WorkflowContext<ProductSync>,
    input: &ProductSyncInput,
    outcome: SyncOutcome,
) {
    let mut updates = vec![
        search::CATALOG_PRODUCT_ID.value_set(input.catalog_id.clone()),
        search::SYNC_OUTCOME.value_set(outcome.as_str().to_string()),
    ];
    if let Some(drift) = input.drift {
        updates.push(search::DRIFT_KIND.value_set(drift.as_str().to_string()));
    }
    ctx.upsert_search_attributes(updates);
}

/// Waits in steps of [`SETTLE`] until a step passes without a new change, or [`MAX_SETTLE`].
async fn settle(ctx: &mut WorkflowContext<ProductSync>) {
    let mut waited = std::time::Duration::ZERO;
    loop {
        let seen = ctx.state(|s| s.pending_changes);
        ctx.timer(SETTLE).await;
        waited += SETTLE;
        if ctx.state(|s| s.pending_changes) == seen || waited >= MAX_SETTLE {
            return;
        }
    }
}

/// One fetch → transform → upsert pass; the upsert's Stripe task has priority key `priority`.
async fn sync_pass(
    ctx: &mut WorkflowContext<ProductSync>,
    input: &ProductSyncInput,
    priority: u32,
) -> WorkflowResult<ProductSyncResult> {
    let catalog_id = input.catalog_id.as_str();
    let retry = ctx.state(|s| s.retry.clone());
    let fetched = ctx
        .execute_local_activity(
            SyncActivities::fetch_product,
            FetchInput {
                catalog_id: catalog_id.to_string(),
            },
            retry.fetch_options(),
        )
        .await?;
    let catalog_version = fetched.product.as_ref().map_or(0, |p| p.version);
    ctx.state_mut(|s| s.search_attributes = fetched.search_attributes);
    if !fetched.corrupt.is_empty() {
        return Ok(ProductSyncResult {
            catalog_id: catalog_id.to_string(),
            outcome: SyncOutcome::Invalid,
            issues: fetched.corrupt,
            ..Default::default()
        });
    }
    let transformed = ctx
        .execute_local_activity(
            SyncActivities::transform_product,
            TransformInput {
                catalog_id: catalog_id.to_string(),
                product: fetched.product,
            },
            retry.transform_options(),
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
    let report = match ctx
        .execute_activity(
            SyncActivities::upsert_product,
            UpsertInput {
                plan,
                archive_approved: input.archive_approved,
            },
            queues::on_stripe_queue(retry.upsert_options(), ctx.task_queue(), priority),
        )
        .await
    {
        Ok(report) => report,
        // A final failure (non-retryable, or retries exhausted) is this pass's outcome.
        Err(ActivityExecutionError::Failed(failure)) => {
            let reason = match failure.cause() {
                Some(cause) => cause.to_string(),
                None => failure.to_string(),
            };
            return Ok(ProductSyncResult {
                catalog_id: catalog_id.to_string(),
                outcome: SyncOutcome::Failed,
                catalog_version,
                error: Some(reason),
                ..Default::default()
            });
        }
        Err(other) => return Err(other.into()),
    };
    let outcome = report.outcome(archiving);
    Ok(ProductSyncResult {
        catalog_id: catalog_id.to_string(),
        outcome,
        catalog_version,
        report,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ProductSyncInput {
        ProductSyncInput::from_json(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn input_is_tolerant_and_never_fails_to_decode() {
        assert_eq!(parse(r#"{"catalog_id": "sku-1"}"#).catalog_id, "sku-1");
        assert_eq!(parse(r#""sku-2""#).catalog_id, "sku-2");
        let full = parse(
            r#"{"catalog_id": "a", "max_passes_per_run": 3, "pending_changes": 1, "extra": true}"#,
        );
        assert_eq!((full.max_passes_per_run, full.pending_changes), (3, 1));
        assert_eq!(parse("{}").catalog_id, "");
        assert_eq!(
            parse(r#"{"catalog_id": "a", "drift": "edited_in_stripe"}"#).drift,
            Some(DriftKind::EditedInStripe),
            "repairs recorded with the drift as a string decode to the typed kind"
        );
        for bad in [
            "42",
            "[1]",
            "null",
            r#"{"catalog_id": 7}"#,
            r#"{"catalog_id": "a", "pending_changes": -1}"#,
            r#"{"catalog_id": "a", "drift": "nonsense"}"#,
            r#"{"catalog_id": "a", "drift": 3}"#,
        ] {
            assert!(parse(bad).invalid_input.is_some(), "{bad}");
        }
        let round = serde_json::to_string(&full).unwrap();
        assert_eq!(
            parse(&round),
            full,
            "continue-as-new input survives a round trip"
        );
    }
}
