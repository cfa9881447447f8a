//! One run of `ReconcileCatalog`, phase by phase: the plan of a first run, one page of each
//! phase (events, Stripe scans, the catalog, orphans, extra prices), what is done with the drift a
//! page finds, and the end of the last run. The workflow's `run` calls them in order; each
//! issues exactly the commands the phase did inline, so recorded histories replay unchanged.

use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

use super::totals::{ReconcileCarry, ReconcilePhase, ReconcileResult};
use super::window::Repairs;
use super::{
    CATALOG_CLOCK_SKEW_MS, Drift, DriftKind, EXTRA_PRICES_PATCH, OrphanPolicy, ReconcileCatalog,
    ReconcileInput, ReconcileMethod, ReconcileMode, SCAN_METHOD_PATCH, publish, workflow_millis,
};
use crate::activities::{
    CountInput, EventCursor, EventsPageInput, OrphanPageInput, PlanInput, PricePageInput,
    ReconcilePageInput, ScanObject, ScanPageInput, SyncActivities,
};
use crate::queues;
use crate::retry::RetryConfig;

/// What every phase of one run reads: the workflow context, the input and the retry policies.
pub(super) struct Run<'a> {
    pub(super) ctx: &'a WorkflowContext<ReconcileCatalog>,
    pub(super) input: &'a ReconcileInput,
    pub(super) retry: RetryConfig,
}

