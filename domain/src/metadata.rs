//! The metadata keys catalog-sync writes on the Stripe objects it manages: what marks a product
//! as catalog-sync's, and where its catalog id, version and content hash are kept. Every crate
//! that reads or writes Stripe objects (the sync, the relay's webhooks, `starter verify`) uses
//! these.

/// Metadata key that marks a Stripe object as managed by catalog-sync.
pub const META_MANAGED: &str = "catalog_sync_managed";
/// Metadata key holding the catalog id.
pub const META_ID: &str = "catalog_sync_id";
/// Metadata key holding the catalog version.
pub const META_VERSION: &str = "catalog_sync_version";
/// Metadata key holding the content hash.
pub const META_HASH: &str = "catalog_sync_hash";
/// Prefix reserved for catalog-sync's metadata keys.
pub const RESERVED_PREFIX: &str = "catalog_sync_";
/// Metadata key holding the identity of the catalog the object belongs to (see
/// `stripe::identity`).
pub const META_CATALOG: &str = "catalog_sync_catalog";
