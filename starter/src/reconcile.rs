//! `starter reconcile`: start a `ReconcileCatalog` now, follow it across continue-as-new with a
//! progress bar (the `progress` query on the latest run), and print the summary.
//!
//! Exit codes ([`Exit`], as `terraform plan -detailed-exitcode`):
//! - `0`: done; in a dry run, the catalog and Stripe agree;
//! - `1`: the command or the workflow failed;
//! - `2`: a dry run found drift (or invalid products);
//! - `3`: stopped at the archive guard: more archives than the limit, none applied; rerun with
//!   `--allow-mass-archive` once the planned archives are right (a dry run says it too, with 2);
//! - `4`: applied, but some products could not be repaired (failed or invalid, with reasons).

use std::time::Duration;

use crate::exit::Exit;
use anyhow::Context;
use clap::Args;
use temporalio_client::{
    Client, WorkflowGetResultOptions, WorkflowQueryOptions, WorkflowStartOptions,
};
use workflows::ReconcileCatalog;
use workflows::reconcile::{
    OrphanPolicy, ReconcileInput, ReconcileMethod, ReconcileMode, ReconcilePhase, ReconcileResult,
};

#[derive(Args)]
pub(crate) struct ReconcileArgs {
    /// Classify and report; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Only products updated at or after this RFC 3339 time (a backfill), e.g. 2026-11-29T00:00:00Z.
    #[arg(long)]
    since: Option<String>,
    /// First catalog id included.
    #[arg(long)]
    from: Option<String>,
    /// Last catalog id included.
    #[arg(long)]
    to: Option<String>,
    /// Report orphans instead of archiving them.
    #[arg(long)]
    report_orphans: bool,
    /// Repairs in flight at once (1..=500).
    #[arg(long, default_value_t = 100)]
    max_in_flight: u32,
    /// Apply every archive found, beyond the archive guard: the confirmation of a run that
    /// stopped with `needs_confirmation` (exit code 3).
    #[arg(long)]
    allow_mass_archive: bool,
    /// The archive guard: a run archives at most this percentage of the catalog products in scope
    /// (or `--archive-limit-min`, whichever is larger) without `--allow-mass-archive`.
    #[arg(long, default_value_t = workflows::reconcile::DEFAULT_ARCHIVE_LIMIT_PERCENT)]
    archive_limit_percent: f64,
    /// See `--archive-limit-percent`.
    #[arg(long, default_value_t = workflows::reconcile::DEFAULT_ARCHIVE_LIMIT_MIN)]
    archive_limit_min: u64,
    /// How Stripe is read: `scan` its lists into the mirror of Stripe's state, read the scope's
    /// products by `ids`, `auto`: the cheaper of the two for the scope, or `events`: Stripe's
    /// events since the last run's cursor and the catalog's updates since the last run (a scan
    /// when there is no cursor, or one older than Stripe's 30 days).
    #[arg(long, value_enum, default_value_t = Method::Auto)]
    method: Method,
    /// Catalog pages (of 100) per workflow run before continue-as-new.
    #[arg(long, default_value_t = 20)]
    pages_per_run: u32,
    /// Workflow id (default: {catalog identity}:reconcile-{unix ms}).
    #[arg(long)]
    id: Option<String>,
    /// Start and print the workflow id without following it.
    #[arg(long)]
    no_wait: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// `--method`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Method {
    Auto,
    Scan,
    Ids,
    Events,
}

impl From<Method> for ReconcileMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::Auto => ReconcileMethod::Auto,
            Method::Scan => ReconcileMethod::Scan,
            Method::Ids => ReconcileMethod::Ids,
            Method::Events => ReconcileMethod::Events,
        }
    }
}

/// Starts and follows the reconciliation; returns the exit code (see the module's docs).
pub(crate) async fn run(
    client: &Client,
    catalog: &str,
    task_queue: &str,
    args: ReconcileArgs,
) -> anyhow::Result<Exit> {
    let input = ReconcileInput {
        mode: if args.dry_run {
            ReconcileMode::DryRun
        } else {
            ReconcileMode::Apply
        },
        from: args.from,
        to: args.to,
        since: args.since,
        orphans: if args.report_orphans {
            OrphanPolicy::Report
        } else {
            OrphanPolicy::Archive
        },
        max_in_flight: args.max_in_flight,
        pages_per_run: args.pages_per_run,
        allow_mass_archive: args.allow_mass_archive,
        archive_limit_percent: Some(args.archive_limit_percent),
        archive_limit_min: Some(args.archive_limit_min),
        method: args.method.into(),
        ..ReconcileInput::default()
    };
    // The workflow checks the same again; refusing here starts nothing.
    input
        .check()
        .map_err(|why| anyhow::anyhow!("reconcile: {why}"))?;
    crate::queue::ensure_polled(client, task_queue).await?;
    let id = args.id.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        domain::ids::reconcile_id(catalog, now.as_millis())
    });
    client
        .start_workflow(
            ReconcileCatalog::run,
            input,
            WorkflowStartOptions::new(task_queue, &id).build(),
        )
        .await
        .with_context(|| format!("starting {id}"))?;
    eprintln!("started {id} on task queue {task_queue}");
    if args.no_wait {
        println!("{id}");
        return Ok(Exit::Ok);
    }

    // No run id: queries and the result follow the newest run of the chain.
    let handle = client.get_workflow_handle::<ReconcileCatalog>(&id);
    let bar = crate::progress::progress_bar(0);
    let result = handle.get_result(WorkflowGetResultOptions::default());
    tokio::pin!(result);
    let result: ReconcileResult = loop {
        tokio::select! {
            r = &mut result => break r.with_context(|| format!("{id} failed"))?,
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Ok(p) = handle.query(ReconcileCatalog::progress, (), WorkflowQueryOptions::default()).await {
                    bar.set_length(p.estimated_total.max(p.totals.scanned));
                    bar.set_position(p.totals.scanned);
                    let phase = match p.phase {
                        ReconcilePhase::Events => "events",
                        ReconcilePhase::ScanProducts => "scan products",
                        ReconcilePhase::ScanPrices => "scan prices",
                        ReconcilePhase::Catalog => "catalog",
                        ReconcilePhase::Orphans => "orphans",
                        ReconcilePhase::ExtraPrices => "extra prices",
                        ReconcilePhase::Done => "done",
                    };
                    let message = format!(
                        "run {} {phase} {} drift {} in flight",
                        p.run,
                        p.totals.drift.total(),
                        p.in_flight
                    );
                    bar.set_message(format!("{message:>24}"));
                }
            }
        }
    };
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_summary(&id, &result);
    }
    Ok(exit_code(&result))
}

