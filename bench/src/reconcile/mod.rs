//! `bench reconcile`: one `ReconcileCatalog` of the whole catalog against a Stripe account
//! that holds it with a given share of drift, through the running worker. Reports the duration,
//! the Stripe requests (the sandbox's own counter) against the README's formula and against a
//! lower bound, history events per product, and the worker's CPU and peak RSS; judges them
//! against the targets.
//!
//! With `--seed-stripe` it first writes every catalog product into Stripe directly, with
//! catalog-sync's own transform and upsert but without Temporal: a synced account of 100,000
//! products in minutes instead of hours of `ProductSync` runs. Drift is then made the way a person
//! makes it: every k-th product renamed in Stripe, as in the Dashboard (`edited_in_stripe`).

mod stripe_side;

use std::time::{Duration, Instant};

use anyhow::Context;
use catalog::{Catalog, IdRange};
use clap::Args;
use domain::transform::transform;
use futures::TryStreamExt;
use serde_json::{Value, json};
use stripe::client::{StripeClient, StripeConfig};
use temporalio_client::{
    Client, WorkflowGetResultOptions, WorkflowListOptions, WorkflowStartOptions,
};
use workflows::activities::TransformOutput;
use workflows::model::SyncPlan;
use workflows::reconcile::{MAX_PAGE_SIZE, ReconcileMethod, ReconcileMode};
use workflows::{ReconcileCatalog, ReconcileInput};

use crate::usage::process_usage;
use stripe_side::{for_each_page, rename_in_stripe, seed_stripe};

/// `bench reconcile`.
#[derive(Args)]
pub(crate) struct ReconcileBenchArgs {
    /// First write every catalog product into Stripe directly (catalog-sync's transform and
    /// upsert, no Temporal), as a synced account holds it.
    #[arg(long)]
    seed_stripe: bool,
    /// Stripe holds none of the catalog (a first reconciliation; with `--dry-run` only): every
    /// product is missing.
    #[arg(long, conflicts_with_all = ["seed_stripe", "drift"])]
    stripe_empty: bool,
    /// Concurrent products while seeding.
    #[arg(long, default_value_t = 32)]
    seed_concurrency: usize,
    /// Share of the products renamed in Stripe (as in the Dashboard) before the reconciliation.
    #[arg(long, default_value_t = 0.01)]
    drift: f64,
    /// Scan and count only (`dry_run`): no repairs.
    #[arg(long)]
    dry_run: bool,
    /// The worker process to measure (CPU, peak RSS).
    #[arg(long)]
    worker_pid: Option<u32>,
    /// How the reconciliation reads Stripe (`auto`: a scan, for a whole catalog).
    #[arg(long, value_enum, default_value_t = Method::Auto)]
    method: Method,
    /// Most Stripe reads per Stripe object (product or price) a scan may make, repairs not
    /// counted: 0.012 is the 0.03 per product at 1.5 prices each (the samples have 2).
    #[arg(long, default_value_t = 0.012)]
    target_scan_reads_per_object: f64,
    /// After the reconciliation (a scan, which sets the event cursor): one quiet events run, then
    /// the same share of other products renamed in Stripe, then an events run, judged against
    /// ⌈events / 100⌉ + 5 reads plus the repairs' requests.
    #[arg(long)]
    then_events: bool,
    /// Most Stripe requests allowed, as a multiple of the formula.
    #[arg(long, default_value_t = 1.05)]
    target_requests_ratio: f64,
    /// Most reconciliation history events per product.
    #[arg(long, default_value_t = 1.0)]
    target_events_per_product: f64,
    /// Largest worker peak RSS allowed, in MiB (with `--worker-pid`).
    #[arg(long, default_value_t = 100.0)]
    target_rss_mib: f64,
    /// The sandbox (its faults and request counter are sandbox-only).
    #[command(flatten)]
    stripe: common::settings::StripeSettings,
}

/// `--method`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Method {
    Auto,
    Scan,
    Ids,
}

/// The sandbox's request counter.
async fn sandbox_requests(http: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let stats: Value = http
        .get(format!("{base}/_sandbox/stats"))
        .send()
        .await?
        .error_for_status()
        .context("reading the sandbox's stats (is STRIPE_API_BASE the sandbox?)")?
        .json()
        .await?;
    stats["total_requests"]
        .as_u64()
        .context("stats without total_requests")
}

/// History events of the workflows `query` finds: (workflows, events).
async fn events(client: &Client, query: String) -> anyhow::Result<(u64, u64)> {
    let lengths: Vec<i64> = client
        .list_workflows(query, WorkflowListOptions::default())
        .map_ok(|w| w.history_length())
        .try_collect()
        .await?;
    Ok((
        lengths.len() as u64,
        lengths.iter().map(|&n| n.max(0) as u64).sum(),
    ))
}

