//! `ReconcileCatalog`: a full (or scoped) comparison of the catalog with Stripe that repairs every
//! difference it finds. Started by a Temporal Schedule, by `starter reconcile`, or by
//! `temporal workflow start --type ReconcileCatalog`.
//!
//! # How it walks
//! 1. **Catalog phase**: pages of up to 100 products in id order. One `ReconcilePage` activity per
//!    page reads the page from the catalog, lists the same ids from Stripe in one request
//!    (`GET /v1/products?ids[]=…&expand[]=data.default_price`), reads prices only for products
//!    whose default price cannot tell the whole story, and classifies every product.
//! 2. **Orphan phase** (whole-catalog or id-range scope; skipped for `since` backfills): pages of
//!    Stripe's active products; managed ones whose catalog row is gone are orphans.
//!
//! # How it repairs
//! Each drifted product (and, by policy, each orphan) gets a `ProductSync` child with the id a live
//! sync would use (`product-sync-{id}`), so one product never has two writers. If a live sync of the
//! product is running, the start fails with "already exists" and the reconciliation signals that
//! sync instead (`product_changed`, source `reconcile`): its next pass reads the newest catalog
//! version. Children run in a window of `max_in_flight` (default 100, at most 500, as Temporal
//! advises) and with parent-close policy *abandon*, so a cancelled reconciliation never kills a
//! sync that live changes also rely on.
//!
//! # How history stays bounded
//! After `pages_per_run` pages, or as soon as the server suggests it, the run waits for its
//! children, then continues as new with the cursor, the totals and any signalled settings. A run
//! holds at most one page of drift and the window of children, whatever the catalog size.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ChildWorkflowOptions, ChildWorkflowStartError, ContinueAsNewOptions, ParentClosePolicy,
    SignalWorkflowOptions, StartChildWorkflowExecutionFailedCause, SyncWorkflowContext,
    WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::activities::{
    CountInput, OrphanPageInput, PricePageInput, ReconcilePageInput, SyncActivities,
};
pub use crate::drift::{Drift, DriftCounts, DriftKind, InvalidProduct};
use crate::input::{LenientInput, invalid_workflow_input};
use crate::product_sync::{ProductChanged, ProductSync, ProductSyncInput, SyncOutcome};
use crate::queues;
use crate::retry::RetryConfig;

/// Products per catalog page: Stripe lists at most 100 ids per request.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Temporal's advice for the number of children a workflow keeps open at once.
pub const MAX_IN_FLIGHT: u32 = 500;
const DEFAULT_IN_FLIGHT: u32 = 100;
/// Reconciliations recorded before the extra-price phase replay without it.
const EXTRA_PRICES_PATCH: &str = "extra-price-phase";
/// Most pages one run reads before continuing as new (history stays far from Temporal's limits).
pub const MAX_PAGES_PER_RUN: u32 = 200;
/// Most samples of differences, invalid products and failures kept in the result.
pub const MAX_SAMPLE_SIZE: u32 = 1000;
const DEFAULT_PAGES_PER_RUN: u32 = 20;
const DEFAULT_SAMPLE_SIZE: u32 = 20;
/// Continue as new before a run's history grows past this many events, even if the server has
/// not suggested it yet.
const HISTORY_EVENTS_LIMIT: u32 = 10_000;

/// Dry-run only reports; apply repairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileMode {
    /// Repair what differs.
    #[default]
    Apply,
    /// Classify and report; write nothing.
    DryRun,
}

/// What to do with Stripe products catalog-sync manages whose catalog row is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrphanPolicy {
    /// Archive them (in apply mode).
    #[default]
    Archive,
    /// Only count and report them.
    Report,
}

/// A repair that did not succeed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairFailure {
    /// Catalog id.
    pub catalog_id: String,
    /// Why.
    pub reason: String,
}

