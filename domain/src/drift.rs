//! What a reconciliation finds: the kinds of drift, one product's difference, an invalid product,
//! and the counts by kind. Plain data that the activity contracts, `ProductSync` (a repair's
//! `drift`) and `ReconcileCatalog` all use, so it sits apart from the orchestration.

use serde::{Deserialize, Serialize};

use crate::model::ValidationIssue;

/// How a product differs from what the catalog asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Active in the catalog, absent from Stripe.
    Missing,
    /// The catalog changed since Stripe was last synced (content hash differs).
    Stale,
    /// Stripe's fields differ although the content hash matches: edited in Stripe (Dashboard).
    EditedInStripe,
    /// Product fields match; a price is missing, different, inactive, or not the default.
    PriceDrift,
    /// Deleted or inactive in the catalog, still active in Stripe.
    ShouldArchive,
    /// Managed by catalog-sync in Stripe, no catalog row.
    Orphan,
    /// Created by catalog-sync for a product the catalog still has, but `catalog_sync_managed`
    /// was removed in Stripe (a Dashboard edit): the repair attaches it again.
    Detached,
}

impl DriftKind {
    /// Every kind (the metrics start each at 0).
    pub const ALL: [DriftKind; 7] = [
        Self::Missing,
        Self::Stale,
        Self::EditedInStripe,
        Self::PriceDrift,
        Self::ShouldArchive,
        Self::Orphan,
        Self::Detached,
    ];

    /// The value used in logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Stale => "stale",
            Self::EditedInStripe => "edited_in_stripe",
            Self::PriceDrift => "price_drift",
            Self::ShouldArchive => "should_archive",
            Self::Orphan => "orphan",
            Self::Detached => "detached",
        }
    }

    /// Its repair archives a Stripe product: what the archive guard counts.
    pub fn archives(self) -> bool {
        matches!(self, Self::ShouldArchive | Self::Orphan)
    }
}

/// One product that differs, with what differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Catalog id (= Stripe product id).
    pub catalog_id: String,
    /// The kind of difference.
    pub kind: DriftKind,
    /// What differs, e.g. `name: "Mug" → "Mug 2"`.
    pub detail: String,
}

/// A product the catalog holds but that cannot be synced, with every reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvalidProduct {
    /// Catalog id.
    pub catalog_id: String,
    /// Why.
    pub issues: Vec<ValidationIssue>,
}

/// Drift counts by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DriftCounts {
    /// [`DriftKind::Missing`].
    pub missing: u64,
    /// [`DriftKind::Stale`].
    pub stale: u64,
    /// [`DriftKind::EditedInStripe`].
    pub edited_in_stripe: u64,
    /// [`DriftKind::PriceDrift`].
    pub price_drift: u64,
    /// [`DriftKind::ShouldArchive`].
    pub should_archive: u64,
    /// [`DriftKind::Orphan`].
    pub orphan: u64,
    /// [`DriftKind::Detached`].
    pub detached: u64,
}

impl DriftCounts {
    /// Counts one difference of `kind`.
    pub fn add(&mut self, kind: DriftKind) {
        *match kind {
            DriftKind::Missing => &mut self.missing,
            DriftKind::Stale => &mut self.stale,
            DriftKind::EditedInStripe => &mut self.edited_in_stripe,
            DriftKind::PriceDrift => &mut self.price_drift,
            DriftKind::ShouldArchive => &mut self.should_archive,
            DriftKind::Orphan => &mut self.orphan,
            DriftKind::Detached => &mut self.detached,
        } += 1;
    }

    /// All kinds together.
    pub fn total(&self) -> u64 {
        self.missing
            + self.stale
            + self.edited_in_stripe
            + self.price_drift
            + self.should_archive
            + self.orphan
            + self.detached
    }
}