/// Runs the benchmark (see the module docs).
pub(crate) async fn run(
    client: &Client,
    task_queue: &str,
    catalog: &Catalog,
    args: ReconcileBenchArgs,
) -> anyhow::Result<()> {
    anyhow::ensure!((0.0..=1.0).contains(&args.drift), "--drift is a fraction");
    anyhow::ensure!(
        !args.stripe_empty || args.dry_run,
        "--stripe-empty is for a --dry-run (an applying pass would create every product)"
    );
    let base = args.stripe.base();
    let http = reqwest::Client::new();
    let stripe = StripeClient::new(StripeConfig::from_settings(&args.stripe)?)?;
    let products = catalog.count_in_range(&IdRange::default()).await?.max(0) as u64;
    anyhow::ensure!(products > 0, "the catalog is empty: seed it first");

    if args.seed_stripe {
        let started = Instant::now();
        seed_stripe(catalog, &stripe, args.seed_concurrency).await?;
        eprintln!(
            "Stripe holds the catalog's {products} products ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }

    // Drift, and the formula's terms, page by page in the reconciliation's order.
    let every = if args.drift > 0.0 && !args.stripe_empty {
        (1.0 / args.drift).round().max(1.0) as u64
    } else {
        u64::MAX
    };
    let mut n = 0u64;
    let mut drifted = 0u64;
    let mut active = 0u64;
    let mut active_prices = 0u64;
    let mut lookups = 0u64;
    let mut pages = 0u64;
    let mut all_prices = 0u64;
    for_each_page(catalog, i64::from(MAX_PAGE_SIZE), async |page| {
        pages += 1;
        let mut k = 0u64;
        for product in page {
            let TransformOutput::Plan(plan) = transform(&product.id, Some(&product)) else {
                continue;
            };
            let SyncPlan::Upsert(desired) = *plan else {
                continue;
            };
            n += 1;
            if args.stripe_empty {
                continue;
            }
            all_prices += desired.prices.len() as u64;
            active += u64::from(desired.active);
            active_prices += desired.prices.len() as u64;
            if n.is_multiple_of(every) {
                rename_in_stripe(&http, &args, &product.id, "Edited in the Dashboard").await?;
                drifted += 1;
            } else {
                k += desired.prices.len().saturating_sub(1) as u64;
            }
        }
        lookups += k.div_ceil(10);
        Ok(())
    })
    .await?;
    let orphan_pages = active.div_ceil(100).max(1);
    // The extra-price phase: every active price of the account, 100 a page.
    let price_pages = active_prices.div_ceil(100).max(1);
    let ids_reads = pages + lookups + orphan_pages + price_pages;
    // A scan: every product and price of the account once, 100 a page, and the newest event
    // (where the next events run starts).
    let stripe_products = if args.stripe_empty { 0 } else { n };
    let scan_reads = stripe_products.div_ceil(100).max(1) + all_prices.div_ceil(100).max(1) + 1;
    // A repair reads the product's prices, the product expanded in them, again (it may run long
    // after the scan), then writes the one difference.
    let formula_for = |reads: u64| {
        if args.dry_run {
            (reads, reads)
        } else {
            (reads + 2 * drifted, reads + drifted)
        }
    };

    let id = format!("bench-reconcile-{}", chrono::Utc::now().format("%H%M%S"));
    let input = ReconcileInput {
        mode: if args.dry_run {
            ReconcileMode::DryRun
        } else {
            ReconcileMode::Apply
        },
        method: match args.method {
            Method::Auto => ReconcileMethod::Auto,
            Method::Scan => ReconcileMethod::Scan,
            Method::Ids => ReconcileMethod::Ids,
        },
        ..ReconcileInput::default()
    };
    let requests_before = sandbox_requests(&http, &base).await?;
    let usage_before = args.worker_pid.map(process_usage).transpose()?;
    let Finished {
        result,
        to_result: took,
        repairs_query,
        ..
    } = run_to_end(client, task_queue, &id, input).await?;
    let requests = sandbox_requests(&http, &base).await? - requests_before;
    let worker = match (args.worker_pid, usage_before) {
        (Some(pid), Some((cpu_before, _))) => {
            let (cpu_after, peak_kib) = process_usage(pid)?;
            Some((
                (cpu_after - cpu_before).as_secs_f64(),
                peak_kib as f64 / 1024.0,
            ))
        }
        _ => None,
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (runs, reconcile_events) = events(client, format!("WorkflowId = '{id}'")).await?;
    let (repairs, repair_events) = events(client, repairs_query).await?;

    let t = &result.totals;
    let scanned = result.method == ReconcileMethod::Scan;
    let (formula, lower_bound) = formula_for(if scanned { scan_reads } else { ids_reads });
    let ratio = requests as f64 / formula as f64;
    let reads = t.stripe_requests.saturating_sub(t.repair_stripe_requests) as f64;
    let reads_per_product = reads / products as f64;
    let objects = stripe_products + all_prices;
    let reads_per_object = reads / objects.max(1) as f64;
    // Reads per object are judged where Stripe holds objects (an empty one costs the formula's
    // minimum: one page of each list and the newest event).
    let judge_reads = scanned && objects > 0;
    let reads_pass = !judge_reads || reads_per_object <= args.target_scan_reads_per_object;
    let events_per_product = reconcile_events as f64 / products as f64;
    let requests_pass = ratio <= args.target_requests_ratio;
    let events_pass = events_per_product <= args.target_events_per_product;
    let rss_pass = worker.is_none_or(|(_, rss)| rss <= args.target_rss_mib);
    let expected_drift = if args.stripe_empty { n } else { drifted };
    let found_pass = t.drift.total() == expected_drift && t.scanned == products;
    let pass = requests_pass && events_pass && rss_pass && found_pass && reads_pass;
    println!(
        "{}",
        json!({
            "bench": "reconcile", "products": products, "mode": if args.dry_run { "dry_run" } else { "apply" },
            "drift_made": drifted, "drift_found": t.drift.total(), "repaired": t.repaired,
            "seconds": took.as_secs_f64(), "products_per_second": products as f64 / took.as_secs_f64(),
            "method": result.method.as_str(), "method_reason": result.method_reason,
            "reads_per_product": reads_per_product, "reads_per_object": reads_per_object,
            "reads_per_product_at_1_5_prices": reads_per_object * 2.5,
            "stripe_requests": requests, "formula": formula, "lower_bound": lower_bound,
            "requests_over_formula": ratio, "requests_over_lower_bound": requests as f64 / lower_bound as f64,
            "runs": runs, "reconcile_history_events": reconcile_events,
            "events_per_product": events_per_product,
            "repairs": repairs, "events_per_repair": if repairs > 0 { repair_events as f64 / repairs as f64 } else { 0.0 },
            "worker_cpu_seconds": worker.map(|w| w.0), "worker_peak_rss_mib": worker.map(|w| w.1),
            "targets": { "requests_over_formula": args.target_requests_ratio,
                         "scan_reads_per_object": args.target_scan_reads_per_object,
                         "events_per_product": args.target_events_per_product,
                         "worker_peak_rss_mib": args.target_rss_mib },
            "pass": pass,
        })
    );
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "reconcile: {products} products in {:.1} s ({:.0}/s), {runs} runs; drift made {drifted}, found {}, repaired {}: {}",
        took.as_secs_f64(),
        products as f64 / took.as_secs_f64(),
        t.drift.total(),
        t.repaired,
        verdict(found_pass)
    );
    println!(
        "           method {}: {}",
        result.method.as_str(),
        result.method_reason
    );
    println!(
        "           Stripe requests {requests} = {ratio:.3} × the formula ({formula}; lower bound {lower_bound}), target ≤ {}: {}",
        args.target_requests_ratio,
        verdict(requests_pass)
    );
    println!(
        "           {reads_per_product:.4} Stripe reads per product ({:.2} prices each), {reads_per_object:.5} per object = {:.4} per product at 1.5 prices each{}",
        all_prices as f64 / stripe_products.max(1) as f64,
        reads_per_object * 2.5,
        if judge_reads {
            format!(
                ", target ≤ {} per object: {}",
                args.target_scan_reads_per_object,
                verdict(reads_pass)
            )
        } else {
            String::new()
        }
    );
    println!(
        "           {reconcile_events} history events = {events_per_product:.3} per product, target ≤ {}: {}; {repairs} repairs",
        args.target_events_per_product,
        verdict(events_pass)
    );
    if let Some((cpu, rss)) = worker {
        println!(
            "           worker {cpu:.1} CPU s, peak RSS {rss:.1} MiB, target ≤ {} MiB: {}",
            args.target_rss_mib,
            verdict(rss_pass)
        );
    }
    anyhow::ensure!(pass, "the reconciliation missed a target");
    if args.then_events {
        incremental(client, task_queue, catalog, &http, &args, every).await?;
    }
    Ok(())
}

/// A reconciliation run to its end.
struct Finished {
    result: workflows::ReconcileResult,
    /// From the start to the reconciliation's result.
    to_result: Duration,
    /// From the start to the end of its last repair.
    to_end: Duration,
    /// The visibility query of the repairs it started (`ProductSync` runs since its start).
    repairs_query: String,
}

/// Starts a reconciliation and waits for its result, then for its repairs (they run on after
/// the parent's last page).
async fn run_to_end(
    client: &Client,
    task_queue: &str,
    id: &str,
    input: ReconcileInput,
) -> anyhow::Result<Finished> {
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    client
        .start_workflow(
            ReconcileCatalog::run,
            input,
            WorkflowStartOptions::new(task_queue, id).build(),
        )
        .await
        .context("starting the reconciliation")?;
    let result = client
        .get_workflow_handle::<ReconcileCatalog>(id)
        .get_result(WorkflowGetResultOptions::default())
        .await
        .context("the reconciliation's result")?;
    let to_result = started.elapsed();
    let repairs_query = format!(
        "WorkflowType = 'ProductSync' AND TaskQueue = '{task_queue}' AND StartTime >= '{}'",
        started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let running = format!("{repairs_query} AND ExecutionStatus = 'Running'");
    while client
        .count_workflows(running.clone(), Default::default())
        .await?
        .count()
        > 0
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Finished {
        result,
        to_result,
        to_end: started.elapsed(),
        repairs_query,
    })
}

/// `--then-events`: an events run after a scan, with `every`-th other product edited in Stripe.
async fn incremental(
    client: &Client,
    task_queue: &str,
    catalog: &Catalog,
    http: &reqwest::Client,
    args: &ReconcileBenchArgs,
    every: u64,
) -> anyhow::Result<()> {
    let base = args.stripe.base();
    let events = || ReconcileInput {
        method: ReconcileMethod::Events,
        ..ReconcileInput::default()
    };
    let stamp = chrono::Utc::now().format("%H%M%S");
    // The scan's own window of catalog updates is checked by a first, quiet run.
    let quiet = run_to_end(
        client,
        task_queue,
        &format!("bench-events-quiet-{stamp}"),
        events(),
    )
    .await?;
    let (quiet_took, quiet) = (quiet.to_end, quiet.result);
    println!(
        "events (quiet): {} s, {} events, {} catalog products checked, {} drift, method {}",
        quiet_took.as_secs_f64().round(),
        quiet.totals.events,
        quiet.totals.scanned,
        quiet.totals.drift.total(),
        quiet.method.as_str()
    );
    // Other products than the first round's: the middle of each stretch of `every`.
    let mut n = 0u64;
    let mut edited = 0u64;
    for_each_page(catalog, i64::from(MAX_PAGE_SIZE), async |page| {
        for product in page {
            let TransformOutput::Plan(plan) = transform(&product.id, Some(&product)) else {
                continue;
            };
            if !matches!(*plan, SyncPlan::Upsert(_)) {
                continue;
            }
            n += 1;
            if n % every == every / 2 {
                rename_in_stripe(http, args, &product.id, "Edited since the last run").await?;
                edited += 1;
            }
        }
        Ok(())
    })
    .await?;
    let before = sandbox_requests(http, &base).await?;
    let id = format!("bench-events-{stamp}");
    let Finished { result, to_end, .. } = run_to_end(client, task_queue, &id, events()).await?;
    let took = to_end.as_secs_f64();
    let requests = sandbox_requests(http, &base).await? - before;
    let (runs, history) = self::events(client, format!("WorkflowId = '{id}'")).await?;
    let t = &result.totals;
    let reads = t.stripe_requests.saturating_sub(t.repair_stripe_requests);
    let bound = t.events.div_ceil(100) + 5;
    let pass = result.method == ReconcileMethod::Events
        && t.drift.total() == edited
        && t.repaired == edited
        && reads <= bound
        && requests == t.stripe_requests;
    println!(
        "{}",
        json!({
            "bench": "reconcile-events", "products": n, "edited": edited,
            "events": t.events, "drift_found": t.drift.total(), "repaired": t.repaired,
            "seconds": took, "stripe_requests": requests, "reads": reads,
            "repair_requests": t.repair_stripe_requests, "read_bound": bound,
            "runs": runs, "history_events": history, "pass": pass,
        })
    );
    println!(
        "events: {n} products, {edited} edited in Stripe; {} events read in {:.1} s; drift found {}, repaired {}; Stripe reads {reads} (bound ⌈events/100⌉ + 5 = {bound}) + {} by repairs ({:.2} a repair): {}",
        t.events,
        took,
        t.drift.total(),
        t.repaired,
        t.repair_stripe_requests,
        t.repair_stripe_requests as f64 / t.repaired.max(1) as f64,
        if pass { "PASS" } else { "FAIL" }
    );
    anyhow::ensure!(pass, "the events run missed a target");
    Ok(())
}
