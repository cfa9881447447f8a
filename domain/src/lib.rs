//! catalog-sync's data model, apart from any orchestration or I/O, so that every crate (the
//! catalog, the Stripe side, the workflows, the activities) can take it.
//!
//! # Layout
//! - [`model`]: catalog products and the Stripe state they ask for.
//! - [`metadata`]: the metadata keys that mark a Stripe object as catalog-sync's.
//! - [`ids`]: the workflow and schedule ids catalog-sync gives a catalog's runs in Temporal.
//! - [`identity`]: whose a Stripe product is (this catalog's, another catalog's, nobody's).
//! - [`limits`]: Stripe's limits on names, amounts and ids.
//! - [`mirror`]: one Stripe object as catalog-sync last saw it.
//! - [`drift`]: what a reconciliation finds (kinds of drift, one product's difference, an invalid
//!   product, counts by kind).
#![deny(missing_docs)]

pub mod drift;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod metadata;
pub mod mirror;
pub mod model;
