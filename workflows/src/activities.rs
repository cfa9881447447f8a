//! Activity contracts: names, inputs and outputs. The `activities` crate implements them; the
//! compiler checks that the signatures match (`#[activity(definition = …)]`).

use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

use crate::drift::{Drift, InvalidProduct};
use crate::model::{CatalogProduct, SyncPlan, ValidationIssue};
use crate::reconcile::method::{MethodBasis, ReconcileMethod};

/// Input of `FetchProduct`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FetchInput {
    /// Catalog id.
    pub catalog_id: String,
}

/// Output of `FetchProduct`: `None` when the row does not exist.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FetchOutput {
    /// The product, if the catalog has it.
    pub product: Option<CatalogProduct>,
    /// The namespace has catalog-sync's search attributes: the workflow may set them.
    pub search_attributes: bool,
    /// The row exists but cannot be read (a value of the wrong type, bad JSON): the columns at
    /// fault. The pass ends `invalid` with them and nothing is retried or written, since a retry
    /// reads the same bytes, and a row that cannot be read is not a row that is gone.
    pub corrupt: Vec<ValidationIssue>,
}

/// Input of `TransformProduct`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TransformInput {
    /// Catalog id (used when the row is gone).
    pub catalog_id: String,
    /// The fetched product.
    pub product: Option<CatalogProduct>,
}

/// Output of `TransformProduct` (the transform's result, in `domain`).
pub use crate::model::TransformOutput;

/// Input of `UpsertProduct`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpsertInput {
    /// The plan from `TransformProduct`.
    pub plan: SyncPlan,
    /// An archive it makes is approved (see `ProductSyncInput::archive_approved`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archive_approved: bool,
}

/// What `UpsertProduct` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpsertReport {
    /// Writes made, e.g. `create_product`, `create_price:cs_…`, `archive_price:price_…`.
    pub operations: Vec<String>,
    /// `Request-Id`s of the writes, for support tickets and the audit trail.
    pub request_ids: Vec<String>,
    /// Stripe already matched: nothing was written.
    pub unchanged: bool,
    /// The product is archived in Stripe now.
    pub archived: bool,
    /// The Stripe product was not created by catalog-sync, so it was left alone.
    pub skipped_unmanaged: bool,
    /// The Stripe product is catalog-sync's but not this catalog's (another catalog's, or made
    /// before catalog identities and not adopted): why it was left alone.
    pub other_catalog: Option<String>,
    /// The archive was held by the live archive guard (why): nothing was written.
    pub archive_held: Option<String>,
    /// Requests sent to Stripe by this attempt, reads and writes.
    pub stripe_requests: u32,
}

/// Input of `CountCatalog`: the reconciliation's scope.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CountInput {
    /// First id included.
    pub from: Option<String>,
    /// Last id included.
    pub to: Option<String>,
    /// Updated at or after (RFC 3339).
    pub since: Option<String>,
}

/// Input of `ReconcilePage`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcilePageInput {
    /// Ids after this one (exclusive): the cursor.
    pub after: String,
    /// First id included.
    pub from: Option<String>,
    /// Last id included.
    pub to: Option<String>,
    /// Updated at or after (RFC 3339).
    pub since: Option<String>,
    /// Products in the page (at most 100: one Stripe list request).
    pub limit: u32,
}

/// What `ReconcilePage` found. Kept small: only differences travel back to the workflow.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcilePageOutput {
    /// Catalog rows read.
    pub scanned: u32,
    /// The last id of the page (the next cursor); `None` for an empty page.
    pub last_id: Option<String>,
    /// No products after this page.
    pub done: bool,
    /// Products that matched Stripe.
    pub in_sync: u32,
    /// Products that differ.
    pub drift: Vec<Drift>,
    /// Products that cannot be synced, with reasons.
    pub invalid: Vec<InvalidProduct>,
    /// Stripe products with a catalog id that catalog-sync does not manage.
    pub unmanaged: u32,
    /// Stripe products of the page's ids that catalog-sync manages for another catalog (or made
    /// before catalog identities): never touched.
    pub other_catalog: u32,
    /// The namespace has catalog-sync's search attributes (see [`crate::search`]).
    pub search_attributes: bool,
    /// Stripe requests made.
    pub stripe_requests: u32,
}

/// Input of `ReconcileOrphanPage`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OrphanPageInput {
    /// Stripe's `starting_after`: the last product of the previous page.
    pub starting_after: Option<String>,
    /// Only ids at or after this one count as orphans.
    pub from: Option<String>,
    /// Only ids at or before this one count as orphans.
    pub to: Option<String>,
}

