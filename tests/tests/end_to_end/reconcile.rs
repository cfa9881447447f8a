//! ReconcileCatalog end to end: a real Temporal dev server, the in-process worker, the Stripe
//! sandbox, and both catalog backends.

use std::time::Duration;

use catalog::IdRange;
use domain::transform;
use harness::{Backend, TestEnv, eventually, unique};
use serde_json::{Value, json};
use temporalio_client::{
    WorkflowGetResultOptions, WorkflowQueryOptions, WorkflowSignalOptions, WorkflowStartOptions,
};
use workflows::activities::TransformOutput;
use workflows::input::LenientInput;
use workflows::model::{CatalogProduct, SyncPlan};
use workflows::reconcile::{ReconcilePhase, SetMaxInFlight, StopRequest};
use workflows::{ReconcileCatalog, ReconcileInput, ReconcileProgress, ReconcileResult};

/// The workflow-test world plus the reconciliation's own helpers.
pub(super) struct Env(TestEnv);

impl std::ops::Deref for Env {
    type Target = TestEnv;
    fn deref(&self) -> &TestEnv {
        &self.0
    }
}

impl Env {
    pub(super) async fn start(backend: Backend) -> Self {
        Self(TestEnv::start(backend).await)
    }

    /// Starts a reconciliation with `input` (JSON, as the `temporal` CLI would send it).
    async fn start_reconcile(&self, id: &str, input: Value) {
        self.client
            .start_workflow(
                ReconcileCatalog::run,
                ReconcileInput::from_json(input),
                WorkflowStartOptions::new(self.worker.task_queue.as_str(), id).build(),
            )
            .await
            .unwrap();
    }

    /// The `progress` query on the latest run.
    async fn progress(&self, id: &str) -> ReconcileProgress {
        self.client
            .get_workflow_handle::<ReconcileCatalog>(id)
            .query(
                ReconcileCatalog::progress,
                (),
                WorkflowQueryOptions::default(),
            )
            .await
            .unwrap()
    }

    /// Runs a reconciliation with `input` (JSON, as the `temporal` CLI would send it) to the end.
    pub(super) async fn reconcile(&self, input: Value) -> ReconcileResult {
        self.reconcile_as(&unique("reconcile"), input).await
    }

    pub(super) async fn reconcile_as(&self, id: &str, input: Value) -> ReconcileResult {
        self.start_reconcile(id, input).await;
        tokio::time::timeout(
            Duration::from_secs(300),
            self.client
                .get_workflow_handle::<ReconcileCatalog>(id)
                .get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .expect("reconciliation finished in time")
        .unwrap()
    }

    pub(super) async fn stats(&self) -> (u64, u64) {
        let s = self.sandbox.stats().await;
        (
            s["total_requests"].as_u64().unwrap(),
            s["total_writes"].as_u64().unwrap(),
        )
    }

    pub(super) async fn stripe_name(&self, id: &str) -> String {
        let p = self.sandbox.product(id).await.expect("in Stripe");
        p["name"].as_str().unwrap().to_string()
    }

    /// The Stripe requests a reconciliation of the whole catalog makes when nothing differs,
    /// by the formula in `activities/src/reconcile.rs` (pages of 100):
    /// ⌈N/100⌉ list requests + Σ ⌈K_page/10⌉ lookup-key reads + max(1, ⌈A/100⌉) orphan pages
    /// + max(1, ⌈P/100⌉) pages of active prices.
    async fn expected_requests_when_in_sync(&self) -> u64 {
        let mut rows = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .catalog
                .products_page(&after, &IdRange::default(), 100)
                .await
                .unwrap();
            assert!(page.corrupt.is_empty());
            let Some(last) = page.last_id.clone() else {
                break;
            };
            rows.extend(page.products);
            after = last;
        }
        let mut expected = 0;
        for page in rows.chunks(100) {
            let mut plans = 0;
            let mut keys = 0;
            for product in page {
                let TransformOutput::Plan(plan) = transform::transform(&product.id, Some(product))
                else {
                    continue;
                };
                plans += 1;
                if let SyncPlan::Upsert(d) = *plan {
                    let stripe = self.sandbox.product(&d.stripe_id).await;
                    let managed = stripe.as_ref().is_some_and(|s| {
                        s["metadata"]["catalog_sync_managed"] == "true" && s["active"] == true
                    });
                    if managed && d.active {
                        keys += d.prices.len() as u64 - 1;
                    }
                }
            }
            if plans > 0 {
                expected += 1 + keys.div_ceil(10);
            }
        }
        let active = self.count_active("products").await;
        let prices = self.count_active("prices").await;
        expected + active.div_ceil(100).max(1) + prices.div_ceil(100).max(1)
    }

