//! `starter`: the operator's CLI. Seeds and edits the catalog, starts syncs (signal-with-start, so
//! a running sync picks the change up instead of racing it) and follows them to the end.
//! It talks to Temporal and the catalog. `verify` reads Stripe with requests of its own, not the
//! sync's client, so that it checks the sync instead of repeating it; `adopt`, which writes, uses
//! the sync's client and its signed idempotency keys.

mod adopt;
mod catalog_cmd;
mod changes;
mod exit;
mod import;
mod progress;
mod queue;
mod reconcile;
mod rollout;
mod schedule;
mod status;
mod sync;
mod verify;
mod webhooks;

use std::process::ExitCode;

use catalog::Catalog;
use catalog_cmd::{CatalogCommand, catalog_command};
use clap::{Parser, Subcommand};
use common::settings::CaptureMode;
use common::temporal::WhenUnreachable;
use exit::Exit;
use sync::{Products, Syncs, chosen_ids, results, signal};
use temporalio_client::Client;

/// catalog-sync CLI. Temporal connection settings come from `TEMPORAL_ADDRESS`,
/// `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY` or a `temporal.toml` profile.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    catalog: common::settings::CatalogArgs,
    #[command(flatten)]
    payload: common::settings::PayloadSettings,
    #[command(flatten)]
    log: common::settings::LogSettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Default)]
struct MigrateArgs {
    /// Change nothing: check that this build can run on the database (what the worker and relay
    /// check at start) and exit 0 if it can, 1 saying what is missing if not. Needs no right to
    /// create tables: an init container that waits for the migration Job.
    #[arg(long)]
    check: bool,
    /// With `--check`: wait up to this many seconds for the database and the migration, checking
    /// every 2 seconds.
    #[arg(long, value_name = "SECONDS", requires = "check", default_value_t = 0)]
    wait: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Create or upgrade catalog-sync's own tables (and the built-in catalog tables); idempotent,
    /// prints what it did. The other commands, the worker and the relay refuse a database that
    /// needs it.
    Migrate(MigrateArgs),
    /// Manage the catalog database.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Change capture on your own (mapped) tables: triggers that append every change to
    /// catalog-sync's outbox in the writer's transaction.
    #[command(subcommand)]
    Capture(CaptureCommand),
    /// Sync products now: one ProductSync per product, started or signalled.
    Sync {
        /// Catalog ids to sync.
        ids: Vec<String>,
        /// Sync every product in the catalog.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Wait for the syncs and print their outcomes.
        #[arg(long)]
        wait: bool,
        /// Requests to Temporal in flight at once. The syncs go at Stripe's pace whatever this
        /// is (8 starts some hundred syncs a second), and more starts at once slow the server the
        /// workers need: a backfill under Stripe's live limits measured 0.99 of Stripe's pace at
        /// 8, 0.93 at 32 and 0.89 at 64 on a 2-core dev server (BENCHMARKS.md, issue 37).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// With `--wait`: one JSON object per product (id, outcome, version, writes, reason).
        #[arg(long, requires = "wait")]
        json: bool,
    },
    /// Wait for the latest sync of each product (started by the relay, a webhook or `sync`) and
    /// print its outcome, without starting anything.
    Results {
        /// Catalog ids.
        ids: Vec<String>,
        /// Every product in the catalog.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Requests to Temporal in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// One JSON object per product (id, outcome, version, writes, reason).
        #[arg(long)]
        json: bool,
    },
    /// Reconcile the catalog with Stripe now (or a part of it) and follow the run.
    Reconcile(reconcile::ReconcileArgs),
    /// Manage the Temporal Schedule of periodic reconciliations.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Register catalog-sync's search attributes (CatalogProductId, SyncOutcome, DriftKind) in the
    /// namespace; idempotent.
    Setup,
    /// Where a versioned rollout stands: the Worker Deployment's routing, whether each task queue
    /// has it yet (`--wait` waits), and each version: current, ramping, draining or drained.
    Rollout(rollout::RolloutArgs),
    /// Is catalog-sync keeping up? Backlog, running syncs, failed and invalid products, the last
    /// reconciliation, relay lag. Exits non-zero when unhealthy.
    Status(status::StatusArgs),
    /// Compare the whole catalog with Stripe through separate reads and report every difference
    /// (exit code 1 on any).
    Verify(verify::VerifyArgs),
    /// A product's sync history from the audit ledger (outcomes, writes, Stripe request ids).
    Audit(changes::AuditArgs),
    /// Catalog changes waiting to be relayed to Temporal, and those it refused.
    Outbox(changes::OutboxArgs),
    /// Claim for this catalog the Stripe products catalog-sync made before catalog identities
    /// (only those this catalog has a row for); until then nothing touches them.
    Adopt(adopt::AdoptArgs),
    /// Hand the shop's existing Stripe products over to catalog-sync: bind each row naming one
    /// (the mapping's `stripe_id`), keep its matching prices, then sync the bound products.
    /// `--dry-run` prints the plan.
    Import(import::ImportArgs),
    /// The Stripe webhook endpoint the relay receives Dashboard edits at.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Billing Meters, which metered prices name (`prices.meter`).
    #[command(subcommand)]
    Meters(webhooks::MetersCommand),
    /// Archives the live archive guard held back (more than the budget per window): list them,
    /// or confirm them.
    #[command(subcommand)]
    Archives(ArchivesCommand),
}

