//! The mirror of Stripe's state and the reconciliations that read it (scan, events), end to end:
//! a real dev server, the in-process worker, the sandbox and a catalog database.

use std::collections::BTreeMap;

use activities::mirror;
use catalog::MirrorKind;
use harness::{Backend, TestEnv};
use serde_json::{Value, json};
use stripe::mirror::{price_of, product_of};
use workflows::ReconcileResult;
use workflows::activities::{EventCursor, ReconcilePageInput, ScanObject, ScanPageInput};
use workflows::model::CatalogProduct;
use workflows::reconcile::ReconcileMethod;

use super::reconcile::Env;

/// Syncs `n` sample products and returns them.
async fn synced(env: &TestEnv, n: usize) -> Vec<CatalogProduct> {
    let products: Vec<CatalogProduct> = (1..=n).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        env.sync(&p.id).await;
    }
    products
}

/// Stripe's answer for a product and its prices, in the fields the mirror keeps, against the
/// mirror's rows: equal, or the first difference.
async fn assert_mirror_matches_stripe(env: &TestEnv, ids: &[String]) {
    let rows = env.catalog.mirror_products(ids).await.unwrap();
    assert_eq!(rows.len(), ids.len(), "every product mirrored");
    let price_rows = env.catalog.mirror_prices_of(ids).await.unwrap();
    for row in rows {
        let (status, stripe) = env.sandbox.get(&format!("/v1/products/{}", row.id)).await;
        assert_eq!(status, 200);
        let stripe: stripe::client::Product = serde_json::from_value(stripe).unwrap();
        assert_eq!(product_of(&row, &[]).unwrap(), stripe, "product {}", row.id);
        let mirrored: BTreeMap<String, stripe::client::Price> = price_rows
            .iter()
            .filter(|p| p.product_id == row.id)
            .map(|p| (p.id.clone(), price_of(p).unwrap()))
            .collect();
        let (_, list) = env
            .sandbox
            .get(&format!(
                "/v1/prices?product={}&limit=100&expand[]=data.tiers&expand[]=data.currency_options",
                row.id
            ))
            .await;
        let stripe: BTreeMap<String, stripe::client::Price> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let p: stripe::client::Price = serde_json::from_value(p.clone()).unwrap();
                (p.id.clone(), p)
            })
            .collect();
        assert_eq!(mirrored, stripe, "prices of {}", row.id);
    }
}

