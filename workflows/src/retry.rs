//! Timeouts and retry policies of every activity: declared as data, with defaults here, and
//! overridable by the worker's configuration (a TOML file plus environment variables; see
//! `catalog-sync.example.toml`). All workers of one task queue should run with the same settings.
//!
//! | activity | kind | default timeouts | default retries |
//! |---|---|---|---|
//! | FetchProduct | local | 10 s start-to-close | 200 ms → ×2 → 10 s, unlimited |
//! | TransformProduct | local | 5 s start-to-close | 3 attempts (pure: a failure is a bug, not a transient) |
//! | UpsertProduct | regular | 60 s start-to-close, 7 days schedule-to-close | 1 s → ×2 → 60 s, unlimited |
//! | CountCatalog, ReconcilePage, ReconcileOrphanPage | regular | 120 s start-to-close, 1 day schedule-to-close | 1 s → ×2 → 60 s, unlimited |
//!
//! In every activity, failures of the types in [`failure_types::NON_RETRYABLE`] (`StripeRejected`,
//! `CatalogCorrupt`, `InvalidInput`) are final: that is decided once, by the error mapping, and is
//! not a setting.
//!
//! Stripe's 409/429/5xx and network errors are retried; a `Retry-After` from Stripe is honoured
//! through `next_retry_delay` on the failure (set by the activity).

use std::time::Duration;

use serde::{Deserialize, Serialize};
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
    /// An activity's input cannot be used: retrying cannot help.
    pub const INVALID_INPUT: &str = "InvalidInput";
    /// The sync may not run here yet: the product's legacy run still runs, or the run belongs to
    /// another catalog than the worker's (two catalogs on one task queue). Retried: the wait ends
    /// when the legacy run does, or when the run reaches its own catalog's worker.
    pub const SYNC_WAITING: &str = "SyncWaiting";

    /// The failure types that are final: the activities mark their failures of these types
    /// non-retryable (`activities::error` maps every error to a type and takes its retryability
    /// from here), and every retry policy lists them too. Not a setting: no configuration can
    /// make a request Stripe rejected worth repeating.
    pub const NON_RETRYABLE: &[&str] = &[STRIPE_REJECTED, CATALOG_CORRUPT, INVALID_INPUT];

    /// Whether a failure of `type_name` is worth another attempt.
    pub fn is_retryable(type_name: &str) -> bool {
        !NON_RETRYABLE.contains(&type_name)
    }
}

/// Timeouts and retry policy of one activity. Durations in milliseconds; 0 means "none" for
/// `schedule_to_close_timeout_ms` and "unlimited" for `maximum_attempts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityRetry {
    /// First retry delay.
    pub initial_interval_ms: u64,
    /// Growth of the delay per attempt.
    pub backoff_coefficient: f64,
    /// Largest delay.
    pub maximum_interval_ms: u64,
    /// Attempts in all (0 = unlimited).
    pub maximum_attempts: u32,
    /// Limit of one attempt.
    pub start_to_close_timeout_ms: u64,
    /// Limit of all attempts together (0 = none; local activities ignore it).
    pub schedule_to_close_timeout_ms: u64,
}

impl ActivityRetry {
    fn policy(&self) -> RetryPolicy {
        RetryPolicy::builder()
            .initial_interval(Duration::from_millis(self.initial_interval_ms))
            .backoff_coefficient(self.backoff_coefficient)
            .maximum_interval(Duration::from_millis(self.maximum_interval_ms))
            .maximum_attempts(self.maximum_attempts)
            .non_retryable_error_types(failure_types::NON_RETRYABLE.iter().map(|t| t.to_string()))
            .build()
    }

    fn local_options(&self) -> LocalActivityOptions {
        LocalActivityOptions::builder()
            .start_to_close_timeout(Duration::from_millis(self.start_to_close_timeout_ms))
            .retry_policy(self.policy())
            .build()
    }

    fn options(&self) -> ActivityOptions {
        let start_to_close = Duration::from_millis(self.start_to_close_timeout_ms);
        let timeouts = match self.schedule_to_close_timeout_ms {
            0 => ActivityCloseTimeouts::StartToClose(start_to_close),
            ms => ActivityCloseTimeouts::ScheduleAndStartToClose {
                schedule_to_close: Duration::from_millis(ms),
                start_to_close,
            },
        };
        ActivityOptions::with_close_timeouts(timeouts)
            .retry_policy(self.policy())
            .build()
    }
}

/// The settings of all activities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// `FetchProduct`.
    pub fetch: ActivityRetry,
    /// `TransformProduct`.
    pub transform: ActivityRetry,
    /// `UpsertProduct`.
    pub upsert: ActivityRetry,
    /// The reconciliation's activities (`CountCatalog`, `ReconcilePage`, `ReconcileOrphanPage`).
    #[serde(default = "default_reconcile")]
    pub reconcile: ActivityRetry,
}

fn default_reconcile() -> ActivityRetry {
    RetryConfig::default().reconcile
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            fetch: ActivityRetry {
                initial_interval_ms: 200,
                backoff_coefficient: 2.0,
                maximum_interval_ms: 10_000,
                maximum_attempts: 0,
                start_to_close_timeout_ms: 10_000,
                schedule_to_close_timeout_ms: 0,
            },
            transform: ActivityRetry {
                initial_interval_ms: 1_000,
                backoff_coefficient: 2.0,
                maximum_interval_ms: 10_000,
                maximum_attempts: 3,
                start_to_close_timeout_ms: 5_000,
                schedule_to_close_timeout_ms: 0,
            },
            upsert: ActivityRetry {
                initial_interval_ms: 1_000,
                backoff_coefficient: 2.0,
                maximum_interval_ms: 60_000,
                maximum_attempts: 0,
                start_to_close_timeout_ms: 60_000,
                schedule_to_close_timeout_ms: 7 * 24 * 3600 * 1000,
            },
            reconcile: ActivityRetry {
                initial_interval_ms: 1_000,
                backoff_coefficient: 2.0,
                maximum_interval_ms: 60_000,
                maximum_attempts: 0,
                start_to_close_timeout_ms: 120_000,
                schedule_to_close_timeout_ms: 24 * 3600 * 1000,
            },
        }
    }
}

impl RetryConfig {
    /// `FetchProduct` options.
    pub fn fetch_options(&self) -> LocalActivityOptions {
        self.fetch.local_options()
    }

    /// `TransformProduct` options.
    pub fn transform_options(&self) -> LocalActivityOptions {
        self.transform.local_options()
    }

    /// `UpsertProduct` options.
    pub fn upsert_options(&self) -> ActivityOptions {
        self.upsert.options()
    }

    /// Options of the reconciliation's activities.
    pub fn reconcile_options(&self) -> ActivityOptions {
        self.reconcile.options()
    }
}