/// Running totals, carried across continue-as-new.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileTotals {
    /// Catalog products compared.
    pub scanned: u64,
    /// Products that matched.
    pub in_sync: u64,
    /// Differences found, by kind (orphans included).
    pub drift: DriftCounts,
    /// Products whose repair changed Stripe.
    pub repaired: u64,
    /// Products a repair found already fixed (e.g. by a live sync in between).
    pub already_repaired: u64,
    /// Products handed to a live `ProductSync` that was already running.
    pub handed_to_live_sync: u64,
    /// Orphans archived.
    pub orphans_archived: u64,
    /// Repairs that failed (reasons in `failures`).
    pub failed: u64,
    /// Catalog products that cannot be synced (reasons in `invalid_samples` and the worker log).
    pub invalid: u64,
    /// Stripe products with a catalog id that catalog-sync does not manage: never touched.
    pub unmanaged: u64,
    /// Stripe requests made: the reconciliation's reads plus its repairs' reads and writes.
    pub stripe_requests: u64,
    /// Stripe requests made by repairs (a part of `stripe_requests`).
    pub repair_stripe_requests: u64,
    /// A sample of the differences found (at most `sample_size`).
    pub samples: Vec<Drift>,
    /// A sample of the invalid products, with reasons.
    pub invalid_samples: Vec<InvalidProduct>,
    /// A sample of the failed repairs, with reasons.
    pub failures: Vec<RepairFailure>,
}

/// Where a reconciliation is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcilePhase {
    /// Walking the catalog.
    #[default]
    Catalog,
    /// Walking Stripe's active products for orphans.
    Orphans,
    /// Walking Stripe's active prices for ones the catalog does not ask for.
    ExtraPrices,
    /// Finished.
    Done,
}

/// State carried from one run to the next over continue-as-new.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileCarry {
    /// Current phase.
    pub phase: ReconcilePhase,
    /// Last catalog id done (the catalog phase resumes after it).
    pub cursor: String,
    /// Last Stripe product id of the orphan phase (Stripe's `starting_after`).
    pub orphan_cursor: Option<String>,
    /// Last Stripe price id of the extra-price phase (Stripe's `starting_after`).
    pub price_cursor: Option<String>,
    /// Totals so far.
    pub totals: ReconcileTotals,
    /// Runs before this one.
    pub runs: u32,
    /// When the first run started (milliseconds since the epoch, workflow time).
    pub started_at_ms: u64,
    /// Catalog products in scope when the first run started.
    pub estimated_total: u64,
}

/// Input of `ReconcileCatalog`. Every field has a default: `{}` reconciles the whole catalog and
/// repairs. Unknown or mistyped fields end the workflow with `InvalidWorkflowInput` instead of a
/// workflow task that retries forever: decoding never fails, it records why in `invalid_input`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct ReconcileInput {
    /// `apply` (default) or `dry_run`.
    pub mode: ReconcileMode,
    /// First catalog id included.
    pub from: Option<String>,
    /// Last catalog id included.
    pub to: Option<String>,
    /// Only products updated at or after this RFC 3339 time (backfills). No orphan phase.
    pub since: Option<String>,
    /// `archive` (default) or `report`.
    pub orphans: OrphanPolicy,
    /// Products per page, 1..=100 (0 = 100).
    pub page_size: u32,
    /// Pages per run before continuing as new (0 = 20).
    pub pages_per_run: u32,
    /// Repairs running at once, 1..=500 (0 = 100).
    pub max_in_flight: u32,
    /// Differences, invalid products and failures kept as samples (0 = 20).
    pub sample_size: u32,
    /// Carried over continue-as-new; absent on the first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carry: Option<ReconcileCarry>,
    /// Why the input could not be decoded, if it could not (never serialized).
    #[serde(skip)]
    pub invalid_input: Option<String>,
}

impl Serialize for ReconcileInput {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The derived (strict) implementation, generated under `remote = "Self"`.
        ReconcileInput::serialize(self, serializer)
    }
}

impl LenientInput for ReconcileInput {
    fn invalid(why: String) -> Self {
        Self {
            invalid_input: Some(why),
            ..Self::default()
        }
    }

    fn from_json(value: serde_json::Value) -> Self {
        // The derived (strict) implementation, generated under `remote = "Self"`.
        ReconcileInput::deserialize(value)
            .unwrap_or_else(|e| Self::invalid(format!("ReconcileCatalog input: {e}")))
    }
}

impl ReconcileInput {
    fn page_size(&self) -> u32 {
        match self.page_size {
            0 => MAX_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        }
    }

    fn pages_per_run(&self) -> u32 {
        match self.pages_per_run {
            0 => DEFAULT_PAGES_PER_RUN,
            n => n,
        }
    }

    fn sample_size(&self) -> usize {
        match self.sample_size {
            0 => DEFAULT_SAMPLE_SIZE as usize,
            n => n as usize,
        }
    }

