//! catalog-sync's data model, apart from any orchestration or I/O, so that every crate (the
//! catalog, the Stripe side, the workflows, the activities) can take it.
//!
//! # Layout
//! - [`config_file`]: the config file, parsed: its sections and who reads each.
//! - [`model`]: catalog products and the Stripe state they ask for.
//! - [`metadata`]: the metadata keys that mark a Stripe object as catalog-sync's.
//! - [`ids`]: the workflow and schedule ids catalog-sync gives a catalog's runs in Temporal.
//! - [`identity`]: whose a Stripe product is (this catalog's, another catalog's, nobody's).
//! - [`limits`]: Stripe's limits on names, amounts and ids.
//! - [`mirror`]: one Stripe object as catalog-sync last saw it.
//! - [`fields`]: the product fields, one entry each: Stripe's parameter and catalog column, how
//!   values compare, are sent and shown, Stripe's rule, what an unset value does.
//! - [`transform`]: catalog product → the Stripe state it asks for, with Stripe's rules for
//!   each field. Pure.
//! - [`prices`]: how a price as Stripe has it differs from the catalog's (in place or a new
//!   price), and the forms that create or update it.
//! - [`form`]: form bodies in Stripe's bracket dialect.
//! - [`ownership`]: which product fields the catalog owns and which Stripe owns.
//! - [`drift`]: what a reconciliation finds (kinds of drift, one product's difference, an invalid
//!   product, counts by kind).
#![deny(missing_docs)]

pub mod config_file;
pub mod drift;
pub mod fields;
pub mod form;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod metadata;
pub mod mirror;
pub mod model;
pub mod ownership;
pub mod prices;
pub mod transform;
