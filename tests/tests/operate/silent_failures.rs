//! No silent failure, through the binaries as an operator meets it: a task queue nobody polls is
//! refused before anything starts; a product's run stranded on such a queue is named by `sync`,
//! `status` and the relay, which keeps the change instead of dropping it; exit codes follow the
//! products' outcomes.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harness::{Backend, TestEnv, eventually, unique};
use relay::{RelayOptions, SignalError};
use serde_json::Value;
use temporalio_client::{WorkflowStartOptions, WorkflowTerminateOptions};
use workflows::{ProductSync, ProductSyncInput, SyncOutcome};

/// `starter {args}` on the test's catalog and sandbox, on `task_queue`.
fn starter(env: &TestEnv, task_queue: &str, args: &[&str]) -> Output {
    Command::new(harness::binary("starter"))
        .args(args)
        .env("TEMPORAL_ADDRESS", harness::temporal_address())
        .env("CATALOG_DATABASE_URL", &env.catalog_url)
        .env("CATALOG_SYNC_TASK_QUEUE", task_queue)
        .env("STRIPE_API_BASE", &env.sandbox.base)
        .env("STRIPE_API_KEY", &env.sandbox.key)
        .output()
        .expect("starter runs")
}

/// `command` split as a POSIX shell would, for the quoting `status` uses (single and double
/// quotes, no escapes).
fn shell_words(command: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut started) = (Vec::new(), String::new(), None, false);
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, started) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (_, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// `starter status --json` (relay lag aside: the tests' relays come and go) with `extra`: the exit
/// code and the report.
fn status(env: &TestEnv, task_queue: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["status", "--json", "--max-relay-lag", "1000d"];
    args.extend(extra);
    let out = starter(env, task_queue, &args);
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), report)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A mistyped task queue: refused within seconds with nothing started. A run stranded there by
/// hand (as `temporal workflow start` on the wrong queue would) holds the product's changes:
/// `sync` says so and fails, `status` lists it with the command that ends it, and the relay keeps
/// the change in the outbox until the run is ended, then delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_nobody_polls_is_refused_and_a_stranded_run_never_swallows_a_change() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let queue = env.worker.task_queue.clone();
    let product = env.sample(1);
    let id = product.id.clone();
    let workflow_id = env.sync_id(&id);
    env.catalog.save_product(&product).await.unwrap();
    assert_eq!(env.sync(&id).await.outcome, SyncOutcome::Synced);

    // 1. The wrong queue: refused, nothing started or signalled.
    let typo = unique("catalog_sync_typo");
    let asked = Instant::now();
    let out = starter(&env, &typo, &["sync", &id, "--wait"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("no worker polls task queue {typo}"))
            && said.contains("CATALOG_SYNC_TASK_QUEUE")
            && said.contains("Nothing was started"),
        "{said}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "took {:?}",
        asked.elapsed()
    );
    for command in [
        &["results", id.as_str()][..],
        &["reconcile", "--dry-run"][..],
    ] {
        let out = starter(&env, &typo, command);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {}", text(&out));
        assert!(
            text(&out).contains("no worker polls task queue"),
            "{command:?}"
        );
    }
    let latest = env
        .client
        .get_workflow_handle::<ProductSync>(workflow_id.as_str())
        .describe(Default::default())
        .await
        .unwrap();
    assert_eq!(
        latest
            .raw_description
            .workflow_execution_info
            .unwrap()
            .task_queue,
        queue,
        "the product's latest run is still the worker's"
    );

    // 2. A run stranded on the dead queue by hand.
    env.client
        .start_workflow(
            ProductSync::run,
            ProductSyncInput {
                catalog_id: id.clone(),
                ..Default::default()
            },
            WorkflowStartOptions::new(typo.as_str(), workflow_id.as_str()).build(),
        )
        .await
        .unwrap();
    let out = starter(&env, &queue, &["sync", &id, "--wait"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains(&format!(
            "stranded  {id}: its sync {workflow_id} runs on task queue {typo}"
        )) && said.contains("temporal workflow terminate"),
        "{said}"
    );

    // A backfill (over 100 products) finds it in one visibility query instead of describing
    // each product's sync; the others are signalled (products the catalog does not hold: their
    // syncs end at once, writing nothing).
    let mut many = vec!["sync".to_string(), id.clone()];
    many.extend((0..100).map(|n| env.id(1000 + n)));
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let out = starter(&env, &queue, &many);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains(&format!(
            "stranded  {id}: its sync {workflow_id} runs on task queue {typo}"
        )) && said.contains("signalled 100 product syncs"),
        "{said}"
    );

    let (code, report) = status(&env, &queue, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        report["stranded_runs"][0]["task_queue"],
        typo.as_str(),
        "{report:#}"
    );
    assert_eq!(
        report["stranded_runs"][0]["examples"][0],
        workflow_id.as_str()
    );
    // The command that ends them, as status prints it.
    let terminate = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find_map(|p| {
            p.split('`')
                .find(|part| part.starts_with("temporal workflow terminate"))
        })
        .unwrap_or_else(|| panic!("{report:#}"))
        .to_string();

    // 3. The relay: Temporal accepts the signal, but the change is not taken as delivered.
    match env.signaller().product_changed(&id, None, "test").await {
        Err(SignalError::Stranded { run_queue, .. }) => assert_eq!(run_queue, typo),
        other => panic!("{other:?}"),
    }
    let renamed = workflows::model::CatalogProduct {
        name: "Renamed while stranded".into(),
        ..product.clone()
    };
    env.catalog.save_product(&renamed).await.unwrap();
    let relay = env.relay(RelayOptions {
        lease: Duration::from_secs(1),
        ..RelayOptions::default()
    });
    let report = relay.relay_batch().await.unwrap();
    assert!(
        report.stranded > 0 && report.relayed.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        env.catalog.outbox_stats().await.unwrap().pending as usize,
        report.stranded,
        "the changes are kept"
    );

    // Ended with the command `status` printed (`--yes`: no terminal to confirm at); the kept
    // change then reaches a run on the right queue.
    let words = shell_words(&terminate);
    assert_eq!(
        &words[..3],
        ["temporal", "workflow", "terminate"],
        "{terminate}"
    );
    let ended = Command::new(harness::temporal_cli())
        .args(&words[1..])
        .args(["--yes", "--address", &harness::temporal_address()])
        .output()
        .unwrap();
    assert!(ended.status.success(), "{terminate}: {}", text(&ended));
    eventually(
        Duration::from_secs(30),
        "the stranded run ended",
        || async {
            let run = env
                .client
                .get_workflow_handle::<ProductSync>(workflow_id.as_str())
                .describe(Default::default())
                .await
                .unwrap();
            (run.status() != temporalio_client::WorkflowExecutionStatus::Running).then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the kept change relayed",
        || async {
            let report = relay.relay_batch().await.unwrap();
            (!report.relayed.is_empty()).then_some(())
        },
    )
    .await;
    let result = env.result(&id).await;
    assert_eq!(result.outcome, SyncOutcome::Synced, "{result:?}");
    let in_stripe = env.sandbox.product(&id).await.unwrap();
    assert_eq!(in_stripe["name"], "Renamed while stranded");
    let (_, report) = status(&env, &queue, &[]);
    assert_eq!(report["stranded_runs"], serde_json::json!([]), "{report:#}");
}

