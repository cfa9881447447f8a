//! What every catalog-sync binary shares, so that each binary stays thin: load settings, connect,
//! run, stop on a signal.
//!
//! # Layout
//! - [`temporal`]: the Temporal client, from the SDK's envconfig and with the payload codec.
//! - [`telemetry`]: the tracing subscriber.
//! - [`shutdown`]: Ctrl-C or SIGTERM.
//! - [`settings`]: the Stripe settings binaries share, and the redacting `Secret`.
//! - [`metrics`]: catalog-sync's Prometheus instruments and exporter.
//! - [`deployment`]: Worker Deployment Versioning's routing, as the server and each task queue
//!   hold it.
//! - [`legacy_syncs`]: the move from legacy product sync ids to catalog-scoped ones.
#![deny(missing_docs)]

pub mod deployment;
pub mod legacy_syncs;
pub mod metrics;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod temporal;
pub mod tls;
pub mod traces;

pub use shutdown::shutdown_signal;
