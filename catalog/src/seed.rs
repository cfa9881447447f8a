//! Deterministic sample products: the same `(count, seed)` always gives the same catalog. Several
//! currencies (including zero-decimal JPY and KRW), one-off and recurring prices, tax-inclusive
//! and tax-exclusive prices, price metadata, and physical goods with shipping, package dimensions,
//! marketing features and a statement descriptor.

use std::collections::BTreeMap;

use domain::model::{
    CatalogPrice, CatalogProduct, CurrencyOption, CustomUnitAmount, PackageDimensions, PriceTier,
    TransformQuantity,
};
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
/// Nouns that are not shipped.
const DIGITAL: &[&str] = &["Software Licence", "Support Plan"];
const FEATURES: &[&str] = &[
    "Free returns",
    "Two-year warranty",
    "Ships in 24 hours",
    "Recyclable packaging",
];
const CATEGORIES: &[&str] = &["home", "outdoor", "kitchen", "office", "apparel", "digital"];

/// The catalog id of the `n`-th sample product (1-based): `sku-000001`.
pub fn sample_id(n: usize) -> String {
    format!("sku-{n:06}")
}

/// Sample product number `n` (1-based) of a catalog seeded with `seed`.
pub fn sample_product(n: usize, seed: u64) -> CatalogProduct {
    generate(n, seed, true)
}

/// Sample product number `n` with every price per unit (no tiers, customer's amounts, packages
/// or other currencies), otherwise the same as [`sample_product`]'s: for tests and benchmarks
/// whose expectations are written for per-unit prices.
pub fn per_unit_sample(n: usize, seed: u64) -> CatalogProduct {
    generate(n, seed, false)
}

