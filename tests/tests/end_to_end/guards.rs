//! The guards that keep a misconfiguration from damaging a catalog, through the binaries as an
//! operator runs them: catalog identity (a worker pointed at an empty or another catalog in the
//! same Stripe account touches nothing of this one's) and the reconciliation's archive guard (a
//! run that would archive more than its limit archives nothing until confirmed).

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use harness::{Backend, Running, Sandbox, TestEnv, fresh_catalog, unique, worker_command};
use serde_json::{Value, json};
use workflows::SyncOutcome;

/// `starter {args}` against a catalog, a sandbox and a task queue.
pub(super) fn starter(
    catalog_url: &str,
    sandbox: &Sandbox,
    task_queue: &str,
    args: &[&str],
) -> Output {
    Command::new(harness::binary("starter"))
        .args(args)
        .env("TEMPORAL_ADDRESS", harness::temporal_address())
        .env("CATALOG_DATABASE_URL", catalog_url)
        .env("CATALOG_SYNC_TASK_QUEUE", task_queue)
        .env("STRIPE_API_BASE", &sandbox.base)
        .env("STRIPE_API_KEY", &sandbox.key)
        .output()
        .expect("starter runs")
}

pub(super) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `starter reconcile --json …`: the exit code and the result.
fn reconcile(env: &TestEnv, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["reconcile", "--json"];
    args.extend(extra);
    let out = starter(
        &env.catalog_url,
        &env.sandbox,
        &env.worker.task_queue,
        &args,
    );
    let result =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), result)
}

/// Every Stripe product of the account, as the sandbox holds it (active and archived).
async fn stripe_products(sandbox: &Sandbox) -> Vec<Value> {
    let (status, list) = sandbox.get("/v1/products?limit=100").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["has_more"], false,
        "one page holds the test's products"
    );
    list["data"].as_array().unwrap().clone()
}

/// A worker on an empty catalog, and one on a second catalog that shares ids with the first (one of
/// them renamed, one deleted there), in the same Stripe account: live syncs end
/// `skipped_other_catalog` with the reason, reconciliations archive and repair nothing, `verify` of
/// the second catalog names the owner; the first catalog's Stripe state is unchanged, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_other_catalogs_leave_this_ones_products_alone() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let products: Vec<_> = (1..=12).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        assert_eq!(env.sync(&p.id).await.outcome, SyncOutcome::Synced);
    }
    let before = stripe_products(&env.sandbox).await;
    let writes_before = env.writes().await;

    let (empty_url, _empty) = fresh_catalog(Backend::Sqlite).await;
    let (other_url, other) = fresh_catalog(Backend::Postgres).await;
    let mut renamed = products[0].clone();
    renamed.name = "Another team's mug".into();
    other
        .save_products(&[renamed, products[1].clone(), products[2].clone()])
        .await
        .unwrap();
    assert!(other.soft_delete(&products[2].id).await.unwrap());

    for (url, name) in [(&empty_url, "empty"), (&other_url, "other")] {
        let queue = unique(name);
        let _worker = Running(
            worker_command(url, &env.sandbox, &queue)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Live syncs of ids the first catalog owns: a missing row, a renamed one, a deleted one.
        let ids = [&products[0].id, &products[2].id, &products[5].id];
        let mut args = vec!["sync", "--wait"];
        args.extend(ids.iter().map(|id| id.as_str()));
        let out = starter(url, &env.sandbox, &queue, &args);
        let said = text(&out);
        // Products this catalog may not touch did not sync: exit code 4.
        assert_eq!(out.status.code(), Some(4), "{name}: {said}");
        // The empty catalog has no row for any of them (three archives it may not make); the
        // other has two of them (renamed, deleted) and lacks the third.
        assert!(
            said.contains("done: 3 skipped_other_catalog"),
            "{name}: {said}"
        );
        assert!(said.contains("not to this catalog"), "{name}: {said}");

        // A reconciliation in apply mode: nothing archived, nothing repaired.
        let out = starter(url, &env.sandbox, &queue, &["reconcile", "--json"]);
        let result: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        assert_eq!(out.status.code(), Some(0), "{name}: {result:#}");
        let t = &result["totals"];
        assert_eq!(
            (&t["repaired"], &t["orphans_archived"], &t["failed"]),
            (&json!(0), &json!(0), &json!(0)),
            "{name}: {result:#}"
        );
        assert!(
            t["other_catalog"].as_u64().unwrap() >= 12,
            "{name}: {result:#}"
        );
    }

    // `verify` of the second catalog says whose the products are; of the first, all is well.
    let out = starter(&other_url, &env.sandbox, "-", &["verify"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("belongs to catalog cat_"), "{said}");
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 12);
    assert_eq!(env.writes().await, writes_before, "no write reached Stripe");
    assert_eq!(stripe_products(&env.sandbox).await, before);
}

