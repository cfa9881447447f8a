//! Stripe's prices: the requests (`/v1/prices`) and which expansions they ask for. How a price
//! compares with the catalog's, and the forms that create or update it, are `domain::prices`; the
//! object's fields are in `objects`.

use reqwest::Method;

use crate::client::{Form, StripeClient, StripeError, path_segment};
use crate::envelope::{List, Response};
use crate::objects::{PRICE_EXPANSIONS, Price, PriceOfProduct, Product};

/// Asks for [`PRICE_EXPANSIONS`] of the prices at `prefix` (`data.`, `data.default_price.`).
pub fn expand_prices(form: &mut Form, prefix: &str) {
    for field in PRICE_EXPANSIONS {
        form.push("expand[]", format!("{prefix}{field}"));
    }
}

impl StripeClient {
    /// Every price of a product (all pages) with the product itself, expanded into each price
    /// (`expand[]=data.product`): a sync's read of what it may change, in one request for a
    /// product with up to 100 prices. The product is `None` when it has no price (read it on its
    /// own then). Also returns how many requests that took.
    pub async fn list_prices_with_product(
        &self,
        product: &str,
    ) -> Result<(Option<Product>, Vec<Price>, u32), StripeError> {
        let mut requests = 0;
        let mut owner = None;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut form = Form::new();
            form.push("product", product)
                .push("limit", "100")
                .push("expand[]", "data.product");
            form.push_opt("starting_after", after.as_deref());
            expand_prices(&mut form, "data.");
            let page: Response<List<PriceOfProduct>> =
                self.call(Method::GET, "/v1/prices", &form, None).await?;
            requests += 1;
            let more = page.value.has_more;
            after = page.value.data.last().map(|p| p.id.clone());
            for price in page.value.data {
                let (price, product) = price.split_product();
                owner.get_or_insert(product);
                out.push(price);
            }
            if !more || after.is_none() {
                return Ok((owner, out, requests));
            }
        }
    }

    /// `GET /v1/prices?lookup_keys[]=…`: the prices holding up to 10 lookup keys, in one request.
    pub async fn list_prices_by_lookup_keys(
        &self,
        keys: &[String],
    ) -> Result<Vec<Price>, StripeError> {
        assert!(keys.len() <= 10, "Stripe takes at most 10 lookup_keys");
        let mut form = Form::new();
        form.push("limit", "100");
        for key in keys {
            form.push("lookup_keys[]", key.as_str());
        }
        expand_prices(&mut form, "data.");
        let page: Response<List<Price>> = self.call(Method::GET, "/v1/prices", &form, None).await?;
        Ok(page.value.data)
    }

    /// One page (100, newest first) of the account's active prices after `starting_after`, each
    /// with its product (`expand[]=data.product`): the reconciliation's sweep for active prices
    /// the catalog does not ask for.
    pub async fn list_active_prices(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<PriceOfProduct>, StripeError> {
        let mut form = Form::new();
        form.push("active", "true")
            .push("limit", "100")
            .push("expand[]", "data.product");
        form.push_opt("starting_after", starting_after);
        let page: Response<List<PriceOfProduct>> =
            self.call(Method::GET, "/v1/prices", &form, None).await?;
        Ok(page.value)
    }

    /// One page (100, newest first) of the account's prices, active and archived, after
    /// `starting_after`, tiers and currency options expanded: a scan of the account's prices.
    pub async fn list_prices(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<Price>, StripeError> {
        let mut form = Form::new();
        form.push("limit", "100");
        form.push_opt("starting_after", starting_after);
        expand_prices(&mut form, "data.");
        let page: Response<List<Price>> = self.call(Method::GET, "/v1/prices", &form, None).await?;
        Ok(page.value)
    }

    /// `POST /v1/prices`.
    pub async fn create_price(
        &self,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<Response<Price>, StripeError> {
        self.call(Method::POST, "/v1/prices", form, Some(idempotency_key))
            .await
    }

    /// `POST /v1/prices/{id}`.
    pub async fn update_price(
        &self,
        id: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<Response<Price>, StripeError> {
        self.call(
            Method::POST,
            &format!("/v1/prices/{}", path_segment(id)),
            form,
            Some(idempotency_key),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{PriceRecurring, StripeCurrencyOption, StripeTier};
    use domain::fields::{Mutability, PRICE_FIELDS};
    use domain::model::{CurrencyOption, DesiredPrice, PriceTier};
    use domain::prices::{PriceChanges, create_form, desired_metadata};
    use std::collections::BTreeMap;

    /// `domain::prices::compare` of a price as the wire gives it: these tests hold the two
    /// layers to each other (the wire object's fields as `compare` reads them).
    fn compare(
        current: &Price,
        desired: &DesiredPrice,
        marker: &BTreeMap<String, String>,
    ) -> PriceChanges {
        domain::prices::compare(&current.current(), desired, marker)
    }
    use domain::model::{CustomUnitAmount, Recurring, TransformQuantity};

    fn marker() -> BTreeMap<String, String> {
        BTreeMap::from([("catalog_sync_managed".to_string(), "true".to_string())])
    }

    fn desired() -> DesiredPrice {
        DesiredPrice {
            lookup_key: "cs:sku:usd:monthx1".into(),
            currency: "usd".into(),
            unit_amount: 1000,
            recurring: Some(Recurring {
                interval: "month".into(),
                interval_count: 1,
                meter: None,
            }),
            nickname: Some("Monthly".into()),
            tax_behavior: Some("exclusive".into()),
            metadata: BTreeMap::from([("channel".to_string(), "web".to_string())]),
            tiers: Vec::new(),
            tiers_mode: None,
            currency_options: BTreeMap::new(),
            custom_unit_amount: None,
            transform_quantity: None,
        }
    }

    /// The Stripe price that `desired()` makes.
    fn synced() -> Price {
        let d = desired();
        Price {
            id: "price_1".into(),
            active: true,
            currency: d.currency.clone(),
            unit_amount: Some(d.unit_amount),
            recurring: Some(PriceRecurring {
                interval: "month".into(),
                interval_count: 1,
                usage_type: Some("licensed".into()),
                meter: None,
            }),
            lookup_key: Some(d.lookup_key.clone()),
            nickname: d.nickname.clone(),
            tax_behavior: d.tax_behavior.clone(),
            billing_scheme: None,
            tiers_mode: None,
            tiers: None,
            currency_options: None,
            custom_unit_amount: None,
            transform_quantity: None,
            product: "sku".into(),
            metadata: desired_metadata(&d, &marker()),
        }
    }

    fn changes(edit: impl FnOnce(&mut Price)) -> PriceChanges {
        let mut current = synced();
        edit(&mut current);
        compare(&current, &desired(), &marker())
    }

    #[test]
    fn a_synced_price_matches() {
        assert!(changes(|_| {}).is_empty());
    }

    fn field_rule(name: &str) -> Mutability {
        PRICE_FIELDS.iter().find(|f| f.name == name).unwrap().change
    }

    #[test]
    fn every_field_of_the_table_is_compared_under_its_rule() {
        let all = changes(|p| {
            p.currency = "eur".into();
            p.unit_amount = Some(900);
            p.recurring.as_mut().unwrap().interval_count = 3;
            p.tax_behavior = Some("inclusive".into());
            p.nickname = None;
            p.metadata.clear();
            p.active = false;
            p.tiers_mode = Some("volume".into());
            p.custom_unit_amount = Some(CustomUnitAmount::default());
            p.transform_quantity = Some(TransformQuantity {
                divide_by: 2,
                round: "down".into(),
            });
            p.currency_options = Some(BTreeMap::from([(
                "gbp".to_string(),
                StripeCurrencyOption {
                    unit_amount: Some(1),
                    tax_behavior: None,
                    tiers: None,
                },
            )]));
        });
        for field in PRICE_FIELDS {
            let new_price = all.new_price.contains(&field.name);
            let in_place = all.update.field_names().contains(&field.name);
            let field = field.name;
            match field_rule(field) {
                Mutability::NewPrice | Mutability::InPlaceWhileUnspecified => {
                    assert!(new_price && !in_place, "{field}: a new price")
                }
                Mutability::InPlace => assert!(in_place && !new_price, "{field}: in place"),
                Mutability::InPlaceUnlessRemoved => {
                    assert!(new_price != in_place, "{field}: one or the other")
                }
            }
        }
    }

    #[test]
    fn currency_amount_and_period_make_a_new_price() {
        for (field, edit) in [
            (
                "currency",
                Box::new(|p: &mut Price| p.currency = "eur".into()) as Box<dyn FnOnce(&mut Price)>,
            ),
            (
                "unit_amount",
                Box::new(|p: &mut Price| p.unit_amount = Some(900)),
            ),
            (
                "recurring",
                Box::new(|p: &mut Price| p.recurring.as_mut().unwrap().interval_count = 3),
            ),
            ("recurring", Box::new(|p: &mut Price| p.recurring = None)),
        ] {
            let c = changes(edit);
            assert_eq!(c.new_price, vec![field]);
            assert!(c.update.is_empty(), "{field}: nothing in place");
        }
    }

    #[test]
    fn tax_behavior_changes_in_place_only_while_unspecified() {
        let c = changes(|p| p.tax_behavior = Some("unspecified".into()));
        assert!(c.new_price.is_empty());
        assert_eq!(c.update.encode(), "tax_behavior=exclusive");
        let c = changes(|p| p.tax_behavior = None);
        assert_eq!(c.update.encode(), "tax_behavior=exclusive");
        let c = changes(|p| p.tax_behavior = Some("inclusive".into()));
        assert_eq!(c.new_price, vec!["tax_behavior"]);
        // Unset in the catalog: Stripe's value stays, whatever it is.
        let mut d = desired();
        d.tax_behavior = None;
        let mut current = synced();
        current.tax_behavior = Some("inclusive".into());
        assert!(compare(&current, &d, &marker()).is_empty());
    }

    #[test]
    fn nickname_metadata_and_active_change_in_place() {
        let c = changes(|p| p.nickname = Some("Old".into()));
        assert_eq!(c.update.encode(), "nickname=Monthly");
        let c = changes(|p| p.nickname = None);
        assert_eq!(c.update.encode(), "nickname=Monthly");
        let c = changes(|p| {
            p.metadata.insert("channel".into(), "store".into());
            p.metadata.insert("dashboard".into(), "x".into());
        });
        assert_eq!(
            c.update.encode(),
            "metadata[channel]=web&metadata[dashboard]="
        );
        assert!(c.new_price.is_empty());
        let c = changes(|p| p.active = false);
        assert_eq!(c.update.encode(), "active=true");
    }

    fn tier(up_to: Option<i64>, unit_amount: i64) -> PriceTier {
        PriceTier {
            up_to,
            unit_amount: Some(unit_amount),
            flat_amount: None,
        }
    }

    /// `desired()` with tiers, and the Stripe price it makes (tiers expanded).
    fn tiered() -> (DesiredPrice, Price) {
        let mut d = desired();
        d.unit_amount = 0;
        d.tiers = vec![tier(Some(10), 1000), tier(None, 800)];
        d.tiers_mode = Some("graduated".into());
        let mut p = synced();
        p.unit_amount = None;
        p.billing_scheme = Some("tiered".into());
        p.tiers_mode = d.tiers_mode.clone();
        p.tiers = Some(
            d.tiers
                .iter()
                .map(|t| StripeTier {
                    up_to: t.up_to,
                    unit_amount: t.unit_amount,
                    flat_amount: t.flat_amount,
                })
                .collect(),
        );
        (d, p)
    }

    #[test]
    fn tiers_custom_amounts_and_packages_make_a_new_price() {
        let (d, p) = tiered();
        assert!(
            compare(&p, &d, &marker()).is_empty(),
            "a synced tiered price matches"
        );
        let mut changed = d.clone();
        changed.tiers[0].unit_amount = Some(900);
        assert_eq!(compare(&p, &changed, &marker()).new_price, vec!["tiers"]);
        let mut changed = d.clone();
        changed.tiers_mode = Some("volume".into());
        assert_eq!(compare(&p, &changed, &marker()).new_price, vec!["tiers"]);
        // From per unit to tiered: both the amount and the tiers differ.
        assert_eq!(
            compare(&synced(), &d, &marker()).new_price,
            vec!["unit_amount", "tiers"]
        );
        let mut custom = desired();
        custom.recurring = None;
        custom.unit_amount = 0;
        custom.custom_unit_amount = Some(CustomUnitAmount {
            minimum: Some(500),
            maximum: None,
            preset: None,
        });
        let c = changes(|p| p.recurring = None);
        assert!(c.new_price.contains(&"recurring"));
        let mut current = synced();
        current.recurring = None;
        assert_eq!(
            compare(&current, &custom, &marker()).new_price,
            vec!["unit_amount", "custom_unit_amount"]
        );
        let mut packaged = desired();
        packaged.transform_quantity = Some(TransformQuantity {
            divide_by: 6,
            round: "up".into(),
        });
        assert_eq!(
            compare(&synced(), &packaged, &marker()).new_price,
            vec!["transform_quantity"]
        );
    }

    #[test]
    fn currency_options_change_in_place_unless_one_is_removed_or_a_set_tax_changes() {
        let option = |amount: i64, tax: Option<&str>| StripeCurrencyOption {
            unit_amount: Some(amount),
            tax_behavior: tax.map(str::to_string),
            tiers: None,
        };
        let mut current = synced();
        // Stripe lists the price's own currency among its options.
        current.currency_options = Some(BTreeMap::from([
            ("usd".to_string(), option(1000, Some("exclusive"))),
            ("eur".to_string(), option(900, Some("exclusive"))),
        ]));
        let mut d = desired();
        let wanted = |amount: i64, tax: Option<&str>| CurrencyOption {
            unit_amount: Some(amount),
            tiers: Vec::new(),
            tax_behavior: tax.map(str::to_string),
        };
        d.currency_options = BTreeMap::from([("eur".to_string(), wanted(900, None))]);
        assert!(
            compare(&current, &d, &marker()).is_empty(),
            "unset tax matches any"
        );
        // A changed amount and an added currency: in place, only what differs.
        d.currency_options.insert("eur".into(), wanted(950, None));
        d.currency_options
            .insert("gbp".into(), wanted(800, Some("inclusive")));
        let c = compare(&current, &d, &marker());
        assert!(c.new_price.is_empty());
        assert_eq!(
            c.update.encode(),
            "currency_options[eur][unit_amount]=950&currency_options[gbp][unit_amount]=800\
             &currency_options[gbp][tax_behavior]=inclusive"
        );
        // A set tax behavior changed, or a currency removed: a new price.
        d.currency_options = BTreeMap::from([("eur".to_string(), wanted(900, Some("inclusive")))]);
        assert_eq!(
            compare(&current, &d, &marker()).new_price,
            vec!["currency_options"]
        );
        d.currency_options.clear();
        assert_eq!(
            compare(&current, &d, &marker()).new_price,
            vec!["currency_options"]
        );
    }

    #[test]
    fn a_tiered_price_in_two_currencies_is_one_request() {
        let (mut d, _) = tiered();
        d.currency_options = BTreeMap::from([(
            "eur".to_string(),
            CurrencyOption {
                unit_amount: None,
                tiers: vec![tier(Some(10), 900), tier(None, 700)],
                tax_behavior: None,
            },
        )]);
        let form = create_form("sku", &d, &marker(), true).encode();
        assert!(!form.contains("&unit_amount="), "{form}");
        for part in [
            "billing_scheme=tiered",
            "tiers_mode=graduated",
            "tiers[0][up_to]=10&tiers[0][unit_amount]=1000&tiers[1][up_to]=inf&tiers[1][unit_amount]=800",
            "currency_options[eur][tiers][0][up_to]=10&currency_options[eur][tiers][0][unit_amount]=900",
            "currency_options[eur][tiers][1][up_to]=inf",
        ] {
            assert!(form.contains(part), "{part} in {form}");
        }
    }

    #[test]
    fn a_new_price_carries_every_field() {
        let form = create_form("sku", &desired(), &marker(), true);
        assert_eq!(
            form.encode(),
            "product=sku&currency=usd&unit_amount=1000&lookup_key=cs%3Asku%3Ausd%3Amonthx1\
             &transfer_lookup_key=true&metadata[catalog_sync_managed]=true&metadata[channel]=web\
             &recurring[interval]=month&recurring[interval_count]=1&nickname=Monthly\
             &tax_behavior=exclusive"
        );
    }
}