fn generate(n: usize, seed: u64, schemes: bool) -> CatalogProduct {
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
            ..Default::default()
        }),
        _ => prices.push(CatalogPrice {
            currency: "krw".into(),
            unit_amount: rng.gen_range(10..500) * 1000,
            recurring_interval: Some("year".into()),
            recurring_interval_count: Some(1),
            nickname: Some("Yearly".into()),
            ..Default::default()
        }),
    }
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "category".to_string(),
        CATEGORIES[rng.gen_range(0..CATEGORIES.len())].to_string(),
    );
    // Drawn after everything above, so the catalogs seeded before these fields keep their names
    // and amounts.
    let tax_behavior = match rng.gen_range(0..3) {
        0 => Some("exclusive"),
        1 => Some("inclusive"),
        _ => None,
    };
    for price in &mut prices {
        price.tax_behavior = tax_behavior.map(str::to_string);
    }
    if rng.gen_range(0..4) == 0 {
        prices[0].metadata.insert("channel".into(), "web".into());
    }
    // The first price's scheme: most per unit; some tiered, pay-what-you-want, packaged or in
    // several currencies.
    let base = prices[0].unit_amount;
    let first = &mut prices[0];
    let scheme = rng.gen_range(0..12);
    match if schemes { scheme } else { usize::MAX } {
        mode @ (0 | 1) => {
            first.unit_amount = 0;
            first.tiers_mode = Some(if mode == 0 { "graduated" } else { "volume" }.into());
            first.tiers = vec![
                PriceTier {
                    up_to: Some(10),
                    unit_amount: Some(base),
                    flat_amount: (mode == 1).then_some(500),
                },
                PriceTier {
                    up_to: Some(100),
                    unit_amount: Some(base * 9 / 10),
                    flat_amount: None,
                },
                PriceTier {
                    up_to: None,
                    unit_amount: Some(base * 4 / 5),
                    flat_amount: None,
                },
            ];
        }
        2 => {
            first.unit_amount = 0;
            first.custom_unit_amount = Some(CustomUnitAmount {
                minimum: Some(500),
                maximum: Some(100_000),
                preset: Some(base.clamp(500, 100_000)),
            });
        }
        3 => {
            first.transform_quantity = Some(TransformQuantity {
                divide_by: 6,
                round: "up".into(),
            });
        }
        4 | 5 => {
            for (code, share) in [("eur", 92), ("gbp", 79)] {
                first.currency_options.insert(
                    code.into(),
                    CurrencyOption {
                        unit_amount: Some(base * share / 100),
                        ..Default::default()
                    },
                );
            }
        }
        _ => {}
    }
    let physical = !DIGITAL.contains(&noun);
    let package_dimensions = (physical && rng.gen_range(0..2) == 0).then(|| PackageDimensions {
        height: f64::from(rng.gen_range(1..40)),
        length: f64::from(rng.gen_range(1..40)),
        weight: f64::from(rng.gen_range(1..200)) / 4.0,
        width: f64::from(rng.gen_range(1..40)),
    });
    let marketing_features = if rng.gen_range(0..3) == 0 {
        let count = rng.gen_range(1..=FEATURES.len());
        FEATURES[..count].iter().map(|f| f.to_string()).collect()
    } else {
        Vec::new()
    };
    let statement_descriptor = (rng.gen_range(0..5) == 0).then(|| {
        format!("SAMPLE {}", adjective.to_uppercase())
            .chars()
            .take(22)
            .collect()
    });
    CatalogProduct {
        shippable: Some(physical),
        statement_descriptor,
        package_dimensions,
        marketing_features,
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

/// `product` (sample `n`) with a metered usage price on `meter` added, for every fourth sample:
/// `usd`, per unit of usage, monthly (sample data cannot hold a meter id of its own: meters live
/// in Stripe, see `starter meters ensure`).
pub fn with_usage_price(mut product: CatalogProduct, n: usize, meter: &str) -> CatalogProduct {
    let monthly_usd = product
        .prices
        .iter()
        .any(|p| p.currency == "usd" && p.recurring_interval.as_deref() == Some("month"));
    if n.is_multiple_of(4) && !monthly_usd {
        product.prices.push(CatalogPrice {
            currency: "usd".into(),
            unit_amount: 5,
            recurring_interval: Some("month".into()),
            recurring_interval_count: Some(1),
            nickname: Some("Usage".into()),
            usage_type: Some("metered".into()),
            meter: Some(meter.to_string()),
            ..Default::default()
        });
    }
    product
}

/// `product` (sample `n`) with its prices thinned so that a catalog seeded this way holds
/// `mean` prices per product (1.0 to 2.0; every sample has 2): sample `n` keeps its second price
/// when ⌊n·(mean − 1)⌋ grows at `n`, so the first `k` samples keep ⌊k·(mean − 1)⌋ second prices,
/// spread evenly (1.5 keeps every even-numbered sample's).
pub fn with_mean_prices(mut product: CatalogProduct, n: usize, mean: f64) -> CatalogProduct {
    let share = (mean - 1.0).clamp(0.0, 1.0);
    let kept = |k: usize| (k as f64 * share).floor();
    if product.prices.len() > 1 && kept(n) == kept(n.saturating_sub(1)) {
        product.prices.truncate(1);
    }
    product
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_product_passes_the_transform() {
        for n in 1..=500 {
            let p = with_usage_price(sample_product(n, 7), n, "mtr_61Qsample0000");
            if let domain::model::TransformOutput::Invalid(issues) =
                domain::transform::transform(&p.id, Some(&p))
            {
                panic!("sample {n} is invalid: {issues:?}\n{p:?}");
            }
        }
    }

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
        let products: Vec<CatalogProduct> = (1..200).map(|n| sample_product(n, 1)).collect();
        let some = |f: &dyn Fn(&CatalogProduct) -> bool| products.iter().any(f);
        assert!(some(&|p| p.shippable == Some(false)) && some(&|p| p.shippable == Some(true)));
        assert!(some(&|p| p.package_dimensions.is_some()));
        assert!(some(&|p| !p.marketing_features.is_empty()));
        assert!(some(&|p| p.statement_descriptor.is_some()));
        for behavior in ["inclusive", "exclusive"] {
            assert!(some(
                &|p| p.prices[0].tax_behavior.as_deref() == Some(behavior)
            ));
        }
        assert!(some(&|p| p.prices[0].tax_behavior.is_none()));
        assert!(some(&|p| !p.prices[0].metadata.is_empty()));
        for mode in ["graduated", "volume"] {
            assert!(some(&|p| p.prices[0].tiers_mode.as_deref() == Some(mode)));
        }
        assert!(some(&|p| p.prices[0].custom_unit_amount.is_some()));
        assert!(some(&|p| p.prices[0].transform_quantity.is_some()));
        assert!(some(&|p| !p.prices[0].currency_options.is_empty()));
        // That each is valid: `every_sample_product_passes_the_transform`.
    }

    #[test]
    fn mean_prices_per_product() {
        let total = |mean: f64, k: usize| -> usize {
            (1..=k)
                .map(|n| with_mean_prices(sample_product(n, 1), n, mean).prices.len())
                .sum()
        };
        assert_eq!(total(2.0, 1000), 2000);
        assert_eq!(total(1.5, 1000), 1500);
        assert_eq!(total(1.25, 1000), 1250);
        assert_eq!(total(1.0, 1000), 1000);
        assert_eq!(
            with_mean_prices(sample_product(2, 1), 2, 1.5).prices.len(),
            2
        );
        assert_eq!(
            with_mean_prices(sample_product(3, 1), 3, 1.5).prices.len(),
            1
        );
        // The first price, the product's default, is the one kept.
        assert_eq!(
            with_mean_prices(sample_product(3, 1), 3, 1.0).prices[0],
            sample_product(3, 1).prices[0]
        );
    }
}