/// catalog-sync's identity metadata edited by hand in the Dashboard (`catalog_sync_catalog` set
/// to another catalog's or removed, `catalog_sync_id` changed) on products this catalog wrote is
/// drift: a live sync and a reconciliation restore it, instead of leaving the product as
/// "another catalog's" while Stripe keeps the edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_metadata_edited_by_hand_is_drift_and_restored() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let products: Vec<_> = (1..=3).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        assert_eq!(env.sync(&p.id).await.outcome, SyncOutcome::Synced);
    }
    let edits = [
        "metadata[catalog_sync_catalog]=cat_00000000000000ff",
        "metadata[catalog_sync_catalog]=",
        "metadata[catalog_sync_id]=someone-else",
    ];
    for (p, edit) in products.iter().zip(edits) {
        env.sandbox.dashboard_edit(&p.id, edit).await;
    }
    // `verify` sees all three.
    let out = starter(
        &env.catalog_url,
        &env.sandbox,
        &env.worker.task_queue,
        &["verify"],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert_eq!(
        said.matches("on a product this catalog wrote").count(),
        2,
        "{said}"
    );
    assert!(
        said.contains("catalog_sync_id: Stripe \"someone-else\""),
        "{said}"
    );
    // A live sync restores the first.
    assert_eq!(env.sync(&products[0].id).await.outcome, SyncOutcome::Synced);
    // A reconciliation finds the other two as drift and repairs them.
    let (code, result) = reconcile(&env, &[]);
    assert_eq!(code, Some(0), "{result:#}");
    let t = &result["totals"];
    assert_eq!(
        (&t["repaired"], &t["other_catalog"], &t["failed"]),
        (&json!(2), &json!(0), &json!(0)),
        "{result:#}"
    );
    for p in &products {
        let stripe = env.sandbox.product(&p.id).await.unwrap();
        assert_eq!(
            (
                &stripe["metadata"]["catalog_sync_catalog"],
                &stripe["metadata"]["catalog_sync_id"]
            ),
            (&json!(env.identity), &json!(p.id)),
            "{stripe:#}"
        );
    }
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, products.len());
}

/// The archive guard: 12 of 40 products (30 %) deleted from the catalog is above the limit of 10.
/// The dry run exits 2 and says an apply run would stop; the apply run exits 3, archives nothing,
/// marks the run `needs_confirmation` (search attribute, `starter status`); the rerun with
/// `--allow-mass-archive` archives them. Then the whole catalog table is emptied by mistake: the
/// next reconciliation archives nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_that_would_archive_30_percent_waits_for_confirmation() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let products: Vec<_> = (1..=40).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    let (code, first) = reconcile(&env, &[]);
    assert_eq!(code, Some(0), "{first:#}");
    assert_eq!(first["totals"]["repaired"], 40, "{first:#}");
    let (code, plan) = reconcile(&env, &["--dry-run"]);
    assert_eq!(code, Some(0), "in sync: {plan:#}");

    for p in &products[..12] {
        assert!(env.catalog.hard_delete(&p.id).await.unwrap());
    }
    let (code, plan) = reconcile(&env, &["--dry-run"]);
    assert_eq!(code, Some(2), "drift: {plan:#}");
    assert_eq!(plan["needs_confirmation"], true, "{plan:#}");
    assert_eq!(plan["totals"]["planned_archives"], 12, "{plan:#}");

    let id = unique("reconcile-guarded");
    let (code, held) = reconcile(&env, &["--id", &id]);
    assert_eq!(code, Some(3), "{held:#}");
    assert_eq!(
        (&held["needs_confirmation"], &held["archive_limit"]),
        (&json!(true), &json!(10)),
        "{held:#}"
    );
    assert_eq!(held["totals"]["orphans_archived"], 0, "{held:#}");
    assert_eq!(
        held["held_archives"].as_array().unwrap().len(),
        12,
        "{held:#}"
    );
    for p in &products {
        let s = env.sandbox.product(&p.id).await.unwrap();
        assert_eq!(s["active"], true, "{} archived before confirmation", p.id);
    }
    let marked = harness::eventually(Duration::from_secs(20), "search attribute", || async {
        let n = env
            .client
            .count_workflows(
                format!("WorkflowId = '{id}' AND SyncOutcome = 'needs_confirmation'"),
                Default::default(),
            )
            .await
            .unwrap()
            .count();
        (n == 1).then_some(n)
    })
    .await;
    assert_eq!(marked, 1);
    env.record_history(&id, "reconcile_archive_guard").await;
    let out = starter(
        &env.catalog_url,
        &env.sandbox,
        &env.worker.task_queue,
        &["status", "--max-relay-lag", "1000d"],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("needs confirmation") && said.contains("--allow-mass-archive"),
        "{said}"
    );

    let (code, applied) = reconcile(&env, &["--allow-mass-archive"]);
    assert_eq!(code, Some(0), "{applied:#}");
    assert_eq!(applied["totals"]["orphans_archived"], 12, "{applied:#}");
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 28);

    // The catalog table emptied by mistake (every row deleted, no relay running): the scheduled
    // kind of run stops at the guard and the live catalog stays.
    let catalog::Db::Sqlite(pool) = env.catalog.db() else {
        unreachable!()
    };
    sqlx::query("DELETE FROM catalog_prices")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM catalog_products")
        .execute(pool)
        .await
        .unwrap();
    let (code, held) = reconcile(&env, &[]);
    assert_eq!(code, Some(3), "{held:#}");
    assert_eq!(held["totals"]["planned_archives"], 28, "{held:#}");
    for p in &products[12..] {
        assert_eq!(env.sandbox.product(&p.id).await.unwrap()["active"], true);
    }
}

