//! End-to-end tier: a real dev server, the in-process worker and relay, the sandbox, and both
//! catalog backends.

mod changes;
mod guards;
mod http;
mod import;
mod live_account;
mod logical_capture;
mod mirror;
mod own_catalog;
mod product_sync;
mod reconcile;
mod requests;
mod several_catalogs;
mod stripe_fields;