/// `sync --wait` and `results` exit 4 when a product ends invalid or skipped, with the reason
/// on the product's own line (the outcome and the id apart), and 0 when all synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_products_outcomes() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let queue = env.worker.task_queue.clone();
    let good = env.sample(1);
    let invalid = workflows::model::CatalogProduct {
        name: String::new(),
        ..env.sample(2)
    };
    let unmanaged = env.sample(3);
    env.catalog
        .save_products(&[good.clone(), invalid.clone(), unmanaged.clone()])
        .await
        .unwrap();
    // A product made by hand in the Dashboard under the catalog id: not catalog-sync's.
    let (answer, made) = env
        .sandbox
        .post(
            "/v1/products",
            &[("id", unmanaged.id.as_str()), ("name", "Made by hand")],
        )
        .await;
    assert_eq!(answer, 200, "{made}");

    let out = starter(&env, &queue, &["sync", "--wait", &good.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let all = [good.id.as_str(), invalid.id.as_str(), unmanaged.id.as_str()];
    let mut args = vec!["sync", "--wait"];
    args.extend(all);
    let out = starter(&env, &queue, &args);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains(&format!("invalid   {}: name", invalid.id)),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "skipped_unmanaged {}: a Stripe product",
            unmanaged.id
        )),
        "{said}"
    );
    assert!(
        said.contains("not every product synced: exit code 4"),
        "{said}"
    );

    let mut args = vec!["results"];
    args.extend(all);
    let out = starter(&env, &queue, &args);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // The same as JSON lines, one per product, for scripts.
    args.push("--json");
    let out = starter(&env, &queue, &args);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let outcomes: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["product_id"].as_str().unwrap(),
                l["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (good.id.as_str(), "unchanged"),
            (invalid.id.as_str(), "invalid"),
            (unmanaged.id.as_str(), "skipped_unmanaged"),
        ]
    );
    assert!(
        lines[1]["reason"].as_str().unwrap().starts_with("name"),
        "{lines:?}"
    );
    let out = starter(&env, &queue, &["outbox", "--json"]);
    let outbox: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outbox["refused"], 0, "{outbox}");

    let out = starter(&env, &queue, &["results", &good.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // `status` counts both as problems, each with its reason.
    let (code, report) = status(&env, &queue, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        (&report["invalid_count"], &report["skipped_count"]),
        (&serde_json::json!(1), &serde_json::json!(1)),
        "{report:#}"
    );
    assert_eq!(report["skipped"][0]["product_id"], unmanaged.id.as_str());

    // A long operation on a pipe (a CI log) prints progress lines instead of nothing.
    let out = starter(&env, &queue, &["verify", "--requests-per-second", "0.5"]);
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress
            .lines()
            .any(|l| l.starts_with("verified ") && l.contains("/3 (")),
        "{progress}"
    );

    // A product Stripe refuses for good (a 400): failed, with Stripe's reason, exit 4.
    let refused = env.sample(4);
    env.catalog.save_product(&refused).await.unwrap();
    env.sandbox
        .faults(serde_json::json!({
            "error_rate": 1.0, "error_statuses": [400], "endpoints": ["POST /v1/products"],
        }))
        .await;
    let out = starter(&env, &queue, &["sync", "--wait", &refused.id]);
    env.sandbox.clear_faults().await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains(&format!("failed    {}: ", refused.id)),
        "{said}"
    );
    assert!(
        report["problems"].to_string().contains("left alone"),
        "{report:#}"
    );
}

