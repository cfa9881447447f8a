//! Change-capture benchmarks against a running stack (worker + relay), judged by
//! the audit ledger, so they measure the same way against the sandbox or real Stripe.
//!
//! - `live`: catalog edits at a fixed rate; latency from the catalog commit (`updated_at` of the
//!   edited version) to the audit row of the sync that wrote it (recorded after Stripe answered,
//!   so the figure is an upper bound of "visible in Stripe"); history events of the sync runs the
//!   edits started (from Temporal's visibility); with `--worker-pid`, the worker's CPU and peak
//!   RSS.
//! - `burst`: many edits of one product within a second; Stripe writes it caused.
//! - `faults` (in `faults.rs`): the naive baseline (a change handler calling Stripe inline, once, no Temporal)
//!   beside catalog-sync, both sending the same number of updates through the same fault rate of
//!   the sandbox; updates lost by each, read back once the faults are off.

use std::time::{Duration, Instant};

use anyhow::Context;
use catalog::Catalog;
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;
use temporalio_client::{Client, WorkflowListOptions};

use crate::usage::process_usage;

/// `bench live`.
#[derive(Args)]
pub(crate) struct LiveArgs {
    /// Edits per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// How long to edit, e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Target p99 in milliseconds (the run fails above it).
    #[arg(long, default_value_t = 1000)]
    target_p99_ms: u64,
    /// Most history events per sync run (the run fails above it).
    #[arg(long, default_value_t = 15)]
    target_events: i64,
    /// The worker process to measure (CPU, peak RSS), if it runs on this machine.
    #[arg(long)]
    worker_pid: Option<u32>,
}

/// `bench burst`.
#[derive(Args)]
pub(crate) struct BurstArgs {
    /// The product to edit (default: the first in the catalog).
    #[arg(long)]
    id: Option<String>,
    /// Edits in the burst.
    #[arg(long, default_value_t = 100)]
    edits: u32,
    /// Over how long, e.g. `1s`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    within: Duration,
    /// Most Stripe writes allowed (the run fails above it).
    #[arg(long, default_value_t = 2)]
    target_writes: usize,
}

