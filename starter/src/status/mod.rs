//! `starter setup` (register catalog-sync's search attributes, idempotent) and `starter status`
//! (is catalog-sync keeping up: backlog, running syncs, failed and invalid products, the last
//! reconciliation, relay lag), with an exit code for cron and monitoring.

use std::collections::HashMap;
use std::time::Duration;

mod report;
mod runs;

use report::print_report;
use runs::{
    ended_without_outcome, foreign_syncs, last_reconciliation, retrying_syncs, running_syncs,
};

use crate::exit::Exit;
use anyhow::Context;
use catalog::Catalog;
use clap::Args;
use serde_json::json;
use temporalio_client::tonic::{Code, Request};
use temporalio_client::{Client, NamespacedClient, WorkflowCountOptions};
use temporalio_common::protos::temporal::api::enums::v1::{
    IndexedValueType, RateLimitSource, TaskQueueType,
};
use temporalio_common::protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest,
};
use workflows::search::NAMES;

/// Registers `CatalogProductId`, `SyncOutcome` and `DriftKind` (Keyword) in the client's namespace;
/// those already there are left as they are.
pub(crate) async fn setup(client: &Client) -> anyhow::Result<()> {
    let namespace = client.namespace();
    let mut operator = client.connection().operator_service();
    let existing = operator
        .list_search_attributes(Request::new(ListSearchAttributesRequest {
            namespace: namespace.clone(),
        }))
        .await
        .context("listing search attributes")?
        .into_inner()
        .custom_attributes;
    let keyword = IndexedValueType::Keyword as i32;
    let mut missing = HashMap::new();
    for name in NAMES {
        match existing.get(name) {
            Some(t) if *t == keyword => {}
            Some(t) => anyhow::bail!(
                "search attribute {name} exists with type {:?}; catalog-sync needs Keyword",
                IndexedValueType::try_from(*t).unwrap_or(IndexedValueType::Unspecified)
            ),
            None => {
                missing.insert(name.to_string(), keyword);
            }
        }
    }
    if missing.is_empty() {
        println!(
            "search attributes already registered in {namespace}: {}",
            NAMES.join(", ")
        );
        return Ok(());
    }
    let mut added: Vec<String> = missing.keys().cloned().collect();
    added.sort();
    match operator
        .add_search_attributes(Request::new(AddSearchAttributesRequest {
            search_attributes: missing,
            namespace: namespace.clone(),
        }))
        .await
    {
        Ok(_) => {}
        // Another `setup` got there first.
        Err(status) if status.code() == Code::AlreadyExists => {}
        Err(status) => return Err(status).context("registering search attributes"),
    }
    println!(
        "registered search attributes in {namespace}: {} (Keyword)",
        added.join(", ")
    );
    Ok(())
}

/// `starter status`.
#[derive(Args)]
pub(crate) struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Unhealthy when the oldest catalog change not yet relayed is older than this.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    max_relay_lag: Duration,
    /// A backlog whose oldest task is older than this is looked at: unhealthy when nothing is
    /// being dispatched from it, or when it would take longer than `--max-drain-time` to drain at
    /// the rate it is dispatched (a bulk load draining at the Stripe budget is healthy).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    max_backlog_age: Duration,
    /// Unhealthy when a backlog older than `--max-backlog-age` would take longer than this to
    /// drain at its current dispatch rate.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    max_drain_time: Duration,
    /// Unhealthy when a running sync's activity has failed this many attempts in a row (Stripe
    /// or the catalog unreachable, a setting wrong): it is retrying, not progressing.
    #[arg(long, default_value_t = 5)]
    max_attempts: i32,
    /// Logical capture: unhealthy when the replication slot holds more WAL than this (bytes; a
    /// relay that stopped reading lets it grow until the disk fills).
    #[arg(long, default_value_t = 1 << 30)]
    max_slot_lag_bytes: i64,
    /// Logical capture: unhealthy when the oldest change the replication slot holds for the
    /// relay is older than this.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    max_slot_lag: Duration,
    /// Count invalid products as unhealthy (by default only failed syncs are).
    #[arg(long)]
    fail_on_invalid: bool,
    /// Failed and invalid products listed.
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

