//! The field tables' own tests: every entry, through every path a value takes.

use serde_json::json;

use super::*;
use crate::limits::{MAX_DESCRIPTION, MAX_NAME, MAX_UNIT_LABEL};
use crate::model::{CatalogPrice, PackageDimensions};

/// A product with every field set, as the catalog holds it (untrimmed where trimming matters).
fn catalog() -> CatalogProduct {
    CatalogProduct {
        name: " Mug ".into(),
        description: Some("A mug ".into()),
        images: vec!["https://example.com/mug.png".into()],
        url: Some("https://example.com/mug".into()),
        unit_label: Some("cup".into()),
        tax_code: Some("txcd_99999999".into()),
        shippable: Some(true),
        statement_descriptor: Some("MUG SHOP".into()),
        package_dimensions: Some(PackageDimensions {
            height: 4.0,
            length: 5.0,
            weight: 12.5,
            width: 5.0,
        }),
        marketing_features: vec![" Dishwasher safe".into()],
        ..CatalogProduct::default()
    }
}

/// The same product as Stripe answers it: an expanded tax code, features as objects, whole
/// numbers without a fraction.
fn stripe() -> Value {
    json!({
        "id": "sku-1", "name": "Mug", "description": "A mug",
        "images": ["https://example.com/mug.png"], "url": "https://example.com/mug",
        "unit_label": "cup", "tax_code": {"id": "txcd_99999999", "object": "tax_code"},
        "shippable": true, "statement_descriptor": "MUG SHOP",
        "package_dimensions": {"height": 4, "length": 5, "weight": 12.5, "width": 5},
        "marketing_features": [{"name": "Dishwasher safe"}],
    })
}

#[test]
fn a_synced_product_needs_no_write_in_any_field() {
    for field in PRODUCT_FIELDS {
        let desired = field.from_catalog(&catalog());
        assert!(field.issues(&desired).is_empty(), "{}", field.name);
        assert_eq!(desired, field.from_stripe(&stripe()), "{}", field.name);
        assert!(
            field
                .form(&desired, Some(&field.from_stripe(&stripe())))
                .is_empty(),
            "{}",
            field.name
        );
    }
}

#[test]
fn an_unset_value_clears_stripe_or_leaves_it_as_its_entry_says() {
    let empty = CatalogProduct {
        name: "Mug".into(),
        ..CatalogProduct::default()
    };
    for field in PRODUCT_FIELDS.iter().filter(|f| f.name != "name") {
        let desired = field.from_catalog(&empty);
        assert!(is_unset(&desired), "{}", field.name);
        let sent = field.form(&desired, Some(&field.from_stripe(&stripe())));
        match field.unset {
            Unset::Clears => assert_eq!(sent, [(field.name.into(), String::new())]),
            Unset::LeavesStripe => assert!(sent.is_empty(), "{}", field.name),
        }
        // A new product is created without it.
        assert!(field.form(&desired, None).is_empty(), "{}", field.name);
    }
}

#[test]
fn values_are_sent_in_stripes_bracket_dialect() {
    let form: Vec<(String, String)> = PRODUCT_FIELDS
        .iter()
        .flat_map(|f| f.form(&f.from_catalog(&catalog()), None))
        .collect();
    let sent = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(sent("name"), Some("Mug"));
    assert_eq!(sent("description"), Some("A mug"));
    assert_eq!(sent("images[0]"), Some("https://example.com/mug.png"));
    assert_eq!(sent("shippable"), Some("true"));
    assert_eq!(sent("package_dimensions[height]"), Some("4"));
    assert_eq!(sent("package_dimensions[weight]"), Some("12.5"));
    assert_eq!(sent("marketing_features[0][name]"), Some("Dishwasher safe"));
    assert_eq!(form.len(), 13, "{form:?}");
}

#[test]
fn a_column_gives_back_the_value_it_stores() {
    for field in PRODUCT_FIELDS {
        let value = field.from_catalog(&catalog());
        let stored = field.codec.column(&value);
        let mut product = CatalogProduct::default();
        (field.access.set_catalog)(&mut product, field.codec.from_column(stored).unwrap()).unwrap();
        assert_eq!(field.from_catalog(&product), value, "{}", field.name);
    }
    let images = product_field("images").unwrap();
    assert_eq!(
        images
            .codec
            .from_column(Column::Text(Some("{\"a\": 1}".into())))
            .map(|v| (images.access.set_catalog)(&mut CatalogProduct::default(), v).is_err()),
        Ok(true)
    );
    assert!(
        images
            .codec
            .from_column(Column::Text(Some("[".into())))
            .unwrap_err()
            .starts_with("is not a JSON array of strings")
    );
}

#[test]
fn the_tax_behaviors_entry_is_the_tax_behavior() {
    assert_eq!(TAX_BEHAVIOR.name, "tax_behavior");
    assert_eq!(TAX_BEHAVIOR.change, Mutability::InPlaceWhileUnspecified);
}

#[test]
fn a_price_scalar_left_unset_clears_or_leaves_stripes_value() {
    let stripe = json!({"nickname": "Monthly", "tax_behavior": "exclusive"});
    let unset = CatalogPrice::default();
    for (name, scalar) in price_scalars() {
        let desired = scalar.from_catalog(&unset);
        let have = scalar.codec.from_stripe(&stripe[name]);
        assert_eq!(
            scalar.differs(&desired, &have),
            scalar.unset == Unset::Clears,
            "{name}"
        );
        assert!(!scalar.differs(&have, &have), "{name}");
    }
    let bad = CatalogPrice {
        tax_behavior: Some(" gross ".into()),
        ..CatalogPrice::default()
    };
    let issues = TAX_BEHAVIOR.scalar.unwrap().issues(
        "prices[1].",
        &TAX_BEHAVIOR.scalar.unwrap().from_catalog(&bad),
    );
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].field, "prices[1].tax_behavior");
}

#[test]
fn every_rule_names_its_field() {
    let bad = CatalogProduct {
        name: "x".repeat(MAX_NAME + 1),
        description: Some("x".repeat(MAX_DESCRIPTION + 1)),
        images: vec!["http://insecure.example.com/a.png".into()],
        url: Some("javascript:alert(1)".into()),
        unit_label: Some("x".repeat(MAX_UNIT_LABEL + 1)),
        tax_code: Some("txcd_1".into()),
        statement_descriptor: Some("1234".into()),
        package_dimensions: Some(PackageDimensions {
            height: 1.0,
            length: 0.0,
            weight: f64::NAN,
            width: 1.0,
        }),
        marketing_features: vec![" ".into()],
        ..CatalogProduct::default()
    };
    for field in PRODUCT_FIELDS.iter().filter(|f| f.name != "shippable") {
        let issues = field.issues(&field.from_catalog(&bad));
        assert!(!issues.is_empty(), "{}", field.name);
        for issue in issues {
            assert!(issue.field.starts_with(field.name), "{issue}");
        }
    }
}