impl Run<'_> {
    /// Scans read Stripe: they run on the Stripe task queue, behind live edits.
    fn stripe_options(&self) -> ActivityOptions {
        queues::on_stripe_queue(
            self.retry.reconcile_options(),
            self.ctx.task_queue(),
            queues::RECONCILE_PRIORITY,
        )
    }

    /// A first run's plan: the method (and why), the scope's size, the event cursor.
    pub(super) async fn plan(&self) -> WorkflowResult<ReconcileCarry> {
        let scope = CountInput {
            from: self.input.from.clone(),
            to: self.input.to.clone(),
            since: self.input.since.clone(),
        };
        let mut carry = ReconcileCarry {
            started_at_ms: workflow_millis(self.ctx.workflow_time()),
            ..ReconcileCarry::default()
        };
        if self.ctx.patched(SCAN_METHOD_PATCH) {
            let plan = self
                .ctx
                .execute_activity(
                    SyncActivities::plan_reconcile,
                    PlanInput {
                        scope,
                        method: self.input.method,
                    },
                    self.retry.reconcile_options(),
                )
                .await?;
            carry.estimated_total = plan.basis.in_scope;
            carry.method = plan.method;
            carry.method_reason = plan.reason;
            carry.catalog = plan.catalog;
            carry.phase = match plan.method {
                ReconcileMethod::Scan => ReconcilePhase::ScanProducts,
                ReconcileMethod::Events => ReconcilePhase::Events,
                _ => ReconcilePhase::Catalog,
            };
            if let Some(cursor) = plan.cursor {
                carry.catalog_since = cursor.catalog_since.clone();
                carry.event_cursor = Some(cursor);
            }
        } else {
            carry.method = ReconcileMethod::Ids;
            carry.estimated_total = self
                .ctx
                .execute_activity(
                    SyncActivities::count_catalog,
                    scope,
                    self.retry.reconcile_options(),
                )
                .await?;
        }
        Ok(carry)
    }

    /// One page of the phase the carry is in; the drift it found. Moves the carry's cursors
    /// and phase on.
    pub(super) async fn page(
        &self,
        carry: &mut ReconcileCarry,
        repairs: &mut Repairs<'_>,
    ) -> WorkflowResult<Vec<Drift>> {
        Ok(match carry.phase {
            ReconcilePhase::Events => self.events_page(carry, repairs).await?,
            ReconcilePhase::ScanProducts | ReconcilePhase::ScanPrices => {
                self.scan_page(carry, repairs).await?
            }
            ReconcilePhase::Catalog => self.catalog_page(carry, repairs).await?,
            ReconcilePhase::Orphans => self.orphan_page(carry, repairs).await?,
            ReconcilePhase::ExtraPrices => self.extra_price_page(carry, repairs).await?,
            ReconcilePhase::Done => Vec::new(),
        })
    }

    /// Stripe's product and price events after the cursor, applied to the mirror.
    async fn events_page(
        &self,
        carry: &mut ReconcileCarry,
        repairs: &mut Repairs<'_>,
    ) -> WorkflowResult<Vec<Drift>> {
        let after = carry.event_cursor.as_ref().map(|c| c.event.clone());
        let page = repairs
            .alongside(self.ctx.execute_activity(
                SyncActivities::reconcile_events_page,
                EventsPageInput {
                    after: after.clone().unwrap_or_default(),
                    catalog_since: carry.catalog_since.clone(),
                },
                self.stripe_options(),
            ))
            .await?;
        let totals = &mut carry.totals;
        totals.stripe_requests += u64::from(page.stripe_requests);
        totals.events += u64::from(page.events);
        totals.scanned += u64::from(page.scanned);
        totals.in_sync += u64::from(page.in_sync);
        totals.invalid += page.invalid.len() as u64;
        let room = self
            .input
            .sample_size()
            .saturating_sub(totals.invalid_samples.len());
        totals
            .invalid_samples
            .extend(page.invalid.into_iter().take(room));
        if page.expired {
            // Stripe forgot the cursor's event: only a scan can tell what changed.
            carry.method = ReconcileMethod::Scan;
            carry.method_reason = format!(
                "the event cursor {} is no longer among Stripe's events (kept 30 \
                 days): a full scan",
                after.unwrap_or_default()
            );
            carry.event_cursor = None;
            carry.phase = ReconcilePhase::ScanProducts;
        } else {
            if let Some(last) = page.last {
                let since = carry.catalog_since.clone();
                carry.event_cursor = Some(EventCursor {
                    catalog_since: since,
                    ..last
                });
            }
            if !page.has_more {
                carry.phase = ReconcilePhase::Catalog;
            }
        }
        Ok(page.drift)
    }

    /// A page of Stripe's product or price list into the mirror.
    async fn scan_page(
        &self,
        carry: &mut ReconcileCarry,
        repairs: &mut Repairs<'_>,
    ) -> WorkflowResult<Vec<Drift>> {
        let products = carry.phase == ReconcilePhase::ScanProducts;
        let page = repairs
            .alongside(self.ctx.execute_activity(
                SyncActivities::scan_stripe_page,
                ScanPageInput {
                    object: if products {
                        ScanObject::Products
                    } else {
                        ScanObject::Prices
                    },
                    starting_after: carry.scan_cursor.clone(),
                    scan: format!("scan:{}", carry.started_at_ms),
                    started_at_ms: carry.started_at_ms,
                    mark_events: products && carry.scan_cursor.is_none(),
                },
                self.stripe_options(),
            ))
            .await?;
        let totals = &mut carry.totals;
        totals.stripe_requests += u64::from(page.stripe_requests);
        totals.scan_listed += u64::from(page.listed);
        totals.scan_mirrored += u64::from(page.mirrored);
        totals.scan_pruned += page.pruned;
        if page.newest_event.is_some() {
            carry.scan_mark = page.newest_event;
        }
        carry.scan_cursor = page.next;
        if carry.scan_cursor.is_none() {
            carry.phase = if products {
                ReconcilePhase::ScanPrices
            } else {
                ReconcilePhase::Catalog
            };
        }
        Ok(Vec::new())
    }

    /// A page of the catalog compared with the mirror (scan, events) or with Stripe (ids).
    async fn catalog_page(
        &self,
        carry: &mut ReconcileCarry,
        repairs: &mut Repairs<'_>,
    ) -> WorkflowResult<Vec<Drift>> {
        let scanning = reads_the_mirror(carry);
        let since = match carry.method {
            ReconcileMethod::Events => carry.catalog_since.clone(),
            _ => self.input.since.clone(),
        };
        let page_input = ReconcilePageInput {
            after: carry.cursor.clone(),
            from: self.input.from.clone(),
            to: self.input.to.clone(),
            since,
            limit: self.input.page_size(),
        };
        let page = if scanning {
            // The mirror is in the catalog database: no Stripe request, any queue.
            repairs
                .alongside(self.ctx.execute_activity(
                    SyncActivities::reconcile_mirror_page,
                    page_input,
                    self.retry.reconcile_options(),
                ))
                .await?
        } else {
            repairs
                .alongside(self.ctx.execute_activity(
                    SyncActivities::reconcile_page,
                    page_input,
                    self.stripe_options(),
                ))
                .await?
        };
        let totals = &mut carry.totals;
        totals.scanned += u64::from(page.scanned);
        totals.in_sync += u64::from(page.in_sync);
        totals.unmanaged += u64::from(page.unmanaged);
        totals.stripe_requests += u64::from(page.stripe_requests);
        totals.invalid += page.invalid.len() as u64;
        totals.other_catalog += u64::from(page.other_catalog);
        carry.search_attributes = page.search_attributes;
        let room = self
            .input
            .sample_size()
            .saturating_sub(totals.invalid_samples.len());
        totals
            .invalid_samples
            .extend(page.invalid.into_iter().take(room));
        if let Some(last) = page.last_id {
            carry.cursor = last;
        }
        if page.done {
            carry.phase = if self.input.sweeps_orphans() && carry.method != ReconcileMethod::Events
            {
                ReconcilePhase::Orphans
            } else {
                ReconcilePhase::Done
            };
        }
        Ok(page.drift)
    }

    /// A page of Stripe's (or the mirror's) active products whose catalog row is gone.
    async fn orphan_page(
        &self,
        carry: &mut ReconcileCarry,
        repairs: &mut Repairs<'_>,
    ) -> WorkflowResult<Vec<Drift>> {
        let scanning = reads_the_mirror(carry);
        let orphan_input = OrphanPageInput {
            starting_after: carry.orphan_cursor.clone(),
            from: self.input.from.clone(),
            to: self.input.to.clone(),
        };
        let page = if scanning {
            repairs
                .alongside(self.ctx.execute_activity(
                    SyncActivities::reconcile_mirror_orphan_page,
                    orphan_input,
                    self.retry.reconcile_options(),
                ))
                .await?
        } else {
            repairs
                .alongside(self.ctx.execute_activity(
                    SyncActivities::reconcile_orphan_page,
                    orphan_input,
                    self.stripe_options(),
                ))
                .await?
        };
        carry.totals.stripe_requests += u64::from(page.stripe_requests);
        carry.totals.other_catalog += u64::from(page.other_catalog);
        carry.orphan_cursor = page.next.clone();
        if page.next.is_none() {
            // A scan's catalog phase found the extra prices already; runs recorded
            // before the extra-price phase existed end here on replay.
            carry.phase = if !scanning && self.ctx.patched(EXTRA_PRICES_PATCH) {
                ReconcilePhase::ExtraPrices
            } else {
                ReconcilePhase::Done
            };
        }
        Ok(page.orphans)
    }

    /// A page of Stripe's active prices of products in scope that the catalog does not ask for.
    async fn extra_price_page(
        &self,
        carry: &mut ReconcileCarry,
        repairs: &mut Repairs<'_>,
    ) -> WorkflowResult<Vec<Drift>> {
        let page = repairs
            .alongside(self.ctx.execute_activity(
                SyncActivities::reconcile_price_page,
                PricePageInput {
                    starting_after: carry.price_cursor.clone(),
                    from: self.input.from.clone(),
                    to: self.input.to.clone(),
                },
                self.stripe_options(),
            ))
            .await?;
        carry.totals.stripe_requests += u64::from(page.stripe_requests);
        carry.price_cursor = page.next.clone();
        if page.next.is_none() {
            carry.phase = ReconcilePhase::Done;
        }
        Ok(page.extra)
    }

    /// Counts a page's drift, holds archives until the whole scope is read (the archive guard),
    /// and queues the repairs an apply run makes.
    pub(super) fn take(
        &self,
        carry: &mut ReconcileCarry,
        repairs: &mut Repairs<'_>,
        found: Vec<Drift>,
        guarded: bool,
        archive_limit: u64,
    ) {
        let archives = |d: &Drift| {
            d.kind.archives()
                && (d.kind != DriftKind::Orphan || self.input.orphans == OrphanPolicy::Archive)
        };
        for drift in &found {
            carry.totals.drift.add(drift.kind);
            if archives(drift) {
                carry.totals.planned_archives += 1;
            }
        }
        let room = self
            .input
            .sample_size()
            .saturating_sub(carry.totals.samples.len());
        carry
            .totals
            .samples
            .extend(found.iter().take(room).cloned());
        let hold = guarded && !self.input.allow_mass_archive;
        // All of them while they may still be applied; past the limit, enough to report.
        let keep = archive_limit.max(self.input.sample_size() as u64);
        for drift in found {
            if hold && archives(&drift) {
                // Held until the whole scope is read.
                if (carry.deferred_archives.len() as u64) < keep {
                    carry.deferred_archives.push(drift);
                }
            } else if self.input.mode == ReconcileMode::Apply
                && (drift.kind != DriftKind::Orphan || self.input.orphans == OrphanPolicy::Archive)
            {
                repairs.queue.push_back(drift);
            }
        }
    }

    /// The end of the last run: the held archives applied or reported, the event cursor stored,
    /// the result.
    pub(super) async fn finish(
        &self,
        mut carry: ReconcileCarry,
        mut repairs: Repairs<'_>,
        guarded: bool,
        archive_limit: u64,
    ) -> WorkflowResult<ReconcileResult> {
        repairs.drain().await;
        repairs.record(&mut carry.totals, self.input.sample_size());
        let stopped = self.ctx.state(|s| s.stop_requested) && carry.phase != ReconcilePhase::Done;
        let needs_confirmation = guarded
            && !self.input.allow_mass_archive
            && carry.totals.planned_archives > archive_limit;
        let held = std::mem::take(&mut carry.deferred_archives);
        let held_archives =
            if needs_confirmation || self.input.mode == ReconcileMode::DryRun || stopped {
                held.into_iter().take(self.input.sample_size()).collect()
            } else {
                // Within the limit: the archives are applied now that the whole scope was read.
                repairs.queue.extend(held);
                repairs.drain().await;
                repairs.record(&mut carry.totals, self.input.sample_size());
                Vec::new()
            };
        if needs_confirmation && self.input.mode == ReconcileMode::Apply && carry.search_attributes
        {
            self.ctx.upsert_search_attributes(vec![
                crate::search::SYNC_OUTCOME.value_set("needs_confirmation".to_string()),
            ]);
        }
        // Every product the run covered was checked and its repairs are done: the next events
        // run goes on from here. (Not after a stop, a dry run, or archives held back.)
        let mark = match carry.method {
            ReconcileMethod::Events => carry.event_cursor.clone(),
            ReconcileMethod::Scan => carry.scan_mark.clone(),
            _ => None,
        };
        if let Some(mark) = mark
            && !stopped
            && !needs_confirmation
            && self.input.mode == ReconcileMode::Apply
        {
            let since = carry.started_at_ms.saturating_sub(CATALOG_CLOCK_SKEW_MS);
            self.ctx
                .execute_activity(
                    SyncActivities::save_event_cursor,
                    EventCursor {
                        catalog_since: chrono::DateTime::from_timestamp_millis(since as i64)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                        ..mark
                    },
                    self.retry.reconcile_options(),
                )
                .await?;
        }
        carry.phase = ReconcilePhase::Done;
        publish(self.ctx, &carry, 0);
        let end_ms = workflow_millis(self.ctx.workflow_time());
        Ok(ReconcileResult {
            mode: self.input.mode,
            method: carry.method,
            method_reason: carry.method_reason,
            totals: carry.totals,
            runs: carry.runs,
            duration_ms: end_ms.saturating_sub(carry.started_at_ms),
            stopped,
            archive_limit,
            needs_confirmation,
            held_archives,
        })
    }
}

/// Whether the run compares with the mirror (its scan or events read Stripe into it) rather than
/// with Stripe itself (ids).
fn reads_the_mirror(carry: &ReconcileCarry) -> bool {
    carry.method != ReconcileMethod::Ids && carry.method != ReconcileMethod::Auto
}