/// `status` while Stripe answers nothing but 503: unhealthy, naming the retrying sync, its
/// attempt and Stripe's answer; healthy again once Stripe is back and the sync finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_unhealthy_while_syncs_retry_and_healthy_after() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let queue = env.worker.task_queue.clone();
    let product = env.sample(1);
    env.catalog.save_product(&product).await.unwrap();
    env.sandbox
        .faults(serde_json::json!({"error_rate": 1.0, "error_statuses": [503]}))
        .await;
    // The catalog change reaches the sync through a relay, as in production.
    let _relay = env.spawn_relay(RelayOptions::default());
    let status = || status(&env, &queue, &["--max-attempts", "3"]);
    let (code, report) = eventually(
        Duration::from_secs(90),
        "status sees the retrying sync",
        || async {
            let (code, report) = tokio::task::block_in_place(status);
            (report["retrying_count"] == 1).then_some((code, report))
        },
    )
    .await;
    assert_eq!(code, Some(1), "{report:#}");
    let retrying = &report["retrying"][0];
    assert_eq!(retrying["workflow_id"], env.sync_id(&product.id).as_str());
    assert!(retrying["attempt"].as_i64().unwrap() >= 3, "{report:#}");
    let problems = report["problems"].to_string();
    assert!(problems.contains("retrying"), "{report:#}");
    assert!(
        retrying["last_failure"]
            .to_string()
            .to_lowercase()
            .contains("stripe"),
        "the failure names Stripe: {report:#}"
    );

    // An operator stops the retrying run: the product's latest sync ended without an outcome,
    // and status says so until a reconciliation has synced it again.
    let workflow_id = env.sync_id(&product.id);
    env.client
        .get_workflow_handle::<ProductSync>(workflow_id.as_str())
        .terminate(WorkflowTerminateOptions::default())
        .await
        .unwrap();
    env.sandbox.clear_faults().await;
    let (code, report) = eventually(
        Duration::from_secs(30),
        "status sees the terminated sync",
        || async {
            let (code, report) = tokio::task::block_in_place(status);
            (report["ended_without_outcome_count"] == 1).then_some((code, report))
        },
    )
    .await;
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        report["ended_without_outcome"][0]["workflow_id"],
        workflow_id.as_str()
    );
    assert_eq!(report["retrying_count"], 0, "{report:#}");

    let out = starter(
        &env,
        &queue,
        &["reconcile", "--json", "--id", &unique("reconcile")],
    );
    let result: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(out.status.code(), Some(0), "{result:#}");
    assert_eq!(result["totals"]["repaired"], 1, "{result:#}");
    assert_eq!(env.result(&product.id).await.outcome, SyncOutcome::Synced);
    let (code, report) = tokio::task::block_in_place(status);
    assert_eq!(report["ended_without_outcome_count"], 0, "{report:#}");
    assert_eq!(code, Some(0), "{report:#}");
}

