//! Several catalogs in one Temporal namespace (docs/several-catalogs.md), through the binaries:
//! two catalogs with the same product ids, their own databases, task queues and Connect
//! accounts, each with its relay and schedule; and a deployment moving from the legacy workflow
//! ids (`product-sync-{id}`, one per namespace) to catalog-scoped ones with syncs in flight.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use harness::{Backend, Running, RunningWorker, Sandbox, TestEnv, eventually};
use serde_json::{Value, json};
use temporalio_client::schedules::{CreateScheduleOptions, ScheduleAction, ScheduleSpec};
use temporalio_client::{Client, WorkflowStartOptions};
use temporalio_common::protos::temporal::api::history::v1::history_event;
use workflows::model::CatalogProduct;
use workflows::reconcile::ReconcileInput;
use workflows::{ProductChanged, ProductSync, ProductSyncInput, ReconcileCatalog, SyncOutcome};

use super::guards::text;

/// One catalog of the namespace: its database, worker (own task queue) and Connect account.
struct Seller {
    url: String,
    catalog: catalog::Catalog,
    identity: String,
    account: &'static str,
    queue: String,
}

impl Seller {
    /// `starter …` for this catalog, as its operator runs it.
    fn starter(&self, sandbox: &Sandbox, args: &[&str]) -> Output {
        tokio::task::block_in_place(|| {
            Command::new(harness::binary("starter"))
                .args(args)
                .env("TEMPORAL_ADDRESS", harness::temporal_address())
                .env("CATALOG_DATABASE_URL", &self.url)
                .env("CATALOG_SYNC_TASK_QUEUE", &self.queue)
                .env("STRIPE_API_BASE", &sandbox.base)
                .env("STRIPE_API_KEY", &sandbox.key)
                .env("STRIPE_ACCOUNT", self.account)
                .output()
                .expect("starter runs")
        })
    }

    /// The relay binary for this catalog (triggers capture on the built-in tables).
    fn relay(&self) -> Running {
        Running(
            Command::new(harness::binary("relay"))
                .env("TEMPORAL_ADDRESS", harness::temporal_address())
                .env("CATALOG_DATABASE_URL", &self.url)
                .env("CATALOG_SYNC_TASK_QUEUE", &self.queue)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// The names of the active products in this seller's account, by id.
    async fn names(&self, sandbox: &Sandbox) -> Vec<(String, String)> {
        let response = reqwest::Client::new()
            .get(format!(
                "{}/v1/products?limit=100&active=true",
                sandbox.base
            ))
            .bearer_auth(&sandbox.key)
            .header("Stripe-Account", self.account)
            .send()
            .await
            .unwrap();
        let list: Value = response.json().await.unwrap();
        let mut names: Vec<(String, String)> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_string(),
                    p["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        names.sort();
        names
    }
}

/// The same product ids in both catalogs, each named after its seller.
fn products(ids: &[String], seller: &str) -> Vec<CatalogProduct> {
    ids.iter()
        .enumerate()
        .map(|(n, id)| CatalogProduct {
            id: id.clone(),
            name: format!("{seller} {n}"),
            ..catalog::seed::per_unit_sample(n + 1, 7)
        })
        .collect()
}

/// Two catalogs with the same five product ids, own databases, task queues and Connect accounts,
/// in one namespace: each relay's changes reach its own catalog's syncs, so each account ends
/// with exactly its own products and its own edits; each catalog's schedule is its own (the
/// legacy shared schedule, on this catalog's queue, is replaced), and `results` reads each
/// catalog's own runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_catalogs_with_the_same_ids_share_a_namespace() {
    let first = TestEnv::start_configured(Backend::Sqlite, |s| {
        s.stripe.account = Some("acct_catalogA".into());
    })
    .await;
    let (url, catalog) = harness::fresh_catalog(Backend::Postgres).await;
    let second_worker =
        RunningWorker::start_on(&harness::temporal_address(), &url, &first.sandbox, |s| {
            s.stripe.account = Some("acct_catalogB".into())
        })
        .await;
    let sellers = [
        Seller {
            url: first.catalog_url.clone(),
            catalog: first.catalog.clone(),
            identity: first.identity.clone(),
            account: "acct_catalogA",
            queue: first.worker.task_queue.clone(),
        },
        Seller {
            identity: catalog.identity().await.unwrap(),
            url,
            catalog,
            account: "acct_catalogB",
            queue: second_worker.task_queue.clone(),
        },
    ];
    assert_ne!(sellers[0].identity, sellers[1].identity);
    let ids: Vec<String> = (1..=5).map(|n| first.id(n)).collect();
    let _relays: Vec<Running> = sellers.iter().map(Seller::relay).collect();
    for (seller, name) in sellers.iter().zip(["A", "B"]) {
        seller
            .catalog
            .save_products(&products(&ids, name))
            .await
            .unwrap();
    }
    // Both edit the same product at once; the first twice, so that the versions differ.
    for (seller, name) in sellers.iter().zip(["A renamed", "B renamed"]) {
        let mut edited = products(&ids, name)[0].clone();
        edited.description = Some(format!("{name}'s edit"));
        seller.catalog.save_products(&[edited]).await.unwrap();
    }
    let mut again = products(&ids, "A renamed")[0].clone();
    again.description = Some("A's second edit".into());
    sellers[0].catalog.save_products(&[again]).await.unwrap();
    for (seller, name) in sellers.iter().zip(["A", "B"]) {
        let expected: Vec<(String, String)> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let owner = if n == 0 {
                    format!("{name} renamed")
                } else {
                    name.to_string()
                };
                (id.clone(), format!("{owner} {n}"))
            })
            .collect();
        eventually(
            Duration::from_secs(90),
            &format!("{}'s account holds its own catalog", seller.account),
            || async {
                let names = seller.names(&first.sandbox).await;
                (names == expected).then_some(())
            },
        )
        .await;
    }