#[derive(Subcommand)]
enum CaptureCommand {
    /// Set capture up: the capture triggers on the mapped product and price tables, or with
    /// CATALOG_SYNC_CAPTURE=logical the publication, the replication slot and the replica
    /// identities the log needs.
    Install {
        /// Print the SQL for review instead of running it.
        #[arg(long)]
        print: bool,
        /// How the relay captures (its CATALOG_SYNC_CAPTURE).
        #[arg(long, env = "CATALOG_SYNC_CAPTURE", value_enum, default_value_t = CaptureMode::Triggers)]
        capture: CaptureMode,
    },
    /// Remove it.
    Uninstall {
        /// Print the SQL instead of running it.
        #[arg(long)]
        print: bool,
        /// How the relay captures (its CATALOG_SYNC_CAPTURE).
        #[arg(long, env = "CATALOG_SYNC_CAPTURE", value_enum, default_value_t = CaptureMode::Triggers)]
        capture: CaptureMode,
    },
}

#[derive(Subcommand)]
enum ArchivesCommand {
    /// The archives waiting for confirmation, with the reason.
    List {
        /// Most listed.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per archive.
        #[arg(long)]
        json: bool,
    },
    /// Confirm held archives and start the syncs that make them.
    Confirm {
        /// Catalog ids to confirm.
        ids: Vec<String>,
        /// Confirm every held archive.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Wait for the syncs and print their outcomes.
        #[arg(long)]
        wait: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // `starter … | head` ends quietly, as other command-line tools do, instead of panicking on
    // the closed pipe.
    sigpipe::reset();
    common::tls::install_ring();
    let cli = Cli::parse();
    common::telemetry::init_tracing(&cli.log, "warn", true);
    match run(cli).await {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("Error: {e:?}");
            Exit::Failed.into()
        }
    }
}

