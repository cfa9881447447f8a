//! catalog-sync's side of Stripe: what it asks of Stripe and how it talks to it, without any
//! workflow or activity machinery, so that the activities, the relay's webhook handling and the
//! operator CLI share one definition.
//!
//! # Layout
//! - [`client`]: the request core of a thin Stripe client (no hidden retries); it re-exports the
//!   vocabulary below.
//! - [`error`]: Stripe's error answers and their retryability.
//! - [`form`]: form bodies in Stripe's bracket dialect.
//! - [`envelope`]: lists, expandable fields and responses, shared by every object.
//! - [`objects`]: Stripe's Product and Price objects as catalog-sync reads them (wire types).
//! - One module per Stripe object, with its requests (and, for the others, the fields
//!   catalog-sync reads): [`products`], [`prices`] (with the rules of what changes in place),
//!   [`meters`] (Billing Meters), [`webhook_endpoints`], [`events`].
//! - [`identity`]: whose a Stripe product is (re-exported from `domain`, which `starter` shares).
//!   [`webhook_endpoints`] also names the events catalog-sync consumes.
//! - [`mirror`]: Stripe's objects as rows of the mirror of Stripe's state, and what an event
//!   tells it.
//! - [`write_key`]: idempotency keys of catalog-sync's writes, signed so its echoes are its own.
#![deny(missing_docs)]

pub mod client;
pub mod envelope;
pub mod error;
pub mod events;
pub use domain::form;
pub use domain::identity;
pub mod meters;
pub mod mirror;
pub mod objects;
pub mod prices;
pub mod products;
pub mod webhook_endpoints;
pub mod write_key;