    /// Whether the orphan phase runs: it cannot be scoped by update time.
    fn sweeps_orphans(&self) -> bool {
        self.since.is_none()
    }
}

fn clamp_in_flight(n: u32) -> u32 {
    match n {
        0 => DEFAULT_IN_FLIGHT,
        n => n.min(MAX_IN_FLIGHT),
    }
}

/// The `progress` query's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileProgress {
    /// `apply` or `dry_run`.
    pub mode: ReconcileMode,
    /// Current phase.
    pub phase: ReconcilePhase,
    /// Run number (1 = the first; grows with each continue-as-new).
    pub run: u32,
    /// Last catalog id done.
    pub cursor: String,
    /// Catalog products in scope at the start.
    pub estimated_total: u64,
    /// Repairs running now.
    pub in_flight: u32,
    /// The window of repairs.
    pub max_in_flight: u32,
    /// Totals so far (including earlier runs).
    pub totals: ReconcileTotals,
}

/// Result of `ReconcileCatalog`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileResult {
    /// `apply` or `dry_run`.
    pub mode: ReconcileMode,
    /// Everything counted.
    pub totals: ReconcileTotals,
    /// Runs (1 + continue-as-new count).
    pub runs: u32,
    /// Workflow time from the first run's start to the end.
    pub duration_ms: u64,
    /// Ended early by the `stop` signal.
    pub stopped: bool,
}

/// The `stop` signal: read no more pages, finish the repairs already found, then end with the
/// totals so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StopRequest {
    /// Why (logged).
    pub reason: String,
}

/// The `set_max_in_flight` signal: a new repair window (clamped to 1..=500), kept across runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SetMaxInFlight {
    /// The new window.
    pub max_in_flight: u32,
}

/// The reconciliation workflow.
#[workflow]
#[derive(Default)]
pub struct ReconcileCatalog {
    retry: RetryConfig,
    progress: ReconcileProgress,
    stop_requested: bool,
    /// Set by `set_max_in_flight`, which may arrive before the run code starts.
    max_in_flight_override: Option<u32>,
}

impl ReconcileCatalog {
    /// A fresh instance with the worker's activity settings (for `register_workflow_with_factory`).
    pub fn with_retry(retry: RetryConfig) -> Self {
        Self {
            retry,
            ..Self::default()
        }
    }
}

