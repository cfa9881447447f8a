//! The one mapping of activity errors to Temporal failure types; whether a type is retried comes
//! from `workflows::retry::failure_types::NON_RETRYABLE`, which the retry policies list too.
//!
//! | error | Temporal failure type | retried |
//! |---|---|---|
//! | catalog unreachable / query failed | `CatalogUnavailable` | yes |
//! | catalog row unreadable (bad JSON, a value of the wrong type) | `CatalogCorrupt` | no (`FetchProduct` and `ReconcilePage` report the row invalid instead of failing) |
//! | Stripe 409, 429, 5xx, transport, or `Stripe-Should-Retry: true` | `StripeUnavailable` | yes, after `Retry-After` if sent |
//! | other Stripe 4xx, or `Stripe-Should-Retry: false` | `StripeRejected` | no |
//! | unusable activity input (e.g. a `since` that is not RFC 3339) | `InvalidInput` | no |
//! | a write refused before it is sent (a lookup key another product's price holds) | `StripeRejected` | no |
//! | a sync that may not run here yet (its legacy run still runs; another catalog's run) | `SyncWaiting` | yes, after the wait it names |

use std::time::Duration;

use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;
use workflows::retry::failure_types;

use catalog::CatalogError;
use stripe::client::StripeError;

/// Everything an activity can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The catalog side.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The Stripe side.
    #[error(transparent)]
    Stripe(#[from] StripeError),
    /// The activity's input cannot be used (a workflow bug or a hand-made start).
    #[error("invalid activity input: {0}")]
    InvalidInput(String),
    /// A write catalog-sync will not make, with the reason and what to change (a lookup key
    /// another product's price holds).
    #[error("refused: {0}")]
    Refused(String),
    /// The sync may not run on this worker yet, with why and for how long at least (see
    /// `failure_types::SYNC_WAITING`).
    #[error("waiting: {0}")]
    Waiting(String, Duration),
}

/// Longest wait honoured from a server's back-off hint.
const MAX_HINTED_DELAY: Duration = Duration::from_secs(60);

impl SyncError {
    /// The explicit mapping to a Temporal failure. (A bare `?` would turn every error into a
    /// retryable one: the SDK converts any `std::error::Error` that way.)
    pub fn into_activity_error(self) -> ActivityError {
        let message = self.to_string();
        let (type_name, delay) = self.failure_type();
        // The one table of which types are final (the retry policies list the same).
        let retryable = failure_types::is_retryable(type_name);
        let failure = ApplicationFailure::builder(message)
            .type_name(type_name.to_string())
            .non_retryable(!retryable);
        let failure = match delay {
            Some(d) => failure.next_retry_delay(d).build(),
            None => failure.build(),
        };
        ActivityError::application(failure)
    }

    /// Whether another attempt may succeed (the same table as the failure types').
    pub fn is_retryable(&self) -> bool {
        failure_types::is_retryable(self.failure_type().0)
    }

    /// The Temporal failure type, and the server's back-off hint if any.
    fn failure_type(&self) -> (&'static str, Option<Duration>) {
        match self {
            SyncError::Catalog(CatalogError::Corrupt { .. } | CatalogError::UnsupportedUrl(_)) => {
                (failure_types::CATALOG_CORRUPT, None)
            }
            SyncError::Catalog(_) => (failure_types::CATALOG_UNAVAILABLE, None),
            SyncError::Stripe(s) if s.is_retryable() => (
                failure_types::STRIPE_UNAVAILABLE,
                s.retry_after().map(|d| d.min(MAX_HINTED_DELAY)),
            ),
            SyncError::Stripe(_) => (failure_types::STRIPE_REJECTED, None),
            SyncError::InvalidInput(_) => (failure_types::INVALID_INPUT, None),
            // Final: retrying cannot change the account's state, a person must.
            SyncError::Refused(_) => (failure_types::STRIPE_REJECTED, None),
            SyncError::Waiting(_, delay) => (failure_types::SYNC_WAITING, Some(*delay)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stripe::client::ApiFailure;

    fn stripe(status: u16, retry_after: Option<Duration>) -> SyncError {
        SyncError::Stripe(StripeError::Api(Box::new(ApiFailure {
            status,
            kind: "invalid_request_error".into(),
            code: None,
            message: "m".into(),
            param: None,
            request_id: Some("req_1".into()),
            should_retry: None,
            rate_limited_reason: None,
            retry_after,
        })))
    }

    fn mapped(e: SyncError) -> (String, bool, Option<Duration>) {
        match e.into_activity_error() {
            ActivityError::Application(f) => (
                f.type_name().unwrap_or_default().to_string(),
                f.is_non_retryable(),
                f.next_retry_delay(),
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_error_has_an_explicit_retry_decision() {
        assert_eq!(
            mapped(stripe(400, None)),
            ("StripeRejected".into(), true, None)
        );
        assert_eq!(
            mapped(stripe(404, None)),
            ("StripeRejected".into(), true, None)
        );
        assert_eq!(
            mapped(stripe(503, None)),
            ("StripeUnavailable".into(), false, None)
        );
        let hinted = mapped(stripe(429, Some(Duration::from_secs(3))));
        assert_eq!(
            hinted,
            (
                "StripeUnavailable".into(),
                false,
                Some(Duration::from_secs(3))
            )
        );
        let capped = mapped(stripe(429, Some(Duration::from_secs(600))));
        assert_eq!(capped.2, Some(MAX_HINTED_DELAY));
        let transport = SyncError::Stripe(StripeError::Transport("reset".into()));
        assert_eq!(mapped(transport), ("StripeUnavailable".into(), false, None));
        let corrupt = SyncError::Catalog(CatalogError::Corrupt {
            id: "a".into(),
            field: "images".into(),
            reason: "b".into(),
        });
        assert_eq!(mapped(corrupt), ("CatalogCorrupt".into(), true, None));
        let down = SyncError::Catalog(CatalogError::Unavailable(sqlx_error()));
        assert_eq!(mapped(down), ("CatalogUnavailable".into(), false, None));
        let refused = SyncError::Refused("lookup key taken".into());
        assert_eq!(mapped(refused), ("StripeRejected".into(), true, None));
    }

    fn sqlx_error() -> catalog::sqlx::Error {
        catalog::sqlx::Error::PoolTimedOut
    }
}