    /// The Stripe requests a scan makes (see `workflows::reconcile::method`): every product and
    /// price of the account, active and archived, 100 a page, and the newest event.
    async fn expected_scan_requests(&self) -> u64 {
        let mut pages = 1;
        for kind in ["products", "prices"] {
            let mut after: Option<String> = None;
            loop {
                let path = match &after {
                    Some(a) => format!("/v1/{kind}?limit=100&starting_after={a}"),
                    None => format!("/v1/{kind}?limit=100"),
                };
                let (_, list) = self.sandbox.get(&path).await;
                pages += 1;
                if list["has_more"] != true {
                    break;
                }
                let data = list["data"].as_array().unwrap();
                after = data.last().map(|p| p["id"].as_str().unwrap().to_string());
            }
        }
        pages
    }

    /// Active Stripe objects of a kind (`products`, `prices`), counted page by page.
    async fn count_active(&self, kind: &str) -> u64 {
        let mut count = 0;
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/{kind}?active=true&limit=100&starting_after={a}"),
                None => format!("/v1/{kind}?active=true&limit=100"),
            };
            let (_, list) = self.sandbox.get(&path).await;
            let data = list["data"].as_array().unwrap();
            count += data.len() as u64;
            if list["has_more"] != true {
                return count;
            }
            after = data.last().map(|p| p["id"].as_str().unwrap().to_string());
        }
    }
}