/// Products made before catalog identities (here: synced, then stripped of `catalog_sync_catalog`,
/// which earlier versions never wrote) are nobody's: a sync leaves them with the reason and the
/// command to run. `starter adopt --dry-run` lists them and writes nothing; `starter adopt` claims
/// those the catalog has a row for, prices included, and leaves the one it has not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_made_before_identities_are_adopted_only_on_request() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let products: Vec<_> = (1..=4).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        assert_eq!(env.sync(&p.id).await.outcome, SyncOutcome::Synced);
    }
    assert!(env.catalog.hard_delete(&products[3].id).await.unwrap());
    // As an earlier release left them: no identity in Stripe, and a ledger of legacy workflow ids
    // (which prove no identity's writes).
    let ledger = sqlx::SqlitePool::connect(&env.catalog_url).await.unwrap();
    sqlx::query("UPDATE catalog_sync_audit SET workflow_id = 'product-sync-' || product_id")
        .execute(&ledger)
        .await
        .unwrap();
    for p in &products {
        env.sandbox
            .dashboard_edit(&p.id, "metadata[catalog_sync_catalog]=")
            .await;
        for price in env.sandbox.prices(&p.id).await {
            env.sandbox
                .dashboard_edit_price(
                    price["id"].as_str().unwrap(),
                    "metadata[catalog_sync_catalog]=",
                )
                .await;
        }
    }
    // An unadopted product whose `catalog_sync_id` was pointed at another row by hand (its own
    // row is gone): adopt never claims it as that row.
    let forged = env.sample(5);
    env.catalog.save_product(&forged).await.unwrap();
    assert_eq!(env.sync(&forged.id).await.outcome, SyncOutcome::Synced);
    sqlx::query("UPDATE catalog_sync_audit SET workflow_id = 'product-sync-' || product_id")
        .execute(&ledger)
        .await
        .unwrap();
    assert!(env.catalog.hard_delete(&forged.id).await.unwrap());
    env.sandbox
        .dashboard_edit(
            &forged.id,
            &format!(
                "metadata[catalog_sync_catalog]=&metadata[catalog_sync_id]={}",
                products[1].id
            ),
        )
        .await;
    let mut renamed = products[0].clone();
    renamed.name = "Renamed after the upgrade".into();
    env.catalog.save_product(&renamed).await.unwrap();
    let refused = env.sync(&renamed.id).await;
    assert_eq!(refused.outcome, SyncOutcome::SkippedOtherCatalog);
    let why = refused.report.other_catalog.unwrap();
    assert!(why.contains("starter adopt"), "{why}");

    let writes = env.writes().await;
    let queue = &env.worker.task_queue;
    // The renamed row is not what Stripe's product was synced from: left unless included.
    let out = starter(
        &env.catalog_url,
        &env.sandbox,
        queue,
        &["adopt", "--dry-run"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("would adopt 2 products and 4 prices"),
        "{said}"
    );
    assert!(
        said.contains(&format!("left     {}: its content", renamed.id)),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "left     {}: its catalog_sync_id metadata names another id",
            forged.id
        )),
        "{said}"
    );
    let out = starter(
        &env.catalog_url,
        &env.sandbox,
        queue,
        &["adopt", "--dry-run", "--include-changed"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("would adopt 3 products and 6 prices"),
        "{said}"
    );
    assert!(
        said.contains(&format!("left     {}", products[3].id)),
        "{said}"
    );
    assert_eq!(env.writes().await, writes, "a dry run writes nothing");

    let out = starter(
        &env.catalog_url,
        &env.sandbox,
        queue,
        &["adopt", "--include-changed"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("adopted 3 products and 6 prices"), "{said}");
    for p in &products[..3] {
        let s = env.sandbox.product(&p.id).await.unwrap();
        assert!(s["metadata"]["catalog_sync_catalog"].is_string(), "{s:#}");
        for price in env.sandbox.prices(&p.id).await {
            assert!(
                price["metadata"]["catalog_sync_catalog"].is_string(),
                "{price:#}"
            );
        }
    }
    for id in [&products[3].id, &forged.id] {
        let left = env.sandbox.product(id).await.unwrap();
        assert!(
            left["metadata"].get("catalog_sync_catalog").is_none(),
            "{left:#}"
        );
    }
    assert_eq!(env.sync(&renamed.id).await.outcome, SyncOutcome::Synced);
    let out = starter(&env.catalog_url, &env.sandbox, queue, &["adopt"]);
    assert!(text(&out).contains("adopted 0 products"), "{}", text(&out));
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 3);
}

