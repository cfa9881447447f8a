//! `ReconcileCatalog`: a full (or scoped) comparison of the catalog with Stripe that repairs every
//! difference it finds. Started by a Temporal Schedule, by `starter reconcile`, or by
//! `temporal workflow start --type ReconcileCatalog`.
//!
//! # How it reads Stripe
//! By the cheaper of two methods for the scope, chosen at the start and reported with the reason
//! (`method`, `method_reason`; see [`method`]):
//! - **scan** (a whole catalog, an id range): first the *scan phases* read Stripe's product and
//!   price lists, 100 a page, into the mirror of Stripe's state (`catalog::mirror`); then the
//!   catalog phase compares each catalog page with the mirror in the database
//!   (`ReconcileMirrorPage`, no Stripe request, extra active prices included) and the orphan phase
//!   walks the mirror. Stripe requests: (products + prices in the account) / 100.
//! - **ids** (a `since` backfill, a small range): the phases below, reading Stripe per page.
//! - **events** (asked for by the schedule's regular run): the *events phase* reads Stripe's
//!   product and price events after the stored cursor, 100 a page (`ReconcileEventsPage`), applies
//!   them to the mirror and checks the products they touch; then the catalog phase checks the
//!   catalog's products updated since the previous run against the mirror. No orphan phase. With
//!   no cursor, or one past Stripe's 30-day retention, the run scans instead.
//!
//! A scan or events run in apply mode that finishes stores the event cursor (the newest event
//! when the scan began, or the last one applied) with its start time, where the next events run
//! goes on.
//!
//! # How it walks (ids)
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
//! # The archive guard
//! A misconfigured catalog (an empty database, a truncated table, a wrong URL) looks exactly like
//! a catalog that deleted everything. So one run archives at most the larger of 10 products and
//! 2 % of the catalog products in scope when it started (both settable in the input). Archives
//! (`should_archive`, and `orphan` under `orphans=archive`) are held back, never applied as
//! found: only when the whole scope is read and their number stays within the limit are they
//! applied. Above it the run archives nothing, reports what it would have archived, sets
//! `needs_confirmation` (and the `SyncOutcome` search attribute to `needs_confirmation`), and a
//! rerun with `allow_mass_archive` applies them. The held archives are carried over
//! continue-as-new (at most the limit or `sample_size`, whichever is larger: about 2 % of the
//! scope's ids).
//!
//! # How history stays bounded
//! After `pages_per_run` pages, or as soon as the server suggests it, the run waits for its
//! children, then continues as new with the cursor, the totals and any signalled settings. A run
//! holds at most one page of drift and the window of children, whatever the catalog size.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

pub use crate::drift::{Drift, DriftCounts, DriftKind, InvalidProduct};
use crate::retry::RetryConfig;

mod input;
pub mod method;
mod phases;
mod repair;
mod totals;
mod window;

pub use input::{
    DEFAULT_ARCHIVE_LIMIT_MIN, DEFAULT_ARCHIVE_LIMIT_PERCENT, MAX_IN_FLIGHT, MAX_PAGE_SIZE,
    MAX_PAGES_PER_RUN, MAX_SAMPLE_SIZE, OrphanPolicy, ReconcileInput, ReconcileMode,
    SetMaxInFlight, StopRequest,
};
use input::{clamp_in_flight, validate};
pub use method::ReconcileMethod;
use phases::Run;
pub use totals::{
    ReconcileCarry, ReconcilePhase, ReconcileProgress, ReconcileResult, ReconcileTotals,
    RepairFailure,
};
use window::Repairs;

/// Reconciliations recorded before the extra-price phase replay without it.
const EXTRA_PRICES_PATCH: &str = "extra-price-phase";
/// Reconciliations recorded before the archive guard replay without it (archives repaired as
/// found).
const ARCHIVE_GUARD_PATCH: &str = "archive-guard";
/// Reconciliations recorded before the scan method read Stripe by ids only.
const SCAN_METHOD_PATCH: &str = "scan-method";
/// The next events run checks the catalog's products updated since this run started, less this
/// margin for the difference between Temporal's clock and the catalog database's.
const CATALOG_CLOCK_SKEW_MS: u64 = 60 * 1000;
/// Continue as new before a run's history grows past this many events, even if the server has
/// not suggested it yet.
const HISTORY_EVENTS_LIMIT: u32 = 10_000;

/// The reconciliation workflow.
#[workflow]
#[derive(Default)]
pub struct ReconcileCatalog {
    retry: RetryConfig,
    versioned: bool,
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

    /// Whether the worker runs it under Worker Deployment Versioning (see
    /// `crate::next_run_options`).
    pub fn on_versioned_workers(mut self, versioned: bool) -> Self {
        self.versioned = versioned;
        self
    }
}

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
        let run = Run {
            ctx,
            input: &input,
            retry: ctx.state(|s| s.retry.clone()),
        };
        let mut carry = match input.carry.clone() {
            Some(carry) => carry,
            None => run.plan().await?,
        };
        carry.runs += 1;
        let guarded = ctx.patched(ARCHIVE_GUARD_PATCH);
        let archive_limit = input.archive_limit(carry.estimated_total);
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

        let mut repairs = Repairs::new(ctx, guarded, carry.catalog.clone());
        let mut pages_this_run = 0;
        loop {
            let stop = ctx.state(|s| s.stop_requested);
            if stop || carry.phase == ReconcilePhase::Done {
                break;
            }
            let found = run.page(&mut carry, &mut repairs).await?;
            run.take(&mut carry, &mut repairs, found, guarded, archive_limit);
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
                match ctx
                    .continue_as_new(next, crate::next_run_options(ctx.state(|s| s.versioned)))? {}
            }
        }
        run.finish(carry, repairs, guarded, archive_limit).await
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