/// The same drift, found and repaired by each way of reading Stripe (`ids` on SQLite, `scan` on
/// PostgreSQL).
async fn reconciliation_repairs_every_kind_of_drift(backend: Backend) {
    let method = match backend {
        Backend::Sqlite => "ids",
        Backend::Postgres => "scan",
    };
    let env = Env::start(backend).await;
    let n = 120;
    let products: Vec<CatalogProduct> = (1..=n).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();
    // Small pages and few pages per run, so that one reconciliation spans several runs.
    let small = json!({"page_size": 20, "pages_per_run": 2, "method": method});

    // 1. Nothing is in Stripe yet: everything is missing, and one reconciliation creates it.
    let first = env.reconcile(small.clone()).await;
    let t = &first.totals;
    assert_eq!(t.scanned, n as u64, "{first:?}");
    assert_eq!(t.drift.missing, n as u64, "{first:?}");
    assert_eq!(
        (t.repaired, t.failed, t.invalid),
        (n as u64, 0, 0),
        "{first:?}"
    );
    assert!(first.runs >= 3, "continued as new: {} runs", first.runs);
    assert_eq!(env.stripe_name(&env.id(1)).await, products[0].name);

    // 2. Drift of every kind.
    let stale: Vec<usize> = vec![1, 2, 3];
    for &i in &stale {
        let mut p = products[i - 1].clone();
        p.name = format!("{} (renamed in the catalog)", p.name);
        env.catalog.save_product(&p).await.unwrap();
    }
    let edited = vec![4, 5, 6];
    for &i in &edited {
        env.sandbox
            .dashboard_edit(&env.id(i), "name=Edited+in+the+Dashboard")
            .await;
    }
    let default_archived = env.sandbox.product(&env.id(7)).await.unwrap()["default_price"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.sandbox
        .dashboard_edit_price(&default_archived, "active=false")
        .await;
    let price_8 = env.sandbox.product(&env.id(8)).await.unwrap();
    let default_8 = price_8["default_price"]["id"].as_str().unwrap().to_string();
    let other_8 = env
        .sandbox
        .prices(&env.id(8))
        .await
        .into_iter()
        .find(|p| p["active"] == true && p["id"] != default_8.as_str())
        .expect("sample products have two prices");
    env.sandbox
        .dashboard_edit_price(other_8["id"].as_str().unwrap(), "active=false")
        .await;
    for i in [9, 10] {
        assert!(env.catalog.soft_delete(&env.id(i)).await.unwrap());
    }
    for i in [11, 12] {
        assert!(env.catalog.hard_delete(&env.id(i)).await.unwrap());
    }
    let missing = vec![env.sample(n + 1), env.sample(n + 2)];
    env.catalog.save_products(&missing).await.unwrap();
    // A product someone else made in Stripe under a catalog id, and one not in the catalog.
    env.catalog.save_product(&env.sample(n + 3)).await.unwrap();
    env.sandbox
        .create_product(&format!("id={}&name=Theirs", env.id(n + 3)))
        .await;
    env.sandbox
        .create_product("id=theirs-not-in-catalog&name=Theirs+too")
        .await;
    let mut invalid = env.sample(n + 4);
    invalid.name = "  ".into();
    env.catalog.save_product(&invalid).await.unwrap();

    // 3. A dry run reports all of it and writes nothing.
    let (_, writes_before) = env.stats().await;
    let dry = env
        .reconcile(
            json!({"mode": "dry_run", "page_size": 20, "pages_per_run": 2, "method": method}),
        )
        .await;
    let d = &dry.totals.drift;
    assert_eq!(
        (
            d.stale,
            d.edited_in_stripe,
            d.price_drift,
            d.should_archive,
            d.orphan,
            d.missing
        ),
        (3, 3, 2, 2, 2, 2),
        "{dry:#?}"
    );
    assert_eq!(
        (dry.totals.unmanaged, dry.totals.invalid),
        (1, 1),
        "{dry:#?}"
    );
    assert_eq!(dry.totals.repaired, 0);
    assert_eq!(env.stats().await.1, writes_before, "dry-run wrote nothing");
    assert_eq!(dry.totals.invalid_samples[0].catalog_id, env.id(n + 4));
    assert!(
        dry.totals
            .samples
            .iter()
            .any(|s| s.catalog_id == env.id(4) && s.detail.contains("Edited in the Dashboard")),
        "{:#?}",
        dry.totals.samples
    );

    // 4. Apply repairs every difference, in several runs.
    let apply_id = unique("reconcile-apply");
    let applied = env.reconcile_as(&apply_id, small.clone()).await;
    env.assert_no_failed_workflow_tasks(&apply_id).await;
    if matches!(backend, Backend::Sqlite) {
        // The last run: catalog pages, the orphan phase and its repairs.
        env.record_history(&apply_id, "reconcile_last_run").await;
    }
    let t = &applied.totals;
    assert_eq!(t.drift.total(), 14, "{applied:#?}");
    assert_eq!(t.repaired, 14, "{applied:#?}");
    assert_eq!((t.orphans_archived, t.failed), (2, 0), "{applied:#?}");
    assert!(applied.runs >= 3);
    for &i in &stale {
        assert!(
            env.stripe_name(&env.id(i))
                .await
                .ends_with("(renamed in the catalog)")
        );
    }
    for &i in &edited {
        assert_eq!(env.stripe_name(&env.id(i)).await, products[i - 1].name);
    }
    // Each repair carries the drift it was started for, for the Web UI.
    for &i in &edited {
        let query = format!(
            "DriftKind = 'edited_in_stripe' AND CatalogProductId = '{}'",
            env.id(i)
        );
        harness::eventually(Duration::from_secs(20), &query, || async {
            let found = env
                .client
                .count_workflows(query.as_str(), Default::default())
                .await
                .unwrap()
                .count();
            (found == 1).then_some(())
        })
        .await;
    }
    let p7 = env.sandbox.product(&env.id(7)).await.unwrap();
    assert_eq!(p7["default_price"]["active"], true);
    assert_eq!(
        p7["default_price"]["unit_amount"],
        json!(products[6].prices[0].unit_amount)
    );
    let active_8 = env
        .sandbox
        .prices(&env.id(8))
        .await
        .into_iter()
        .filter(|p| p["active"] == true)
        .count();
    assert_eq!(active_8, 2, "the archived second price is back");
    for i in [9, 10, 11, 12] {
        assert_eq!(
            env.sandbox.product(&env.id(i)).await.unwrap()["active"],
            false
        );
    }
    for p in &missing {
        assert_eq!(env.stripe_name(&p.id).await, p.name);
    }
    let theirs = env.sandbox.product(&env.id(n + 3)).await.unwrap();
    assert_eq!(
        theirs["name"], "Theirs",
        "unmanaged products are never touched"
    );
    assert!(theirs["metadata"].get("catalog_sync_managed").is_none());
    let theirs_too = env.sandbox.product("theirs-not-in-catalog").await.unwrap();
    assert_eq!(theirs_too["active"], true);
    assert!(env.sandbox.product(&env.id(n + 4)).await.is_none());

    // 5. A second reconciliation finds nothing, writes nothing, and its Stripe requests are
    //    exactly the documented formula.
    let expected = match method {
        "ids" => env.expected_requests_when_in_sync().await,
        _ => env.expected_scan_requests().await,
    };
    let (requests_before, writes_before) = env.stats().await;
    let again = env.reconcile(json!({"method": method})).await;
    assert_eq!(again.method.as_str(), method, "{again:#?}");
    let (requests_after, writes_after) = env.stats().await;
    assert_eq!(again.totals.drift.total(), 0, "{again:#?}");
    assert_eq!((again.totals.invalid, again.totals.unmanaged), (1, 1));
    assert_eq!(writes_after, writes_before);
    assert_eq!(again.totals.stripe_requests, expected, "{again:#?}");
    assert_eq!(requests_after - requests_before, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_repairs_every_kind_of_drift_sqlite() {
    reconciliation_repairs_every_kind_of_drift(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_repairs_every_kind_of_drift_postgres() {
    reconciliation_repairs_every_kind_of_drift(Backend::Postgres).await;
}

/// Live edits and live syncs while a reconciliation runs: every product ends at its last edit,
/// and no product has two writers (the reconciliation hands products with a live sync to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_alongside_live_edits_converges_to_the_last_edit() {
    let env = Env::start(Backend::Sqlite).await;
    let n = 60;
    let products: Vec<CatalogProduct> = (1..=n).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();
    env.reconcile(json!({})).await;

    // Every product is stale for the reconciliation; ten of them are also edited again and
    // synced live while it runs.
    for p in &products {
        let mut p = p.clone();
        p.name = format!("{} v2", p.name);
        env.catalog.save_product(&p).await.unwrap();
    }
    let id = unique("reconcile-live");
    env.start_reconcile(&id, json!({"page_size": 10, "max_in_flight": 5}))
        .await;
    for round in 3..=5 {
        for i in (1..=n).step_by(6) {
            let mut p = env
                .catalog
                .fetch_product(&env.id(i))
                .await
                .unwrap()
                .unwrap();
            p.name = format!("{} v{round}", products[i - 1].name);
            env.catalog.save_product(&p).await.unwrap();
            env.signal(&p.id).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let progress = env.progress(&id).await;
    assert_eq!(progress.estimated_total, n as u64);
    let result: ReconcileResult = env
        .client
        .get_workflow_handle::<ReconcileCatalog>(&id)
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert_eq!(result.totals.failed, 0, "{result:#?}");
    env.assert_no_failed_workflow_tasks(&id).await;
    env.record_history(&id, "reconcile_live_edits").await;
    for i in (1..=n).step_by(6) {
        env.result(&env.id(i)).await;
    }

    for i in 1..=n {
        let want = env
            .catalog
            .fetch_product(&env.id(i))
            .await
            .unwrap()
            .unwrap()
            .name;
        assert_eq!(env.stripe_name(&env.id(i)).await, want, "product {i}");
    }
    let check = env.reconcile(json!({"mode": "dry_run"})).await;
    assert_eq!(check.totals.drift.total(), 0, "{check:#?}");
    let done = env.progress(&id).await;
    assert_eq!(done.phase, ReconcilePhase::Done);
}

/// A product whose live sync is running is handed to that sync (signal) instead of getting a
/// second writer; the live sync's next pass reads the newest version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_live_sync_gets_the_repair_by_signal() {
    let env = Env::start(Backend::Sqlite).await;
    let products: Vec<CatalogProduct> = (1..=3).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();
    env.reconcile(json!({})).await;

    // Product updates take 3 s in Stripe now, so a live sync of product 1 is still running when
    // the reconciliation reaches it.
    env.sandbox
        .faults(json!({"latency_ms": 3000, "endpoints": ["POST /v1/products/{id}"]}))
        .await;
    for p in &products {
        let mut p = p.clone();
        p.name = format!("{} v2", p.name);
        env.catalog.save_product(&p).await.unwrap();
    }
    let requests = || async {
        env.sandbox.stats().await["total_requests"]
            .as_u64()
            .unwrap()
    };
    let before = requests().await;
    env.signal(&env.id(1)).await;
    // The live sync has read Stripe (nothing else runs now): its 3-second update is under way.
    eventually(
        Duration::from_secs(30),
        "the live sync reads Stripe",
        || async { (requests().await > before).then_some(()) },
    )
    .await;
    let id = unique("reconcile-handoff");
    let result = env.reconcile_as(&id, json!({})).await;
    assert_eq!(result.totals.drift.stale, 3, "{result:#?}");
    assert_eq!(result.totals.handed_to_live_sync, 1, "{result:#?}");
    assert_eq!(result.totals.repaired, 2, "{result:#?}");
    env.result(&env.id(1)).await;
    env.sandbox.clear_faults().await;
    for p in &products {
        assert_eq!(env.stripe_name(&p.id).await, format!("{} v2", p.name));
    }
    env.assert_no_failed_workflow_tasks(&id).await;
    env.record_history(&id, "reconcile_handoff").await;
}

/// `stop` ends a reconciliation early with the totals so far; `set_max_in_flight` changes the
/// window; both reach the workflow through the client as an operator's CLI would send them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_signal_ends_early_with_the_totals_so_far() {
    let env = Env::start(Backend::Sqlite).await;
    let products: Vec<CatalogProduct> = (1..=80).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();
    let id = unique("reconcile-stop");
    env.start_reconcile(
        &id,
        json!({"page_size": 1, "pages_per_run": 5, "max_in_flight": 1}),
    )
    .await;
    let handle = env.client.get_workflow_handle::<ReconcileCatalog>(&id);
    handle
        .signal(
            ReconcileCatalog::set_max_in_flight,
            SetMaxInFlight { max_in_flight: 2 },
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    // Wait until it has got going (past at least one continue-as-new), then stop it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let p = env.progress(&id).await;
        if p.run >= 2 {
            assert_eq!(p.max_in_flight, 2, "the window survives continue-as-new");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{p:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle
        .signal(
            ReconcileCatalog::stop,
            StopRequest {
                reason: "test".into(),
            },
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    let result = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert!(result.stopped, "{result:#?}");
    assert!(result.totals.scanned < 80, "{result:#?}");
    assert_eq!(
        result.totals.repaired + result.totals.failed,
        result.totals.drift.missing,
        "every repair started before the stop finished: {result:#?}"
    );
}

/// Scopes: an id range and an update-time backfill only look at their products.
async fn scoped_reconciliations_touch_only_their_scope(backend: Backend) {
    let env = Env::start(backend).await;
    let products: Vec<CatalogProduct> = (1..=30).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();

    let range = env
        .reconcile(json!({"from": env.id(5), "to": env.id(14)}))
        .await;
    assert_eq!(range.totals.scanned, 10, "{range:#?}");
    assert_eq!(range.totals.repaired, 10);
    assert!(env.sandbox.product(&env.id(4)).await.is_none());
    assert!(env.sandbox.product(&env.id(5)).await.is_some());
    assert!(env.sandbox.product(&env.id(15)).await.is_none());

    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = chrono_now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in [20, 21] {
        let mut p = products[i - 1].clone();
        p.description = Some("changed after the backfill's start time".into());
        env.catalog.save_product(&p).await.unwrap();
    }
    let backfill = env.reconcile(json!({"since": since})).await;
    assert_eq!(backfill.totals.scanned, 2, "{backfill:#?}");
    assert_eq!(backfill.totals.drift.missing, 2);
    assert_eq!(
        backfill.totals.drift.orphan, 0,
        "no orphan phase in a backfill"
    );

    // A row the catalog cannot decode is reported with the reason; every other product is still
    // compared.
    let corrupt = env.id(25);
    let sql = "UPDATE catalog_products SET images = 'not json' WHERE id = $1";
    match env.catalog.db() {
        catalog::Db::Postgres(pool) => {
            catalog::sqlx::query(sql)
                .bind(&corrupt)
                .execute(pool)
                .await
                .unwrap();
        }
        catalog::Db::Sqlite(pool) => {
            catalog::sqlx::query(sql)
                .bind(&corrupt)
                .execute(pool)
                .await
                .unwrap();
        }
    }
    let dry = env.reconcile(json!({"mode": "dry_run"})).await;
    assert_eq!(
        (dry.totals.scanned, dry.totals.invalid),
        (30, 1),
        "{dry:#?}"
    );
    let reported = &dry.totals.invalid_samples[0];
    assert_eq!(reported.catalog_id, corrupt);
    assert!(reported.issues[0].reason.contains("images"), "{reported:?}");
    assert_eq!(dry.totals.drift.missing, 30 - 10 - 2 - 1, "{dry:#?}");

    let bad_id = unique("bad");
    env.start_reconcile(&bad_id, json!({"since": "yesterday"}))
        .await;
    let bad = env
        .client
        .get_workflow_handle::<ReconcileCatalog>(&bad_id)
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap_err();
    assert!(format!("{bad:?}").contains("RFC 3339"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_reconciliations_touch_only_their_scope_sqlite() {
    scoped_reconciliations_touch_only_their_scope(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_reconciliations_touch_only_their_scope_postgres() {
    scoped_reconciliations_touch_only_their_scope(Backend::Postgres).await;
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Repairs that go back to an earlier state, detached products and unreadable rows:
/// - the same Dashboard edit made twice and reconciled after each: the second repair is a new
///   write, not a replay of the first one's answer;
/// - a product detached in the Dashboard (`catalog_sync_managed=false`) is drift `detached` and is
///   attached again;
/// - rows holding a value of the wrong type in each kind of column are reported invalid with the
///   column named, once each, while the other products are compared: nothing stalls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_repairs_detached_products_and_unreadable_rows() {
    let env = Env::start(Backend::Sqlite).await;
    let products: Vec<CatalogProduct> = (1..=4).map(|i| env.sample(i)).collect();
    env.catalog.save_products(&products).await.unwrap();
    let first = env.reconcile(json!({})).await;
    assert_eq!(first.totals.repaired, 4, "{first:?}");

    for round in 1..=2 {
        env.sandbox
            .dashboard_edit(&env.id(1), "name=Edited+in+the+Dashboard")
            .await;
        let r = env.reconcile(json!({})).await;
        assert_eq!(
            (
                r.totals.drift.edited_in_stripe,
                r.totals.repaired,
                r.totals.failed
            ),
            (1, 1, 0),
            "round {round}: {r:?}"
        );
        assert_eq!(
            env.stripe_name(&env.id(1)).await,
            products[0].name,
            "round {round}"
        );
    }

    env.sandbox
        .dashboard_edit(&env.id(2), "metadata[catalog_sync_managed]=false")
        .await;
    let r = env.reconcile(json!({})).await;
    assert_eq!(
        (r.totals.drift.detached, r.totals.repaired),
        (1, 1),
        "{r:?}"
    );
    let attached = env.sandbox.product(&env.id(2)).await.unwrap();
    assert_eq!(attached["metadata"]["catalog_sync_managed"], "true");

    // An active price made by hand on a managed product: found by the extra-price phase and
    // archived by the repair, so that sync and `verify` agree.
    let (status, extra) = env
        .sandbox
        .api_post(
            "/v1/prices",
            &format!("product={}&currency=usd&unit_amount=1", env.id(3)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{extra}");
    let extra_prices_run = unique("reconcile-extra-prices");
    let r = env.reconcile_as(&extra_prices_run, json!({})).await;
    env.record_history(&extra_prices_run, "reconcile_extra_prices")
        .await;
    assert_eq!(
        (
            r.totals.drift.price_drift,
            r.totals.repaired,
            r.totals.failed
        ),
        (1, 1, 0),
        "{r:?}"
    );
    assert!(
        r.totals.samples[0]
            .detail
            .contains(extra["id"].as_str().unwrap()),
        "{r:?}"
    );
    let prices = env.sandbox.prices(&env.id(3)).await;
    let archived = prices.iter().find(|p| p["id"] == extra["id"]).unwrap();
    assert_eq!(archived["active"], false);
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 4);
    // A dry run of the repaired catalog finds nothing, at the formula's request count.
    let (before, _) = env.stats().await;
    let clean = env
        .reconcile(json!({"mode": "dry_run", "method": "ids"}))
        .await;
    assert_eq!(clean.totals.drift.total(), 0, "{clean:?}");
    let (after, _) = env.stats().await;
    assert_eq!(after - before, env.expected_requests_when_in_sync().await);

    // SQLite keeps whatever it is given: a value of the wrong type in each kind of column.
    let catalog::Db::Sqlite(pool) = env.catalog.db() else {
        unreachable!()
    };
    let corrupt = [
        (
            "c-active",
            "active",
            "INSERT INTO catalog_products (id, name, active) VALUES ('c-active', 'A', 'yes')",
        ),
        (
            "c-name",
            "name",
            "INSERT INTO catalog_products (id, name) VALUES ('c-name', X'00FF')",
        ),
        (
            "c-version",
            "version",
            "INSERT INTO catalog_products (id, name, version) VALUES ('c-version', 'V', 'x')",
        ),
        (
            "c-updated",
            "updated_at",
            "INSERT INTO catalog_products (id, name, updated_at) VALUES ('c-updated', 'U', 'yesterday')",
        ),
        (
            "c-images",
            "images",
            "INSERT INTO catalog_products (id, name, images) VALUES ('c-images', 'I', '{')",
        ),
        (
            "c-amount",
            "prices[0].unit_amount",
            "INSERT INTO catalog_prices (product_id, currency, unit_amount) VALUES ('c-amount', 'usd', 12.5)",
        ),
        (
            "c-currency",
            "prices[0].currency",
            "INSERT INTO catalog_prices (product_id, currency, unit_amount) VALUES ('c-currency', X'FF', 100)",
        ),
        (
            "c-count",
            "prices[0].recurring_interval_count",
            "INSERT INTO catalog_prices (product_id, currency, unit_amount, recurring_interval, recurring_interval_count) VALUES ('c-count', 'usd', 100, 'month', 'two')",
        ),
    ];
    for (id, _, sql) in &corrupt {
        if sql.contains("catalog_prices") {
            sqlx::query("INSERT INTO catalog_products (id, name) VALUES ($1, 'Has a bad price')")
                .bind(id)
                .execute(pool)
                .await
                .unwrap();
        }
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    for (id, field, _) in &corrupt {
        let result = env.sync(id).await;
        if *id == "c-active" {
            env.record_history(&env.sync_id(id), "product_sync_unreadable_row")
                .await;
        }
        assert_eq!(
            result.outcome,
            workflows::SyncOutcome::Invalid,
            "{id}: {result:?}"
        );
        assert_eq!(result.issues[0].field, *field, "{id}: {result:?}");
        assert!(
            env.sandbox.product(id).await.is_none(),
            "{id} reached Stripe"
        );
    }
    let r = env.reconcile(json!({})).await;
    assert_eq!(r.totals.scanned, 4 + corrupt.len() as u64, "{r:?}");
    assert_eq!(r.totals.invalid, corrupt.len() as u64, "{r:?}");
    assert_eq!((r.totals.drift.total(), r.totals.failed), (0, 0), "{r:?}");
    for (id, field, _) in &corrupt {
        let sample = r
            .totals
            .invalid_samples
            .iter()
            .find(|s| s.catalog_id == *id)
            .unwrap_or_else(|| panic!("{id} not reported: {r:?}"));
        assert_eq!(sample.issues[0].field, *field, "{id}");
    }
    // `verify` counts them apart, once each, and compares the others.
    let out = std::process::Command::new(harness::binary("starter"))
        .args(["verify", "--json", "--requests-per-second", "200"])
        .env("CATALOG_DATABASE_URL", &env.catalog_url)
        .env("STRIPE_API_BASE", &env.sandbox.base)
        .env("STRIPE_API_KEY", &env.sandbox.key)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["compared"], 4, "{report:#}");
    assert_eq!(report["unreadable_rows"], corrupt.len(), "{report:#}");
    assert_eq!(report["differences"], corrupt.len(), "{report:#}");
}

/// `starter status` on a reconciliation that cannot move (Stripe refuses every page read): the
/// stalled activity is named with its last failure and status is unhealthy; an unreadable row is
/// listed as invalid with its column. Once Stripe answers again the run finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_flags_a_reconciliation_that_makes_no_progress() {
    let env = Env(TestEnv::start_configured(Backend::Sqlite, |s| {
        s.retry.reconcile.initial_interval_ms = 50;
        s.retry.reconcile.maximum_interval_ms = 100;
    })
    .await);
    env.catalog.save_product(&env.sample(1)).await.unwrap();
    let catalog::Db::Sqlite(pool) = env.catalog.db() else {
        unreachable!()
    };
    sqlx::query("INSERT INTO catalog_products (id, name, active) VALUES ('c-active', 'A', 'yes')")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        env.sync("c-active").await.outcome,
        workflows::SyncOutcome::Invalid
    );
    env.sandbox
        .faults(
            json!({"error_rate": 1.0, "error_statuses": [500], "endpoints": ["GET /v1/products"]}),
        )
        .await;
    let id = unique("reconcile-stalled");
    env.start_reconcile(&id, json!({})).await;
    let status = || {
        let out = std::process::Command::new(harness::binary("starter"))
            .args(["status", "--json", "--max-relay-lag", "1000d"])
            .env("TEMPORAL_ADDRESS", harness::temporal_address())
            .env("CATALOG_DATABASE_URL", &env.catalog_url)
            .env("CATALOG_SYNC_TASK_QUEUE", &env.worker.task_queue)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), report)
    };
    let (code, report) =
        harness::eventually(Duration::from_secs(60), "status flags the run", || async {
            let (code, report) = tokio::task::block_in_place(status);
            report["last_reconciliation"]["stalled"]
                .is_string()
                .then_some((code, report))
        })
        .await;
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["last_reconciliation"]["workflow_id"], json!(id));
    let problems = report["problems"].to_string();
    assert!(
        problems.contains("makes no progress") && problems.contains("ScanStripePage"),
        "{report:#}"
    );
    let invalid = report["invalid"].as_array().unwrap();
    assert!(
        invalid.iter().any(|p| p["product_id"] == "c-active"
            && p["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("row unreadable: active")),
        "{report:#}"
    );

    env.sandbox.clear_faults().await;
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        env.client
            .get_workflow_handle::<ReconcileCatalog>(&id)
            .get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the run finishes once Stripe answers")
    .unwrap();
    assert_eq!(
        (result.totals.scanned, result.totals.invalid),
        (2, 1),
        "{result:?}"
    );
}
