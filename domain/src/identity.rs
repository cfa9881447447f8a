//! Whose a Stripe product is: catalog-sync marks what it creates with `catalog_sync_managed`, and
//! with the identity of the catalog it was created for (`catalog_sync_catalog`, made when the
//! catalog database is first migrated). A process touches only its own catalog's objects, so a
//! worker pointed at an empty catalog, a copy, or another team's catalog in the same Stripe account
//! reads them, reports them, and never archives or overwrites them.
//!
//! | Stripe product | [`Claim`] | what catalog-sync does |
//! |---|---|---|
//! | no `catalog_sync_managed=true`, no trace of this catalog | `Unmanaged` | never touches it |
//! | `catalog_sync_managed` removed in Stripe, `catalog_sync_id` and `catalog_sync_catalog` this catalog's | `Detached` | re-attaches it while the catalog has the product |
//! | managed, `catalog_sync_catalog` this catalog's | `Ours` | syncs, repairs and archives it |
//! | managed, `catalog_sync_catalog` another catalog's | `OtherCatalog` | never touches it; reported |
//! | managed, no `catalog_sync_catalog` (made before identities) | `Unadopted` | never touches it until `starter adopt` claims it |

use std::collections::BTreeMap;
use std::fmt;

use crate::metadata::{META_CATALOG, META_ID, META_MANAGED};
use crate::model::DesiredProduct;

/// The identity of the catalog a process serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogIdentity(String);

/// Whose a Stripe product is, seen from one catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This catalog's.
    Ours,
    /// This catalog's, but `catalog_sync_managed` was removed in Stripe.
    Detached,
    /// catalog-sync's, for another catalog (its identity).
    OtherCatalog(String),
    /// catalog-sync's, made before catalog identities: no catalog has claimed it yet.
    Unadopted,
    /// Not catalog-sync's.
    Unmanaged,
}

impl Claim {
    /// Why a product this catalog may not touch is left alone (`None` for the ones it may).
    pub fn refusal(&self, ours: &CatalogIdentity) -> Option<String> {
        match self {
            Claim::OtherCatalog(other) => Some(format!(
                "belongs to catalog {other}, not to this catalog ({ours}): left alone"
            )),
            Claim::Unadopted => Some(format!(
                "made by catalog-sync before catalog identities: left alone until \
                 `starter adopt` claims it for this catalog ({ours})"
            )),
            Claim::Ours | Claim::Detached | Claim::Unmanaged => None,
        }
    }
}

/// `metadata.catalog_sync_managed == "true"`: catalog-sync created this object.
pub fn is_managed(metadata: &BTreeMap<String, String>) -> bool {
    metadata.get(META_MANAGED).map(String::as_str) == Some("true")
}

impl CatalogIdentity {
    /// The identity as stored in the catalog database.
    pub fn new(identity: impl Into<String>) -> Self {
        Self(identity.into())
    }

    /// The identity's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whose the Stripe product with `metadata` is, for the catalog product `catalog_id`.
    pub fn claim(&self, metadata: &BTreeMap<String, String>, catalog_id: &str) -> Claim {
        let catalog = metadata.get(META_CATALOG).map(String::as_str);
        if !is_managed(metadata) {
            let ours = catalog == Some(self.as_str())
                && metadata.get(META_ID).map(String::as_str) == Some(catalog_id);
            return if ours {
                Claim::Detached
            } else {
                Claim::Unmanaged
            };
        }
        match catalog {
            Some(c) if c == self.as_str() => Claim::Ours,
            Some(other) => Claim::OtherCatalog(other.to_string()),
            None => Claim::Unadopted,
        }
    }

    /// This catalog's managed object: `Ours` for the product's own id (`claim` without a catalog
    /// id, for lists of Stripe objects).
    pub fn owns(&self, metadata: &BTreeMap<String, String>) -> bool {
        is_managed(metadata)
            && metadata.get(META_CATALOG).map(String::as_str) == Some(self.as_str())
    }

