//! The names catalog-sync gives what it starts in Temporal. Workflow and schedule ids are unique
//! per namespace, not per catalog, so each carries the catalog's identity
//! ([`crate::identity::CatalogIdentity`]): any number of catalogs share a namespace without one's
//! changes reaching another's runs.
//!
//! | what | id |
//! |---|---|
//! | a product's sync | `{catalog}:product-sync:{product id}` |
//! | the reconciliation schedule (`starter schedule`, `--name reconcile`) | `{catalog}:reconcile` |
//! | another schedule of the catalog (`--name full-scan`) | `{catalog}:full-scan` |
//! | a scheduled reconciliation | `{catalog}:reconcile-run-{scheduled time}` |
//! | a reconciliation from `starter reconcile` | `{catalog}:reconcile-{unix ms}` |
//!
//! Earlier releases named a sync `product-sync-{product id}` (the *legacy* id) and
//! the schedules `catalog-sync-{name}` (`catalog-sync-reconcile`); a deployment moves over while its legacy runs finish
//! (see `common::sync_ids`).

/// The default task queue of the workflows and the catalog-side activities
/// (`CATALOG_SYNC_TASK_QUEUE`); the Stripe activities poll `{task queue}-stripe`.
pub const TASK_QUEUE: &str = "catalog-sync";

/// What follows the catalog's identity in a product sync's id.
const PRODUCT_SYNC: &str = ":product-sync:";

/// What a legacy product sync id starts with.
pub const LEGACY_PRODUCT_SYNC_PREFIX: &str = "product-sync-";

/// The name of a catalog's reconciliation schedule unless another is given.
pub const DEFAULT_SCHEDULE_NAME: &str = "reconcile";

/// The workflow id of a product's sync: one per product of a catalog, so writers never overlap.
pub fn product_sync_id(catalog: &str, product_id: &str) -> String {
    format!("{catalog}{PRODUCT_SYNC}{product_id}")
}

/// A product's sync id as earlier releases named it (the legacy id).
pub fn legacy_product_sync_id(product_id: &str) -> String {
    format!("{LEGACY_PRODUCT_SYNC_PREFIX}{product_id}")
}

/// What every workflow id of `catalog` starts with (for `WorkflowId STARTS_WITH` queries).
pub fn catalog_prefix(catalog: &str) -> String {
    format!("{catalog}:")
}

/// The id of `catalog`'s schedule `name` ([`DEFAULT_SCHEDULE_NAME`] for the reconciliation).
pub fn schedule_id(catalog: &str, name: &str) -> String {
    format!("{catalog}:{name}")
}

/// The id earlier releases gave the schedule `name`, one per namespace.
pub fn legacy_schedule_id(name: &str) -> String {
    format!("catalog-sync-{name}")
}

/// A reconciliation started by hand, at `unix_ms`.
pub fn reconcile_id(catalog: &str, unix_ms: u128) -> String {
    format!("{catalog}:reconcile-{unix_ms}")
}

/// A product sync's workflow id, read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncId<'a> {
    /// The catalog's identity (`None` for a legacy id, which names no catalog).
    pub catalog: Option<&'a str>,
    /// The product's catalog id.
    pub product_id: &'a str,
}

impl<'a> SyncId<'a> {
    /// The parts of a product sync's workflow id, either form; `None` for any other id.
    pub fn parse(workflow_id: &'a str) -> Option<Self> {
        if let Some((catalog, product_id)) = workflow_id.split_once(PRODUCT_SYNC) {
            return Some(Self {
                catalog: Some(catalog),
                product_id,
            });
        }
        workflow_id
            .strip_prefix(LEGACY_PRODUCT_SYNC_PREFIX)
            .map(|product_id| Self {
                catalog: None,
                product_id,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_back() {
        let scoped = product_sync_id("cat_00ff", "sku-1");
        assert_eq!(scoped, "cat_00ff:product-sync:sku-1");
        assert_eq!(
            SyncId::parse(&scoped),
            Some(SyncId {
                catalog: Some("cat_00ff"),
                product_id: "sku-1"
            })
        );
        assert_eq!(
            SyncId::parse(&legacy_product_sync_id("product-sync-x")),
            Some(SyncId {
                catalog: None,
                product_id: "product-sync-x"
            })
        );
        // A product id may hold the separator: the first one ends the catalog.
        assert_eq!(
            SyncId::parse(&product_sync_id("cat_1", "a:product-sync:b")).map(|s| s.product_id),
            Some("a:product-sync:b")
        );
        assert_eq!(SyncId::parse("cat_1:reconcile-17"), None);
        assert!(product_sync_id("cat_1", "x").starts_with(&catalog_prefix("cat_1")));
        assert!(!legacy_product_sync_id("x").starts_with(&catalog_prefix("cat_1")));
    }
}
