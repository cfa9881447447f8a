//! End to end: the binaries as a user runs them (`stripe-sandbox`, `worker`, `starter`, and the
//! `temporal` CLI), configured through the environment as the README says.
//! The binaries come from `cargo build --workspace --bins` (`scripts/test` builds them first).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use harness::{Running, temporal_address, temporal_cli, unique};

fn bin(name: &str) -> PathBuf {
    harness::binary(name)
}

struct Setup {
    envs: Vec<(&'static str, String)>,
}

impl Setup {
    fn command(&self, program: PathBuf) -> Command {
        let mut c = Command::new(program);
        c.envs(self.envs.iter().map(|(k, v)| (*k, v.as_str())));
        c
    }

    fn run(&self, program: PathBuf, args: &[&str]) -> Output {
        let out = self.command(program.clone()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?} failed:\n{}\n{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `temporal …`, which must succeed.
    fn temporal_ok(&self, args: &[&str]) -> Output {
        let out = self.temporal(args);
        assert!(
            out.status.success(),
            "temporal {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn temporal(&self, args: &[&str]) -> Output {
        let mut full = args.to_vec();
        full.extend([
            "--address",
            self.envs
                .iter()
                .find(|(k, _)| *k == "TEMPORAL_ADDRESS")
                .unwrap()
                .1
                .as_str(),
        ]);
        Command::new(temporal_cli()).args(&full).output().unwrap()
    }
}

#[test]
fn the_binaries_sync_a_catalog_end_to_end() {
    let dir = std::env::temp_dir().join(unique("catalog-sync-e2e"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut sandbox = Command::new(bin("stripe-sandbox"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--rate-limit",
            "0",
            "--endpoint-rate-limit",
            "0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sandbox.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let _sandbox = Running(sandbox);

    let task_queue = unique("e2e");
    let metrics_addr = format!("127.0.0.1:{}", harness::free_port());
    let setup = Setup {
        envs: vec![
            ("TEMPORAL_ADDRESS", temporal_address()),
            (
                "CATALOG_DATABASE_URL",
                format!("sqlite:{}", dir.join("catalog.db").display()),
            ),
            ("CATALOG_SYNC_TASK_QUEUE", task_queue.clone()),
            ("STRIPE_API_BASE", base.clone()),
            ("STRIPE_API_KEY", "sk_test_e2e".to_string()),
        ],
    };
    // Nothing migrates implicitly: before `starter migrate`, the worker and starter refuse the
    // new database with what to run; `migrate` says what it did, and a second one nothing.
    for (program, args) in [
        (bin("starter"), &["catalog", "seed"][..]),
        (bin("worker"), &[][..]),
    ] {
        let out = setup.command(program).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains("run `starter migrate`"),
            "{args:?}: {stderr}"
        );
    }
    let out = setup.run(bin("starter"), &["migrate"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("applied own 1: catalog-sync's own tables"),
        "{stdout}"
    );
    assert!(stdout.contains("applied builtin 1:"), "{stdout}");
    assert!(stdout.contains("catalog identity: cat_"), "{stdout}");
    let out = setup.run(bin("starter"), &["migrate"]);
    let again = String::from_utf8_lossy(&out.stdout);
    assert!(again.contains("nothing to do"), "{again}");

    // Sample ids are fixed (sku-000001…), and the Temporal server is shared: use a seed-specific
    // catalog size that no other test uses and check outcomes by count.
    let out = setup.run(
        bin("starter"),
        &["catalog", "seed", "--products", "4", "--seed", "77"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("seeded 4 products"));

    let worker = setup
        .command(bin("worker"))
        .env("CATALOG_SYNC_METRICS_ADDR", &metrics_addr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let worker = Running(worker);

    let out = setup.run(bin("starter"), &["sync", "--all", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("done: 4 synced"), "{stdout}");
    assert!(!stdout.contains("failed"), "{stdout}");

    // The worker's Prometheus endpoint: the SDK's metrics and catalog-sync's Stripe metrics.
    let metrics = reqwest::blocking_text(&format!("http://{metrics_addr}/metrics"));
    let created = metrics
        .lines()
        .find(|l| {
            l.starts_with("catalog_sync_stripe_requests_total{")
                && l.contains(r#"endpoint="POST /v1/products""#)
                && l.contains(r#"status="200""#)
        })
        .unwrap_or_else(|| panic!("no product creations counted:\n{metrics}"));
    assert!(created.ends_with(" 4"), "4 products created: {created}");
    assert!(
        metrics.contains("catalog_sync_stripe_request_latency_bucket{"),
        "{metrics}"
    );
    assert!(metrics.contains("temporal_workflow_completed"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"catalog_sync_sync_outcomes_total{outcome="synced"} 4"#),
        "{metrics}"
    );
    // Counters with known labels exist at 0 before their first event, so that `increase()` sees
    // the first failure or drift; the build is on record.
    for zero in [
        r#"catalog_sync_sync_outcomes_total{outcome="failed"} 0"#,
        r#"catalog_sync_drift_total{kind="missing"} 0"#,
    ] {
        assert!(metrics.lines().any(|l| l == zero), "{zero}:\n{metrics}");
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("catalog_sync_build_info{")
                && l.contains(r#"binary="worker""#)
                && l.ends_with(" 1")),
        "{metrics}"
    );

    // Edit a price through the CLI: the next sync moves Stripe to it.
    let shown = setup.run(bin("starter"), &["catalog", "show", "sku-000002"]);
    let original: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let original_amount = original["prices"][0]["unit_amount"].as_i64().unwrap();
    setup.run(
        bin("starter"),
        &["catalog", "edit", "sku-000002", "--amount", "4242"],
    );
    let out = setup.run(bin("starter"), &["sync", "sku-000002", "--wait"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("synced    sku-000002"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let product: serde_json::Value = reqwest::blocking_get(&format!(
        "{base}/v1/products/sku-000002?expand[]=default_price"
    ));
    assert_eq!(product["default_price"]["unit_amount"], 4242);

    // The sale ends (A→B→A): the amount goes back and Stripe follows, no failed sync.
    let amount = original_amount.to_string();
    setup.run(
        bin("starter"),
        &["catalog", "edit", "sku-000002", "--amount", &amount],
    );
    let out = setup.run(bin("starter"), &["sync", "sku-000002", "--wait"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("synced    sku-000002"), "{text}");
    let product: serde_json::Value = reqwest::blocking_get(&format!(
        "{base}/v1/products/sku-000002?expand[]=default_price"
    ));
    assert_eq!(product["default_price"]["unit_amount"], original_amount);
    assert_eq!(product["default_price"]["active"], true);
    // An edit that changes nothing keeps the version; out-of-range settings are refused before
    // anything is written or started, each naming the setting.
    let out = setup.run(
        bin("starter"),
        &["catalog", "edit", "sku-000002", "--amount", &amount],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the edit changes nothing"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for (args, says) in [
        (
            vec![
                "catalog",
                "edit",
                "sku-000002",
                "--amount",
                "99999999999999",
            ],
            "--amount must be between 0 and 99999999",
        ),
        (
            vec!["verify", "--requests-per-second", "0"],
            "--requests-per-second must be at least 0.1",
        ),
        (
            vec!["reconcile", "--pages-per-run", "100000"],
            "`pages_per_run` must be at most 200",
        ),
    ] {
        let out = setup.command(bin("starter")).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }

    // `starter verify` compares through its own reads: clean now; a Dashboard edit is reported
    // (exit 1) until the next sync puts it right.
    let out = setup.run(bin("starter"), &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("4 products compared, 0 differences"),
        "{text}"
    );
    let edited = Command::new("curl")
        .args([
            "-sf",
            "-u",
            "sk_test_e2e:",
            "-d",
            "name=Edited+in+the+Dashboard",
            "-d",
            "metadata[catalog_sync_id]=sku-000004",
        ])
        .arg(format!("{base}/_sandbox/dashboard/products/sku-000003"))
        .output()
        .unwrap();
    assert!(edited.status.success());
    let out = setup
        .command(bin("starter"))
        .arg("verify")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "differences are drift: {text}");
    assert!(text.contains("differs  sku-000003: name:"), "{text}");
    assert!(
        text.contains("differs  sku-000003: catalog_sync_id: Stripe \"sku-000004\""),
        "{text}"
    );
    assert!(text.contains("2 differences"), "{text}");
    setup.run(bin("starter"), &["sync", "sku-000003", "--wait"]);
    setup.run(bin("starter"), &["verify"]);
    // The sync lag: the 4 creations and the 2 edits of the sale, each from its catalog row's
    // change to its Stripe write; not the repair of the Dashboard edit (the catalog did not
    // change). Its buckets reach the SLO's 5 minutes.
    let metrics = reqwest::blocking_text(&format!("http://{metrics_addr}/metrics"));
    assert!(
        metrics
            .lines()
            .any(|l| l == "catalog_sync_sync_lag_count 6"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(r#"catalog_sync_sync_lag_bucket{le="300000"} "#)),
        "{metrics}"
    );

    // The temporal CLI starts the same workflow with JSON input.
    let wid = unique("cli-sync");
    let out = setup.temporal(&[
        "workflow",
        "execute",
        "--type",
        "ProductSync",
        "--task-queue",
        &task_queue,
        "--workflow-id",
        &wid,
        "--input",
        r#"{"catalog_id": "sku-000003"}"#,
        "--output",
        "json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(r#""outcome": "unchanged""#) || text.contains(r#""outcome":"unchanged""#),
        "{text}"
    );

    // The README's signal-with-start, under the catalog's own workflow id, then its result.
    let out = setup.run(bin("starter"), &["catalog", "identity"]);
    let identity = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(identity.starts_with("cat_"), "{identity:?}");
    let workflow_id = format!("{identity}:product-sync:sku-000004");
    setup.temporal_ok(&[
        "workflow",
        "signal-with-start",
        "--type",
        "ProductSync",
        "--task-queue",
        &task_queue,
        "--workflow-id",
        &workflow_id,
        "--input",
        r#"{"catalog_id": "sku-000004"}"#,
        "--signal-name",
        "product_changed",
        "--signal-input",
        r#"{"source": "cli"}"#,
    ]);
    let out = setup.temporal(&[
        "workflow",
        "result",
        "--workflow-id",
        &workflow_id,
        "--output",
        "json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("unchanged"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Input without a catalog id ends the workflow with a clear failure, not a stuck task.
    for (n, input) in [r#"{}"#, "42", r#"{"catalog_id": 7}"#].iter().enumerate() {
        let wid = unique(&format!("cli-bad-{n}"));
        let out = setup.temporal(&[
            "workflow",
            "execute",
            "--type",
            "ProductSync",
            "--task-queue",
            &task_queue,
            "--workflow-id",
            &wid,
            "--input",
            input,
            "--output",
            "json",
        ]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "input {input} must fail the workflow: {all}"
        );
        assert!(
            all.contains("InvalidWorkflowInput") || all.contains("catalog_id"),
            "input {input}: {all}"
        );
    }

    reconcile_from_the_clis(&setup, &task_queue);
    status_and_setup_from_the_cli(&setup);

    // SIGTERM drains the worker and it exits cleanly.
    let mut worker = worker;
    Command::new("kill")
        .arg("-TERM")
        .arg(worker.0.id().to_string())
        .status()
        .unwrap();
    let status =
        wait_timeout(&mut worker.0, Duration::from_secs(30)).expect("worker exits after SIGTERM");
    assert!(status.success(), "worker exit status {status}");
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `starter reconcile`, `temporal workflow start --type ReconcileCatalog`, and the schedule
/// commands of both CLIs, exactly as the README shows them.
fn reconcile_from_the_clis(setup: &Setup, task_queue: &str) {
    let out = setup.run(bin("starter"), &["reconcile", "--dry-run"]);
    let text = stdout(&out);
    assert!(text.contains("scanned              4"), "{text}");
    assert!(text.contains("drift                0"), "{text}");

    let wid = unique("cli-reconcile");
    setup.temporal_ok(&[
        "workflow",
        "start",
        "--type",
        "ReconcileCatalog",
        "--task-queue",
        task_queue,
        "--workflow-id",
        &wid,
        "--input",
        r#"{"mode": "dry_run", "from": "sku-000002"}"#,
    ]);
    let out = setup.temporal(&[
        "workflow",
        "result",
        "--workflow-id",
        &wid,
        "--output",
        "json",
    ]);
    let text = stdout(&out).replace(' ', "");
    assert!(text.contains(r#""scanned":3"#), "{text}");
    assert!(text.contains(r#""mode":"dry_run""#), "{text}");
    let out = setup.temporal(&[
        "workflow",
        "query",
        "--workflow-id",
        &wid,
        "--name",
        "progress",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("done"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The README's window backfill: the products changed since a time.
    let backfill = unique("reconcile-backfill");
    setup.temporal_ok(&[
        "workflow",
        "start",
        "--type",
        "ReconcileCatalog",
        "--task-queue",
        task_queue,
        "--workflow-id",
        &backfill,
        "--input",
        r#"{"since": "2026-11-30T00:00:00Z"}"#,
    ]);
    let out = setup.temporal(&[
        "workflow",
        "result",
        "--workflow-id",
        &backfill,
        "--output",
        "json",
    ]);
    // Every product of the test was changed after that time: all are in scope.
    let text = stdout(&out).replace(' ', "");
    assert!(text.contains("4of4catalogproductsinscope"), "{text}");

    // Started without an input: it fails at once, and the input it suggests is one that works.
    for (workflow, works) in [
        ("ReconcileCatalog", "--input '{}'"),
        ("ProductSync", r#"--input '{"catalog_id": "sku-000001"}'"#),
    ] {
        let out = setup.temporal(&[
            "workflow",
            "execute",
            "--type",
            workflow,
            "--task-queue",
            task_queue,
            "--workflow-id",
            &unique("cli-no-input"),
        ]);
        let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{all}");
        assert!(all.contains(works), "{workflow}: {all}");
    }

    // A mistyped input fails the workflow with a clear reason instead of a stuck task.
    let out = setup.temporal(&[
        "workflow",
        "execute",
        "--type",
        "ReconcileCatalog",
        "--task-queue",
        task_queue,
        "--workflow-id",
        &unique("cli-reconcile-bad"),
        "--input",
        r#"{"mode": "yolo"}"#,
    ]);
    let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("InvalidWorkflowInput") || all.contains("unknown variant"),
        "{all}"
    );

    // Schedules: applying twice leaves one schedule, updated in place.
    let schedule = unique("reconcile-schedule");
    for outcome in ["created", "updated"] {
        let out = setup.run(
            bin("starter"),
            &[
                "schedule",
                "apply",
                "--id",
                &schedule,
                "--every",
                "1h",
                "--dry-run",
            ],
        );
        assert!(stdout(&out).contains(outcome), "{}", stdout(&out));
    }
    // One schedule, whatever the applies (the list is visibility: it may lag a moment behind).
    let start = std::time::Instant::now();
    loop {
        let out = stdout(&setup.temporal(&["schedule", "list", "--output", "json"]));
        let listed = out.matches(&format!("\"{schedule}\"")).count();
        assert!(listed <= 1, "{out}");
        if listed == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not listed: {out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = setup.run(bin("starter"), &["schedule", "describe", "--id", &schedule]);
    let text = stdout(&out);
    assert!(text.contains("every      1h"), "{text}");
    assert!(text.contains("overlap    skip"), "{text}");
    assert!(text.contains("catch-up   1h"), "{text}");
    let out = setup.run(
        bin("starter"),
        &["schedule", "describe", "--id", &schedule, "--json"],
    );
    let described: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&described["every"][0], &described["overlap"]),
        (&serde_json::json!("1h"), &serde_json::json!("skip")),
        "{described:#}"
    );

    // `temporal schedule trigger` starts a run now.
    setup.temporal_ok(&["schedule", "trigger", "--schedule-id", &schedule]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let text = stdout(&setup.run(bin("starter"), &["schedule", "describe", "--id", &schedule]));
        let started: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("runs       "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if started >= 1 {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "schedule runs did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let run_id = runs
        .lines()
        .find_map(|l| l.strip_prefix("recent     "))
        .and_then(|l| l.split(' ').nth(1))
        .expect("a recent run")
        .to_string();
    let out = setup.temporal(&[
        "workflow",
        "result",
        "--workflow-id",
        &run_id,
        "--output",
        "json",
    ]);
    assert!(stdout(&out).contains("dry_run"), "{}", stdout(&out));

    setup.run(
        bin("starter"),
        &[
            "schedule",
            "pause",
            "--id",
            &schedule,
            "--note",
            "maintenance",
        ],
    );
    let text = stdout(&setup.run(bin("starter"), &["schedule", "describe", "--id", &schedule]));
    assert!(text.contains("paused     true (maintenance)"), "{text}");
    setup.run(bin("starter"), &["schedule", "unpause", "--id", &schedule]);
    // Applying again keeps the schedule's state and changes its spec.
    setup.run(
        bin("starter"),
        &[
            "schedule",
            "apply",
            "--id",
            &schedule,
            "--cron",
            "0 3 * * *",
            "--overlap",
            "buffer-one",
        ],
    );
    let text = stdout(&setup.run(bin("starter"), &["schedule", "describe", "--id", &schedule]));
    assert!(text.contains("paused     false"), "{text}");
    assert!(text.contains("overlap    buffer-one"), "{text}");
    assert!(text.contains("calendar   0 0 3 * * *"), "{text}");
    setup.run(bin("starter"), &["schedule", "delete", "--id", &schedule]);
    // Gone at once for the schedule's own reads; the list (visibility) follows within moments.
    let out = setup.temporal(&["schedule", "describe", "--schedule-id", &schedule]);
    assert!(
        !out.status.success(),
        "the deleted schedule still describes"
    );
    let listed = || {
        let out = setup.temporal(&["schedule", "list", "--output", "json"]);
        stdout(&out).contains(&format!("\"{schedule}\""))
    };
    let start = std::time::Instant::now();
    while listed() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the deleted schedule is still listed after 30 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `starter status`: unhealthy while catalog edits wait in the outbox with no relay to take them
/// (none runs yet: the catalog edits above wait there), healthy once a relay has drained it; and
/// `starter setup` in a new namespace.
fn status_and_setup_from_the_cli(setup: &Setup) {
    let out = setup
        .command(bin("starter"))
        .args(["status", "--max-relay-lag", "1h"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "unhealthy exits non-zero");
    let text = stdout(&out);
    assert!(text.contains("UNHEALTHY"), "{text}");
    assert!(text.contains("0 relays alive"), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no relay has been seen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let _relay = Running(
        setup
            .command(bin("relay"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = std::time::Instant::now();
    let status = loop {
        let out = setup
            .command(bin("starter"))
            .args(["status", "--json", "--max-relay-lag", "1h"])
            .output()
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if status["healthy"] == true && status["outbox"]["pending"] == 0 {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "a relay drained the outbox: {status:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        status["task_queues"]["workflow"]["pollers"]
            .as_u64()
            .unwrap()
            >= 1,
        "{status:#}"
    );
    assert_eq!(status["outbox"]["pending"], 0, "{status:#}");
    assert_eq!(status["outbox"]["relays"], 1, "{status:#}");
    assert_eq!(status["failed_count"], 0);
    assert!(
        status["last_reconciliation"]["workflow_id"].is_string(),
        "{status:#}"
    );

    let namespace = unique("cs-setup");
    setup.temporal_ok(&["operator", "namespace", "create", "--namespace", &namespace]);
    let in_namespace = |args: &[&str]| {
        let out = setup
            .command(bin("starter"))
            .env("TEMPORAL_NAMESPACE", &namespace)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    // A new namespace takes a moment to be usable.
    let mut first = String::new();
    for _ in 0..50 {
        let out = setup
            .command(bin("starter"))
            .env("TEMPORAL_NAMESPACE", &namespace)
            .arg("setup")
            .output()
            .unwrap();
        if out.status.success() {
            first = stdout(&out);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(first.contains("registered search attributes"), "{first}");
    assert!(in_namespace(&["setup"]).contains("already registered"));
    let listed = setup.temporal_ok(&[
        "operator",
        "search-attribute",
        "list",
        "--namespace",
        &namespace,
    ]);
    for name in workflows::search::NAMES {
        assert!(stdout(&listed).contains(name), "{name} missing");
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

mod reqwest {
    /// A plain blocking GET of a text body, on a throwaway runtime.
    pub(crate) fn blocking_text(url: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { ::reqwest::get(url).await.unwrap().text().await.unwrap() })
    }

    /// A blocking GET with the test key, on a throwaway runtime.
    pub(crate) fn blocking_get(url: &str) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            ::reqwest::Client::new()
                .get(url)
                .bearer_auth("sk_test_e2e")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }
}
