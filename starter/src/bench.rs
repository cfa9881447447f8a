//! `starter bench`: change-capture benchmarks against a running stack (worker + relay), judged by
//! the audit ledger, so they measure the same way against the sandbox or real Stripe.
//!
//! - `live`: catalog edits at a fixed rate; latency from the catalog commit (`updated_at` of the
//!   edited version) to the audit row of the sync that wrote it (recorded after Stripe answered,
//!   so the figure is an upper bound of "visible in Stripe").
//! - `burst`: many edits of one product within a second; Stripe writes it caused.

use std::time::{Duration, Instant};

use anyhow::Context;
use catalog::Catalog;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::json;

/// `starter bench …`.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Edits at a steady rate; commit-to-Stripe latency percentiles.
    Live(LiveArgs),
    /// A burst of edits of one product; the Stripe writes it costs.
    Burst(BurstArgs),
}

/// `starter bench live`.
#[derive(Args)]
pub struct LiveArgs {
    /// Edits per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// How long to edit, e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Target p99 in milliseconds (the run fails above it).
    #[arg(long, default_value_t = 1000)]
    target_p99_ms: u64,
}

/// `starter bench burst`.
#[derive(Args)]
pub struct BurstArgs {
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

/// Runs a benchmark; prints a JSON line and a summary; fails when the target is missed.
pub async fn run(catalog: &Catalog, cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Live(args) => live(catalog, args).await,
        BenchCommand::Burst(args) => burst(catalog, args).await,
    }
}

async fn wait_for_outbox(catalog: &Catalog, limit: Duration) -> anyhow::Result<()> {
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
async fn edit(catalog: &Catalog, id: &str, name: String) -> anyhow::Result<(i64, DateTime<Utc>)> {
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
async fn wait_synced(
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn live(catalog: &Catalog, args: LiveArgs) -> anyhow::Result<()> {
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
    latencies.sort_by(f64::total_cmp);
    let (p50, p95, p99) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        percentile(&latencies, 99.0),
    );
    let max = latencies.last().copied().unwrap_or(0.0);
    let pass = p99 <= args.target_p99_ms as f64;
    let summary = json!({
        "bench": "live", "edits": made.len(), "rate": args.rate,
        "achieved_rate": made.len() as f64 / editing.as_secs_f64(),
        "latency_ms": { "p50": p50, "p95": p95, "p99": p99, "max": max },
        "target_p99_ms": args.target_p99_ms, "pass": pass,
    });
    println!("{summary}");
    println!(
        "live: {} edits at {:.1}/s; commit → Stripe p50 {p50:.0} ms, p95 {p95:.0} ms, p99 {p99:.0} ms, max {max:.0} ms; target p99 ≤ {} ms: {}",
        made.len(),
        made.len() as f64 / editing.as_secs_f64(),
        args.target_p99_ms,
        if pass { "PASS" } else { "FAIL" }
    );
    anyhow::ensure!(pass, "p99 {p99:.0} ms is over the target");
    Ok(())
}

async fn burst(catalog: &Catalog, args: BurstArgs) -> anyhow::Result<()> {
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
