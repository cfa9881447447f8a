//! A shop that sold on Stripe before catalog-sync hands its products over (`starter import`),
//! through the binaries: 20 products made by hand (Stripe's own `prod_…` ids), 30 prices among
//! them, some named by the shop's subscriptions; the shop's PostgreSQL schema names each
//! product's Stripe id. Before the import the sync refuses the rows (no second product is
//! made); the dry run prints the plan and writes nothing; the import keeps every matching price
//! id, replaces the rest, and `verify` finds nothing; a second import changes nothing; a product
//! no row names is never touched; afterwards the rows sync (a rename, a soft delete) to their
//! own products.

use std::collections::{BTreeMap, BTreeSet};

use harness::{Backend, Sandbox, unique};
use serde_json::Value;

use super::own_catalog::{Shop, execute, ok, start_worker, starter};

const STOREFRONT: &str = "
CREATE SCHEMA storefront;
CREATE TABLE storefront.listings (
    id                VARCHAR(64) PRIMARY KEY,
    title             TEXT NOT NULL,
    visible           BOOLEAN NOT NULL DEFAULT TRUE,
    removed           BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    stripe_product_id TEXT
);
CREATE TABLE storefront.listing_prices (
    id           SERIAL PRIMARY KEY,
    listing_id   VARCHAR(64) NOT NULL REFERENCES storefront.listings(id),
    currency     CHAR(3) NOT NULL,
    amount_cents INTEGER NOT NULL,
    interval     TEXT,
    position     INTEGER NOT NULL DEFAULT 0,
    archived_at  TIMESTAMPTZ
);";

const MAPPING: &str = r#"
[catalog.products]
table = "storefront.listings"
id = "id"
name = "title"
active = "visible"
updated_at = "updated_at"
deleted = "removed"
stripe_id = "stripe_product_id"

[catalog.prices]
table = "storefront.listing_prices"
product_id = "listing_id"
currency = "currency"
unit_amount = "amount_cents"
recurring_interval = "interval"
order_by = "position"
deleted = "archived_at"
"#;

/// What the test made by hand in Stripe for product `i`: its id, its one-off price and (for the
/// first ten) its monthly price.
struct HandMade {
    product: String,
    one_off: String,
    monthly: Option<String>,
}

fn one_off_amount(i: usize) -> i64 {
    1000 + 100 * i as i64
}

fn monthly_amount(i: usize) -> i64 {
    500 + i as i64
}