/// The live archive guard: with the relay running, a catalog table emptied by mistake sends one
/// delete per row. Live syncs archive within the budget (here at least 3 per hour) and hold the
/// rest: Stripe keeps them active, `starter status` is unhealthy, `starter archives list` names
/// them. Rows restored in the meantime drop out; `starter archives confirm --all` archives the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_live_deletes_waits_for_confirmation_sqlite() {
    a_burst_of_live_deletes_waits_for_confirmation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_live_deletes_waits_for_confirmation_postgres() {
    a_burst_of_live_deletes_waits_for_confirmation(Backend::Postgres).await;
}

async fn a_burst_of_live_deletes_waits_for_confirmation(backend: Backend) {
    let env = TestEnv::start_configured(backend, |s| {
        s.archive_budget = catalog::ArchiveBudget {
            min: 3,
            ..catalog::ArchiveBudget::default()
        };
    })
    .await;
    let relay = env.spawn_relay(relay::RelayOptions {
        poll_interval: Duration::from_millis(100),
        ..relay::RelayOptions::default()
    });
    let products: Vec<_> = (1..=20).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        harness::eventually(Duration::from_secs(60), &p.id, || async {
            env.sandbox.product(&p.id).await
        })
        .await;
    }
    env.assert_all_finished_none_failed(Duration::from_secs(60))
        .await;

    for table in ["catalog_prices", "catalog_products"] {
        let delete = format!("DELETE FROM {table}");
        match env.catalog.db() {
            catalog::Db::Sqlite(pool) => sqlx::query(&delete).execute(pool).await.map(drop),
            catalog::Db::Postgres(pool) => sqlx::query(&delete).execute(pool).await.map(drop),
        }
        .unwrap();
    }
    let held = harness::eventually(Duration::from_secs(90), "17 archives held", || async {
        let held = env.catalog.held_archives(100).await.unwrap();
        (held.len() == 17).then_some(held)
    })
    .await;
    env.assert_all_finished_none_failed(Duration::from_secs(60))
        .await;
    let mut active = Vec::new();
    for p in &products {
        if env.sandbox.product(&p.id).await.unwrap()["active"] == true {
            active.push(p.clone());
        }
    }
    assert_eq!(
        active.len(),
        17,
        "3 archived within the budget, the rest kept"
    );
    assert!(
        held.iter()
            .all(|h| h.reason.contains("starter archives confirm")),
        "{held:?}"
    );
    env.record_history(
        &env.sync_id(&held[0].product_id),
        "product_sync_archive_held",
    )
    .await;

    let queue = &env.worker.task_queue;
    let out = starter(
        &env.catalog_url,
        &env.sandbox,
        queue,
        &["status", "--max-relay-lag", "1000d"],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("17 archives are held"), "{said}");
    let out = starter(&env.catalog_url, &env.sandbox, queue, &["archives", "list"]);
    assert!(
        text(&out).contains("17 archives held or confirmed"),
        "{}",
        text(&out)
    );

    // One archive budget: a reconciliation, whose own guard would let all of them go, meets the
    // same holds and leaves them for a person to confirm.
    let (code, result) = reconcile(&env, &["--archive-limit-min", "100"]);
    assert_eq!(code, Some(4), "{result:#}");
    assert!(
        result
            .to_string()
            .contains("held by the live archive guard"),
        "{result:#}"
    );
    assert_eq!(env.catalog.held_archives(100).await.unwrap().len(), 17);
    for p in &active {
        assert_eq!(env.sandbox.product(&p.id).await.unwrap()["active"], true);
    }

    // Five rows come back (restored from a backup); the other twelve were meant to go.
    env.catalog.save_products(&active[..5]).await.unwrap();
    let out = starter(
        &env.catalog_url,
        &env.sandbox,
        queue,
        &["archives", "confirm", "--all", "--wait"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("confirmed 12 archives") && said.contains("done: 12 archived"),
        "{said}"
    );
    env.outbox_drained(Duration::from_secs(30)).await;
    env.assert_all_finished_none_failed(Duration::from_secs(60))
        .await;
    relay.stop().await;
    assert!(env.catalog.held_archives(100).await.unwrap().is_empty());
    harness::assert_verify_clean(&env.catalog_url, &env.sandbox, 5);
}