/// Runs the command; `Err` is a command that could not do its work ([`Exit::Failed`]).
async fn run(cli: Cli) -> anyhow::Result<Exit> {
    common::settings::environment::check(std::env::vars())?;
    let mapping = catalog::mapping::from_config(&cli.catalog.config_file()?)?;
    let open_catalog = || async {
        let url = catalog::required_url(cli.catalog.database_url.as_deref())?;
        Ok::<_, anyhow::Error>(Catalog::connect_with(url, mapping.as_ref()).await?)
    };
    match cli.command {
        Command::Migrate(MigrateArgs { check: true, wait }) => {
            let url = catalog::required_url(cli.catalog.database_url.as_deref())?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
            let mut said = None;
            loop {
                match Catalog::connect_with(url, mapping.as_ref()).await {
                    Ok(_) => {
                        println!(
                            "schema ready for this build (version {})",
                            catalog::SCHEMA_VERSION
                        );
                        return Ok(Exit::Ok);
                    }
                    // A database coming up or a migration on its way clears by waiting; a wrong
                    // setting or a schema a newer build contracted does not.
                    Err(
                        e @ (catalog::CatalogError::Unavailable(_)
                        | catalog::CatalogError::Unreachable { .. }
                        | catalog::CatalogError::Schema(_)),
                    ) if std::time::Instant::now() < deadline => {
                        let now = e.to_string();
                        if said.as_ref() != Some(&now) {
                            eprintln!("waiting up to {wait} s: {now}");
                            said = Some(now);
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Command::Migrate(_) | Command::Catalog(CatalogCommand::Migrate) => {
            // A mapping is checked first: a wrong one stops here, before anything is created.
            let url = catalog::required_url(cli.catalog.database_url.as_deref())?;
            let catalog = Catalog::open_mapped(url, mapping.as_ref()).await?;
            println!("{}", catalog.migrate(catalog.tables()).await?);
            Ok(Exit::Ok)
        }
        Command::Capture(command) => {
            let catalog = open_catalog().await?;
            let (action, print, capture) = match command {
                CaptureCommand::Install { print, capture } => {
                    (catalog::CaptureAction::Install, print, capture)
                }
                CaptureCommand::Uninstall { print, capture } => {
                    (catalog::CaptureAction::Uninstall, print, capture)
                }
            };
            anyhow::ensure!(
                !(capture == CaptureMode::Polling && action == catalog::CaptureAction::Install),
                "CATALOG_SYNC_CAPTURE=polling: polling capture needs nothing installed (the relay \
                 reads the mapped updated_at columns); `capture install` is for triggers or \
                 CATALOG_SYNC_CAPTURE=logical"
            );
            let logical = capture == CaptureMode::Logical;
            if print && logical {
                println!("{}", catalog.logical_sql(action).await?.join("\n"));
            } else if print {
                print!("{}", catalog.capture_sql(action)?);
            } else {
                let sql = if logical {
                    catalog.logical_capture(action).await?
                } else {
                    catalog.capture(action).await?
                };
                print!("{sql}");
                println!(
                    "capture {}: done",
                    match action {
                        catalog::CaptureAction::Install => "installed",
                        catalog::CaptureAction::Uninstall => "removed",
                    }
                );
            }
            Ok(Exit::Ok)
        }
        Command::Catalog(cmd) => catalog_command(&open_catalog().await?, cmd).await,
        Command::Sync {
            ids,
            all,
            wait,
            concurrency,
            json,
        } => {
            let ids = chosen_ids(ids, all, open_catalog).await?;
            let syncs = Syncs::of(
                open_catalog().await?,
                connect(&cli.payload).await?,
                &cli.catalog.task_queue,
            )
            .await?;
            let signalled = signal(&syncs, ids, concurrency.max(1), json).await?;
            if !wait {
                return Ok(signalled.exit());
            }
            let stranded = signalled.exit();
            let exit = results(
                &syncs,
                Products::Signalled(signalled.started),
                concurrency.max(1),
                json,
            )
            .await?;
            Ok(exit.worst(stranded))
        }
        Command::Results {
            ids,
            all,
            concurrency,
            json,
        } => {
            let ids = chosen_ids(ids, all, open_catalog).await?;
            let syncs = Syncs::of(
                open_catalog().await?,
                connect(&cli.payload).await?,
                &cli.catalog.task_queue,
            )
            .await?;
            // The runs waited for are on the workers' queue: a queue nobody polls would hang.
            queue::ensure_polled(&syncs.client, &cli.catalog.task_queue).await?;
            results(&syncs, Products::Named(ids), concurrency.max(1), json).await
        }
        Command::Reconcile(args) => {
            let catalog = open_catalog().await?.identity().await?;
            reconcile::run(
                &connect(&cli.payload).await?,
                &catalog,
                &cli.catalog.task_queue,
                args,
            )
            .await
        }
        Command::Schedule(cmd) => {
            let catalog = open_catalog().await?.identity().await?;
            schedule::run(
                &connect(&cli.payload).await?,
                &catalog,
                &cli.catalog.task_queue,
                cmd,
            )
            .await
            .map(|()| Exit::Ok)
        }
        Command::Setup => status::setup(&connect(&cli.payload).await?)
            .await
            .map(|()| Exit::Ok),
        Command::Status(args) => {
            let (client, catalog) = (connect(&cli.payload).await?, open_catalog().await?);
            status::status(&client, &catalog, &cli.catalog.task_queue, args).await
        }
        Command::Rollout(args) => {
            rollout::run(&connect(&cli.payload).await?, &cli.catalog.task_queue, args).await
        }
        Command::Verify(args) => verify::run(&open_catalog().await?, args).await,
        Command::Audit(args) => changes::audit(&open_catalog().await?, args)
            .await
            .map(|()| Exit::Ok),
        Command::Outbox(args) => changes::outbox(&open_catalog().await?, args)
            .await
            .map(|()| Exit::Ok),
        Command::Adopt(args) => adopt::run(&open_catalog().await?, args)
            .await
            .map(|()| Exit::Ok),
        Command::Import(args) => {
            let imported = import::run(&open_catalog().await?, args).await?;
            if imported.bound.is_empty() {
                return Ok(imported.exit);
            }
            // The syncs finish the hand-over: fields, new prices, the other prices archived.
            let syncs = Syncs::of(
                open_catalog().await?,
                connect(&cli.payload).await?,
                &cli.catalog.task_queue,
            )
            .await?;
            let signalled = signal(&syncs, imported.bound, 8, false).await?;
            let stranded = signalled.exit();
            let exit = results(&syncs, Products::Signalled(signalled.started), 8, false).await?;
            Ok(exit.worst(stranded).worst(imported.exit))
        }
        Command::Webhooks(cmd) => webhooks::run(&open_catalog().await?, cmd)
            .await
            .map(|()| Exit::Ok),
        Command::Meters(cmd) => webhooks::meters(cmd).await.map(|()| Exit::Ok),
        Command::Archives(ArchivesCommand::List { limit, json }) => {
            let held = open_catalog().await?.held_archives(limit).await?;
            for h in &held {
                let state = if h.confirmed { "confirmed" } else { "held" };
                if json {
                    let line = serde_json::json!({
                        "product_id": h.product_id,
                        "state": state,
                        "held_at": h.held_at,
                        "reason": h.reason,
                    });
                    println!("{line}");
                    continue;
                }
                println!(
                    "{state:<10}{} (since {}): {}",
                    h.product_id,
                    h.held_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    h.reason
                );
            }
            if !json {
                println!("{} archives held or confirmed", held.len());
            }
            Ok(Exit::Ok)
        }
        Command::Archives(ArchivesCommand::Confirm { ids, all, wait }) => {
            anyhow::ensure!(all || !ids.is_empty(), "name the products, or pass --all");
            let catalog = open_catalog().await?;
            let confirmed = catalog
                .confirm_held_archives(if all { None } else { Some(&ids) })
                .await?;
            for id in ids.iter().filter(|id| !confirmed.contains(id)) {
                println!("not held  {id}");
            }
            println!("confirmed {} archives", confirmed.len());
            if confirmed.is_empty() {
                return Ok(Exit::Ok);
            }
            let syncs = Syncs::of(
                catalog,
                connect(&cli.payload).await?,
                &cli.catalog.task_queue,
            )
            .await?;
            let signalled = signal(&syncs, confirmed, 32, false).await?;
            if !wait {
                return Ok(signalled.exit());
            }
            let stranded = signalled.exit();
            let exit = results(&syncs, Products::Signalled(signalled.started), 32, false).await?;
            Ok(exit.worst(stranded))
        }
    }
}

/// Inputs, signals and results are encrypted and decrypted as the workers do theirs.
async fn connect(payload: &common::settings::PayloadSettings) -> anyhow::Result<Client> {
    Ok(common::temporal::connect(payload, WhenUnreachable::Fail)
        .await?
        .0)
}

common::test_flags_read_listed_variables!(super::Cli);