    for seller in &sellers {
        // Every change handed to Temporal: `results` waits for the runs that take them.
        eventually(Duration::from_secs(30), "the outbox drained", || async {
            let stats = seller.catalog.outbox_stats().await.unwrap();
            (stats.pending == 0).then_some(())
        })
        .await;
        // Its own runs: the results of its own syncs, under its own workflow ids.
        let mut args = vec!["results", "--json"];
        args.extend(ids.iter().map(String::as_str));
        let out = seller.starter(&first.sandbox, &args);
        assert!(out.status.success(), "{}", text(&out));
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), ids.len(), "{}", text(&out));
        for line in &lines {
            assert!(
                matches!(line["outcome"].as_str(), Some("synced" | "unchanged")),
                "{line}"
            );
        }
        let edited = lines.iter().find(|l| l["product_id"] == ids[0]).unwrap();
        let version = seller.catalog.fetch_product(&ids[0]).await.unwrap();
        assert_eq!(
            edited["catalog_version"],
            json!(version.unwrap().version),
            "{} read another catalog's run: {edited}",
            seller.account
        );
        let out = seller.starter(&first.sandbox, &["verify"]);
        assert!(
            text(&out).contains("5 products compared, 0 differences"),
            "{}",
            text(&out)
        );
    }

    // Each catalog's schedule is its own. The shared schedule id of earlier releases, on the
    // first catalog's queue, is replaced by the first catalog's own.
    create_legacy_schedule(&first.client, &sellers[0].queue).await;
    for seller in &sellers {
        let out = seller.starter(
            &first.sandbox,
            &["schedule", "apply", "--every", "1h", "--paused"],
        );
        assert!(out.status.success(), "{}", text(&out));
        let said = text(&out);
        let own = format!("schedule {}:reconcile created", seller.identity);
        assert!(said.contains(&own), "{said}");
        let replaced = said.contains("schedule catalog-sync-reconcile deleted");
        assert_eq!(replaced, seller.queue == sellers[0].queue, "{said}");
        let out = seller.starter(&first.sandbox, &["schedule", "describe", "--json"]);
        let described: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            described["id"],
            json!(format!("{}:reconcile", seller.identity)),
            "{described}"
        );
        let out = seller.starter(&first.sandbox, &["schedule", "delete"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    second_worker.stop().await;

    // Two catalogs' workers on one queue: a worker hands another catalog's sync back instead of
    // syncing it into its own account, and `status` names the shared queue.
    let shared = harness::unique("shared");
    let b_worker = RunningWorker::start_on(
        &harness::temporal_address(),
        &sellers[1].url,
        &first.sandbox,
        |s| {
            s.stripe.account = Some(sellers[1].account.into());
            s.task_queue = shared.clone();
        },
    )
    .await;
    let b_on_shared = Seller {
        queue: shared.clone(),
        url: sellers[1].url.clone(),
        catalog: sellers[1].catalog.clone(),
        identity: sellers[1].identity.clone(),
        account: sellers[1].account,
    };
    let writes = first.writes().await;
    relay::Signaller::new(
        first.client.clone(),
        sellers[0].identity.as_str(),
        shared.as_str(),
        Duration::from_secs(10),
    )
    .product_changed(&ids[1], None, "test")
    .await
    .unwrap();
    let said = eventually(
        Duration::from_secs(30),
        "status names the shared queue",
        || async {
            let out = b_on_shared.starter(&first.sandbox, &["status"]);
            let said = text(&out);
            (said.contains("syncs of other catalogs run on this catalog's task queue")
                && out.status.code() == Some(1))
            .then_some(said)
        },
    )
    .await;
    assert!(said.contains(&sellers[0].identity), "{said}");
    assert_eq!(
        first.writes().await,
        writes,
        "a worker synced another catalog's product"
    );
    first
        .client
        .get_workflow_handle::<temporalio_client::UntypedWorkflow>(first.sync_id(&ids[1]))
        .terminate(Default::default())
        .await
        .unwrap();
    b_worker.stop().await;
}

/// The schedule as earlier releases named it (one per namespace), paused, on `task_queue`.
async fn create_legacy_schedule(client: &Client, task_queue: &str) {
    client
        .create_schedule(
            &domain::ids::legacy_schedule_id("reconcile"),
            CreateScheduleOptions::builder()
                .action(ScheduleAction::start_workflow(
                    ReconcileCatalog::run,
                    ReconcileInput::default(),
                    task_queue,
                    format!("{}-run", domain::ids::legacy_schedule_id("reconcile")),
                ))
                .spec(ScheduleSpec::from_interval(Duration::from_secs(3600)))
                .paused(true)
                .build(),
        )
        .await
        .unwrap();
}

/// An upgrade from the legacy workflow ids with syncs in flight: runs the previous release
/// started under `product-sync-{id}` keep their products until they end, the new release's syncs
/// of the same products (under scoped ids) wait for them instead of writing beside them, and
/// every change, those sent to the legacy runs and those sent after the upgrade, reaches Stripe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_from_legacy_ids_with_syncs_in_flight_loses_nothing() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let mut products: Vec<_> = (1..=4).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    // The previous release's syncs, in flight: Stripe takes two seconds a product write.
    env.sandbox
        .faults(json!({"latency_ms": 2000, "endpoints": ["POST /v1/products"]}))
        .await;
    for p in &products {
        env.client
            .signal_with_start_workflow(
                ProductSync::run,
                ProductSyncInput {
                    catalog_id: p.id.clone(),
                    ..Default::default()
                },
                ProductSync::product_changed,
                ProductChanged {
                    catalog_version: None,
                    source: "previous release".into(),
                },
                WorkflowStartOptions::new(
                    env.worker.task_queue.as_str(),
                    workflows::legacy_product_sync_id(&p.id),
                )
                .build(),
            )
            .await
            .unwrap();
    }
    // Edits after the upgrade go to the scoped ids (as the new relay and starter send them).
    for p in &mut products {
        p.name = format!("{} (after the upgrade)", p.name);
    }
    env.catalog.save_products(&products).await.unwrap();
    let upgraded = SystemTime::now();
    for p in &products {
        env.signal(&p.id).await;
    }
    env.sandbox.clear_faults().await;
    for p in &products {
        let result = env.result(&p.id).await;
        assert!(
            matches!(result.outcome, SyncOutcome::Synced | SyncOutcome::Unchanged),
            "{}: {result:?}",
            p.id
        );
        let legacy = workflows::legacy_product_sync_id(&p.id);
        let legacy_closed = close_time(&env.client, &legacy).await;
        // One writer at a time: the scoped run wrote only once the legacy one had ended.
        for write in upsert_times(&env.client, &env.sync_id(&p.id)).await {
            assert!(write >= legacy_closed, "{}: wrote beside {legacy}", p.id);
        }
        assert!(legacy_closed > upgraded, "{legacy} was not in flight");
        let stripe = env.sandbox.product(&p.id).await.unwrap();
        assert_eq!(stripe["name"], json!(p.name), "{}", p.id);
    }
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, products.len());
}