/// What `ReconcileOrphanPage` found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OrphanPageOutput {
    /// This catalog's managed Stripe products without a catalog row.
    pub orphans: Vec<Drift>,
    /// Managed Stripe products of another catalog, or not adopted: never orphans of this one.
    pub other_catalog: u32,
    /// Where the next page starts; `None` when this was the last.
    pub next: Option<String>,
    /// Stripe products looked at.
    pub scanned: u32,
    /// Stripe requests made.
    pub stripe_requests: u32,
}

/// Input of `ReconcilePricePage`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PricePageInput {
    /// Stripe's `starting_after`: the last price of the previous page.
    pub starting_after: Option<String>,
    /// Only products at or after this id are looked at.
    pub from: Option<String>,
    /// Only products at or before this id are looked at.
    pub to: Option<String>,
}

/// What `ReconcilePricePage` found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PricePageOutput {
    /// Managed products with an active price the catalog does not ask for (`price_drift`).
    pub extra: Vec<Drift>,
    /// Where the next page starts; `None` when this was the last.
    pub next: Option<String>,
    /// Stripe prices looked at.
    pub scanned: u32,
    /// Stripe requests made.
    pub stripe_requests: u32,
}

/// Input of `PlanReconcile`: the scope, and the method asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanInput {
    /// The scope (as `CountCatalog`'s).
    pub scope: CountInput,
    /// `auto` unless the input named one.
    pub method: ReconcileMethod,
}

/// Where incremental reconciliation stands: the last Stripe event applied and checked, and the
/// update time from which the catalog's own changes are checked next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventCursor {
    /// `evt_…`.
    pub event: String,
    /// Its creation time (Unix seconds): a cursor older than Stripe's retention is useless.
    pub created: i64,
    /// Catalog products updated at or after this RFC 3339 time are checked by the next run.
    pub catalog_since: Option<String>,
}

/// What `PlanReconcile` decided.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanOutput {
    /// What the choice was made from (the products in scope among them).
    pub basis: MethodBasis,
    /// `scan` or `ids`.
    pub method: ReconcileMethod,
    /// Why, with the estimated costs.
    pub reason: String,
    /// The stored event cursor, when the method is `events`.
    pub cursor: Option<EventCursor>,
    /// The identity of the catalog the worker serves: the reconciliation's repairs run under
    /// this catalog's workflow ids (`None` from workers before catalog-scoped ids).
    pub catalog: Option<String>,
}

/// Which of Stripe's lists a scan page reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanObject {
    /// `GET /v1/products` (active and archived).
    #[default]
    Products,
    /// `GET /v1/prices` (active and archived, tiers and currency options expanded).
    Prices,
}

/// Input of `ScanStripePage`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScanPageInput {
    /// The list.
    pub object: ScanObject,
    /// Stripe's `starting_after`: the last object of the previous page.
    pub starting_after: Option<String>,
    /// The scan's name, which every row it writes carries (`scan:…`).
    pub scan: String,
    /// When the scan started (milliseconds since the epoch): the last page deletes the rows of
    /// its list that neither this scan nor anything after its start has written.
    pub started_at_ms: u64,
    /// Also read the newest product or price event (one request): where incremental
    /// reconciliation starts after this scan.
    pub mark_events: bool,
}

/// What `ScanStripePage` did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScanPageOutput {
    /// Objects Stripe listed.
    pub listed: u32,
    /// Of them, written to the mirror (catalog-sync's, or a product with a catalog id).
    pub mirrored: u32,
    /// Rows deleted after the last page: gone from Stripe since they were written.
    pub pruned: u64,
    /// Where the next page starts; `None` after the last.
    pub next: Option<String>,
    /// The newest product or price event when `mark_events` asked (none if the account has
    /// none).
    pub newest_event: Option<EventCursor>,
    /// Stripe requests made.
    pub stripe_requests: u32,
}

/// Input of `ReconcileEventsPage`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsPageInput {
    /// The last event already applied: the page holds the events after it.
    pub after: String,
    /// The run's catalog phase checks the products updated at or after this RFC 3339 time: the
    /// page leaves them to it, so that no product is checked (and repaired) twice.
    pub catalog_since: Option<String>,
}

/// What `ReconcileEventsPage` found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsPageOutput {
    /// Product and price events read (and applied to the mirror).
    pub events: u32,
    /// The newest of them: the cursor after this page (`None` when there were none).
    pub last: Option<EventCursor>,
    /// More events follow.
    pub has_more: bool,
    /// Stripe no longer has the `after` event (past its retention): nothing was read, and only a
    /// full scan can tell what changed.
    pub expired: bool,
    /// Catalog products the events touched, compared with the mirror.
    pub scanned: u32,
    /// Of them, in sync.
    pub in_sync: u32,
    /// Of them, different.
    pub drift: Vec<Drift>,
    /// Of them, invalid in the catalog.
    pub invalid: Vec<InvalidProduct>,
    /// Stripe requests made.
    pub stripe_requests: u32,
}

