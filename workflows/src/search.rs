//! Search attributes, so the Temporal Web UI and `temporal workflow list --query` can find syncs by
//! product, outcome and drift: e.g. `SyncOutcome = "failed"`. All are `Keyword`s; none holds
//! personal data (catalog ids, outcome and drift names only).
//!
//! `ProductSync` upserts them once, at the end of its run, in the command that completes it (one
//! history event). Upserting an attribute the namespace does not have fails the workflow task, so
//! the worker checks that they are registered (`starter setup`) and tells the workflow through
//! `FetchOutput::search_attributes`; histories recorded before that field existed replay without
//! the upsert.

use temporalio_common::search_attributes::SearchAttributeKey;

/// The catalog id of the product a `ProductSync` syncs.
pub const CATALOG_PRODUCT_ID: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("CatalogProductId");
/// The outcome of the run's last pass (`synced`, `unchanged`, `invalid`, `failed`, `archived`,
/// `skipped_unmanaged`, `skipped_other_catalog`). A `ReconcileCatalog` that stopped at the archive
/// guard sets it to `needs_confirmation`.
pub const SYNC_OUTCOME: SearchAttributeKey<String> = SearchAttributeKey::keyword("SyncOutcome");
/// The drift a reconciliation repair was started for (`missing`, `stale`, …).
pub const DRIFT_KIND: SearchAttributeKey<String> = SearchAttributeKey::keyword("DriftKind");

/// The names, in registration order (all of type `Keyword`).
pub const NAMES: [&str; 3] = ["CatalogProductId", "SyncOutcome", "DriftKind"];