/// The exit code of a finished run (see the module's docs).
fn exit_code(r: &ReconcileResult) -> Exit {
    match r.mode {
        ReconcileMode::Apply if r.needs_confirmation => Exit::NeedsConfirmation,
        ReconcileMode::Apply if r.totals.failed > 0 || r.totals.invalid > 0 => Exit::NotSynced,
        ReconcileMode::DryRun if r.totals.drift.total() > 0 || r.totals.invalid > 0 => Exit::Drift,
        _ => Exit::Ok,
    }
}

fn print_summary(id: &str, r: &ReconcileResult) {
    let t = &r.totals;
    let mode = match r.mode {
        ReconcileMode::Apply => "apply",
        ReconcileMode::DryRun => "dry-run",
    };
    println!(
        "{id} ({mode}): {} runs, {:.1} s{}",
        r.runs,
        r.duration_ms as f64 / 1000.0,
        if r.stopped { ", stopped early" } else { "" }
    );
    println!(
        "  method               {} ({})",
        r.method.as_str(),
        r.method_reason
    );
    if r.method == ReconcileMethod::Scan {
        println!(
            "  Stripe listed        {} objects, {} mirrored, {} gone",
            t.scan_listed, t.scan_mirrored, t.scan_pruned
        );
    }
    if r.method == ReconcileMethod::Events {
        println!("  Stripe events        {}", t.events);
    }
    println!("  scanned              {}", t.scanned);
    println!("  in sync              {}", t.in_sync);
    println!(
        "  drift                {} (missing {}, stale {}, edited in Stripe {}, price drift {}, should archive {}, orphans {}, detached {})",
        t.drift.total(),
        t.drift.missing,
        t.drift.stale,
        t.drift.edited_in_stripe,
        t.drift.price_drift,
        t.drift.should_archive,
        t.drift.orphan,
        t.drift.detached
    );
    if r.mode == ReconcileMode::Apply {
        println!("  repaired             {}", t.repaired);
        println!("  orphans archived     {}", t.orphans_archived);
        println!("  already repaired     {}", t.already_repaired);
        println!("  handed to live sync  {}", t.handed_to_live_sync);
        println!("  failed               {}", t.failed);
    }
    println!("  invalid              {}", t.invalid);
    println!("  unmanaged            {}", t.unmanaged);
    println!("  other catalogs       {} (left alone)", t.other_catalog);
    println!(
        "  archives             {} planned, limit {}",
        t.planned_archives, r.archive_limit
    );
    println!(
        "  Stripe requests      {} ({} by repairs)",
        t.stripe_requests, t.repair_stripe_requests
    );
    for d in &t.samples {
        println!("  {:<21}{}: {}", d.kind.as_str(), d.catalog_id, d.detail);
    }
    for i in &t.invalid_samples {
        let reasons: Vec<String> = i.issues.iter().map(ToString::to_string).collect();
        println!(
            "  {:<21}{}: {}",
            "invalid",
            i.catalog_id,
            reasons.join("; ")
        );
    }
    for f in &t.failures {
        println!("  {:<21}{}: {}", "failed", f.catalog_id, f.reason);
    }
    if r.needs_confirmation {
        for d in &r.held_archives {
            println!("  {:<21}{}: {}", "held archive", d.catalog_id, d.detail);
        }
        let what = if r.mode == ReconcileMode::Apply {
            "NEEDS CONFIRMATION: nothing was archived"
        } else {
            "an apply run would stop at the archive guard"
        };
        println!(
            "  {what}: {} archives planned, over the limit of {} (the larger of \
             --archive-limit-min and --archive-limit-percent of the catalog). If they are right, \
             rerun with --allow-mass-archive; if not, check the catalog (CATALOG_DATABASE_URL) first.",
            t.planned_archives, r.archive_limit
        );
    }
}