    /// catalog-sync's metadata on every price it writes or keeps for this catalog.
    pub fn price_marker(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (META_MANAGED.to_string(), "true".to_string()),
            (META_CATALOG.to_string(), self.0.clone()),
        ])
    }

    /// `desired` with this catalog's identity in its metadata, as every write carries it.
    pub fn stamp(&self, desired: &DesiredProduct) -> DesiredProduct {
        let mut d = desired.clone();
        d.metadata.insert(META_CATALOG.into(), self.0.clone());
        d
    }
}

impl fmt::Display for CatalogIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_row_of_the_table_is_told_apart() {
        let ours = CatalogIdentity::new("cat_a");
        let managed = |catalog: Option<&str>| {
            let mut m = md(&[(META_MANAGED, "true"), (META_ID, "sku-1")]);
            if let Some(c) = catalog {
                m.insert(META_CATALOG.into(), c.into());
            }
            m
        };
        assert_eq!(ours.claim(&managed(Some("cat_a")), "sku-1"), Claim::Ours);
        assert_eq!(
            ours.claim(&managed(Some("cat_b")), "sku-1"),
            Claim::OtherCatalog("cat_b".into())
        );
        assert_eq!(ours.claim(&managed(None), "sku-1"), Claim::Unadopted);
        let detached = md(&[(META_ID, "sku-1"), (META_CATALOG, "cat_a")]);
        assert_eq!(ours.claim(&detached, "sku-1"), Claim::Detached);
        // Detached from another catalog, or for another id, or made before identities: not ours.
        let theirs = md(&[(META_ID, "sku-1"), (META_CATALOG, "cat_b")]);
        assert_eq!(ours.claim(&theirs, "sku-1"), Claim::Unmanaged);
        assert_eq!(ours.claim(&detached, "sku-2"), Claim::Unmanaged);
        assert_eq!(
            ours.claim(&md(&[(META_ID, "sku-1")]), "sku-1"),
            Claim::Unmanaged
        );
        assert_eq!(ours.claim(&md(&[]), "sku-1"), Claim::Unmanaged);
        // `catalog_sync_managed` must be exactly "true".
        let mut not_true = managed(Some("cat_a"));
        not_true.insert(META_MANAGED.into(), "false".into());
        assert_eq!(ours.claim(&not_true, "sku-1"), Claim::Detached);
    }

    #[test]
    fn only_other_catalogs_and_unadopted_products_are_refused() {
        let ours = CatalogIdentity::new("cat_a");
        let other = Claim::OtherCatalog("cat_b".into()).refusal(&ours).unwrap();
        assert!(
            other.contains("cat_b") && other.contains("cat_a"),
            "{other}"
        );
        assert!(
            Claim::Unadopted
                .refusal(&ours)
                .unwrap()
                .contains("starter adopt")
        );
        for claim in [Claim::Ours, Claim::Detached, Claim::Unmanaged] {
            assert_eq!(claim.refusal(&ours), None);
        }
    }

    #[test]
    fn owns_and_stamp_agree() {
        let ours = CatalogIdentity::new("cat_a");
        let desired = DesiredProduct {
            stripe_id: "sku-1".into(),
            catalog_id: "sku-1".into(),
            name: "A".into(),
            description: None,
            active: true,
            images: Vec::new(),
            url: None,
            unit_label: None,
            tax_code: None,
            metadata: md(&[(META_MANAGED, "true"), (META_ID, "sku-1")]),
            shippable: None,
            statement_descriptor: None,
            package_dimensions: None,
            marketing_features: Vec::new(),
            prices: Vec::new(),
            content_hash: String::new(),
            catalog_version: 1,
            changed_at: None,
        };
        let stamped = ours.stamp(&desired);
        assert!(ours.owns(&stamped.metadata));
        assert!(!CatalogIdentity::new("cat_b").owns(&stamped.metadata));
        assert!(
            !ours.owns(&desired.metadata),
            "unstamped: made before identities"
        );
    }
}