/// When the workflow's latest run closed.
async fn close_time(client: &Client, workflow_id: &str) -> SystemTime {
    let query = format!("WorkflowId = '{workflow_id}' AND ExecutionStatus != 'Running'");
    eventually(Duration::from_secs(60), "the legacy run closed", || async {
        use futures::StreamExt;
        let mut runs = client.list_workflows(query.as_str(), Default::default());
        runs.next().await.and_then(|r| r.ok()?.close_time())
    })
    .await
}

/// When each `UpsertProduct` of the workflow's latest run was scheduled.
async fn upsert_times(client: &Client, workflow_id: &str) -> Vec<SystemTime> {
    use futures::TryStreamExt;
    let events: Vec<_> = client
        .get_workflow_handle::<temporalio_client::UntypedWorkflow>(workflow_id)
        .fetch_history(Default::default())
        .try_collect()
        .await
        .unwrap();
    let times: Vec<SystemTime> = events
        .iter()
        .filter(|e| match &e.attributes {
            Some(history_event::Attributes::ActivityTaskScheduledEventAttributes(a)) => a
                .activity_type
                .as_ref()
                .is_some_and(|t| t.name == "UpsertProduct"),
            _ => false,
        })
        .map(|e| {
            let t = e.event_time.unwrap();
            SystemTime::UNIX_EPOCH
                + Duration::new(
                    u64::try_from(t.seconds).unwrap(),
                    u32::try_from(t.nanos).unwrap(),
                )
        })
        .collect();
    assert!(!times.is_empty(), "{workflow_id} wrote nothing");
    times
}