/// Rows too large for Stripe or for Temporal end `invalid` naming the field, and sync once fixed:
/// a 10 MB description never enters a workflow's history (Temporal refuses payloads over 2 MB),
/// a 50,000-character one is over Stripe's 40,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_rows_are_invalid_naming_the_field_and_sync_once_fixed() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let product = env.sample(1);
    for (description, said) in [
        (
            "x".repeat(10 << 20),
            "over the 262144 a sync carries through Temporal",
        ),
        (
            "y".repeat(50_000),
            "must be at most 40000 characters, has 50000",
        ),
    ] {
        let oversized = workflows::model::CatalogProduct {
            description: Some(description),
            ..product.clone()
        };
        env.catalog.save_product(&oversized).await.unwrap();
        let result = env.sync(&product.id).await;
        assert_eq!(result.outcome, SyncOutcome::Invalid, "{result:?}");
        let issues: Vec<String> = result.issues.iter().map(ToString::to_string).collect();
        assert!(
            issues
                .iter()
                .any(|i| i.contains("description") && i.contains(said)),
            "{issues:?}"
        );
        assert!(
            env.sandbox.product(&product.id).await.is_none(),
            "nothing sent"
        );
    }
    // Fixed: the same product syncs.
    env.catalog.save_product(&product).await.unwrap();
    assert_eq!(env.sync(&product.id).await.outcome, SyncOutcome::Synced);
    env.assert_no_failed_workflow_tasks(&env.sync_id(&product.id))
        .await;
}

/// A bulk load held to the Stripe budget leaves an old backlog that drains: `status` judges it
/// by its time to drain and does not page (it used to, on the oldest task's age alone); waiting
/// for it on a pipe prints progress lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_that_drains_at_the_budget_is_healthy() {
    let env =
        TestEnv::start_configured(Backend::Sqlite, |s| s.stripe.requests_per_second = 4).await;
    let queue = env.worker.task_queue.clone();
    let products: Vec<_> = (1..=24).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    let _relay = env.spawn_relay(RelayOptions::default());
    let status = || status(&env, &queue, &["--max-backlog-age", "1s"]).1;
    let report = eventually(
        Duration::from_secs(60),
        "an aged backlog on the Stripe queue",
        || async {
            let report = tokio::task::block_in_place(status);
            let stripe = &report["task_queues"]["stripe"];
            (stripe["backlog_age_seconds"].as_f64().unwrap_or(0.0) > 1.0
                && stripe["drain_seconds"].is_number())
            .then_some(report)
        },
    )
    .await;
    let problems = report["problems"].to_string();
    assert!(!problems.contains("backlog"), "{report:#}");
    assert!(
        report["task_queues"]["stripe"]["drain_seconds"]
            .as_f64()
            .unwrap()
            < 30.0 * 60.0,
        "{report:#}"
    );

    // Waiting for the load on a pipe (a CI log): progress lines, never going back.
    let mut args = vec!["results"];
    args.extend(products.iter().map(|p| p.id.as_str()));
    let out = starter(&env, &queue, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let progress: Vec<u64> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("finished "))
        .filter_map(|l| l.split('/').next()?.parse().ok())
        .collect();
    assert!(!progress.is_empty(), "{}", text(&out));
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
}