pub(crate) async fn wait_for_outbox(catalog: &Catalog, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while catalog.outbox_stats().await?.pending > 0 {
        anyhow::ensure!(
            started.elapsed() < limit,
            "the outbox did not drain: is a relay running?"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Renames `id` (the version grows); returns the new version and its commit time.
pub(crate) async fn edit(
    catalog: &Catalog,
    id: &str,
    name: String,
) -> anyhow::Result<(i64, DateTime<Utc>)> {
    let mut product = catalog
        .fetch_product(id)
        .await?
        .with_context(|| format!("no product {id}"))?;
    product.name = name;
    catalog.save_product(&product).await?;
    let saved = catalog
        .fetch_product(id)
        .await?
        .with_context(|| format!("{id} vanished"))?;
    let committed = DateTime::parse_from_rfc3339(&saved.updated_at)?.with_timezone(&Utc);
    Ok((saved.version, committed))
}

/// The first ledger row of `id` at or after `version` that wrote or confirmed it.
async fn synced_at(
    catalog: &Catalog,
    id: &str,
    version: i64,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let rows = catalog.audit_history(id, 50).await?;
    Ok(rows
        .iter()
        .find(|r| {
            r.entry.catalog_version.is_some_and(|v| v >= version)
                && matches!(r.entry.outcome.as_str(), "synced" | "unchanged")
        })
        .map(|r| r.recorded_at))
}

/// Waits (at most `limit`) for the ledger to show `id` synced at `version` or later.
pub(crate) async fn wait_synced(
    catalog: &Catalog,
    id: &str,
    version: i64,
    limit: Duration,
) -> anyhow::Result<DateTime<Utc>> {
    let started = Instant::now();
    loop {
        if let Some(at) = synced_at(catalog, id, version).await? {
            return Ok(at);
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{id} v{version} was not synced within {}",
            humantime::format_duration(limit)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// History events of the `ProductSync` runs on `task_queue` started since `since` and closed:
/// (runs, mean, max).
async fn history_events(
    client: &Client,
    task_queue: &str,
    since: DateTime<Utc>,
) -> anyhow::Result<(usize, f64, i64)> {
    use futures::TryStreamExt;
    let query = format!(
        "WorkflowType = 'ProductSync' AND TaskQueue = '{task_queue}' AND StartTime >= '{}' \
         AND ExecutionStatus != 'Running'",
        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let lengths: Vec<i64> = client
        .list_workflows(query, WorkflowListOptions::default())
        .map_ok(|w| w.history_length())
        .try_collect()
        .await
        .context("listing the sync runs")?;
    let max = lengths.iter().copied().max().unwrap_or(0);
    let mean = if lengths.is_empty() {
        0.0
    } else {
        lengths.iter().sum::<i64>() as f64 / lengths.len() as f64
    };
    Ok((lengths.len(), mean, max))
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) async fn live(
    client: &Client,
    task_queue: &str,
    catalog: &Catalog,
    args: LiveArgs,
) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    let edits = (args.rate * args.duration.as_secs_f64()).round().max(1.0) as usize;
    let ids = catalog.product_ids("", edits as i64).await?;
    anyhow::ensure!(!ids.is_empty(), "the catalog is empty: seed it first");
    wait_for_outbox(catalog, Duration::from_secs(300)).await?;
    // Start from a quiet stack: every product to edit synced at its current version.
    for id in &ids {
        let version = catalog.fetch_product(id).await?.map_or(0, |p| p.version);
        wait_synced(catalog, id, version, Duration::from_secs(300)).await?;
    }
    let run = Utc::now().format("%H%M%S").to_string();
    let bench_start = Utc::now();
    let usage_before = args.worker_pid.map(process_usage).transpose()?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut made = Vec::with_capacity(edits);
    for n in 0..edits {
        ticker.tick().await;
        let id = &ids[n % ids.len()];
        let (version, committed) = edit(catalog, id, format!("Bench {run} edit {n}")).await?;
        made.push((id.clone(), version, committed));
    }
    let editing = started.elapsed();
    let mut latencies = Vec::with_capacity(made.len());
    for (id, version, committed) in &made {
        let synced = wait_synced(catalog, id, *version, Duration::from_secs(120)).await?;
        latencies.push((synced - *committed).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    let wall = started.elapsed();
    let worker = match (args.worker_pid, usage_before) {
        (Some(pid), Some((cpu_before, _))) => {
            let (cpu_after, peak_kib) = process_usage(pid)?;
            Some((
                (cpu_after - cpu_before).as_secs_f64() / wall.as_secs_f64(),
                peak_kib,
            ))
        }
        _ => None,
    };
    // Visibility lags the histories a little.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (runs, mean_events, max_events) = history_events(client, task_queue, bench_start).await?;
    latencies.sort_by(f64::total_cmp);
    let (p50, p95, p99) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        percentile(&latencies, 99.0),
    );
    let max = latencies.last().copied().unwrap_or(0.0);
    let latency_pass = p99 <= args.target_p99_ms as f64;
    let events_pass = runs > 0 && max_events <= args.target_events;
    let summary = json!({
        "bench": "live", "edits": made.len(), "rate": args.rate,
        "achieved_rate": made.len() as f64 / editing.as_secs_f64(),
        "synced_per_second": made.len() as f64 / wall.as_secs_f64(),
        "latency_ms": { "p50": p50, "p95": p95, "p99": p99, "max": max },
        "sync_runs": runs, "history_events_per_run": { "mean": mean_events, "max": max_events },
        "worker_cpu_cores": worker.map(|w| w.0), "worker_peak_rss_mib": worker.map(|w| w.1 as f64 / 1024.0),
        "target_p99_ms": args.target_p99_ms, "target_events": args.target_events,
        "pass": latency_pass && events_pass,
    });
    println!("{summary}");
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "live: {} edits at {:.1}/s, {:.1} synced/s; commit → Stripe p50 {p50:.0} ms, p95 {p95:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
        made.len(),
        made.len() as f64 / editing.as_secs_f64(),
        made.len() as f64 / wall.as_secs_f64(),
    );
    if let Some((cores, peak_kib)) = worker {
        println!(
            "      worker {:.2} cores, peak RSS {:.0} MiB",
            cores,
            peak_kib as f64 / 1024.0
        );
    }
    println!(
        "      target p99 ≤ {} ms: {}; {runs} sync runs, {mean_events:.1} history events each (max {max_events}), target ≤ {}: {}",
        args.target_p99_ms,
        verdict(latency_pass),
        args.target_events,
        verdict(events_pass)
    );
    anyhow::ensure!(latency_pass, "p99 {p99:.0} ms is over the target");
    anyhow::ensure!(events_pass, "history events per sync over the target");
    Ok(())
}

pub(crate) async fn burst(catalog: &Catalog, args: BurstArgs) -> anyhow::Result<()> {
    let id = match args.id {
        Some(id) => id,
        None => catalog
            .product_ids("", 1)
            .await?
            .pop()
            .context("the catalog is empty: seed it first")?,
    };
    wait_for_outbox(catalog, Duration::from_secs(300)).await?;
    let version = catalog.fetch_product(&id).await?.map_or(0, |p| p.version);
    wait_synced(catalog, &id, version, Duration::from_secs(300)).await?;
    let before = catalog
        .audit_history(&id, 1)
        .await?
        .last()
        .map_or(0, |r| r.seq);
    let pause = args.within / args.edits.max(1);
    let started = Instant::now();
    let mut last = 0;
    for n in 1..=args.edits {
        last = edit(catalog, &id, format!("Burst edit {n}")).await?.0;
        tokio::time::sleep(pause.saturating_sub(Duration::from_millis(1))).await;
    }
    let took = started.elapsed();
    wait_synced(catalog, &id, last, Duration::from_secs(60)).await?;
    // A pass still settling would show up within the settle limit.
    tokio::time::sleep(workflows::product_sync::MAX_SETTLE).await;
    let rows: Vec<_> = catalog
        .audit_history(&id, 1000)
        .await?
        .into_iter()
        .filter(|r| r.seq > before)
        .collect();
    let writes: usize = rows.iter().map(|r| r.entry.operations.len()).sum();
    let passes = rows.len();
    let final_version = rows.last().and_then(|r| r.entry.catalog_version);
    let pass = writes <= args.target_writes && final_version == Some(last);
    println!(
        "{}",
        json!({ "bench": "burst", "product": id, "edits": args.edits, "within_ms": took.as_millis() as u64,
                "passes": passes, "stripe_writes": writes, "final_version": final_version,
                "last_edit_version": last, "target_writes": args.target_writes, "pass": pass })
    );
    println!(
        "burst: {} edits of {id} in {} ms → {passes} sync passes, {writes} Stripe writes, Stripe at v{} (last edit v{last}); target ≤ {} writes: {}",
        args.edits,
        took.as_millis(),
        final_version.unwrap_or(0),
        args.target_writes,
        if pass { "PASS" } else { "FAIL" }
    );
    anyhow::ensure!(pass, "the burst missed its target");
    Ok(())
}
