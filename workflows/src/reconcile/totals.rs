//! What a reconciliation counts and carries: totals, phase and cursors (carried across
//! continue-as-new), the `progress` query's answer and the result.

use serde::{Deserialize, Serialize};

use crate::drift::{Drift, DriftCounts, InvalidProduct};

use super::ReconcileMode;
use super::method::ReconcileMethod;
use crate::activities::EventCursor;

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
    /// Archives found (`should_archive`, and `orphan` under `orphans=archive`): what the archive
    /// guard counts.
    pub planned_archives: u64,
    /// Repairs that failed (reasons in `failures`).
    pub failed: u64,
    /// Catalog products that cannot be synced (reasons in `invalid_samples` and the worker log).
    pub invalid: u64,
    /// Stripe products with a catalog id that catalog-sync does not manage: never touched.
    pub unmanaged: u64,
    /// Stripe products catalog-sync manages for another catalog, or made before catalog
    /// identities and not adopted (`starter adopt`): never touched.
    pub other_catalog: u64,
    /// Stripe requests made: the reconciliation's reads plus its repairs' reads and writes.
    pub stripe_requests: u64,
    /// Stripe requests made by repairs (a part of `stripe_requests`).
    pub repair_stripe_requests: u64,
    /// Objects a scan read from Stripe's lists (products and prices).
    pub scan_listed: u64,
    /// Objects a scan wrote to the mirror.
    pub scan_mirrored: u64,
    /// Mirror rows a scan deleted (gone from Stripe).
    pub scan_pruned: u64,
    /// Stripe events read (events method).
    pub events: u64,
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
    /// Reading Stripe's events since the cursor into the mirror (events method).
    Events,
    /// Reading Stripe's products into the mirror (scan method).
    ScanProducts,
    /// Reading Stripe's prices into the mirror (scan method).
    ScanPrices,
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
    /// Archives found and held back until the whole scope is read (at most the archive limit;
    /// applied at the end when their number stays within it). Runs recorded before the archive
    /// guard never hold any.
    pub deferred_archives: Vec<Drift>,
    /// The namespace has catalog-sync's search attributes (as the last catalog page said).
    pub search_attributes: bool,
    /// When the first run started (milliseconds since the epoch, workflow time).
    pub started_at_ms: u64,
    /// Catalog products in scope when the first run started.
    pub estimated_total: u64,
    /// How Stripe is read (`ids` for runs recorded before the scan method).
    pub method: ReconcileMethod,
    /// Why.
    pub method_reason: String,
    /// Last Stripe id of the scan phase (Stripe's `starting_after`).
    pub scan_cursor: Option<String>,
    /// Events method: the last event applied (stored when the run ends).
    pub event_cursor: Option<EventCursor>,
    /// Events method: the catalog phase checks products updated at or after this time.
    pub catalog_since: Option<String>,
    /// Scan method: the newest event when the scan began, stored as the event cursor when the
    /// run ends.
    pub scan_mark: Option<EventCursor>,
    /// The catalog's identity, as the plan read it: repairs run under its workflow ids. `None`
    /// for reconciliations planned before catalog-scoped ids, whose repairs keep the legacy ids
    /// their histories hold.
    pub catalog: Option<String>,
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
    /// How Stripe was read: `scan` or `ids`.
    pub method: ReconcileMethod,
    /// Why that method (the estimated costs of both).
    pub method_reason: String,
    /// Everything counted.
    pub totals: ReconcileTotals,
    /// Runs (1 + continue-as-new count).
    pub runs: u32,
    /// Workflow time from the first run's start to the end.
    pub duration_ms: u64,
    /// Ended early by the `stop` signal.
    pub stopped: bool,
    /// The most archives the run could apply without `allow_mass_archive`.
    pub archive_limit: u64,
    /// It found more archives than `archive_limit` and applied none of them: rerun with
    /// `allow_mass_archive` (`starter reconcile --allow-mass-archive`) to apply them. In a dry run:
    /// an apply run would stop at the guard.
    pub needs_confirmation: bool,
    /// A sample of the archives held back (or, in a dry run, that would be).
    pub held_archives: Vec<Drift>,
}