/// What became of one repair.
enum RepairOutcome {
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

type Repair<'a> = Pin<Box<dyn Future<Output = RepairOutcome> + 'a>>;

#[workflow_methods]
impl ReconcileCatalog {
    /// Walks the scope page by page, repairing as it goes.
    #[run(name = "ReconcileCatalog")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: ReconcileInput,
    ) -> WorkflowResult<ReconcileResult> {
        let ctx = &*ctx;
        validate(&input)?;
        let retry = ctx.state(|s| s.retry.clone());
        // Scans read Stripe: they run on the Stripe task queue, behind live edits.
        let stripe_options = || {
            queues::on_stripe_queue(
                retry.reconcile_options(),
                ctx.task_queue(),
                queues::RECONCILE_PRIORITY,
            )
        };
        let mut carry = match input.carry.clone() {
            Some(carry) => carry,
            None => {
                let estimated_total = ctx
                    .execute_activity(
                        SyncActivities::count_catalog,
                        CountInput {
                            from: input.from.clone(),
                            to: input.to.clone(),
                            since: input.since.clone(),
                        },
                        retry.reconcile_options(),
                    )
                    .await?;
                ReconcileCarry {
                    started_at_ms: workflow_millis(ctx.workflow_time()),
                    estimated_total,
                    ..ReconcileCarry::default()
                }
            }
        };
        carry.runs += 1;
        ctx.state_mut(|s| {
            let max_in_flight = s
                .max_in_flight_override
                .unwrap_or_else(|| clamp_in_flight(input.max_in_flight));
            s.progress = ReconcileProgress {
                mode: input.mode,
                phase: carry.phase,
                run: carry.runs,
                cursor: carry.cursor.clone(),
                estimated_total: carry.estimated_total,
                in_flight: 0,
                max_in_flight,
                totals: carry.totals.clone(),
            };
        });

        let mut repairs = Repairs::new(ctx);
        let mut pages_this_run = 0;
        loop {
            let stop = ctx.state(|s| s.stop_requested);
            if stop || carry.phase == ReconcilePhase::Done {
                break;
            }
            let found = match carry.phase {
                ReconcilePhase::Catalog => {
                    let page = repairs
                        .alongside(ctx.execute_activity(
                            SyncActivities::reconcile_page,
                            ReconcilePageInput {
                                after: carry.cursor.clone(),
                                from: input.from.clone(),
                                to: input.to.clone(),
                                since: input.since.clone(),
                                limit: input.page_size(),
                            },
                            stripe_options(),
                        ))
                        .await?;
                    let totals = &mut carry.totals;
                    totals.scanned += u64::from(page.scanned);
                    totals.in_sync += u64::from(page.in_sync);
                    totals.unmanaged += u64::from(page.unmanaged);
                    totals.stripe_requests += u64::from(page.stripe_requests);
                    totals.invalid += page.invalid.len() as u64;
                    let room = input
                        .sample_size()
                        .saturating_sub(totals.invalid_samples.len());
                    totals
                        .invalid_samples
                        .extend(page.invalid.into_iter().take(room));
                    if let Some(last) = page.last_id {
                        carry.cursor = last;
                    }
                    if page.done {
                        carry.phase = if input.sweeps_orphans() {
                            ReconcilePhase::Orphans
                        } else {
                            ReconcilePhase::Done
                        };
                    }
                    page.drift
                }
                ReconcilePhase::Orphans => {
                    let page = repairs
                        .alongside(ctx.execute_activity(
                            SyncActivities::reconcile_orphan_page,
                            OrphanPageInput {
                                starting_after: carry.orphan_cursor.clone(),
                                from: input.from.clone(),
                                to: input.to.clone(),
                            },
                            stripe_options(),
                        ))
                        .await?;
                    carry.totals.stripe_requests += u64::from(page.stripe_requests);
                    carry.orphan_cursor = page.next.clone();
                    if page.next.is_none() {
                        // Runs recorded before the extra-price phase existed end here on replay.
                        carry.phase = if ctx.patched(EXTRA_PRICES_PATCH) {
                            ReconcilePhase::ExtraPrices
                        } else {
                            ReconcilePhase::Done
                        };
                    }
                    page.orphans
                }
                ReconcilePhase::ExtraPrices => {
                    let page = repairs
                        .alongside(ctx.execute_activity(
                            SyncActivities::reconcile_price_page,
                            PricePageInput {
                                starting_after: carry.price_cursor.clone(),
                                from: input.from.clone(),
                                to: input.to.clone(),
                            },
                            stripe_options(),
                        ))
                        .await?;
                    carry.totals.stripe_requests += u64::from(page.stripe_requests);
                    carry.price_cursor = page.next.clone();
                    if page.next.is_none() {
                        carry.phase = ReconcilePhase::Done;
                    }
                    page.extra
                }
                ReconcilePhase::Done => Vec::new(),
            };
            for drift in &found {
                carry.totals.drift.add(drift.kind);
            }
            let room = input
                .sample_size()
                .saturating_sub(carry.totals.samples.len());
            carry
                .totals
                .samples
                .extend(found.iter().take(room).cloned());
            if input.mode == ReconcileMode::Apply {
                repairs.queue.extend(found.into_iter().filter(|d| {
                    d.kind != DriftKind::Orphan || input.orphans == OrphanPolicy::Archive
                }));
            }
            pages_this_run += 1;
            // Repairs finished while the page was read; the new ones start with the next await.
            repairs.record(&mut carry.totals, input.sample_size());
            publish(ctx, &carry, repairs.running.len());

            let rotate = pages_this_run >= input.pages_per_run()
                || ctx.continue_as_new_suggested()
                || ctx.history_length() >= HISTORY_EVENTS_LIMIT;
            if rotate && carry.phase != ReconcilePhase::Done {
                repairs.drain().await;
                repairs.record(&mut carry.totals, input.sample_size());
                // A stop that arrived meanwhile ends here instead of in the next run.
                if ctx.state(|s| s.stop_requested) {
                    break;
                }
                let next = ReconcileInput {
                    max_in_flight: ctx.state(|s| s.progress.max_in_flight),
                    carry: Some(carry),
                    ..input.clone()
                };
                match ctx.continue_as_new(next, ContinueAsNewOptions::default())? {}
            }
        }
        repairs.drain().await;
        repairs.record(&mut carry.totals, input.sample_size());
        let stopped = ctx.state(|s| s.stop_requested) && carry.phase != ReconcilePhase::Done;
        carry.phase = ReconcilePhase::Done;
        publish(ctx, &carry, 0);
        let end_ms = workflow_millis(ctx.workflow_time());
        Ok(ReconcileResult {
            mode: input.mode,
            totals: carry.totals,
            runs: carry.runs,
            duration_ms: end_ms.saturating_sub(carry.started_at_ms),
            stopped,
        })
    }