async fn post(sandbox: &Sandbox, path: &str, form: &[(&str, &str)]) -> Value {
    let (status, body) = sandbox.post(path, form).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Every product and price of the account, by id.
async fn everything(sandbox: &Sandbox) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for path in ["/v1/products", "/v1/prices"] {
        let (_, list) = sandbox.get(&format!("{path}?limit=100")).await;
        assert_eq!(list["has_more"], false, "the test's account fits one page");
        for object in list["data"].as_array().unwrap() {
            all.insert(object["id"].as_str().unwrap().to_string(), object.clone());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shop_already_selling_on_stripe_hands_its_products_over() {
    let url = harness::fresh_database(Backend::Postgres).await;
    let shop = Shop::new(Backend::Postgres, &url, MAPPING);
    let db = catalog::Catalog::open(&url).await.unwrap();
    execute(&db, STOREFRONT).await;
    let sandbox = Sandbox::start().await;
    let queue = unique("import");

    // The shop's Stripe account, made by hand: 20 products, 30 prices, and a gift card no row
    // names.
    let mut made = Vec::new();
    for i in 0..20 {
        let product = post(&sandbox, "/v1/products", &[("name", &format!("Print {i}"))]).await;
        let product = product["id"].as_str().unwrap().to_string();
        assert!(product.starts_with("prod_"), "{product}");
        let one_off = post(
            &sandbox,
            "/v1/prices",
            &[
                ("product", &product),
                ("currency", "usd"),
                ("unit_amount", &one_off_amount(i).to_string()),
            ],
        )
        .await;
        let monthly = if i < 10 {
            let price = post(
                &sandbox,
                "/v1/prices",
                &[
                    ("product", &product),
                    ("currency", "usd"),
                    ("unit_amount", &monthly_amount(i).to_string()),
                    ("recurring[interval]", "month"),
                ],
            )
            .await;
            Some(price["id"].as_str().unwrap().to_string())
        } else {
            None
        };
        made.push(HandMade {
            product,
            one_off: one_off["id"].as_str().unwrap().to_string(),
            monthly,
        });
    }
    let gift_card = post(&sandbox, "/v1/products", &[("name", "Gift card")]).await;
    let gift_card_id = gift_card["id"].as_str().unwrap().to_string();
    let gift_card = sandbox.product(&gift_card_id).await.unwrap();
    // What the shop's subscriptions and payment links name: every one-off price, and the monthly
    // prices of products 0-4, which the catalog keeps as they are.
    let subscribed: Vec<&String> = made
        .iter()
        .map(|m| &m.one_off)
        .chain(made[..5].iter().filter_map(|m| m.monthly.as_ref()))
        .collect();

    // The shop's rows, each naming its Stripe product: the one-off prices as in Stripe; the
    // monthly prices of products 5-9 raised by 100 (replaced); product 0 sold in EUR as well
    // (created). Row 19 names none yet: it is synced first, as a shop trying catalog-sync before
    // it mapped the ids would, and catalog-sync makes a product of its own for it.
    let id = |i: usize| format!("listing-{i:02}");
    for (i, m) in made.iter().enumerate() {
        let mut sql = format!(
            "INSERT INTO storefront.listings (id, title, stripe_product_id) \
             VALUES ('{}', 'Art print {i}', {}); \
             INSERT INTO storefront.listing_prices (listing_id, currency, amount_cents) \
             VALUES ('{}', 'USD', {});",
            id(i),
            if i == 19 {
                "NULL".to_string()
            } else {
                format!("'{}'", m.product)
            },
            id(i),
            one_off_amount(i)
        );
        if i < 10 {
            let amount = monthly_amount(i) + if i >= 5 { 100 } else { 0 };
            sql.push_str(&format!(
                "INSERT INTO storefront.listing_prices (listing_id, currency, amount_cents, \
                 interval, position) VALUES ('{}', 'USD', {amount}, 'month', 1);",
                id(i)
            ));
        }
        if i == 0 {
            sql.push_str(&format!(
                "INSERT INTO storefront.listing_prices (listing_id, currency, amount_cents, \
                 position) VALUES ('{}', 'EUR', 900, 2);",
                id(i)
            ));
        }
        execute(&db, &sql).await;
    }

    ok(starter(&shop, &sandbox, &queue, &["migrate"]), "migrate");
    let _worker = start_worker(&shop, &sandbox, &queue);
    ok(
        starter(&shop, &sandbox, &queue, &["sync", &id(19), "--wait"]),
        "sync before the mapping named the product",
    );
    assert_eq!(sandbox.product(&id(19)).await.unwrap()["active"], true);
    execute(
        &db,
        &format!(
            "UPDATE storefront.listings SET stripe_product_id = '{}' WHERE id = '{}'",
            made[19].product,
            id(19)
        ),
    )
    .await;

    // Before the import, the sync refuses a row naming a product it was not handed, and makes
    // no second product under the row's id.
    let refused = starter(&shop, &sandbox, &queue, &["sync", &id(1), "--wait"]);
    let said = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert_eq!(refused.status.code(), Some(4), "{said}");
    assert!(
        said.contains("invalid") && said.contains("starter import"),
        "{said}"
    );
    assert!(sandbox.product(&id(1)).await.is_none());
    let before = everything(&sandbox).await;

    // The dry run: the plan of each product, the gift card listed, nothing written.
    let plan = ok(
        starter(&shop, &sandbox, &queue, &["import", "--dry-run"]),
        "import --dry-run",
    );
    let lines: Vec<&str> = plan.lines().filter(|l| l.starts_with("bind ")).collect();
    assert_eq!(lines.len(), 20, "{plan}");
    let line_of = |i: usize| {
        let head = format!("bind     {} → {} (\"Print {i}\"): ", id(i), made[i].product);
        *lines
            .iter()
            .find(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("no plan for {}: {plan}", id(i)))
    };
    let monthly_0 = made[0].monthly.as_ref().unwrap();
    assert_eq!(
        line_of(0),
        format!(
            "bind     {} → {} (\"Print 0\"): keep {} (1000 usd one-off), {monthly_0} (500 usd \
             per month); create 900 eur one-off",
            id(0),
            made[0].product,
            made[0].one_off
        )
    );
    let monthly_7 = made[7].monthly.as_ref().unwrap();
    assert!(
        line_of(7).ends_with(&format!(
            "keep {} (1700 usd one-off); create 607 usd per month; archive {monthly_7} (507 usd \
             per month)",
            made[7].one_off
        )),
        "{}",
        line_of(7)
    );
    // The product catalog-sync made for row 19 before is the duplicate: archived.
    assert!(
        line_of(19).ends_with(&format!(
            "keep {} (2900 usd one-off); archive {} (catalog-sync's earlier product for this row)",
            made[19].one_off,
            id(19)
        )),
        "{}",
        line_of(19)
    );
    assert!(
        plan.contains(&format!(
            "unmapped {gift_card_id} (\"Gift card\"): no catalog row names it; left alone"
        )),
        "{plan}"
    );
    assert!(
        plan.contains(
            "would bind 20 products (keep 25 prices, create 6, archive 5); 0 refused; 1 Stripe \
             products no row names"
        ),
        "{plan}"
    );
    assert_eq!(everything(&sandbox).await, before, "the dry run wrote");

    // The import: bound, matching prices kept, the rest replaced, then synced.
    let imported = ok(starter(&shop, &sandbox, &queue, &["import"]), "import");
    assert!(imported.contains("bound 20 products"), "{imported}");
    for (i, m) in made.iter().enumerate() {
        let product = sandbox.product(&m.product).await.unwrap();
        assert_eq!(product["name"], format!("Art print {i}"), "{product}");
        assert_eq!(product["metadata"]["catalog_sync_id"], id(i));
        assert_eq!(product["default_price"]["id"], m.one_off.as_str());
        let active: BTreeSet<(String, i64, Option<String>)> = sandbox
            .prices(&m.product)
            .await
            .iter()
            .filter(|p| p["active"] == true)
            .map(|p| {
                (
                    p["currency"].as_str().unwrap().to_string(),
                    p["unit_amount"].as_i64().unwrap(),
                    p["recurring"]["interval"].as_str().map(str::to_string),
                )
            })
            .collect();
        let mut want = BTreeSet::from([("usd".to_string(), one_off_amount(i), None)]);
        if i < 10 {
            let amount = monthly_amount(i) + if i >= 5 { 100 } else { 0 };
            want.insert(("usd".into(), amount, Some("month".into())));
        }
        if i == 0 {
            want.insert(("eur".into(), 900, None));
        }
        assert_eq!(active, want, "{}", id(i));
        if (5..10).contains(&i) {
            let old = &sandbox.prices(&m.product).await;
            let old = old
                .iter()
                .find(|p| Some(p["id"].as_str().unwrap()) == m.monthly.as_deref())
                .unwrap();
            assert_eq!(old["active"], false, "replaced monthly price of {}", id(i));
        }
        // No second product under the row's id (row 19's, made before, archived).
        match sandbox.product(&id(i)).await {
            None => assert_ne!(i, 19),
            Some(earlier) => assert_eq!((i, &earlier["active"]), (19, &Value::Bool(false))),
        }
    }
    for price in &subscribed {
        let (_, p) = sandbox.get(&format!("/v1/prices/{price}")).await;
        assert_eq!(
            p["active"], true,
            "subscribed price {price} was replaced: {p}"
        );
    }
    assert_eq!(
        sandbox.product(&gift_card_id).await.unwrap(),
        gift_card,
        "the gift card no row names was touched"
    );
    let verified = ok(
        starter(
            &shop,
            &sandbox,
            &queue,
            &["verify", "--requests-per-second", "200"],
        ),
        "verify",
    );
    assert!(
        verified.contains("20 products compared, 0 differences"),
        "{verified}"
    );

    // Reconciliations by both ways of reading Stripe find each bound product in sync, and none
    // an orphan (a product is its row by its binding, not by its id).
    let settled = everything(&sandbox).await;
    for method in ["scan", "ids"] {
        let workflow_id = format!("reconcile-{method}-{queue}");
        let out = starter(
            &shop,
            &sandbox,
            &queue,
            &[
                "reconcile",
                "--json",
                "--method",
                method,
                "--id",
                &workflow_id,
            ],
        );
        let result: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(out.status.code(), Some(0), "{result}");
        let totals = &result["totals"];
        assert_eq!(totals["scanned"], 20, "{method}: {result}");
        assert_eq!(totals["in_sync"], 20, "{method}: {result}");
        assert_eq!(
            totals["samples"],
            serde_json::json!([]),
            "{method}: {result}"
        );
        assert_eq!(totals["orphans_archived"], 0, "{method}: {result}");
    }
    assert_eq!(
        everything(&sandbox).await,
        settled,
        "a reconciliation wrote"
    );

    // A second import changes nothing.
    let again = ok(
        starter(&shop, &sandbox, &queue, &["import"]),
        "second import",
    );
    assert_eq!(
        again
            .lines()
            .filter(|l| l.starts_with("bound ") && l.contains(" already: "))
            .count(),
        20,
        "{again}"
    );
    assert!(
        again
            .contains("bound 20 products, 20 of them before (keep 31 prices, create 0, archive 0)"),
        "{again}"
    );
    assert_eq!(everything(&sandbox).await, settled, "a second import wrote");

    // The rows sync to their products from now on: a rename, a soft delete.
    execute(
        &db,
        &format!(
            "UPDATE storefront.listings SET title = 'Art print 3, signed', updated_at = now() \
             WHERE id = '{}'; UPDATE storefront.listings SET removed = TRUE, updated_at = now() \
             WHERE id = '{}'",
            id(3),
            id(4)
        ),
    )
    .await;
    ok(
        starter(&shop, &sandbox, &queue, &["sync", &id(3), &id(4), "--wait"]),
        "sync after the import",
    );
    let renamed = sandbox.product(&made[3].product).await.unwrap();
    assert_eq!(renamed["name"], "Art print 3, signed");
    assert_eq!(
        sandbox.product(&made[4].product).await.unwrap()["active"],
        false
    );

    // A row naming a product this account does not have, or another catalog's, is refused with
    // the reason and exit 4.
    let theirs = post(
        &sandbox,
        "/v1/products",
        &[
            ("name", "Their poster"),
            ("metadata[catalog_sync_managed]", "true"),
            ("metadata[catalog_sync_id]", "poster"),
            ("metadata[catalog_sync_catalog]", "cat_theirs"),
        ],
    )
    .await;
    let theirs_id = theirs["id"].as_str().unwrap();
    execute(
        &db,
        &format!(
            "INSERT INTO storefront.listings (id, title, stripe_product_id) \
             VALUES ('listing-98', 'Poster', '{theirs_id}'), \
                    ('listing-99', 'Poster', 'prod_NotInThisAccount')"
        ),
    )
    .await;
    let missing = starter(&shop, &sandbox, &queue, &["import", "--dry-run"]);
    let said = String::from_utf8_lossy(&missing.stdout).into_owned();
    assert_eq!(missing.status.code(), Some(4), "{said}");
    assert!(
        said.contains(
            "refused  listing-99 → prod_NotInThisAccount: Stripe has no product \
             prod_NotInThisAccount in this account"
        ),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "refused  listing-98 → {theirs_id}: belongs to catalog cat_theirs"
        )),
        "{said}"
    );
    let theirs_now = sandbox.product(theirs_id).await.unwrap();
    assert_eq!(theirs_now["metadata"]["catalog_sync_catalog"], "cat_theirs");
}