/// Runs `command` to its exit (at most 30 s: a worker that starts instead would run forever).
fn exit_of(mut command: Command) -> (Option<i32>, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("still running after 30 s: the misconfiguration was not refused");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), text(&out))
}

/// Settings that would fail every sync fail the process at start, naming the setting: a key
/// Stripe refuses, a live key aimed at anything but Stripe (however the base or the key is
/// dressed), a key or API version holding whitespace, an API version Stripe does not know,
/// `CATALOG_SYNC_EXPECT_LIVE` with a test setup, an archive window that turns the guard off.
/// `starter verify` says the same of the Stripe settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misconfigured_processes_fail_fast_naming_the_setting() {
    let sandbox = Sandbox::start().await;
    let (url, _catalog) = fresh_catalog(Backend::Sqlite).await;
    let queue = unique("misconfigured");
    let base_with_a_user = format!(
        "https://api.stripe.com:@{}",
        sandbox.base.trim_start_matches("http://")
    );
    // The settings, what the process must say, and whether `starter verify` takes them too.
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, bool);
    let cases: Vec<Case> = vec![
        (
            vec![("STRIPE_API_KEY", "sk_wrong_key")],
            "Stripe refused STRIPE_API_KEY (401",
            true,
        ),
        (
            vec![("STRIPE_API_KEY", "sk_live_abc")],
            "live key but STRIPE_API_BASE",
            true,
        ),
        // Parsed, not compared as text: a user part before the host, a padded live key.
        (
            vec![
                ("STRIPE_API_KEY", "sk_live_abc"),
                ("STRIPE_API_BASE", &base_with_a_user),
            ],
            "must be an http(s) URL of a host, with no user",
            true,
        ),
        (
            vec![("STRIPE_API_KEY", " sk_live_abc")],
            "live key but STRIPE_API_BASE",
            true,
        ),
        (
            vec![("STRIPE_API_KEY", "sk_test_a sk_test_b")],
            "STRIPE_API_KEY holds whitespace",
            true,
        ),
        (
            vec![("STRIPE_API_VERSION", "2019-2-19")],
            "Stripe refused STRIPE_API_VERSION=2019-2-19",
            true,
        ),
        (
            vec![("STRIPE_API_VERSION", "2026-09-30.endive\r\nX-Evil: 1")],
            "holds whitespace or a control character",
            true,
        ),
        (
            vec![("CATALOG_SYNC_EXPECT_LIVE", "true")],
            "CATALOG_SYNC_EXPECT_LIVE=true",
            true,
        ),
        // A misspelt setting would leave its default in force, unseen.
        (
            vec![("CATALOG_SYNC_STRIPE_BUGDET", "10")],
            "CATALOG_SYNC_STRIPE_BUGDET is not a catalog-sync setting (did you mean \
             CATALOG_SYNC_STRIPE_BUDGET?)",
            true,
        ),
        (
            vec![("CATALOG_SYNC_ARCHIVE_WINDOW", "0s")],
            "CATALOG_SYNC_ARCHIVE_WINDOW=0s",
            false,
        ),
    ];
    for (settings, says, verify_too) in cases {
        let mut worker = worker_command(&url, &sandbox, &queue);
        worker.envs(settings.iter().copied());
        let (code, said) = tokio::task::block_in_place(|| exit_of(worker));
        assert_eq!(code, Some(1), "worker with {settings:?}: {said}");
        assert!(said.contains(says), "worker with {settings:?}: {said}");
        assert!(!said.contains("sk_test_a"), "a key in a message: {said}");
        if !verify_too {
            continue;
        }
        let mut verify = Command::new(harness::binary("starter"));
        verify
            .args(["verify"])
            .env("CATALOG_DATABASE_URL", &url)
            .env("STRIPE_API_BASE", &sandbox.base)
            .env("STRIPE_API_KEY", &sandbox.key)
            .envs(settings.iter().copied());
        let (code, said) = tokio::task::block_in_place(|| exit_of(verify));
        assert_eq!(code, Some(1), "verify with {settings:?}: {said}");
        assert!(said.contains(says), "verify with {settings:?}: {said}");
    }
    // A secret file's trailing newline is no mistake: the key works.
    let out = Command::new(harness::binary("starter"))
        .args(["verify"])
        .env("CATALOG_DATABASE_URL", &url)
        .env("STRIPE_API_BASE", &sandbox.base)
        .env("STRIPE_API_KEY", format!("{}\n", sandbox.key))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // The same settings, well set, start: the worker runs until stopped (here with a restricted
    // key, which is all catalog-sync needs).
    let mut worker = Running(
        worker_command(&url, &sandbox, &queue)
            .env("STRIPE_API_KEY", "rk_test_restricted")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    harness::wait_until_polled(&queue).await;
    assert!(
        worker.0.try_wait().unwrap().is_none(),
        "a well-configured worker runs"
    );
}

