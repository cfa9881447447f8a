//! Stripe's shipping, statement and tax fields (issue 16) through the workflow tier: each created,
//! changed in place where Stripe allows it and replaced where it does not, with exactly the
//! expected writes; Dashboard drift in each found by a reconciliation and by `verify`; invalid
//! values reported with the field, nothing sent.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use harness::{Backend, TestEnv, binary, unique};
use serde_json::{Value, json};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::input::LenientInput;
use workflows::model::{
    CatalogPrice, CatalogProduct, CurrencyOption, CustomUnitAmount, PackageDimensions, PriceTier,
    TransformQuantity,
};
use workflows::{ReconcileCatalog, ReconcileInput, ReconcileResult, SyncOutcome};

/// A physical product using every field: two prices, the first with metadata.
fn mug(id: String) -> CatalogProduct {
    CatalogProduct {
        id,
        name: "Stoneware Mug".into(),
        active: true,
        shippable: Some(true),
        statement_descriptor: Some("CS MUGS".into()),
        package_dimensions: Some(PackageDimensions {
            height: 4.0,
            length: 3.5,
            weight: 12.25,
            width: 3.0,
        }),
        marketing_features: vec!["Handmade".into(), "Dishwasher safe".into()],
        prices: vec![
            CatalogPrice {
                currency: "usd".into(),
                unit_amount: 1800,
                nickname: Some("Regular".into()),
                metadata: BTreeMap::from([("channel".into(), "web".into())]),
                ..Default::default()
            },
            CatalogPrice {
                currency: "eur".into(),
                unit_amount: 1700,
                tax_behavior: Some("inclusive".into()),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// The writes of a sync, each without the object id it names (`update_price`, not
/// `update_price:price_…`; product updates keep their field list).
async fn writes(env: &TestEnv, p: &CatalogProduct) -> Vec<String> {
    env.catalog.save_product(p).await.unwrap();
    let result = env.sync(&p.id).await;
    assert!(
        matches!(result.outcome, SyncOutcome::Synced | SyncOutcome::Unchanged),
        "{result:?}"
    );
    result
        .report
        .operations
        .iter()
        .map(|op| match op.split_once(':') {
            Some((kind, _)) if kind != "update_product" => kind.to_string(),
            _ => op.clone(),
        })
        .collect()
}

async fn default_price(env: &TestEnv, id: &str) -> Value {
    env.sandbox.product(id).await.expect("in Stripe")["default_price"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_field_is_created_then_changed_in_place_or_replaced() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let mut p = mug(env.id(1));

    // Created with every field: the first price with the product (its default), then given its
    // lookup key and nickname (which `default_price_data` cannot carry); the second on its own.
    assert_eq!(
        writes(&env, &p).await,
        [
            "create_product",
            "create_price",
            "update_price",
            "create_price"
        ]
    );
    let s = env.sandbox.product(&p.id).await.unwrap();
    assert_eq!(s["shippable"], true);
    assert_eq!(s["statement_descriptor"], "CS MUGS");
    assert_eq!(
        s["package_dimensions"],
        json!({"height": 4.0, "length": 3.5, "weight": 12.25, "width": 3.0})
    );
    assert_eq!(
        s["marketing_features"],
        json!([{"name": "Handmade"}, {"name": "Dishwasher safe"}])
    );
    let first = s["default_price"].clone();
    assert_eq!(
        first["tax_behavior"], "unspecified",
        "unset leaves Stripe's default"
    );
    assert_eq!(first["metadata"]["channel"], "web");
    let eur = env
        .sandbox
        .prices(&p.id)
        .await
        .into_iter()
        .find(|price| price["currency"] == "eur")
        .unwrap();
    assert_eq!(eur["tax_behavior"], "inclusive");
    assert!(writes(&env, &p).await.is_empty(), "in sync: no write");

    // Product fields change in place, in one update.
    p.shippable = Some(false);
    p.statement_descriptor = Some("CS MUGS SALE".into());
    p.package_dimensions.as_mut().unwrap().weight = 13.0;
    p.marketing_features.push("Gift wrap".into());
    assert_eq!(
        writes(&env, &p).await,
        [
            "update_product:shippable,statement_descriptor,package_dimensions,marketing_features,metadata"
        ]
    );
    let s = env.sandbox.product(&p.id).await.unwrap();
    assert_eq!(s["shippable"], false);
    assert_eq!(s["package_dimensions"]["weight"], 13.0);
    assert_eq!(s["marketing_features"][2]["name"], "Gift wrap");

    // Nickname, metadata and a tax behavior Stripe holds as unspecified change in place: the
    // default price keeps its id.
    p.prices[0].nickname = Some("Launch".into());
    p.prices[0]
        .metadata
        .insert("channel".into(), "store".into());
    p.prices[0].tax_behavior = Some("exclusive".into());
    assert_eq!(
        writes(&env, &p).await,
        ["update_price", "update_product:metadata"]
    );
    let now = default_price(&env, &p.id).await;
    assert_eq!(now["id"], first["id"]);
    assert_eq!(
        (
            &now["nickname"],
            &now["metadata"]["channel"],
            &now["tax_behavior"]
        ),
        (&json!("Launch"), &json!("store"), &json!("exclusive"))
    );

    // Once set, a tax behavior is fixed: a new price takes the lookup key over, becomes the
    // default, and the old one is archived. And back again (a change and its undoing).
    let mut ids = vec![first["id"].clone()];
    for behavior in ["inclusive", "exclusive"] {
        p.prices[0].tax_behavior = Some(behavior.into());
        assert_eq!(
            writes(&env, &p).await,
            [
                "create_price",
                "update_product:metadata,default_price",
                "archive_price"
            ],
            "{behavior}"
        );
        let now = default_price(&env, &p.id).await;
        assert_eq!(now["tax_behavior"], behavior);
        assert_eq!(
            now["nickname"], "Launch",
            "the new price carries every field"
        );
        assert_eq!(now["metadata"]["channel"], "store");
        assert!(!ids.contains(&now["id"]), "a new price");
        ids.push(now["id"].clone());
    }
    harness::assert_no_duplicate_prices(&env.sandbox, std::slice::from_ref(&p)).await;

    // Unset in the catalog: Stripe's value stays.
    p.prices[0].tax_behavior = None;
    assert_eq!(writes(&env, &p).await, ["update_product:metadata"]);
    assert_eq!(
        default_price(&env, &p.id).await["tax_behavior"],
        "exclusive"
    );

    // Removed features and dimensions are removed in Stripe; a statement descriptor cannot be
    // unset there, so an unset one leaves Stripe's (as an unset shipping flag does).
    p.marketing_features.clear();
    p.package_dimensions = None;
    p.statement_descriptor = None;
    assert_eq!(
        writes(&env, &p).await,
        ["update_product:package_dimensions,marketing_features,metadata"]
    );
    let s = env.sandbox.product(&p.id).await.unwrap();
    assert_eq!(
        (
            &s["statement_descriptor"],
            &s["package_dimensions"],
            &s["marketing_features"]
        ),
        (&json!("CS MUGS SALE"), &Value::Null, &json!([]))
    );
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_values_are_reported_with_the_field_and_nothing_is_sent() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let mut p = mug(env.id(1));
    p.statement_descriptor = Some("1234".into());
    p.package_dimensions.as_mut().unwrap().length = 0.0;
    p.marketing_features = vec!["Feature".into(); 16];
    p.prices[0].tax_behavior = Some("gross".into());
    p.prices[1].metadata.insert("a[b]".into(), "x".into());
    p.prices[1].tiers = vec![tier(Some(5), 100), tier(Some(9), 90)];
    p.prices[0].currency_options = BTreeMap::from([("usd".into(), option(1))]);
    env.catalog.save_product(&p).await.unwrap();
    let good = mug(env.id(2));
    env.catalog.save_product(&good).await.unwrap();
    let result = env.sync(&p.id).await;
    assert_eq!(result.outcome, SyncOutcome::Invalid, "{result:?}");
    let fields: Vec<&str> = result.issues.iter().map(|i| i.field.as_str()).collect();
    for field in [
        "statement_descriptor",
        "package_dimensions.length",
        "marketing_features",
        "prices[0].tax_behavior",
        "prices[1].metadata.a[b]",
        "prices[1].tiers_mode",
        "prices[1].tiers[1].up_to",
        "prices[1].unit_amount",
        "prices[0].currency_options.usd",
    ] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
    assert_eq!(env.writes().await, 0, "nothing sent for an invalid product");
    assert!(env.sandbox.product(&p.id).await.is_none());
    // The other product syncs.
    assert_eq!(env.sync(&good.id).await.outcome, SyncOutcome::Synced);
}

/// `starter verify`'s report, which must find differences.
fn verify_differences(env: &TestEnv) -> String {
    let out = Command::new(binary("starter"))
        .args(["verify", "--requests-per-second", "200"])
        .env("CATALOG_DATABASE_URL", &env.catalog_url)
        .env("STRIPE_API_BASE", &env.sandbox.base)
        .env("STRIPE_API_KEY", &env.sandbox.key)
        .output()
        .expect("starter verify runs");
    assert!(!out.status.success(), "verify must find the drift");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn reconcile(env: &TestEnv) -> ReconcileResult {
    let id = unique("reconcile");
    env.client
        .start_workflow(
            ReconcileCatalog::run,
            ReconcileInput::from_json(json!({})),
            WorkflowStartOptions::new(env.worker.task_queue.as_str(), &id).build(),
        )
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(120),
        env.client
            .get_workflow_handle::<ReconcileCatalog>(&id)
            .get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("reconciliation finished in time")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_drift_in_each_field_is_found_and_repaired() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let mut p = mug(env.id(1));
    p.prices[0].tax_behavior = Some("exclusive".into());
    env.catalog.save_product(&p).await.unwrap();
    assert_eq!(env.sync(&p.id).await.outcome, SyncOutcome::Synced);

    // Product fields edited in the Dashboard.
    env.sandbox
        .dashboard_edit(
            &p.id,
            "shippable=false&statement_descriptor=EDITED+HERE&package_dimensions=&marketing_features[0][name]=Other",
        )
        .await;
    let report = verify_differences(&env);
    for field in [
        "shippable:",
        "statement_descriptor:",
        "package_dimensions:",
        "marketing_features:",
    ] {
        assert!(report.contains(field), "verify reports {field}\n{report}");
    }
    let r = reconcile(&env).await;
    assert_eq!(r.totals.drift.edited_in_stripe, 1, "{r:?}");
    assert_eq!(r.totals.repaired, 1, "{r:?}");

    // Price fields edited in the Dashboard: found as price drift, repaired in place.
    let price = default_price(&env, &p.id).await;
    let price_id = price["id"].as_str().unwrap();
    env.sandbox
        .dashboard_edit_price(price_id, "nickname=Hand+made&metadata[channel]=pos")
        .await;
    let report = verify_differences(&env);
    assert!(report.contains("active prices:"), "{report}");
    let r = reconcile(&env).await;
    assert_eq!(r.totals.drift.price_drift, 1, "{r:?}");
    assert_eq!(r.totals.repaired, 1, "{r:?}");
    let now = default_price(&env, &p.id).await;
    assert_eq!(now["id"], price["id"], "repaired in place");
    assert_eq!(now["metadata"]["channel"], "web");
    assert_eq!(now["nickname"], "Regular");

    // Everything matches again: nothing found, verify clean.
    let r = reconcile(&env).await;
    assert_eq!(r.totals.drift.total(), 0, "{r:?}");
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 1);
}

fn tier(up_to: Option<i64>, unit_amount: i64) -> PriceTier {
    PriceTier {
        up_to,
        unit_amount: Some(unit_amount),
        flat_amount: None,
    }
}

fn option(unit_amount: i64) -> CurrencyOption {
    CurrencyOption {
        unit_amount: Some(unit_amount),
        ..Default::default()
    }
}

/// A seat plan with graduated tiers in two currencies (the default price), a pay-what-you-want
/// tip in euros, and a six-pack priced in pounds and Swedish kronor.
fn plan(id: String) -> CatalogProduct {
    CatalogProduct {
        id,
        name: "Team plan".into(),
        active: true,
        prices: vec![
            CatalogPrice {
                currency: "usd".into(),
                recurring_interval: Some("month".into()),
                tiers_mode: Some("graduated".into()),
                tiers: vec![tier(Some(10), 1000), tier(None, 800)],
                currency_options: BTreeMap::from([(
                    "eur".into(),
                    CurrencyOption {
                        tiers: vec![tier(Some(10), 900), tier(None, 700)],
                        ..Default::default()
                    },
                )]),
                ..Default::default()
            },
            CatalogPrice {
                currency: "eur".into(),
                custom_unit_amount: Some(CustomUnitAmount {
                    minimum: Some(500),
                    maximum: None,
                    preset: Some(1500),
                }),
                ..Default::default()
            },
            CatalogPrice {
                currency: "gbp".into(),
                unit_amount: 1200,
                transform_quantity: Some(TransformQuantity {
                    divide_by: 6,
                    round: "up".into(),
                }),
                currency_options: BTreeMap::from([("sek".into(), option(14_000))]),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// The product's active prices by currency, with tiers and currency options.
async fn active_prices(env: &TestEnv, id: &str) -> BTreeMap<String, Value> {
    let (status, list) = env
        .sandbox
        .get(&format!(
            "/v1/prices?product={id}&active=true&limit=100&expand[]=data.tiers&expand[]=data.currency_options"
        ))
        .await;
    assert_eq!(status, 200, "{list}");
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["currency"].as_str().unwrap().to_string(), p.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_currencies_custom_amounts_and_packages_follow_the_mutability_rules() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let mut p = plan(env.id(1));
    assert_eq!(
        writes(&env, &p).await,
        [
            "create_product",
            "create_price",
            "create_price",
            "create_price",
            "update_product:default_price"
        ]
    );
    let prices = active_prices(&env, &p.id).await;
    let usd = &prices["usd"];
    assert_eq!(
        (&usd["billing_scheme"], &usd["tiers_mode"]),
        (&json!("tiered"), &json!("graduated"))
    );
    assert_eq!(
        usd["tiers"][1]["up_to"],
        Value::Null,
        "the last tier is inf"
    );
    assert_eq!(
        usd["currency_options"]["eur"]["tiers"][0]["unit_amount"],
        900
    );
    assert_eq!(prices["eur"]["custom_unit_amount"]["preset"], 1500);
    assert_eq!(prices["gbp"]["transform_quantity"]["divide_by"], 6);
    assert_eq!(
        prices["gbp"]["currency_options"]["sek"]["unit_amount"],
        14_000
    );
    assert_eq!(default_price(&env, &p.id).await["id"], usd["id"]);
    assert!(writes(&env, &p).await.is_empty(), "in sync: no write");

    // A currency's amount changed and a currency added: in place.
    let packaged = p.prices[2].currency_options.clone();
    p.prices[2]
        .currency_options
        .insert("sek".into(), option(15_000));
    p.prices[2]
        .currency_options
        .insert("nok".into(), option(14_500));
    assert_eq!(
        writes(&env, &p).await,
        ["update_price", "update_product:metadata"]
    );
    let now = active_prices(&env, &p.id).await;
    assert_eq!(now["gbp"]["id"], prices["gbp"]["id"]);
    assert_eq!(now["gbp"]["currency_options"]["nok"]["unit_amount"], 14_500);

    // A currency removed: a new price (A→B→A over the three states).
    p.prices[2].currency_options = packaged;
    assert_eq!(
        writes(&env, &p).await,
        ["create_price", "update_product:metadata", "archive_price"]
    );
    let now = active_prices(&env, &p.id).await;
    assert_ne!(now["gbp"]["id"], prices["gbp"]["id"]);
    assert!(now["gbp"]["currency_options"].get("nok").is_none());

    // Tiers, a customer's amount and a package are fixed: each change is a new price, and a
    // change of the default price moves the default. The sale and its end: A→B→A.
    for amount in [950, 1000] {
        p.prices[0].tiers[0].unit_amount = Some(amount);
        assert_eq!(
            writes(&env, &p).await,
            [
                "create_price",
                "update_product:metadata,default_price",
                "archive_price"
            ],
            "tier amount {amount}"
        );
        let usd = &active_prices(&env, &p.id).await["usd"];
        assert_eq!(usd["tiers"][0]["unit_amount"], amount);
        assert_eq!(default_price(&env, &p.id).await["id"], usd["id"]);
    }
    p.prices[1].custom_unit_amount.as_mut().unwrap().minimum = Some(300);
    p.prices[2].transform_quantity.as_mut().unwrap().divide_by = 12;
    assert_eq!(
        writes(&env, &p).await,
        [
            "create_price",
            "create_price",
            "update_product:metadata",
            "archive_price",
            "archive_price"
        ]
    );
    harness::assert_no_duplicate_prices(&env.sandbox, std::slice::from_ref(&p)).await;
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 1);

    // A Dashboard edit of a currency's amount is drift, found and put back in place.
    let gbp = active_prices(&env, &p.id).await["gbp"].clone();
    env.sandbox
        .dashboard_edit_price(
            gbp["id"].as_str().unwrap(),
            "currency_options[sek][unit_amount]=99",
        )
        .await;
    let report = verify_differences(&env);
    assert!(report.contains("active prices:"), "{report}");
    let r = reconcile(&env).await;
    assert_eq!(r.totals.drift.price_drift, 1, "{r:?}");
    let now = active_prices(&env, &p.id).await;
    assert_eq!(now["gbp"]["id"], gbp["id"], "repaired in place");
    assert_eq!(now["gbp"]["currency_options"]["sek"]["unit_amount"], 14_000);
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metered_price_names_its_meter_and_a_new_meter_is_a_new_price() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let meter = |event: &'static str| {
        let env = &env;
        async move {
            let (status, m) = env
                .sandbox
                .api_post(
                    "/v1/billing/meters",
                    &format!(
                        "display_name={event}&event_name={event}&default_aggregation[formula]=sum"
                    ),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{m}");
            m["id"].as_str().unwrap().to_string()
        }
    };
    let (calls, tokens) = (meter("api_calls").await, meter("tokens").await);
    let mut p = CatalogProduct {
        id: env.id(1),
        name: "API".into(),
        active: true,
        prices: vec![
            CatalogPrice {
                currency: "usd".into(),
                unit_amount: 2900,
                recurring_interval: Some("month".into()),
                ..Default::default()
            },
            CatalogPrice {
                currency: "eur".into(),
                unit_amount: 2,
                recurring_interval: Some("month".into()),
                usage_type: Some("metered".into()),
                meter: Some(calls.clone()),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert_eq!(
        writes(&env, &p).await,
        [
            "create_product",
            "create_price",
            "update_price",
            "create_price"
        ]
    );
    let eur = &active_prices(&env, &p.id).await["eur"];
    assert_eq!(eur["recurring"]["usage_type"], "metered");
    assert_eq!(eur["recurring"]["meter"], calls.as_str());
    assert!(writes(&env, &p).await.is_empty(), "in sync: no write");

    // Another meter, then licensed: each a new price holding the same lookup key.
    p.prices[1].meter = Some(tokens.clone());
    assert_eq!(
        writes(&env, &p).await,
        ["create_price", "update_product:metadata", "archive_price"]
    );
    assert_eq!(
        active_prices(&env, &p.id).await["eur"]["recurring"]["meter"],
        tokens.as_str()
    );
    p.prices[1].usage_type = None;
    p.prices[1].meter = None;
    assert_eq!(
        writes(&env, &p).await,
        ["create_price", "update_product:metadata", "archive_price"]
    );
    let eur = &active_prices(&env, &p.id).await["eur"];
    assert_eq!(eur["recurring"]["usage_type"], "licensed");
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 1);

    // A metered price without a meter is invalid; nothing is sent.
    let mut bad = p.clone();
    bad.id = env.id(2);
    bad.prices[1].usage_type = Some("metered".into());
    env.catalog.save_product(&bad).await.unwrap();
    let before = env.writes().await;
    let result = env.sync(&bad.id).await;
    assert_eq!(result.outcome, SyncOutcome::Invalid, "{result:?}");
    assert_eq!(result.issues[0].field, "prices[1].meter", "{result:?}");
    assert_eq!(env.writes().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogs_own_lookup_key_is_used_and_never_taken_from_another_product() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let key = format!("team-monthly-{}", env.id(0));
    let priced = |id: String| CatalogProduct {
        id,
        name: "Team".into(),
        active: true,
        prices: vec![CatalogPrice {
            currency: "usd".into(),
            unit_amount: 4900,
            recurring_interval: Some("month".into()),
            lookup_key: Some(key.clone()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut first = priced(env.id(1));
    // The key is checked once, before the first write; the sync is otherwise as usual.
    assert_eq!(
        writes(&env, &first).await,
        ["create_product", "create_price", "update_price"]
    );
    let price = default_price(&env, &first.id).await;
    assert_eq!(price["lookup_key"], key.as_str());
    assert!(writes(&env, &first).await.is_empty(), "in sync: no write");
    // A new amount: the new price takes the catalog's key over from the old one.
    first.prices[0].unit_amount = 5900;
    assert_eq!(
        writes(&env, &first).await,
        [
            "create_price",
            "update_product:metadata,default_price",
            "archive_price"
        ]
    );
    let (_, held) = env
        .sandbox
        .get(&format!("/v1/prices?lookup_keys[]={key}"))
        .await;
    assert_eq!(held["data"][0]["unit_amount"], 5900);

    // Another product asking for the same key is refused before any write, with the reason.
    let second = priced(env.id(2));
    env.catalog.save_product(&second).await.unwrap();
    let before = env.writes().await;
    let result = env.sync(&second.id).await;
    assert_eq!(result.outcome, SyncOutcome::Failed, "{result:?}");
    let error = result.error.unwrap_or_default();
    assert!(
        error.contains("is held by price")
            && error.contains(&first.id)
            && error.contains("lookup_key"),
        "{error}"
    );
    assert_eq!(env.writes().await, before, "nothing written");
    assert!(env.sandbox.product(&second.id).await.is_none());
    assert_eq!(
        default_price(&env, &first.id).await["lookup_key"],
        key.as_str(),
        "the first product keeps its key"
    );

    // `verify` compares the catalog's own lookup keys: one moved off by hand is a difference.
    env.catalog.hard_delete(&second.id).await.unwrap();
    let held_by = default_price(&env, &first.id).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.sandbox
        .dashboard_edit_price(&held_by, &format!("lookup_key=hand-{key}"))
        .await;
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(harness::binary("starter"))
            .arg("verify")
            .env("CATALOG_DATABASE_URL", &env.catalog_url)
            .env("STRIPE_API_BASE", &env.sandbox.base)
            .env("STRIPE_API_KEY", &env.sandbox.key)
            .output()
            .unwrap()
    });
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "lookup key {key:?}: no active price of this product holds it"
        )),
        "{said}"
    );
}

/// Two products given the same own lookup key at once: whichever writes first holds it, and the
/// other's sync fails naming the key (it is never moved from one product to the other), however
/// their checks and writes interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_products_racing_for_one_lookup_key_leave_one_holder_and_one_failure() {
    let env = TestEnv::start(Backend::Sqlite).await;
    for round in 0..3 {
        let key = format!("race-{round}-{}", env.id(0));
        let products: Vec<CatalogProduct> = (1..=2)
            .map(|n| CatalogProduct {
                id: env.id(10 * round + n),
                name: format!("Racer {n}"),
                active: true,
                prices: vec![CatalogPrice {
                    currency: "usd".into(),
                    unit_amount: 1000 * n as i64,
                    lookup_key: Some(key.clone()),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        env.catalog.save_products(&products).await.unwrap();
        futures::future::join_all(products.iter().map(|p| env.signal(&p.id))).await;
        let mut outcomes = Vec::new();
        for p in &products {
            let result = env.result(&p.id).await;
            if result.outcome == SyncOutcome::Failed {
                let error = result.error.clone().unwrap_or_default();
                assert!(
                    error.contains("lookup key") || error.contains("lookup_key"),
                    "{error}"
                );
            }
            outcomes.push(result.outcome);
        }
        outcomes.sort_by_key(|o| o.as_str());
        assert_eq!(
            outcomes,
            [SyncOutcome::Failed, SyncOutcome::Synced],
            "round {round}"
        );
        let (_, held) = env
            .sandbox
            .get(&format!("/v1/prices?lookup_keys[]={key}"))
            .await;
        assert_eq!(held["data"].as_array().unwrap().len(), 1, "{held}");
    }
}
