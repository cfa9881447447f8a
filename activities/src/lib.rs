//! catalog-sync's activities: all I/O lives here. The [`SyncActivitiesImpl`] struct holds the
//! catalog pool and the Stripe client, so nothing of the outside world reaches workflow code.
//!
//! # Layout
//! - [`upsert`]: make Stripe match, writing only the difference.
//! - [`reconcile`]: compare catalog pages with Stripe, or with the mirror of Stripe's state.
//! - [`mirror`]: keep the mirror of Stripe's state current (upserts, events, scans).
//! - [`error`]: the retryable / non-retryable mapping.
//!
//! The Stripe client, the transform, field ownership and write keys are the `stripe` crate's;
//! the metrics are `common`'s.
#![deny(missing_docs)]

pub mod error;
pub mod mirror;
pub mod reconcile;
pub mod upsert;

// The SDK's `#[activities]` macro adds undocumentable items next to each method.
#[allow(missing_docs)]
mod sync;

pub use sync::SyncActivitiesImpl;