/// A copy of a catalog database (staging restored from production's backup) carries the
/// original's identity: every binary refuses it, naming the decision to make, before it writes
/// anything. `starter catalog identity --new` makes it another catalog, which leaves the
/// original's Stripe products alone (its ledger's writes were the original's); `--moved` keeps
/// the identity (the same catalog, moved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_copy_is_refused_until_the_operator_decides() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let products: Vec<_> = (1..=3).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        assert_eq!(env.sync(&p.id).await.outcome, SyncOutcome::Synced);
    }
    let before = env.sandbox.get("/v1/products?limit=100").await;
    let writes = env.writes().await;
    // Two copies, as a backup restored elsewhere makes them.
    let copy = |name: &str| {
        let path = std::env::temp_dir()
            .join("catalog-sync-tests")
            .join(format!("{}.db", harness::unique(name)));
        (
            path.display().to_string(),
            format!("sqlite:{}", path.display()),
        )
    };
    let (staging_path, staging) = copy("staging");
    let (moved_path, moved) = copy("moved");
    let original = sqlx::SqlitePool::connect(&env.catalog_url).await.unwrap();
    for path in [&staging_path, &moved_path] {
        sqlx::query(&format!("VACUUM INTO '{path}'"))
            .execute(&original)
            .await
            .unwrap();
    }
    let run = |url: &str, args: &[&str]| -> Output {
        tokio::task::block_in_place(|| {
            Command::new(harness::binary("starter"))
                .args(args)
                .env("TEMPORAL_ADDRESS", harness::temporal_address())
                .env("CATALOG_DATABASE_URL", url)
                .env("CATALOG_SYNC_TASK_QUEUE", &env.worker.task_queue)
                .env("STRIPE_API_BASE", &env.sandbox.base)
                .env("STRIPE_API_KEY", &env.sandbox.key)
                .output()
                .expect("starter runs")
        })
    };
    for args in [
        &["sync", "--all", "--wait"][..],
        &["migrate"][..],
        &["reconcile"][..],
    ] {
        let out = run(&staging, args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}");
        assert!(
            said.contains("a restored copy or a clone"),
            "{args:?}: {said}"
        );
        assert!(said.contains("starter catalog identity --new"), "{said}");
    }
    let worker = tokio::task::block_in_place(|| {
        harness::worker_command(&staging, &env.sandbox, &harness::unique("staging"))
            .output()
            .unwrap()
    });
    assert!(!worker.status.success());
    assert!(
        text(&worker).contains("a restored copy or a clone"),
        "{}",
        text(&worker)
    );
    assert_eq!(env.writes().await, writes);

    // The same catalog moved: its identity stays.
    let out = run(&moved, &["catalog", "identity", "--moved"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), env.identity);

    // Staging becomes a catalog of its own; its syncs leave the original's products alone.
    let out = run(&staging, &["catalog", "identity", "--new"]);
    assert!(out.status.success(), "{}", text(&out));
    let new_identity = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(new_identity.starts_with("cat_") && new_identity != env.identity);
    let queue = harness::unique("staging");
    let _worker = Running(
        harness::worker_command(&staging, &env.sandbox, &queue)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = tokio::task::block_in_place(|| {
        Command::new(harness::binary("starter"))
            .args(["sync", "--all", "--wait"])
            .env("TEMPORAL_ADDRESS", harness::temporal_address())
            .env("CATALOG_DATABASE_URL", &staging)
            .env("CATALOG_SYNC_TASK_QUEUE", &queue)
            .output()
            .unwrap()
    });
    let said = text(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(said.contains("3 skipped_other_catalog"), "{said}");
    assert_eq!(
        env.writes().await,
        writes,
        "staging wrote into the original's products"
    );
    assert_eq!(env.sandbox.get("/v1/products?limit=100").await, before);
}
