//! catalog-sync's activities: all I/O lives here. The [`SyncActivitiesImpl`] struct holds the
//! catalog pool and the Stripe client, so nothing of the outside world reaches workflow code.
//!
//! # Layout
//! - [`transform`]: catalog product → desired Stripe state, with validation. Pure.
//! - [`stripe`]: a thin Stripe client (no hidden retries).
//! - [`upsert`]: make Stripe match, writing only the difference.
//! - [`write_key`]: idempotency keys of catalog-sync's writes, signed so its echoes are its own.
//! - [`ownership`]: which fields the catalog owns and which Stripe owns.
//! - [`reconcile`]: compare catalog pages with Stripe.
//! - [`metrics`]: catalog-sync's Prometheus instruments.
//! - [`error`]: the retryable / non-retryable mapping.
#![deny(missing_docs)]

pub mod error;
pub mod metrics;
pub mod ownership;
pub mod reconcile;
pub mod stripe;
pub mod transform;
pub mod upsert;
pub mod write_key;

// The SDK's `#[activities]` macro adds undocumentable items next to each method.
#[allow(missing_docs)]
mod sync;

pub use sync::SyncActivitiesImpl;
