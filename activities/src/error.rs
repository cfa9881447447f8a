//! The one place that decides which activity failures are retried.
//!
//! | error | Temporal failure type | retried |
//! |---|---|---|
//! | catalog unreachable / query failed | `CatalogUnavailable` | yes |
//! | catalog row unreadable (bad JSON) | `CatalogCorrupt` | no |
//! | Stripe 409, 429, 5xx, transport, or `Stripe-Should-Retry: true` | `StripeUnavailable` | yes, after `Retry-After` if sent |
//! | other Stripe 4xx, or `Stripe-Should-Retry: false` | `StripeRejected` | no |

use std::time::Duration;

use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;
use workflows::retry::failure_types;

use crate::stripe::StripeError;
use catalog::CatalogError;

/// Everything an activity can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The catalog side.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The Stripe side.
    #[error(transparent)]
    Stripe(#[from] StripeError),
}

/// Longest wait honoured from a server's back-off hint.
const MAX_HINTED_DELAY: Duration = Duration::from_secs(60);

impl SyncError {
    /// The explicit mapping to a Temporal failure. (A bare `?` would turn every error into a
    /// retryable one: the SDK converts any `std::error::Error` that way.)
    pub fn into_activity_error(self) -> ActivityError {
        let message = self.to_string();
        let (type_name, retryable, delay) = match &self {
            SyncError::Catalog(CatalogError::Corrupt { .. } | CatalogError::UnsupportedUrl(_)) => {
                (failure_types::CATALOG_CORRUPT, false, None)
            }
            SyncError::Catalog(_) => (failure_types::CATALOG_UNAVAILABLE, true, None),
            SyncError::Stripe(s) if s.is_retryable() => (
                failure_types::STRIPE_UNAVAILABLE,
                true,
                s.retry_after().map(|d| d.min(MAX_HINTED_DELAY)),
            ),
            SyncError::Stripe(_) => (failure_types::STRIPE_REJECTED, false, None),
        };
        let failure = ApplicationFailure::builder(message)
            .type_name(type_name.to_string())
            .non_retryable(!retryable);
        let failure = match delay {
            Some(d) => failure.next_retry_delay(d).build(),
            None => failure.build(),
        };
        ActivityError::application(failure)
    }
}
