//! Field ownership: which side wins when a product field is edited in the Stripe Dashboard.
//!
//! By default the catalog owns every field: a Dashboard edit is reverted by the next sync. Fields
//! configured as Stripe-owned (`CATALOG_SYNC_STRIPE_OWNED_FIELDS=description,images`) are written
//! when catalog-sync creates the product and never overwritten after; with write-back on, a
//! Dashboard edit of one is copied into the catalog. Prices, `active` and catalog-sync's metadata
//! always belong to the catalog.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::fields::{PRODUCT_FIELDS, ProductField, product_field, product_field_names};
use crate::model::{DesiredProduct, ValidationIssue};

/// Who owns which field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    stripe_owned: BTreeSet<&'static str>,
    /// Copy Dashboard edits of Stripe-owned fields into the catalog.
    pub write_back: bool,
}

/// A field that cannot be owned by Stripe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} cannot be owned by Stripe: choose among {fields}", fields = product_field_names())]
pub struct UnknownField(pub String);

impl Ownership {
    /// Stripe owns the fields of a comma-separated list (empty: the catalog owns everything).
    pub fn parse(stripe_owned: &str, write_back: bool) -> Result<Self, UnknownField> {
        let mut owned = BTreeSet::new();
        for field in stripe_owned
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            let known = product_field(field).ok_or_else(|| UnknownField(field.to_string()))?;
            owned.insert(known.name);
        }
        Ok(Self {
            stripe_owned: owned,
            write_back,
        })
    }

    /// Stripe owns `field`.
    pub fn stripe_owns(&self, field: &str) -> bool {
        self.stripe_owned.contains(field)
    }

    /// The Stripe-owned fields.
    pub fn stripe_owned(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.stripe_owned.iter().copied()
    }

    /// The Stripe-owned fields whose value in Stripe (`current`, Stripe's product JSON) breaks a
    /// rule the catalog's own value would have to pass (say a Dashboard `url` of
    /// `javascript:…`), with the reason. Such a value is neither kept nor written back: the sync
    /// puts the catalog's value back.
    pub fn refused(&self, current: &Value) -> Vec<ValidationIssue> {
        self.owned_fields()
            .flat_map(|field| field.issues(&field.from_stripe(current)))
            .collect()
    }

    /// What to make an existing Stripe product (`current`, Stripe's product JSON) look like:
    /// `desired`, with the Stripe-owned fields as Stripe has them, except those Stripe holds a
    /// [refused](Self::refused) value of.
    pub fn effective(&self, desired: &DesiredProduct, current: &Value) -> DesiredProduct {
        let mut d = desired.clone();
        for field in self.owned_fields() {
            // A value Stripe holds that breaks the field's rule, or does not fit the field, is
            // not kept: the catalog's value stays (setting fails without changing it).
            let value = field.from_stripe(current);
            if field.issues(&value).is_empty() {
                (field.access.set_desired)(&mut d, value).ok();
            }
        }
        d
    }

    fn owned_fields(&self) -> impl Iterator<Item = &'static ProductField> + '_ {
        PRODUCT_FIELDS
            .iter()
            .filter(|f| self.stripe_owned.contains(f.name))
    }
}

/// The ownable fields a `product.updated` event changed (the keys of `previous_attributes`).
pub fn changed_fields(previous_attributes: Option<&Value>) -> Vec<&'static str> {
    let Some(Value::Object(previous)) = previous_attributes else {
        return Vec::new();
    };
    PRODUCT_FIELDS
        .iter()
        .map(|f| f.name)
        .filter(|f| previous.contains_key(*f))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_fields_and_refuses_others() {
        let o = Ownership::parse(" description, images ,", true).unwrap();
        assert!(o.stripe_owns("description") && o.stripe_owns("images"));
        assert!(!o.stripe_owns("name"));
        assert!(o.write_back);
        assert_eq!(Ownership::parse("", false).unwrap(), Ownership::default());
        assert_eq!(
            Ownership::parse("name,price", false),
            Err(UnknownField("price".into()))
        );
    }

    #[test]
    fn stripe_owned_values_are_kept_unless_refused_or_unfit() {
        use crate::model::PackageDimensions;
        let o = Ownership::parse("description,url,package_dimensions", false).unwrap();
        let catalog_dimensions = PackageDimensions {
            height: 1.0,
            length: 2.0,
            weight: 3.0,
            width: 4.0,
        };
        let desired = DesiredProduct {
            name: "Mug".into(),
            description: Some("From the catalog".into()),
            url: Some("https://shop.example.com/mug".into()),
            package_dimensions: Some(catalog_dimensions),
            ..DesiredProduct::default()
        };
        let stripe = serde_json::json!({
            "name": "Edited name", "description": "Written by marketing",
            "url": "javascript:alert(1)",
            "package_dimensions": {"height": 5, "length": 5, "width": 5},
        });
        let effective = o.effective(&desired, &stripe);
        // Stripe owns the description: kept. The name is the catalog's: not taken.
        assert_eq!(
            effective.description.as_deref(),
            Some("Written by marketing")
        );
        assert_eq!(effective.name, "Mug");
        // A refused URL and dimensions without a weight are not kept: the catalog's stay.
        assert_eq!(effective.url, desired.url);
        assert_eq!(effective.package_dimensions, Some(catalog_dimensions));
        let refused: Vec<String> = o.refused(&stripe).into_iter().map(|i| i.field).collect();
        assert_eq!(refused, ["url", "package_dimensions.weight"]);
    }

    #[test]
    fn changed_fields_are_the_ownable_previous_attributes() {
        let prev = serde_json::json!({"name": "Old", "updated": 1, "description": null});
        assert_eq!(changed_fields(Some(&prev)), vec!["name", "description"]);
        assert!(changed_fields(None).is_empty());
    }
}
