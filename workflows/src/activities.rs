//! Activity contracts: names, inputs and outputs. The `activities` crate implements them; the
//! compiler checks that the signatures match (`#[activity(definition = …)]`).

use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

use crate::model::{CatalogProduct, SyncPlan, ValidationIssue};

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

/// Output of `TransformProduct`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TransformOutput {
    /// What Stripe should look like.
    Plan(Box<SyncPlan>),
    /// The product cannot be synced; every reason is listed.
    Invalid(Vec<ValidationIssue>),
}

/// Input of `UpsertProduct`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpsertInput {
    /// The plan from `TransformProduct`.
    pub plan: SyncPlan,
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
}

/// Declarations of catalog-sync's activities.
pub struct SyncActivities;

/// The marker types of the activities, for `#[activity(definition = …)]` in implementations.
pub mod definitions {
    pub use super::sync_activities::{FetchProduct, TransformProduct, UpsertProduct};
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
}