    /// Finish the repairs already found (no new pages), then end early with the totals so far.
    #[signal(name = "stop")]
    pub fn stop(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _request: StopRequest) {
        self.stop_requested = true;
    }

    /// Change the repair window (kept across continue-as-new).
    #[signal(name = "set_max_in_flight")]
    pub fn set_max_in_flight(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        request: SetMaxInFlight,
    ) {
        let window = clamp_in_flight(request.max_in_flight);
        self.max_in_flight_override = Some(window);
        self.progress.max_in_flight = window;
    }

    /// Where the reconciliation stands.
    #[query(name = "progress")]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> ReconcileProgress {
        self.progress.clone()
    }
}

/// Ends the workflow with `InvalidWorkflowInput` when the input cannot be used.
fn validate(input: &ReconcileInput) -> WorkflowResult<()> {
    input.check().map_err(invalid_workflow_input)
}

impl ReconcileInput {
    /// Why this input cannot be used, if it cannot: checked by `starter reconcile` before it
    /// starts the workflow, and again by the workflow for starts from elsewhere. Zero means the
    /// default; a value above a limit is refused rather than silently lowered.
    pub fn check(&self) -> Result<(), String> {
        if let Some(why) = &self.invalid_input {
            return Err(why.clone());
        }
        if let Some(since) = &self.since
            && chrono::DateTime::parse_from_rfc3339(since).is_err()
        {
            return Err(format!(
                "`since` must be an RFC 3339 time such as 2026-11-29T00:00:00Z, got {since:?}"
            ));
        }
        if let (Some(from), Some(to)) = (&self.from, &self.to)
            && from > to
        {
            return Err(format!("`from` ({from:?}) is after `to` ({to:?})"));
        }
        for (name, value, max) in [
            ("page_size", self.page_size, MAX_PAGE_SIZE),
            ("pages_per_run", self.pages_per_run, MAX_PAGES_PER_RUN),
            ("max_in_flight", self.max_in_flight, MAX_IN_FLIGHT),
            ("sample_size", self.sample_size, MAX_SAMPLE_SIZE),
        ] {
            if value > max {
                return Err(format!(
                    "`{name}` must be at most {max} (0 for the default), got {value}"
                ));
            }
        }
        Ok(())
    }
}

fn workflow_millis(time: Option<SystemTime>) -> u64 {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d: Duration| d.as_millis() as u64)
}

/// Publishes the totals for the `progress` query.
fn publish(ctx: &WorkflowContext<ReconcileCatalog>, carry: &ReconcileCarry, in_flight: usize) {
    ctx.state_mut(|s| {
        s.progress.phase = carry.phase;
        s.progress.cursor = carry.cursor.clone();
        s.progress.in_flight = in_flight as u32;
        s.progress.totals = carry.totals.clone();
    });
}

/// The repairs of a run: queued, running (at most the window), and finished but not yet counted.
///
/// The running repairs are polled in order, with the workflow's own waker, whenever the workflow
/// awaits something through [`Repairs::alongside`] or [`Repairs::drain`]. (Not a
/// `FuturesUnordered`: it wakes its own waker to yield, which the SDK's determinism check rightly
/// rejects as a wake from outside the SDK.)
struct Repairs<'a> {
    ctx: &'a WorkflowContext<ReconcileCatalog>,
    queue: VecDeque<Drift>,
    running: Vec<Repair<'a>>,
    finished: Vec<RepairOutcome>,
}

