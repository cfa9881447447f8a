//! The activity implementations.

use std::sync::Arc;

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use workflows::activities::{
    FetchInput, FetchOutput, TransformInput, TransformOutput, UpsertInput, UpsertReport,
    definitions as sync_activities,
};

use catalog::Catalog;

use crate::error::SyncError;
use crate::stripe::StripeClient;
use crate::{transform, upsert};

/// The activity implementations with their dependencies.
pub struct SyncActivitiesImpl {
    catalog: Catalog,
    stripe: StripeClient,
}

impl SyncActivitiesImpl {
    /// Holds the catalog pool and the Stripe client.
    pub fn new(catalog: Catalog, stripe: StripeClient) -> Self {
        Self { catalog, stripe }
    }
}

#[activities]
impl SyncActivitiesImpl {
    /// `FetchProduct`.
    #[activity(definition = sync_activities::FetchProduct)]
    pub async fn fetch_product(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: FetchInput,
    ) -> Result<FetchOutput, ActivityError> {
        let product = self
            .catalog
            .fetch_product(&input.catalog_id)
            .await
            .map_err(|e| SyncError::from(e).into_activity_error())?;
        Ok(FetchOutput { product })
    }

    /// `TransformProduct`.
    #[activity(definition = sync_activities::TransformProduct)]
    pub async fn transform_product(
        _ctx: ActivityContext,
        input: TransformInput,
    ) -> Result<TransformOutput, ActivityError> {
        Ok(transform::transform(
            &input.catalog_id,
            input.product.as_ref(),
        ))
    }

    /// `UpsertProduct`.
    #[activity(definition = sync_activities::UpsertProduct)]
    pub async fn upsert_product(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: UpsertInput,
    ) -> Result<UpsertReport, ActivityError> {
        upsert::apply(&self.stripe, &input.plan)
            .await
            .map_err(|e| SyncError::from(e).into_activity_error())
    }
}
