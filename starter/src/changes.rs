//! `starter audit` (a product's sync history from the audit ledger) and `starter outbox` (what
//! waits to be relayed to Temporal, and what Temporal refused).

use std::time::{Duration, Instant};

use anyhow::Context;
use catalog::Catalog;
use clap::Args;

/// `starter audit`.
#[derive(Args)]
pub(crate) struct AuditArgs {
    /// Catalog id.
    id: String,
    /// Newest rows shown.
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints a product's ledger, oldest first.
pub(crate) async fn audit(catalog: &Catalog, args: AuditArgs) -> anyhow::Result<()> {
    let rows = catalog.audit_history(&args.id, args.limit.max(1)).await?;
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("no audit rows for {} yet", args.id);
        return Ok(());
    }
    println!(
        "{:<25} {:<18} {:>7} {:<17} writes (Stripe request ids)",
        "recorded (UTC)", "outcome", "version", "hash"
    );
    for row in rows {
        let e = &row.entry;
        let writes = if e.operations.is_empty() {
            e.detail.clone().unwrap_or_else(|| "-".into())
        } else {
            e.operations
                .iter()
                .zip(
                    e.request_ids
                        .iter()
                        .map(Some)
                        .chain(std::iter::repeat(None)),
                )
                .map(|(op, id)| format!("{op} ({})", id.map_or("-", String::as_str)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{:<25} {:<18} {:>7} {:<17} {writes}",
            row.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            e.outcome,
            e.catalog_version.map_or("-".into(), |v| v.to_string()),
            e.content_hash
                .as_deref()
                .map_or("-", |h| &h[..h.len().min(16)]),
        );
        if let (Some(workflow), Some(run)) = (&e.workflow_id, &e.run_id) {
            println!("{:<25} {workflow} / {run}", "");
        }
    }
    Ok(())
}

/// `starter outbox`.
#[derive(Args)]
pub(crate) struct OutboxArgs {
    /// Wait until nothing is pending (a relay is running), at most this long, e.g. `2m`.
    #[arg(long, value_parser = humantime::parse_duration)]
    wait: Option<Duration>,
    /// Put the changes Temporal refused back in line (after fixing the cause).
    #[arg(long)]
    retry_failed: bool,
    /// Print the outbox's state as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the outbox's state; exits non-zero when changes were refused.
pub(crate) async fn outbox(catalog: &Catalog, args: OutboxArgs) -> anyhow::Result<()> {
    if args.retry_failed {
        let n = catalog.retry_failed_changes().await?;
        println!("{n} refused changes put back in line");
    }
    if let Some(limit) = args.wait {
        let started = Instant::now();
        loop {
            let stats = catalog.outbox_stats().await?;
            if stats.pending == 0 {
                break;
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "{} changes still pending after {} (is a relay running?)",
                    stats.pending,
                    humantime::format_duration(limit)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let stats = catalog.outbox_stats().await?;
    let failed = catalog.failed_changes(50).await?;
    if args.json {
        let refused: Vec<_> = failed
            .iter()
            .map(|f| {
                serde_json::json!({
                    "product_id": f.change.product_id, "seq": f.change.seq,
                    "op": f.change.op, "error": f.error,
                })
            })
            .collect();
        let report = serde_json::json!({
            "pending": stats.pending,
            "lag_seconds": stats.lag().as_secs_f64(),
            "refused": stats.failed,
            "refused_changes": refused,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "outbox: {} pending (lag {:.1} s), {} refused",
            stats.pending,
            stats.lag().as_secs_f64(),
            stats.failed
        );
        for f in &failed {
            println!(
                "  refused  {} (change {}, {}): {}",
                f.change.product_id, f.change.seq, f.change.op, f.error
            );
        }
    }
    if stats.failed > 0 {
        return Err(anyhow::anyhow!(
            "{} changes were refused by Temporal",
            stats.failed
        ))
        .context("fix the cause, then `starter outbox --retry-failed`");
    }
    Ok(())
}
