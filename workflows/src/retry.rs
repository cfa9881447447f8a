//! The retry policies of every activity, declared in one place.
//!
//! | activity | kind | timeout | retries |
//! |---|---|---|---|
//! | FetchProduct | local | 10 s start-to-close | 200 ms → ×2 → 10 s, unlimited; catalog outages wait |
//! | TransformProduct | local | 5 s | 3 attempts (pure: a failure is a bug, not a transient) |
//! | UpsertProduct | regular | 60 s start-to-close, 7 days schedule-to-close | 1 s → ×2 → 60 s; Stripe's 4xx are non-retryable |
//!
//! Stripe's `429`/`5xx`/connection errors are retried; a `Retry-After` or rate-limit hint from
//! Stripe is honoured through `next_retry_delay` on the failure (set by the activity).

use std::time::Duration;

use temporalio_common::{ActivityCloseTimeouts, RetryPolicy};
use temporalio_sdk::{ActivityOptions, LocalActivityOptions};

/// Failure type names the activities use; listed here so the workflow side knows them.
pub mod failure_types {
    /// Stripe refused the request as invalid (4xx other than 409/429): retrying cannot help.
    pub const STRIPE_REJECTED: &str = "StripeRejected";
    /// Stripe or the network failed in a way a retry may fix.
    pub const STRIPE_UNAVAILABLE: &str = "StripeUnavailable";
    /// The catalog database could not be read.
    pub const CATALOG_UNAVAILABLE: &str = "CatalogUnavailable";
    /// The catalog holds data the sync cannot interpret (corrupt JSON column).
    pub const CATALOG_CORRUPT: &str = "CatalogCorrupt";
    /// The activity input could not be used.
    pub const BAD_INPUT: &str = "BadActivityInput";
}

/// `FetchProduct`.
pub fn fetch_options() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_millis(200))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(10))
                .non_retryable_error_types([
                    failure_types::CATALOG_CORRUPT,
                    failure_types::BAD_INPUT,
                ])
                .build(),
        )
        .build()
}

/// `TransformProduct`.
pub fn transform_options() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(5))
        .retry_policy(RetryPolicy::builder().maximum_attempts(3).build())
        .build()
}

/// `UpsertProduct`.
pub fn upsert_options() -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(7 * 24 * 3600),
        start_to_close: Duration::from_secs(60),
    })
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(Duration::from_secs(1))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(60))
            .non_retryable_error_types([failure_types::STRIPE_REJECTED, failure_types::BAD_INPUT])
            .build(),
    )
    .build()
}
