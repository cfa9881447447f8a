//! Deterministic sample products: the same `(count, seed)` always gives the same catalog. Several
//! currencies (including zero-decimal JPY and KRW), one-off and recurring prices.

use std::collections::BTreeMap;

use domain::model::{CatalogPrice, CatalogProduct};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ADJECTIVES: &[&str] = &[
    "Classic", "Organic", "Vintage", "Compact", "Deluxe", "Rugged", "Minimal", "Handmade", "Smart",
    "Wireless", "Recycled", "Premium", "Travel", "Everyday", "Studio", "Alpine",
];
const NOUNS: &[&str] = &[
    "Backpack",
    "Coffee Beans",
    "Desk Lamp",
    "Notebook",
    "Water Bottle",
    "Headphones",
    "Sneakers",
    "Tea Set",
    "Yoga Mat",
    "Wool Scarf",
    "Chef Knife",
    "Plant Pot",
    "Camera Strap",
    "Candle",
    "Software Licence",
    "Support Plan",
];
const CATEGORIES: &[&str] = &["home", "outdoor", "kitchen", "office", "apparel", "digital"];

/// The catalog id of the `n`-th sample product (1-based): `sku-000001`.
pub fn sample_id(n: usize) -> String {
    format!("sku-{n:06}")
}

/// Sample product number `n` (1-based) of a catalog seeded with `seed`.
pub fn sample_product(n: usize, seed: u64) -> CatalogProduct {
    let mut rng = StdRng::seed_from_u64(seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let adjective = ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())];
    let noun = NOUNS[rng.gen_range(0..NOUNS.len())];
    let id = sample_id(n);
    let mut prices = vec![CatalogPrice {
        currency: "usd".into(),
        unit_amount: rng.gen_range(5..200) * 100 - 1,
        ..Default::default()
    }];
    match rng.gen_range(0..4) {
        0 => prices.push(CatalogPrice {
            currency: "eur".into(),
            unit_amount: rng.gen_range(5..200) * 100 - 5,
            ..Default::default()
        }),
        1 => prices.push(CatalogPrice {
            currency: "jpy".into(),
            unit_amount: rng.gen_range(5..200) * 100,
            ..Default::default()
        }),
        2 => prices.push(CatalogPrice {
            currency: "usd".into(),
            unit_amount: rng.gen_range(1..30) * 100 - 1,
            recurring_interval: Some("month".into()),
            recurring_interval_count: Some(1),
            nickname: Some("Monthly".into()),
        }),
        _ => prices.push(CatalogPrice {
            currency: "krw".into(),
            unit_amount: rng.gen_range(10..500) * 1000,
            recurring_interval: Some("year".into()),
            recurring_interval_count: Some(1),
            nickname: Some("Yearly".into()),
        }),
    }
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "category".to_string(),
        CATEGORIES[rng.gen_range(0..CATEGORIES.len())].to_string(),
    );
    CatalogProduct {
        name: format!("{adjective} {noun}"),
        description: Some(format!(
            "The {} {} from our sample catalog (#{n}).",
            adjective.to_lowercase(),
            noun.to_lowercase()
        )),
        active: true,
        images: vec![format!("https://images.example.com/{id}.png")],
        url: Some(format!("https://shop.example.com/p/{id}")),
        unit_label: None,
        tax_code: None,
        metadata,
        prices,
        id,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        assert_eq!(sample_product(7, 1), sample_product(7, 1));
        assert_ne!(sample_product(7, 1), sample_product(7, 2));
        let currencies: std::collections::BTreeSet<String> = (1..200)
            .flat_map(|n| sample_product(n, 1).prices.into_iter().map(|p| p.currency))
            .collect();
        assert!(
            currencies.contains("jpy") && currencies.contains("krw") && currencies.contains("eur")
        );
    }
}