/// The live archive budget in the database, on both backends: a product counts once per window (a
/// retried attempt takes no second share), the archive past the budget is held, a confirmed hold
/// is granted once, and a reconciliation's approved archive waits for the same confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_budget_counts_each_product_once() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (_, catalog) = fresh_catalog(backend).await;
        let budget = catalog::ArchiveBudget {
            min: 2,
            ..catalog::ArchiveBudget::default()
        };
        let permit = |id: &'static str| {
            let (catalog, budget) = (catalog.clone(), budget.clone());
            async move { catalog.permit_archive(id, &budget).await.unwrap() }
        };
        use catalog::ArchivePermit::{Granted, Held};
        assert_eq!(permit("a").await, Granted, "{backend:?}");
        assert_eq!(permit("a").await, Granted, "{backend:?}: a retry");
        assert_eq!(permit("b").await, Granted, "{backend:?}");
        assert!(matches!(permit("c").await, Held(_)), "{backend:?}");
        assert_eq!(permit("a").await, Granted, "{backend:?}: counted already");
        assert!(
            matches!(permit("c").await, Held(_)),
            "{backend:?}: still held"
        );
        let held = catalog.held_archives(10).await.unwrap();
        assert_eq!(held.len(), 1, "{backend:?}: {held:?}");
        assert_eq!(
            catalog.confirm_held_archives(None).await.unwrap(),
            vec!["c".to_string()]
        );
        assert_eq!(permit("c").await, Granted, "{backend:?}: confirmed");
        assert!(catalog.held_archives(10).await.unwrap().is_empty());
        // One budget: a reconciliation's approved archive does not release a live hold; once a
        // person confirms it, the approved archive goes ahead and settles it.
        assert!(matches!(permit("d").await, Held(_)), "{backend:?}");
        let approved = catalog.approve_archive("d").await.unwrap();
        assert!(matches!(&approved, Held(why) if why.contains("starter archives confirm")));
        assert_eq!(
            catalog.held_archives(10).await.unwrap().len(),
            1,
            "{backend:?}"
        );
        catalog.confirm_held_archives(None).await.unwrap();
        assert_eq!(
            catalog.approve_archive("d").await.unwrap(),
            Granted,
            "{backend:?}"
        );
        assert!(
            catalog.held_archives(10).await.unwrap().is_empty(),
            "{backend:?}"
        );
    }
}
