//! How one product compares with Stripe: the classification table of the module's doc, pure.
//! Over 500 lines with its unit tests (the code is under 200): the tests sit beside the rules they
//! pin down, one table of cases per rule.

use super::*;

/// How one product compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Stripe matches.
    InSync,
    /// Stripe differs.
    Drift(DriftKind, String),
    /// A Stripe product with this id exists that catalog-sync does not manage.
    Unmanaged,
    /// A Stripe product with this id is catalog-sync's, for another catalog (or not adopted).
    OtherCatalog,
    /// Product fields match; the prices must be read to tell.
    NeedsPrices,
}

/// Compares a plan with the Stripe product of the same id (default price expanded) and, when
/// known, the prices holding its lookup keys. Pure.
pub fn classify(
    plan: &SyncPlan,
    stripe: Option<&Product>,
    prices: Option<&[Price]>,
    identity: &CatalogIdentity,
    ownership: &Ownership,
) -> Verdict {
    let claim = stripe.map(|s| identity.claim(&s.metadata, plan.catalog_id()));
    match claim {
        Some(Claim::OtherCatalog(_) | Claim::Unadopted) => return Verdict::OtherCatalog,
        Some(Claim::Unmanaged) => return Verdict::Unmanaged,
        Some(Claim::Detached) if matches!(plan, SyncPlan::Archive { .. }) => {
            return Verdict::Unmanaged;
        }
        _ => {}
    }
    let desired = match plan {
        SyncPlan::Archive { .. } => {
            return match stripe {
                Some(s) if s.active => Verdict::Drift(
                    DriftKind::ShouldArchive,
                    "deleted in the catalog, active in Stripe".into(),
                ),
                _ => Verdict::InSync,
            };
        }
        SyncPlan::Upsert(d) => d,
    };
    let Some(current) = stripe else {
        return if desired.active {
            Verdict::Drift(DriftKind::Missing, "not in Stripe".into())
        } else {
            // Inactive and absent: nothing to show, nothing to archive.
            Verdict::InSync
        };
    };
    if claim == Some(Claim::Detached) {
        return Verdict::Drift(
            DriftKind::Detached,
            "catalog_sync_managed was removed in Stripe; the catalog still has the product".into(),
        );
    }
    // A Stripe-owned field may differ: that is not drift. Writes carry the catalog's identity.
    let effective = ownership.effective(&identity.stamp(desired), &current.json());
    let desired = &effective;
    let fields = product_form(desired, Some(current));
    if !fields.is_empty() {
        // The fields a person would recognise: not catalog-sync's own bookkeeping keys.
        let names = fields
            .keys()
            .filter(|k| !k.starts_with("metadata[catalog_sync_"))
            .map(|k| k.split('[').next().unwrap_or(k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ");
        if !desired.active && current.active {
            return Verdict::Drift(
                DriftKind::ShouldArchive,
                "inactive in the catalog, active in Stripe".into(),
            );
        }
        let stripe_hash = current.metadata.get(META_HASH).map(String::as_str);
        return if stripe_hash != Some(desired.content_hash.as_str()) {
            let stripe_version = current
                .metadata
                .get(META_VERSION)
                .map_or("none", String::as_str);
            Verdict::Drift(
                DriftKind::Stale,
                format!(
                    "catalog v{} vs Stripe v{stripe_version}; {}",
                    desired.catalog_version,
                    describe(&names, desired, current)
                ),
            )
        } else {
            Verdict::Drift(
                DriftKind::EditedInStripe,
                describe(&names, desired, current),
            )
        };
    }
    price_verdict(desired, current, prices, &price_marker(identity))
}

/// `name: "Old" → "New"` for the name, field names for the rest.
fn describe(names: &str, desired: &DesiredProduct, current: &Product) -> String {
    if current.name != desired.name {
        format!(
            "differs in {names} (name: {:?} → {:?})",
            current.name, desired.name
        )
    } else if names.is_empty() {
        "catalog-sync's metadata differs (content or prices changed)".into()
    } else {
        format!("differs in {names}")
    }
}

fn price_verdict(
    d: &DesiredProduct,
    current: &Product,
    prices: Option<&[Price]>,
    marker: &BTreeMap<String, String>,
) -> Verdict {
    let drift = |why: String| Verdict::Drift(DriftKind::PriceDrift, why);
    let default = current.expanded_default_price();
    let Some(wanted) = d.prices.first() else {
        return match current.default_price_id() {
            Some(id) => drift(format!("default price {id} set, the catalog has no price")),
            None => Verdict::InSync,
        };
    };
    // The default price must hold the first lookup key and match it in every field.
    match default {
        None => return drift("no default price".into()),
        Some(p) if p.lookup_key.as_deref() != Some(wanted.lookup_key.as_str()) => {
            return drift(format!(
                "default price {} does not hold {}",
                p.id, wanted.lookup_key
            ));
        }
        Some(p) => {
            let changes = prices::compare(&p.current(), wanted, marker);
            if !changes.is_empty() {
                return drift(price_difference(
                    &format!("default price {}", p.id),
                    p,
                    wanted,
                    &changes,
                ));
            }
        }
    }
    if d.prices.len() == 1 {
        return Verdict::InSync;
    }
    let Some(prices) = prices else {
        return Verdict::NeedsPrices;
    };
    for want in &d.prices[1..] {
        let Some(p) = prices
            .iter()
            .find(|p| p.lookup_key.as_deref() == Some(want.lookup_key.as_str()))
        else {
            return drift(format!("no price holds {}", want.lookup_key));
        };
        if p.product != d.stripe_id {
            return drift(format!(
                "{} is held by {}'s price {}",
                want.lookup_key, p.product, p.id
            ));
        }
        let changes = prices::compare(&p.current(), want, marker);
        if !changes.is_empty() {
            return drift(price_difference(&want.lookup_key, p, want, &changes));
        }
    }
    Verdict::InSync
}

/// `cs:sku:usd:one_time differs in unit_amount (1999 usd active: true → 2499 usd)`.
fn price_difference(
    what: &str,
    current: &Price,
    wanted: &workflows::model::DesiredPrice,
    changes: &PriceChanges,
) -> String {
    format!(
        "{what} differs in {} ({} {} active: {} → {} {})",
        changes.fields().join(", "),
        current.unit_amount.unwrap_or_default(),
        current.currency,
        current.active,
        wanted.unit_amount,
        wanted.currency
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::metadata::{META_CATALOG, META_MANAGED};

    fn classify_owned_by_catalog(
        plan: &SyncPlan,
        stripe: Option<&Product>,
        prices: Option<&[Price]>,
    ) -> Verdict {
        classify(plan, stripe, prices, &ours(), &Ownership::default())
    }

    fn ours() -> CatalogIdentity {
        CatalogIdentity::new("cat_ours")
    }
    use stripe::client::{Expandable, PriceRecurring};
    use workflows::model::{CatalogPrice, CatalogProduct};

    fn catalog_product(prices: &[(i64, Option<&str>)]) -> CatalogProduct {
        CatalogProduct {
            id: "sku-1".into(),
            name: "Mug".into(),
            description: Some("A mug".into()),
            active: true,
            version: 3,
            prices: prices
                .iter()
                .map(|(amount, interval)| CatalogPrice {
                    currency: "usd".into(),
                    unit_amount: *amount,
                    recurring_interval: interval.map(String::from),
                    recurring_interval_count: interval.map(|_| 1),
                    ..CatalogPrice::default()
                })
                .collect(),
            ..CatalogProduct::default()
        }
    }

    fn plan(p: &CatalogProduct) -> SyncPlan {
        match transform::transform(&p.id, Some(p)) {
            TransformOutput::Plan(plan) => *plan,
            TransformOutput::Invalid(i) => panic!("{i:?}"),
        }
    }

    /// The Stripe side exactly as a sync would leave it.
    fn synced(plan: &SyncPlan) -> (Product, Vec<Price>) {
        let SyncPlan::Upsert(d) = plan else {
            panic!("upsert plan")
        };
        let prices: Vec<Price> = d
            .prices
            .iter()
            .enumerate()
            .map(|(i, p)| Price {
                id: format!("price_{i}"),
                active: true,
                currency: p.currency.clone(),
                unit_amount: Some(p.unit_amount),
                recurring: p.recurring.as_ref().map(|r| PriceRecurring {
                    interval: r.interval.clone(),
                    interval_count: r.interval_count,
                    usage_type: None,
                    meter: None,
                }),
                lookup_key: Some(p.lookup_key.clone()),
                nickname: p.nickname.clone(),
                tax_behavior: Some(
                    p.tax_behavior
                        .clone()
                        .unwrap_or_else(|| "unspecified".into()),
                ),
                billing_scheme: None,
                tiers_mode: None,
                tiers: None,
                currency_options: None,
                custom_unit_amount: None,
                transform_quantity: None,
                product: d.stripe_id.clone(),
                metadata: prices::desired_metadata(p, &price_marker(&ours())),
            })
            .collect();
        let product = Product {
            id: d.stripe_id.clone(),
            name: d.name.clone(),
            description: d.description.clone(),
            active: d.active,
            updated: None,
            images: d.images.clone(),
            url: d.url.clone(),
            unit_label: d.unit_label.clone(),
            tax_code: d.tax_code.clone(),
            metadata: ours().stamp(d).metadata,
            shippable: d.shippable,
            statement_descriptor: d.statement_descriptor.clone(),
            package_dimensions: d.package_dimensions,
            marketing_features: d
                .marketing_features
                .iter()
                .map(|name| stripe::objects::MarketingFeature {
                    name: Some(name.clone()),
                })
                .collect(),
            default_price: prices
                .first()
                .map(|p| Expandable::Object(Box::new(p.clone()))),
        };
        (product, prices)
    }

    fn kind(v: Verdict) -> Option<DriftKind> {
        match v {
            Verdict::Drift(kind, _) => Some(kind),
            _ => None,
        }
    }

    #[test]
    fn a_synced_product_is_in_sync_without_reading_prices() {
        let p = plan(&catalog_product(&[(1200, None)]));
        let (stripe, _) = synced(&p);
        assert_eq!(
            classify_owned_by_catalog(&p, Some(&stripe), None),
            Verdict::InSync
        );
    }

    #[test]
    fn several_prices_need_a_price_read() {
        let p = plan(&catalog_product(&[(1200, None), (900, Some("month"))]));
        let (stripe, prices) = synced(&p);
        assert_eq!(
            classify_owned_by_catalog(&p, Some(&stripe), None),
            Verdict::NeedsPrices
        );
        assert_eq!(
            classify_owned_by_catalog(&p, Some(&stripe), Some(&prices)),
            Verdict::InSync
        );
        let mut archived = prices.clone();
        archived[1].active = false;
        assert_eq!(
            kind(classify_owned_by_catalog(
                &p,
                Some(&stripe),
                Some(&archived)
            )),
            Some(DriftKind::PriceDrift)
        );
        let mut moved = prices.clone();
        moved[1].unit_amount = Some(1);
        assert_eq!(
            kind(classify_owned_by_catalog(&p, Some(&stripe), Some(&moved))),
            Some(DriftKind::PriceDrift)
        );
        assert_eq!(
            kind(classify_owned_by_catalog(
                &p,
                Some(&stripe),
                Some(&prices[..1])
            )),
            Some(DriftKind::PriceDrift),
            "a missing price is drift"
        );
    }

    #[test]
    fn every_kind_of_drift_is_told_apart() {
        let product = catalog_product(&[(1200, None)]);
        let p = plan(&product);
        let (stripe, _) = synced(&p);

        assert_eq!(
            kind(classify_owned_by_catalog(&p, None, None)),
            Some(DriftKind::Missing)
        );

        let mut edited = stripe.clone();
        edited.name = "Mug (edited in the Dashboard)".into();
        let verdict = classify_owned_by_catalog(&p, Some(&edited), None);
        assert_eq!(kind(verdict.clone()), Some(DriftKind::EditedInStripe));
        assert!(format!("{verdict:?}").contains("name"), "{verdict:?}");

        let mut changed = product.clone();
        changed.name = "Mug 2".into();
        changed.version = 4;
        assert_eq!(
            kind(classify_owned_by_catalog(
                &plan(&changed),
                Some(&stripe),
                None
            )),
            Some(DriftKind::Stale)
        );

        let mut repriced = product.clone();
        repriced.prices[0].unit_amount = 1500;
        repriced.version = 4;
        // The content hash covers the prices, so a new price in the catalog shows as stale.
        assert_eq!(
            kind(classify_owned_by_catalog(
                &plan(&repriced),
                Some(&stripe),
                None
            )),
            Some(DriftKind::Stale)
        );
        // A price changed in Stripe behind catalog-sync's back is price drift.
        let mut price_edited = stripe.clone();
        if let Some(Expandable::Object(price)) = &mut price_edited.default_price {
            price.active = false;
        }
        assert_eq!(
            kind(classify_owned_by_catalog(&p, Some(&price_edited), None)),
            Some(DriftKind::PriceDrift)
        );

        let mut deleted = product.clone();
        deleted.deleted = true;
        assert_eq!(
            kind(classify_owned_by_catalog(
                &plan(&deleted),
                Some(&stripe),
                None
            )),
            Some(DriftKind::ShouldArchive)
        );
        let mut inactive = product.clone();
        inactive.active = false;
        assert_eq!(
            kind(classify_owned_by_catalog(
                &plan(&inactive),
                Some(&stripe),
                None
            )),
            Some(DriftKind::ShouldArchive)
        );
        let mut archived = stripe.clone();
        archived.active = false;
        assert_eq!(
            classify_owned_by_catalog(&plan(&deleted), Some(&archived), None),
            Verdict::InSync
        );
        assert_eq!(
            classify_owned_by_catalog(&plan(&deleted), None, None),
            Verdict::InSync
        );
    }

    #[test]
    fn unmanaged_products_are_never_drift() {
        let p = plan(&catalog_product(&[(1200, None)]));
        let (mut stripe, _) = synced(&p);
        stripe.metadata.clear();
        stripe.name = "Someone else's".into();
        assert_eq!(
            classify_owned_by_catalog(&p, Some(&stripe), None),
            Verdict::Unmanaged
        );
        let mut gone = catalog_product(&[]);
        gone.deleted = true;
        assert_eq!(
            classify_owned_by_catalog(&plan(&gone), Some(&stripe), None),
            Verdict::Unmanaged
        );
    }

    #[test]
    fn another_catalogs_products_are_never_drift() {
        let product = catalog_product(&[(1200, None)]);
        let p = plan(&product);
        let (stripe, _) = synced(&p);
        let mut theirs = stripe.clone();
        theirs.name = "Their mug".into();
        theirs
            .metadata
            .insert(META_CATALOG.into(), "cat_theirs".into());
        let mut unadopted = theirs.clone();
        unadopted.metadata.remove(META_CATALOG);
        let mut deleted = product.clone();
        deleted.deleted = true;
        for other in [&theirs, &unadopted] {
            for plan in [&p, &plan(&deleted)] {
                assert_eq!(
                    classify_owned_by_catalog(plan, Some(other), None),
                    Verdict::OtherCatalog,
                    "{plan:?} against {other:?}"
                );
            }
        }
        // Detached from this catalog: re-attached while the catalog has it, never archived.
        let mut detached = stripe.clone();
        detached.metadata.remove(META_MANAGED);
        assert_eq!(
            kind(classify_owned_by_catalog(&p, Some(&detached), None)),
            Some(DriftKind::Detached)
        );
        assert_eq!(
            classify_owned_by_catalog(&plan(&deleted), Some(&detached), None),
            Verdict::Unmanaged
        );
    }

    #[test]
    fn a_stripe_owned_field_edited_in_stripe_is_not_drift() {
        let p = plan(&catalog_product(&[(1200, None)]));
        let (mut edited, _) = synced(&p);
        edited.description = Some("Written by marketing in the Dashboard".into());
        let owned = Ownership::parse("description", false).unwrap();
        assert_eq!(
            classify(&p, Some(&edited), None, &ours(), &owned),
            Verdict::InSync
        );
        assert_eq!(
            kind(classify_owned_by_catalog(&p, Some(&edited), None)),
            Some(DriftKind::EditedInStripe)
        );
    }
}