impl<'a> Repairs<'a> {
    fn new(ctx: &'a WorkflowContext<ReconcileCatalog>) -> Self {
        Self {
            ctx,
            queue: VecDeque::new(),
            running: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// Starts queued repairs while the window has room, polls the running ones, and repeats
    /// while some finish (making room).
    fn drive(&mut self, cx: &mut Context<'_>) {
        loop {
            let window = self.ctx.state(|s| s.progress.max_in_flight).max(1) as usize;
            while self.running.len() < window {
                let Some(drift) = self.queue.pop_front() else {
                    break;
                };
                self.running.push(Box::pin(repair(self.ctx, drift)));
            }
            let before = self.finished.len();
            let mut i = 0;
            while i < self.running.len() {
                match self.running[i].as_mut().poll(cx) {
                    Poll::Ready(outcome) => {
                        drop(self.running.remove(i));
                        self.finished.push(outcome);
                    }
                    Poll::Pending => i += 1,
                }
            }
            if self.finished.len() == before || self.queue.is_empty() {
                return;
            }
        }
    }

    /// Awaits `fut` while the repairs make progress.
    async fn alongside<T>(&mut self, fut: impl Future<Output = T>) -> T {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            self.drive(cx);
            fut.as_mut().poll(cx)
        })
        .await
    }

    /// Awaits every queued and running repair.
    async fn drain(&mut self) {
        poll_fn(|cx| {
            self.drive(cx);
            if self.running.is_empty() && self.queue.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Counts the finished repairs into `totals`.
    fn record(&mut self, totals: &mut ReconcileTotals, sample_size: usize) {
        for outcome in self.finished.drain(..) {
            record(totals, outcome, sample_size);
        }
    }
}

/// One repair: a `ProductSync` child under the product's own workflow id, or a signal to the live
/// one that holds that id.
async fn repair(ctx: &WorkflowContext<ReconcileCatalog>, drift: Drift) -> RepairOutcome {
    let workflow_id = crate::product_sync_id(&drift.catalog_id);
    let options = ChildWorkflowOptions::builder()
        .workflow_id(workflow_id.clone())
        .parent_close_policy(ParentClosePolicy::Abandon)
        .static_summary(format!("reconcile: {}", drift.kind.as_str()))
        .build();
    let input = ProductSyncInput {
        catalog_id: drift.catalog_id.clone(),
        drift: Some(drift.kind),
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
                error: result.error,
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

fn record(totals: &mut ReconcileTotals, outcome: RepairOutcome, sample_size: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ReconcileInput {
        ReconcileInput::from_json(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn input_defaults_and_limits() {
        let input = parse("{}");
        assert_eq!(input.mode, ReconcileMode::Apply);
        assert_eq!(input.page_size(), 100);
        assert_eq!(input.pages_per_run(), 20);
        assert!(input.sweeps_orphans());
        let input =
            parse(r#"{"mode": "dry_run", "page_size": 500, "since": "2026-01-01T00:00:00Z"}"#);
        assert_eq!(input.mode, ReconcileMode::DryRun);
        assert_eq!(input.page_size(), 100);
        assert!(!input.sweeps_orphans());
        assert!(
            input
                .check()
                .unwrap_err()
                .contains("`page_size` must be at most 100"),
            "out of range is refused, not lowered"
        );
        for (field, over) in [
            ("page_size", 100_000),
            ("max_in_flight", 100_000),
            ("pages_per_run", 100_000),
            ("sample_size", 100_000),
        ] {
            let input = parse(&format!("{{\"{field}\": {over}}}"));
            assert!(input.check().unwrap_err().contains(field), "{field}");
        }
        assert_eq!(
            parse(r#"{"page_size": 0, "max_in_flight": 500}"#).check(),
            Ok(())
        );
        assert_eq!(clamp_in_flight(0), 100);
        assert_eq!(clamp_in_flight(10_000), 500);
        for bad in [
            r#"{"mode": "yolo"}"#,
            r#"{"page_size": "ten"}"#,
            r#"{"extra": 1}"#,
            "42",
        ] {
            let input = parse(bad);
            assert!(input.invalid_input.is_some(), "{bad}");
            assert!(input.check().is_err(), "{bad}");
        }
        let carried = ReconcileInput {
            carry: Some(ReconcileCarry {
                cursor: "sku-000100".into(),
                runs: 2,
                ..ReconcileCarry::default()
            }),
            ..input.clone()
        };
        let round: ReconcileInput = parse(&serde_json::to_string(&carried).unwrap());
        assert_eq!(
            round, carried,
            "continue-as-new input survives a round trip"
        );
    }
}