/// Declarations of catalog-sync's activities.
pub struct SyncActivities;

/// The marker types of the activities, for `#[activity(definition = …)]` in implementations.
pub mod definitions {
    pub use super::sync_activities::{
        CountCatalog, FetchProduct, PlanReconcile, ReconcileEventsPage, ReconcileMirrorOrphanPage,
        ReconcileMirrorPage, ReconcileOrphanPage, ReconcilePage, ReconcilePricePage,
        SaveEventCursor, ScanStripePage, TransformProduct, UpsertProduct,
    };
}

#[activity_definitions]
impl SyncActivities {
    /// Reads one product and its prices from the catalog database.
    #[activity(name = "FetchProduct")]
    pub fn fetch_product(input: FetchInput) -> Result<FetchOutput, ActivityError> {
        unimplemented!()
    }

    /// Validates a catalog product and maps it to the Stripe state it asks for. Pure.
    #[activity(name = "TransformProduct")]
    pub fn transform_product(input: TransformInput) -> Result<TransformOutput, ActivityError> {
        unimplemented!()
    }

    /// Reads the product's current Stripe state and writes only what differs.
    #[activity(name = "UpsertProduct")]
    pub fn upsert_product(input: UpsertInput) -> Result<UpsertReport, ActivityError> {
        unimplemented!()
    }

    /// Counts the catalog products in a reconciliation's scope (for progress).
    #[activity(name = "CountCatalog")]
    pub fn count_catalog(input: CountInput) -> Result<u64, ActivityError> {
        unimplemented!()
    }

    /// Counts the scope, the catalog and the mirror, and chooses how the reconciliation reads
    /// Stripe (see [`crate::reconcile::method`]).
    #[activity(name = "PlanReconcile")]
    pub fn plan_reconcile(input: PlanInput) -> Result<PlanOutput, ActivityError> {
        unimplemented!()
    }

    /// Reads one page of Stripe's products or prices into the mirror of Stripe's state.
    #[activity(name = "ScanStripePage")]
    pub fn scan_stripe_page(input: ScanPageInput) -> Result<ScanPageOutput, ActivityError> {
        unimplemented!()
    }

    /// Reads one page of Stripe's product and price events after a cursor, applies them to the
    /// mirror, and compares the products they touch with the catalog.
    #[activity(name = "ReconcileEventsPage")]
    pub fn reconcile_events_page(
        input: EventsPageInput,
    ) -> Result<EventsPageOutput, ActivityError> {
        unimplemented!()
    }

    /// Stores where incremental reconciliation goes on from (never moving it back).
    #[activity(name = "SaveEventCursor")]
    pub fn save_event_cursor(input: EventCursor) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Compares one catalog page with the mirror of Stripe's state (no Stripe request) and
    /// classifies every product, extra active prices included.
    #[activity(name = "ReconcileMirrorPage")]
    pub fn reconcile_mirror_page(
        input: ReconcilePageInput,
    ) -> Result<ReconcilePageOutput, ActivityError> {
        unimplemented!()
    }

    /// Finds this catalog's active products in the mirror without a catalog row, one page in id
    /// order (`starting_after` is the last mirror id of the previous page).
    #[activity(name = "ReconcileMirrorOrphanPage")]
    pub fn reconcile_mirror_orphan_page(
        input: OrphanPageInput,
    ) -> Result<OrphanPageOutput, ActivityError> {
        unimplemented!()
    }

    /// Compares one catalog page with Stripe and classifies every product.
    #[activity(name = "ReconcilePage")]
    pub fn reconcile_page(input: ReconcilePageInput) -> Result<ReconcilePageOutput, ActivityError> {
        unimplemented!()
    }

    /// Finds managed products with an active price the catalog does not ask for (one made by
    /// hand, say) in one page of Stripe's active prices.
    #[activity(name = "ReconcilePricePage")]
    pub fn reconcile_price_page(input: PricePageInput) -> Result<PricePageOutput, ActivityError> {
        unimplemented!()
    }

    /// Finds managed Stripe products without a catalog row in one page of Stripe's products.
    #[activity(name = "ReconcileOrphanPage")]
    pub fn reconcile_orphan_page(
        input: OrphanPageInput,
    ) -> Result<OrphanPageOutput, ActivityError> {
        unimplemented!()
    }
}
