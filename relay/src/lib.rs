//! How changes reach Temporal, as a library (the `relay` binary and the tests run the same code).
//!
//! # Layout
//! - [`outbox`]: the outbox relay: captured catalog changes → `ProductSync` signals.
//! - [`http`]: `POST /v1/changes` (change ingest) and `POST /stripe/webhook` (Stripe events).
//! - [`decide`]: what a Stripe event asks of catalog-sync (pure).
//! - [`signature`]: `Stripe-Signature` verification.
//! - [`signal`]: signal-with-start of a product's sync, with the retryable/refused split.
//! - [`poll`]: polling capture's loop (`CATALOG_SYNC_CAPTURE=polling`).
//! - [`logical`]: log-based capture's loop (`CATALOG_SYNC_CAPTURE=logical`).
//! - [`gauges`]: the outbox's lag and depth and the capture's state, as metrics.
#![deny(missing_docs)]

pub mod decide;
pub mod gauges;
pub mod http;
pub mod logical;
pub mod outbox;
pub mod poll;
pub mod signal;
pub mod signature;

pub use outbox::{BatchReport, Relay, RelayOptions};
pub use signal::{SignalError, Signaller};