/// Gathers the status, prints it, and fails when unhealthy.
pub(crate) async fn status(
    client: &Client,
    catalog: &Catalog,
    task_queue: &str,
    args: StatusArgs,
) -> anyhow::Result<Exit> {
    let mut problems = Vec::new();

    let mut queues = serde_json::Map::new();
    let stripe_queue = workflows::queues::stripe_task_queue(task_queue);
    for (name, task_queue, kind) in [
        ("workflow", task_queue, TaskQueueType::Workflow),
        ("activity", task_queue, TaskQueueType::Activity),
        ("stripe", stripe_queue.as_str(), TaskQueueType::Activity),
    ] {
        let response = common::temporal::describe_task_queue(client, task_queue, kind, true)
            .await
            .with_context(|| format!("describing task queue {task_queue}"))?;
        let stats = response.stats.unwrap_or_default();
        let age = stats
            .approximate_backlog_age
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or_default();
        // A backlog is judged by the time it takes to drain, not by its oldest task's age: a bulk
        // load dispatched at the Stripe budget is old and healthy.
        let drain = (stats.tasks_dispatch_rate > 0.0).then(|| {
            Duration::from_secs_f64(
                stats.approximate_backlog_count as f64 / f64::from(stats.tasks_dispatch_rate),
            )
        });
        if age > args.max_backlog_age {
            match drain {
                None => problems.push(format!(
                    "{name} tasks wait {} in the backlog (over {}) and none is being dispatched: \
                     are the workers stuck or gone?",
                    humantime::format_duration(round(age)),
                    humantime::format_duration(args.max_backlog_age)
                )),
                Some(drain) if drain > args.max_drain_time => problems.push(format!(
                    "{name} tasks: {} in the backlog drain at {:.1}/s, in about {} (over {}): add \
                     workers, or raise CATALOG_SYNC_STRIPE_BUDGET if Stripe allows",
                    stats.approximate_backlog_count,
                    stats.tasks_dispatch_rate,
                    humantime::format_duration(round(drain)),
                    humantime::format_duration(args.max_drain_time)
                )),
                Some(_) => {}
            }
        }
        if response.pollers.is_empty() {
            problems.push(format!("no worker polls {task_queue} for {name} tasks"));
        }
        queues.insert(
            name.to_string(),
            json!({
                "backlog": stats.approximate_backlog_count,
                "backlog_age_seconds": age.as_secs_f64(),
                "drain_seconds": drain.map(|d| d.as_secs_f64()),
                "tasks_added_per_second": stats.tasks_add_rate,
                "tasks_dispatched_per_second": stats.tasks_dispatch_rate,
                "pollers": response.pollers.len(),
                // The server's dispatch limit: on the Stripe queue, the budget the workers set.
                "rate_limit_per_second": response
                    .effective_rate_limit
                    .as_ref()
                    .filter(|r| r.rate_limit_source != RateLimitSource::System as i32)
                    .map(|r| f64::from(r.requests_per_second)),
            }),
        );
    }

    // Runs no worker will ever take: they hold their products' changes.
    let stranded = crate::queue::stranded_runs(client, catalog, task_queue).await?;
    problems.extend(stranded.iter().map(crate::queue::StrandedRuns::problem));

    // Another catalog's syncs on this queue: two catalogs' workers share it, and each worker
    // hands the other's syncs back (they retry with `SyncWaiting`).
    // (The first running syncs, listed once: this check and the retrying syncs' read them.)
    let running_ids = running_syncs(client, task_queue).await?;
    let identity = catalog.identity().await?;
    if let Some(problem) = foreign_syncs(&running_ids, &identity, task_queue) {
        problems.push(problem);
    }

    // This deployment's syncs: other deployments may share the namespace on other task queues.
    let running = client
        .count_workflows(
            format!(
                "WorkflowType = 'ProductSync' AND ExecutionStatus = 'Running' AND TaskQueue = '{}'",
                task_queue.replace('\'', "")
            ),
            WorkflowCountOptions::default(),
        )
        .await
        .context("counting running syncs")?
        .count();

    let outbox = catalog.outbox_stats().await?;
    // A relay records that it is alive every few seconds: none within six of them is none at all.
    let relays = catalog
        .live_relays(catalog::RELAY_HEARTBEAT_INTERVAL * 6)
        .await?;
    if outbox.pending > 0 && relays == 0 {
        problems.push(format!(
            "{} catalog changes wait in the outbox and no relay has been seen in the last {}: \
             start `relay` (it consumes the outbox)",
            outbox.pending,
            humantime::format_duration(catalog::RELAY_HEARTBEAT_INTERVAL * 6)
        ));
    } else if outbox.lag() > args.max_relay_lag {
        problems.push(format!(
            "the oldest catalog change waits {} for the relay (over {}): is a relay running?",
            humantime::format_duration(round(outbox.lag())),
            humantime::format_duration(args.max_relay_lag)
        ));
    }
    // How changes are captured, as the relays recorded it, and whether it can still work.
    let (capture_mode, last_relayed) = catalog.capture_record().await?;
    let capture_tables = catalog.capture_state().await.ok();
    if capture_mode.as_deref() == Some("triggers")
        && let Some(missing) = capture_tables.as_ref().map(|t| &t.missing)
        && !missing.is_empty()
    {
        problems.push(format!(
            "the relay captures with triggers, but {} {} no catalog-sync capture triggers: \
             changes to {} are not captured. Run `starter capture install`, or set \
             CATALOG_SYNC_CAPTURE=polling on the relay",
            missing.join(" and "),
            if missing.len() == 1 { "has" } else { "have" },
            if missing.len() == 1 { "it" } else { "them" },
        ));
    }
    // Logical capture: the slot must be there, keep its WAL, and be read.
    let slot = if capture_mode.as_deref() == Some("logical") {
        match catalog.slot_state_peeked().await {
            Err(e) => {
                problems.push(format!(
                    "the relay captures from the write-ahead log, but its replication slot \
                     cannot be read: {e}"
                ));
                None
            }
            Ok(None) => {
                problems.push(
                    "the relay captures from the write-ahead log, but the replication slot is \
                     gone: changes since are not captured. Run `starter capture install` \
                     (CATALOG_SYNC_CAPTURE=logical), then `starter reconcile`"
                        .to_string(),
                );
                None
            }
            Ok(Some(s)) => {
                if s.lost {
                    problems.push(format!(
                        "replication slot {} lost WAL it had not read (max_slot_wal_keep_size): \
                         changes were missed. A logical relay replaces the slot and enqueues \
                         every product when it next reads it: is one running?",
                        s.name
                    ));
                } else if let Some(age) = s
                    .age_seconds
                    .filter(|age| *age > args.max_slot_lag.as_secs_f64())
                {
                    problems.push(format!(
                        "replication slot {}'s oldest change waits for {} (over --max-slot-lag \
                         {}): is the logical relay running, and keeping up?",
                        s.name,
                        humantime::format_duration(Duration::from_secs(age as u64)),
                        humantime::format_duration(args.max_slot_lag)
                    ));
                } else if s.lag_bytes > args.max_slot_lag_bytes {
                    problems.push(format!(
                        "replication slot {} holds {} bytes of WAL (over {}): is the logical \
                         relay running? The server keeps it until the slot is read",
                        s.name, s.lag_bytes, args.max_slot_lag_bytes
                    ));
                }
                Some(s)
            }
        }
    } else {
        None
    };
    match (&capture_mode, relays, outbox.pending) {
        (None, 0, _) => problems.push(
            "no relay has ever run against this catalog: catalog changes reach Temporal only \
             through `relay` (or `starter sync`)"
                .to_string(),
        ),
        // With changes waiting, the outbox's own problem above says it. Without: polling
        // captures nothing while no relay runs, and the next trigger-captured change waits.
        (Some(mode), 0, 0) => problems.push(format!(
            "no relay has been seen in the last {} (capture: {mode}): catalog changes are not \
             reaching Temporal; start `relay`",
            humantime::format_duration(catalog::RELAY_HEARTBEAT_INTERVAL * 6)
        )),
        _ => {}
    }
    let last_relayed_age = last_relayed
        .and_then(|at| (outbox.now - at).to_std().ok())
        .map(|age| age.as_secs_f64());

    if outbox.failed > 0 {
        problems.push(format!(
            "{} catalog changes were refused by Temporal (`starter outbox`)",
            outbox.failed
        ));
    }

    let held = catalog.held_archives(10_000).await?;
    let waiting = held.iter().filter(|h| !h.confirmed).count();
    if waiting > 0 {
        problems.push(format!(
            "{waiting} archives are held by the live archive guard and wait for confirmation \
             (`starter archives list`, then `starter archives confirm`)"
        ));
    }

    // Syncs retrying instead of progressing: Stripe or the catalog away, a setting wrong.
    let retrying = retrying_syncs(client, running_ids, args.max_attempts).await;
    if let Some(worst) = retrying.first() {
        problems.push(format!(
            "{} running syncs are retrying (at attempt {} or more); the worst, {}, is at attempt \
             {} of {}: {}",
            retrying.len(),
            args.max_attempts,
            worst["workflow_id"].as_str().unwrap_or("?"),
            worst["attempt"],
            worst["activity"].as_str().unwrap_or("?"),
            worst["last_failure"]
                .as_str()
                .unwrap_or("no failure recorded")
        ));
    }

    // Syncs whose latest run ended without an outcome (terminated by an operator or by the
    // server at one of its limits, timed out): the change it carried may not be in Stripe.
    let ended = ended_without_outcome(client, task_queue).await?;
    if let Some(first) = ended.first() {
        problems.push(format!(
            "{} products' latest sync ended without an outcome (e.g. {} {}): the changes they \
             carried may not be in Stripe. The next reconciliation repairs them, or `starter \
             sync ID` now",
            ended.len(),
            first["workflow_id"].as_str().unwrap_or("?"),
            first["status"].as_str().unwrap_or("?").to_lowercase()
        ));
    }

    let latest = catalog.sync_problems(10_000).await?;
    let failed: Vec<_> = latest
        .iter()
        .filter(|r| r.entry.outcome == "failed")
        .collect();
    let invalid: Vec<_> = latest
        .iter()
        .filter(|r| r.entry.outcome == "invalid")
        .collect();
    let skipped: Vec<_> = latest
        .iter()
        .filter(|r| r.entry.outcome.starts_with("skipped_"))
        .collect();
    if !failed.is_empty() {
        problems.push(format!("{} products failed to sync", failed.len()));
    }
    if !skipped.is_empty() {
        problems.push(format!(
            "{} products were left alone: Stripe holds a product with their id that \
             catalog-sync may not touch (made by hand, or another catalog's; `starter results` \
             names each)",
            skipped.len()
        ));
    }
    if args.fail_on_invalid && !invalid.is_empty() {
        problems.push(format!("{} products are invalid", invalid.len()));
    }
    let product = |r: &&catalog::AuditRecord| {
        json!({
            "product_id": r.entry.product_id,
            "reason": r.entry.detail,
            "catalog_version": r.entry.catalog_version,
            "at": r.recorded_at,
            "workflow_id": r.entry.workflow_id,
        })
    };

    let reconcile = last_reconciliation(client, task_queue).await?;
    if let Some(stalled) = reconcile["stalled"].as_str() {
        problems.push(format!(
            "reconciliation {} makes no progress: {stalled}",
            reconcile["workflow_id"].as_str().unwrap_or("?")
        ));
    }
    let result = &reconcile["result"];
    if result["needs_confirmation"] == json!(true) && result["mode"] == json!("apply") {
        problems.push(format!(
            "reconciliation {} needs confirmation: {} archives planned, over the archive limit of \
             {}; nothing was archived. Check the catalog, then `starter reconcile \
             --allow-mass-archive`",
            reconcile["workflow_id"].as_str().unwrap_or("?"),
            result["totals"]["planned_archives"],
            result["archive_limit"]
        ));
    }
    let healthy = problems.is_empty();
    let report = json!({
        "catalog": catalog.identity().await?,
        "namespace": client.namespace(),
        "task_queue": task_queue,
        "task_queues": queues,
        "syncs_running": running,
        "capture": {
            "mode": capture_mode,
            "tables_with_triggers": capture_tables.as_ref().map(|t| &t.captured),
            "tables_without_triggers": capture_tables.as_ref().map(|t| &t.missing),
            "last_relayed": last_relayed.map(|at| at.to_rfc3339()),
            "last_relayed_age_seconds": last_relayed_age,
            "slot": slot.map(|s| json!({
                "name": s.name,
                "active": s.active,
                "lag_bytes": s.lag_bytes,
                "wal_status": s.wal_status,
                "lost": s.lost,
                "age_seconds": s.age_seconds,
            })),
        },
        "outbox": {
            "relays": relays,
            "pending": outbox.pending,
            "refused": outbox.failed,
            "lag_seconds": outbox.lag().as_secs_f64(),
        },
        "failed": failed.iter().take(args.limit).map(product).collect::<Vec<_>>(),
        "failed_count": failed.len(),
        "invalid": invalid.iter().take(args.limit).map(product).collect::<Vec<_>>(),
        "invalid_count": invalid.len(),
        "skipped": skipped.iter().take(args.limit).map(product).collect::<Vec<_>>(),
        "skipped_count": skipped.len(),
        "retrying": retrying.iter().take(args.limit).collect::<Vec<_>>(),
        "ended_without_outcome": ended.iter().take(args.limit).collect::<Vec<_>>(),
        "ended_without_outcome_count": ended.len(),
        "retrying_count": retrying.len(),
        "held_archives": waiting,
        "stranded_runs": stranded.iter().map(|s| json!({
            "task_queue": s.task_queue,
            "runs": s.runs,
            "examples": s.examples,
        })).collect::<Vec<_>>(),
        "last_reconciliation": reconcile,
        "healthy": healthy,
        "problems": problems,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if !healthy {
        eprintln!("unhealthy: {}", problems.join("; "));
        return Ok(Exit::Failed);
    }
    Ok(Exit::Ok)
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
