//! `bench capture`: commit-to-Stripe latency of a capture mode on a team's own PostgreSQL
//! tables, the same edits whatever captures them (triggers, polling or the write-ahead log):
//! each edit is one raw-SQL statement (`--edit`, the new name as `$1`, the product's id as
//! `$2`) committed at a steady rate, and timed from its commit until the Stripe product (the
//! sandbox, or the account `STRIPE_API_BASE` names) shows the new name. `scripts/bench-capture`
//! runs it under each mode; the figures are in BENCHMARKS.md.

use std::time::{Duration, Instant};

use anyhow::Context;
use catalog::{Catalog, Db, sqlx};
use clap::Args;
use serde_json::json;

/// `bench capture`.
#[derive(Args)]
pub(crate) struct CaptureArgs {
    /// Edits per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// How long to edit, e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The edit: SQL renaming product `$2` to `$1`.
    #[arg(long)]
    edit: String,
    /// The capture mode measured (a label for the output).
    #[arg(long)]
    mode: String,
}

pub(crate) async fn run(catalog: &Catalog, args: CaptureArgs) -> anyhow::Result<()> {
    let Db::Postgres(pool) = catalog.db() else {
        anyhow::bail!("bench capture edits a PostgreSQL catalog");
    };
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    let base = std::env::var("STRIPE_API_BASE").context("STRIPE_API_BASE")?;
    let key = std::env::var("STRIPE_API_KEY").context("STRIPE_API_KEY")?;
    let edits = (args.rate * args.duration.as_secs_f64()).round().max(1.0) as usize;
    let ids = catalog.product_ids("", edits as i64).await?;
    anyhow::ensure!(!ids.is_empty(), "the catalog is empty: seed it first");
    let http = reqwest::Client::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let run = chrono::Utc::now().format("%H%M%S").to_string();
    let mut waits = Vec::with_capacity(edits);
    for n in 0..edits {
        ticker.tick().await;
        let id = ids[n % ids.len()].clone();
        let name = format!("Capture {run} edit {n}");
        sqlx::query(&args.edit)
            .bind(&name)
            .bind(&id)
            .execute(pool)
            .await
            .with_context(|| format!("running --edit for {id}"))?;
        let committed = Instant::now();
        let (http, url, key) = (
            http.clone(),
            format!("{base}/v1/products/{id}"),
            key.clone(),
        );
        // Each edit is watched apart, so a slow one does not delay the next edit's clock.
        waits.push(tokio::spawn(async move {
            loop {
                let shown = http
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success());
                if let Some(response) = shown {
                    let product: serde_json::Value = response.json().await.unwrap_or_default();
                    if product["name"] == name.as_str() {
                        return Ok(committed.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                if committed.elapsed() > Duration::from_secs(120) {
                    anyhow::bail!("{url}: not renamed to {name:?} within 120 s");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    let mut latencies = Vec::with_capacity(waits.len());
    for wait in waits {
        latencies.push(wait.await??);
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |p: f64| crate::changes::percentile(&latencies, p).round();
    let out = json!({
        "bench": "capture",
        "mode": args.mode,
        "edits": latencies.len(),
        "rate_per_sec": args.rate,
        "p50_ms": pick(50.0),
        "p99_ms": pick(99.0),
        "max_ms": latencies.last().copied().unwrap_or(0.0).round(),
    });
    println!("{out}");
    eprintln!(
        "{} capture: commit to Stripe p50 {} ms, p99 {} ms, max {} ms over {} edits at {}/s",
        args.mode,
        out["p50_ms"],
        out["p99_ms"],
        out["max_ms"],
        latencies.len(),
        args.rate
    );
    Ok(())
}