async fn reconcile(env: &Env, input: Value) -> ReconcileResult {
    let result = env.reconcile(input).await;
    assert_eq!(result.totals.failed, 0, "{result:#?}");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_and_scans_keep_the_mirror_equal_to_stripe() {
    let env = Env::start(Backend::Sqlite).await;
    let products = synced(&env, 6).await;
    let ids: Vec<String> = products.iter().map(|p| p.id.clone()).collect();
    // Every upsert wrote what it read and what Stripe answered.
    assert_mirror_matches_stripe(&env, &ids).await;
    let row = &env.catalog.mirror_products(&ids[..1]).await.unwrap()[0];
    assert!(row.seen_in.starts_with("req_"), "{}", row.seen_in);

    // A price change makes a new price and archives the old one: both as Stripe has them.
    let mut changed = products[0].clone();
    changed.prices[0].unit_amount += 100;
    env.catalog.save_product(&changed).await.unwrap();
    env.sync(&changed.id).await;
    assert_mirror_matches_stripe(&env, &ids).await;

    // Edits the mirror does not hear of (no webhooks here), and a product deleted in Stripe:
    // a scan brings the mirror back to Stripe's state and removes what is gone.
    env.sandbox
        .dashboard_edit(&ids[1], "name=Edited+in+the+Dashboard")
        .await;
    let price = env.sandbox.prices(&ids[2]).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.sandbox
        .dashboard_edit_price(&price, "nickname=Dashboard+nickname")
        .await;
    let stray = "stray-mirror-row";
    let fake = stripe::client::Product {
        id: stray.into(),
        ..serde_json::from_value(json!({"id": stray, "name": "Gone", "active": true})).unwrap()
    };
    env.catalog
        .mirror_put(
            MirrorKind::Products,
            &[stripe::mirror::product_row(&fake, "scan:0")],
            0,
        )
        .await
        .unwrap();
    let result = reconcile(&env, json!({"method": "scan", "mode": "dry_run"})).await;
    assert_eq!(result.method, ReconcileMethod::Scan, "{result:#?}");
    assert_eq!(result.totals.scan_pruned, 1, "{result:#?}");
    assert!(
        env.catalog
            .mirror_products(&[stray.to_string()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_mirror_matches_stripe(&env, &ids).await;
    assert_eq!(
        (
            result.totals.drift.edited_in_stripe,
            result.totals.drift.price_drift
        ),
        (1, 1),
        "{result:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_reads_each_stripe_object_once_and_finds_what_ids_reads_find() {
    let env = Env::start(Backend::Postgres).await;
    let products: Vec<CatalogProduct> = (1..=130).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();
    // The first scan finds an empty account: every product missing, and made.
    let first = reconcile(&env, json!({})).await;
    assert_eq!(first.totals.drift.missing, 130, "{first:#?}");
    let prices: usize = products.iter().map(|p| p.prices.len()).sum();
    // In sync: a scan costs the list pages (and one event read to set the cursor) and nothing
    // else, against the ids[] method's reads.
    let (before, _) = env.stats().await;
    let scan = reconcile(&env, json!({})).await;
    assert_eq!(scan.method, ReconcileMethod::Scan, "{scan:#?}");
    assert!(
        scan.method_reason.contains("cheaper"),
        "{}",
        scan.method_reason
    );
    let pages = 130_u64.div_ceil(100) + (prices as u64).div_ceil(100);
    assert_eq!(scan.totals.stripe_requests, pages + 1, "{scan:#?}");
    assert_eq!(env.stats().await.0 - before, pages + 1);
    assert_eq!(scan.totals.in_sync, 130, "{scan:#?}");
    assert_eq!(scan.totals.drift.total(), 0, "{scan:#?}");
    let ids = reconcile(&env, json!({"method": "ids"})).await;
    assert_eq!(ids.method, ReconcileMethod::Ids);
    assert!(
        ids.totals.stripe_requests > scan.totals.stripe_requests,
        "{} ids[] requests against {} scan requests",
        ids.totals.stripe_requests,
        scan.totals.stripe_requests
    );

    // Drift of each kind, found the same way by both methods, and repaired by the scan.
    env.sandbox
        .dashboard_edit(&products[0].id, "name=Edited")
        .await;
    let mut stale = products[1].clone();
    stale.name = "Renamed in the catalog".into();
    env.catalog.save_product(&stale).await.unwrap();
    env.sandbox
        .api_post(
            "/v1/prices",
            &format!("product={}&currency=usd&unit_amount=1", products[2].id),
            None,
        )
        .await;
    assert!(env.catalog.hard_delete(&products[3].id).await.unwrap());
    env.catalog.save_product(&env.sample(131)).await.unwrap();
    let kinds = |r: &ReconcileResult| {
        let d = &r.totals.drift;
        (
            d.edited_in_stripe,
            d.stale,
            d.price_drift,
            d.orphan,
            d.missing,
        )
    };
    let dry_ids = reconcile(&env, json!({"method": "ids", "mode": "dry_run"})).await;
    let dry_scan = reconcile(&env, json!({"method": "scan", "mode": "dry_run"})).await;
    assert_eq!(kinds(&dry_ids), (1, 1, 1, 1, 1), "{dry_ids:#?}");
    assert_eq!(kinds(&dry_scan), kinds(&dry_ids), "{dry_scan:#?}");
    let scan_id = harness::unique("reconcile-scan");
    let repaired = env.reconcile_as(&scan_id, json!({"method": "scan"})).await;
    env.record_history(&scan_id, "reconcile_scan").await;
    assert_eq!(repaired.totals.repaired, 5, "{repaired:#?}");
    let after = reconcile(&env, json!({"method": "scan"})).await;
    assert_eq!(after.totals.drift.total(), 0, "{after:#?}");
    assert_eq!(env.stripe_name(&products[0].id).await, products[0].name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_runs_repair_stripe_edits_and_catalog_updates_from_the_cursor() {
    let env = Env::start(Backend::Sqlite).await;
    let products = synced(&env, 20).await;
    // No cursor yet: the events run scans, and the scan sets the cursor.
    let first = reconcile(&env, json!({"method": "events"})).await;
    assert_eq!(first.method, ReconcileMethod::Scan, "{first:#?}");
    assert!(
        first.method_reason.contains("no event cursor"),
        "{first:#?}"
    );
    let cursor = mirror::stored_cursor(&env.catalog).await.unwrap().unwrap();
    assert!(cursor.event.starts_with("evt_"), "{cursor:?}");

    // Three Dashboard edits (a sale and its end on one of them: A→B→A) and a catalog change.
    env.sandbox.dashboard_edit(&products[0].id, "name=B").await;
    env.sandbox
        .dashboard_edit(
            &products[0].id,
            &format!("name={}", products[0].name.replace(' ', "+")),
        )
        .await;
    env.sandbox.dashboard_edit(&products[1].id, "name=B").await;
    env.sandbox
        .dashboard_edit(&products[2].id, "description=Edited")
        .await;
    let mut stale = products[3].clone();
    stale.name = "Renamed in the catalog".into();
    env.catalog.save_product(&stale).await.unwrap();

    let (before, _) = env.stats().await;
    let events_id = harness::unique("reconcile-events");
    let run = env
        .reconcile_as(&events_id, json!({"method": "events"}))
        .await;
    env.record_history(&events_id, "reconcile_events").await;
    assert_eq!(run.method, ReconcileMethod::Events, "{run:#?}");
    assert_eq!(run.totals.events, 4, "{run:#?}");
    let d = &run.totals.drift;
    assert_eq!((d.edited_in_stripe, d.stale), (2, 1), "{run:#?}");
    assert_eq!(run.totals.repaired, 3, "{run:#?}");
    // One page of events; every other request is a repair's re-read or write.
    assert_eq!(
        run.totals.stripe_requests - run.totals.repair_stripe_requests,
        1,
        "{run:#?}"
    );
    assert_eq!(env.stats().await.0 - before, run.totals.stripe_requests);
    assert_eq!(env.stripe_name(&products[1].id).await, products[1].name);
    assert_eq!(env.stripe_name(&products[3].id).await, stale.name);

    // The repairs' own events are applied by the next run and find nothing.
    let quiet = reconcile(&env, json!({"method": "events"})).await;
    assert_eq!(quiet.method, ReconcileMethod::Events);
    assert_eq!(quiet.totals.drift.total(), 0, "{quiet:#?}");
    assert_eq!(quiet.totals.repaired, 0, "{quiet:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_past_stripes_retention_or_forgotten_falls_back_to_a_full_scan() {
    let env = Env::start(Backend::Postgres).await;
    let products = synced(&env, 3).await;
    let month_ago = chrono::Utc::now().timestamp() - 31 * 86_400;
    mirror::save_cursor(
        &env.catalog,
        &EventCursor {
            event: "evt_from_last_month".into(),
            created: month_ago,
            catalog_since: None,
        },
    )
    .await
    .unwrap();
    env.sandbox
        .dashboard_edit(&products[0].id, "name=Edited")
        .await;
    let old = reconcile(&env, json!({"method": "events"})).await;
    assert_eq!(old.method, ReconcileMethod::Scan, "{old:#?}");
    assert!(old.method_reason.contains("31 days old"), "{old:#?}");
    assert_eq!(old.totals.drift.edited_in_stripe, 1, "{old:#?}");
    let fresh = mirror::stored_cursor(&env.catalog).await.unwrap().unwrap();
    assert!(
        fresh.created > month_ago,
        "the scan set a new cursor: {fresh:?}"
    );

    // A recent cursor Stripe does not have (forgotten early): found out on the first page.
    env.catalog
        .set_cursor(
            mirror::EVENT_CURSOR,
            &json!({"event": "evt_forgotten", "created": chrono::Utc::now().timestamp()})
                .to_string(),
        )
        .await
        .unwrap();
    env.sandbox
        .dashboard_edit(&products[1].id, "name=Edited")
        .await;
    let forgotten = reconcile(&env, json!({"method": "events"})).await;
    assert_eq!(forgotten.method, ReconcileMethod::Scan, "{forgotten:#?}");
    assert!(
        forgotten.method_reason.contains("evt_forgotten"),
        "{forgotten:#?}"
    );
    assert_eq!(forgotten.totals.drift.edited_in_stripe, 1, "{forgotten:#?}");
    assert_eq!(forgotten.totals.repaired, 1, "{forgotten:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_mirror_costs_a_read_never_a_wrong_write() {
    let env = Env::start(Backend::Sqlite).await;
    let products = synced(&env, 4).await;
    reconcile(&env, json!({"method": "scan"})).await;
    // Corrupt the mirror: a wrong name, a price shown archived, a product shown missing.
    let ids: Vec<String> = products.iter().map(|p| p.id.clone()).collect();
    let rows = env.catalog.mirror_products(&ids[..1]).await.unwrap();
    let mut wrong: Value = serde_json::from_str(&rows[0].object).unwrap();
    wrong["name"] = json!("Wrong in the mirror");
    let mut row = rows[0].clone();
    row.object = wrong.to_string();
    env.catalog
        .mirror_put(MirrorKind::Products, &[row], mirror::now_ms())
        .await
        .unwrap();
    let mut price = env.catalog.mirror_prices_of(&ids[1..2]).await.unwrap()[0].clone();
    let mut object: Value = serde_json::from_str(&price.object).unwrap();
    object["active"] = json!(false);
    price.object = object.to_string();
    price.active = false;
    env.catalog
        .mirror_put(MirrorKind::Prices, &[price], mirror::now_ms())
        .await
        .unwrap();
    env.catalog
        .mirror_delete(MirrorKind::Products, &ids[2])
        .await
        .unwrap();
    // The catalog side touches all three (saved again, unchanged), so the events run checks them.
    for p in &products[..3] {
        env.catalog.save_product(p).await.unwrap();
    }
    let writes = env.writes().await;
    let run = reconcile(&env, json!({"method": "events"})).await;
    assert_eq!(run.method, ReconcileMethod::Events, "{run:#?}");
    // The mirror shows drift; each repair reads Stripe, finds it in sync, and writes nothing.
    assert_eq!(run.totals.drift.total(), 3, "{run:#?}");
    assert_eq!(run.totals.repaired, 0, "{run:#?}");
    assert_eq!(run.totals.already_repaired, 3, "{run:#?}");
    assert_eq!(env.writes().await, writes, "no write");
    // The repairs' reads put the mirror right.
    assert_mirror_matches_stripe(&env, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_while_a_scan_runs_is_caught_by_the_next_run() {
    let env = Env::start(Backend::Sqlite).await;
    let products = synced(&env, 3).await;
    reconcile(&env, json!({"method": "scan"})).await;
    let stripe = stripe::client::StripeClient::new(env.sandbox.stripe_config()).unwrap();
    // A scan, page by page as the workflow runs it: its product page is read…
    let started = mirror::now_ms() as u64;
    let scan = |object| ScanPageInput {
        object,
        scan: "scan:test".into(),
        started_at_ms: started,
        ..ScanPageInput::default()
    };
    let page = mirror::scan_page(&env.catalog, &stripe, &scan(ScanObject::Products))
        .await
        .unwrap();
    assert!(page.next.is_none());
    // … then a Dashboard edit lands before its price page and its comparison.
    env.sandbox
        .dashboard_edit(&products[0].id, "name=Edited+mid-scan")
        .await;
    mirror::scan_page(&env.catalog, &stripe, &scan(ScanObject::Prices))
        .await
        .unwrap();
    let identity = stripe::identity::CatalogIdentity::new(env.catalog.identity().await.unwrap());
    let compared = activities::reconcile::mirror_page(
        &env.catalog,
        &ReconcilePageInput::default(),
        &identity,
        &Default::default(),
    )
    .await
    .unwrap();
    // This scan missed it (it read the product before the edit)…
    assert_eq!(compared.in_sync, 3, "{compared:?}");
    // … the next run finds and repairs it.
    let next = reconcile(&env, json!({"method": "scan"})).await;
    assert_eq!(next.totals.drift.edited_in_stripe, 1, "{next:#?}");
    assert_eq!(next.totals.repaired, 1, "{next:#?}");
    assert_eq!(env.stripe_name(&products[0].id).await, products[0].name);
}
