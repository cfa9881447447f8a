//! `starter`: the operator's CLI. Seeds and edits the catalog, starts syncs (signal-with-start, so
//! a running sync picks the change up instead of racing it) and follows them to the end.
//! It talks to Temporal and the catalog. `verify` reads Stripe with requests of its own, not the
//! sync's client, so that it checks the sync instead of repeating it; `adopt`, which writes, uses
//! the sync's client and its signed idempotency keys.

mod adopt;
mod changes;
mod exit;
mod queue;
mod reconcile;
mod schedule;
mod status;
mod verify;
mod webhooks;

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use catalog::Catalog;
use clap::{Parser, Subcommand};
use common::temporal::WhenUnreachable;
use exit::Exit;
use futures::{StreamExt, TryStreamExt};
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::{ProductChanged, ProductSync, ProductSyncInput, ProductSyncResult, SyncOutcome};

/// catalog-sync CLI. Temporal connection settings come from `TEMPORAL_ADDRESS`,
/// `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY` or a `temporal.toml` profile.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Catalog database URL (PostgreSQL takes libpq's `sslmode` and `sslrootcert`).
    #[arg(
        long,
        global = true,
        env = "CATALOG_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// The config file (TOML): its `[catalog]` section maps your own product and price tables
    /// (docs/own-catalog.md); without one, the built-in tables.
    #[arg(long, global = true, env = "CATALOG_SYNC_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Task queue of the workers.
    #[arg(long, global = true, env = "CATALOG_SYNC_TASK_QUEUE", default_value = workflows::TASK_QUEUE)]
    task_queue: String,
    #[command(flatten)]
    payload: common::settings::PayloadSettings,
    #[command(flatten)]
    log: common::settings::LogSettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or upgrade catalog-sync's own tables (and the built-in catalog tables); idempotent,
    /// prints what it did. The other commands, the worker and the relay refuse a database that
    /// needs it.
    Migrate,
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
        /// Requests to Temporal in flight at once.
        #[arg(long, default_value_t = 32)]
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
    /// Add the capture triggers to the mapped product and price tables.
    Install {
        /// Print the SQL for review instead of running it.
        #[arg(long)]
        print: bool,
    },
    /// Remove them.
    Uninstall {
        /// Print the SQL instead of running it.
        #[arg(long)]
        print: bool,
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

#[derive(Subcommand)]
enum CatalogCommand {
    /// The same as `starter migrate`.
    Migrate,
    /// Write deterministic sample products (sku-000001 …).
    Seed {
        /// How many products.
        #[arg(long, default_value_t = 100)]
        products: usize,
        /// Seed of the generator: the same seed gives the same catalog.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A Billing Meter id (`mtr_…`, from `starter meters ensure`): with it, some samples get
        /// a metered usage price on that meter.
        #[arg(long)]
        meter: Option<String>,
        /// Prices per product on average, from 1.0 to 2.0 (the samples have 2 each): some
        /// samples keep only their first price, spread evenly (1.5: every odd-numbered one).
        #[arg(long, value_parser = mean_prices)]
        prices_per_product: Option<f64>,
    },
    /// Print the catalog's identity: what its workflow ids (`{identity}:product-sync:{id}`) and
    /// schedule id (`{identity}:reconcile`) start with, and what its Stripe objects carry in
    /// `catalog_sync_catalog`. A database whose identity is bound to another (a restored copy)
    /// is refused everywhere until one of the flags decides.
    Identity {
        /// This database is another catalog (e.g. staging restored from production's backup):
        /// give it a new identity and write key; it claims nothing the old identity wrote.
        #[arg(long, conflicts_with = "moved")]
        new: bool,
        /// This database is the same catalog, moved (restored in place, a new server,
        /// pg_upgrade): bind its identity to where it is now.
        #[arg(long)]
        moved: bool,
    },
    /// Print one product as JSON.
    Show {
        /// Catalog id.
        id: String,
    },
    /// Change a product as an application would (the version grows).
    Edit {
        /// Catalog id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New amount (minor units) of the default price.
        #[arg(long)]
        amount: Option<i64>,
        /// Mark active or inactive.
        #[arg(long)]
        active: Option<bool>,
    },
    /// Soft-delete a product (the sync archives it in Stripe).
    Delete {
        /// Catalog id.
        id: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // `starter … | head` ends quietly, as other command-line tools do, instead of panicking on
    // the closed pipe.
    sigpipe::reset();
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
    let mapping = catalog::mapping::load(cli.config.as_deref())?;
    let open_catalog = || async {
        let url = catalog::required_url(cli.database_url.as_deref())?;
        Ok::<_, anyhow::Error>(Catalog::connect_with(url, mapping.as_ref()).await?)
    };
    match cli.command {
        Command::Migrate | Command::Catalog(CatalogCommand::Migrate) => {
            // A mapping is checked first: a wrong one stops here, before anything is created.
            let url = catalog::required_url(cli.database_url.as_deref())?;
            let catalog = Catalog::open_mapped(url, mapping.as_ref()).await?;
            println!("{}", catalog.migrate(catalog.tables()).await?);
            Ok(Exit::Ok)
        }
        Command::Capture(command) => {
            let catalog = open_catalog().await?;
            let (action, print) = match command {
                CaptureCommand::Install { print } => (catalog::CaptureAction::Install, print),
                CaptureCommand::Uninstall { print } => (catalog::CaptureAction::Uninstall, print),
            };
            if print {
                print!("{}", catalog.capture_sql(action)?);
            } else {
                let sql = catalog.capture(action).await?;
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
        Command::Catalog(cmd) => catalog_command(&open_catalog().await?, cmd)
            .await
            .map(|()| Exit::Ok),
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
                &cli.task_queue,
            )
            .await?;
            let signalled = signal(&syncs, ids, concurrency.max(1), json).await?;
            if !wait {
                return Ok(signalled.exit());
            }
            let stranded = signalled.exit();
            let exit = results(&syncs, signalled.started, concurrency.max(1), json).await?;
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
                &cli.task_queue,
            )
            .await?;
            // The runs waited for are on the workers' queue: a queue nobody polls would hang.
            queue::ensure_polled(&syncs.client, &cli.task_queue).await?;
            results(&syncs, ids, concurrency.max(1), json).await
        }
        Command::Reconcile(args) => {
            let catalog = open_catalog().await?.identity().await?;
            reconcile::run(
                &connect(&cli.payload).await?,
                &catalog,
                &cli.task_queue,
                args,
            )
            .await
        }
        Command::Schedule(cmd) => {
            let catalog = open_catalog().await?.identity().await?;
            schedule::run(
                &connect(&cli.payload).await?,
                &catalog,
                &cli.task_queue,
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
            status::status(&client, &catalog, &cli.task_queue, args).await
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
            let syncs = Syncs::of(catalog, connect(&cli.payload).await?, &cli.task_queue).await?;
            let signalled = signal(&syncs, confirmed, 32, false).await?;
            if !wait {
                return Ok(signalled.exit());
            }
            let stranded = signalled.exit();
            let exit = results(&syncs, signalled.started, 32, false).await?;
            Ok(exit.worst(stranded))
        }
    }
}

/// Where one catalog's product syncs run: the Temporal client, the catalog's identity (its syncs'
/// workflow ids carry it) and the workers' task queue.
struct Syncs {
    client: Client,
    catalog: String,
    task_queue: String,
}

impl Syncs {
    async fn of(catalog: Catalog, client: Client, task_queue: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            catalog: catalog.identity().await?,
            task_queue: task_queue.to_string(),
        })
    }

    /// The product's sync id in this catalog.
    fn id(&self, product_id: &str) -> String {
        workflows::product_sync_id(&self.catalog, product_id)
    }

    /// The id of the product's latest sync: its scoped id, or its legacy id on this queue while
    /// the product has synced only under that (a deployment moving to catalog-scoped ids).
    async fn latest_id(&self, product_id: &str) -> anyhow::Result<String> {
        use common::temporal::latest_task_queue;
        let scoped = self.id(product_id);
        if latest_task_queue(&self.client, &scoped).await?.is_some() {
            return Ok(scoped);
        }
        let legacy = workflows::legacy_product_sync_id(product_id);
        let legacy_queue = latest_task_queue(&self.client, &legacy).await?;
        let legacy_ours = legacy_queue.as_deref() == Some(self.task_queue.as_str());
        Ok(if legacy_ours { legacy } else { scoped })
    }
}

/// Inputs, signals and results are encrypted and decrypted as the workers do theirs.
async fn connect(payload: &common::settings::PayloadSettings) -> anyhow::Result<Client> {
    Ok(common::temporal::connect(payload, WhenUnreachable::Fail)
        .await?
        .0)
}

/// The ids named, or every id of the catalog with `--all`; at least one.
async fn chosen_ids<F, Fut>(
    ids: Vec<String>,
    all: bool,
    open_catalog: F,
) -> anyhow::Result<Vec<String>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Catalog>>,
{
    let ids = if all {
        all_ids(&open_catalog().await?).await?
    } else {
        ids
    };
    anyhow::ensure!(!ids.is_empty(), "name the products, or pass --all");
    Ok(ids)
}

async fn all_ids(catalog: &Catalog) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    loop {
        let page = catalog
            .product_ids(ids.last().map_or("", String::as_str), 1000)
            .await?;
        if page.is_empty() {
            return Ok(ids);
        }
        ids.extend(page);
    }
}

/// `--prices-per-product`: a mean from 1.0 to 2.0.
fn mean_prices(arg: &str) -> Result<f64, String> {
    match arg.parse::<f64>() {
        Ok(mean) if (1.0..=2.0).contains(&mean) => Ok(mean),
        _ => Err(format!(
            "{arg:?} is not a mean from 1.0 to 2.0 (the samples have 1 or 2 prices each)"
        )),
    }
}

async fn catalog_command(catalog: &Catalog, cmd: CatalogCommand) -> anyhow::Result<()> {
    match cmd {
        CatalogCommand::Migrate => unreachable!("handled before the catalog is opened"),
        CatalogCommand::Seed {
            products,
            seed,
            meter,
            prices_per_product,
        } => {
            for chunk_start in (1..=products).step_by(1000) {
                let chunk: Vec<_> = (chunk_start..=(chunk_start + 999).min(products))
                    .map(|n| {
                        let mut product = catalog::seed::sample_product(n, seed);
                        if let Some(mean) = prices_per_product {
                            product = catalog::seed::with_mean_prices(product, n, mean);
                        }
                        match &meter {
                            Some(meter) => catalog::seed::with_usage_price(product, n, meter),
                            None => product,
                        }
                    })
                    .collect();
                catalog.save_products(&chunk).await?;
            }
            println!(
                "seeded {products} products (seed {seed}); catalog holds {}",
                catalog.count_products().await?
            );
        }
        CatalogCommand::Identity { new, moved } => {
            let decision = match (new, moved) {
                (true, _) => Some(catalog::IdentityDecision::New),
                (_, true) => Some(catalog::IdentityDecision::Moved),
                _ => None,
            };
            match decision {
                None => println!("{}", catalog.identity().await?),
                Some(decision) => {
                    let identity = catalog.decide_identity(decision).await?;
                    match decision {
                        catalog::IdentityDecision::New => eprintln!(
                            "a new catalog: identity {identity}, with a new write key; the Stripe \
                             products of the database it was copied from are another catalog's \
                             to it now"
                        ),
                        catalog::IdentityDecision::Moved => eprintln!(
                            "the same catalog: identity {identity}, bound to this database now"
                        ),
                    }
                    println!("{identity}");
                }
            }
        }
        CatalogCommand::Show { id } => match catalog.fetch_product(&id).await? {
            Some(p) => println!("{}", serde_json::to_string_pretty(&p)?),
            None => anyhow::bail!("no product {id} in the catalog"),
        },
        CatalogCommand::Edit {
            id,
            name,
            description,
            amount,
            active,
        } => {
            let mut p = catalog
                .fetch_product(&id)
                .await?
                .with_context(|| format!("no product {id}"))?;
            if let Some(v) = name {
                p.name = v;
            }
            if let Some(v) = description {
                p.description = Some(v);
            }
            if let Some(v) = active {
                p.active = v;
            }
            if let Some(v) = amount {
                let max = domain::limits::MAX_AMOUNT;
                anyhow::ensure!(
                    (0..=max).contains(&v),
                    "--amount must be between 0 and {max} minor units (Stripe's limit), got {v}"
                );
                p.prices
                    .first_mut()
                    .context("the product has no price to change")?
                    .unit_amount = v;
            }
            let before = p.version;
            catalog.save_product(&p).await?;
            let version = catalog.fetch_product(&id).await?.map_or(0, |p| p.version);
            if version == before {
                println!("{id} is unchanged at version {version}: the edit changes nothing");
            } else {
                println!("{id} is now at version {version}");
            }
        }
        CatalogCommand::Delete { id } => {
            if !catalog.soft_delete(&id).await? {
                anyhow::bail!("no live product {id}");
            }
            println!("{id} soft-deleted");
        }
    }
    Ok(())
}

/// The progress bar of `starter sync`.
fn progress(total: usize, what: &str) -> indicatif::ProgressBar {
    let bar = progress_bar(total as u64);
    bar.set_message(format!("{what:>10}"));
    bar
}

/// How often a long operation prints a progress line when stderr is not a terminal.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A progress bar on stderr; the caller sets (and pads) its message. On a terminal it is drawn;
/// elsewhere (a CI log, a pipe) a line with the same figures is printed every few seconds until
/// it finishes, so a long operation never looks hung.
pub(crate) fn progress_bar(total: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    if !std::io::stderr().is_terminal() {
        let watched = bar.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if watched.is_finished() {
                    return;
                }
                eprintln!("{}", progress_line(&watched));
            }
        });
    }
    bar
}

/// `finished 509/2005 (24.1/s, eta 1m 2s)`: the bar's figures as one line (`looked at 300
/// (12.0/s)` when the total is not known).
fn progress_line(bar: &indicatif::ProgressBar) -> String {
    let (done, total) = (bar.position(), bar.length().unwrap_or_default());
    if total == 0 {
        return format!("{} {done} ({:.1}/s)", bar.message().trim(), bar.per_sec());
    }
    let rate = bar.per_sec();
    let eta = if rate > 0.0 && total > done {
        humantime::format_duration(std::time::Duration::from_secs(
            ((total - done) as f64 / rate) as u64,
        ))
        .to_string()
    } else {
        "-".into()
    };
    format!(
        "{} {done}/{total} ({rate:.1}/s, eta {eta})",
        bar.message().trim()
    )
}

/// What `signal` did: the products whose sync now runs on the task queue, and those whose
/// running sync was found on another queue (the signal reached that run, not this queue's
/// workers).
struct Signalled {
    started: Vec<String>,
    stranded: Vec<(String, String)>,
}

impl Signalled {
    /// Stranded products did not sync.
    fn exit(&self) -> Exit {
        if self.stranded.is_empty() {
            Exit::Ok
        } else {
            Exit::NotSynced
        }
    }
}

/// Signal-with-start of each product's sync on `task_queue`, refused when no worker polls it;
/// a product whose sync runs on another queue is reported stranded, not signalled.
/// With `json`, stranded products are JSON lines as `results` prints them, and the summary goes
/// to stderr.
async fn signal(
    syncs: &Syncs,
    ids: Vec<String>,
    concurrency: usize,
    json: bool,
) -> anyhow::Result<Signalled> {
    let (client, task_queue) = (&syncs.client, syncs.task_queue.as_str());
    queue::ensure_polled(client, task_queue).await?;
    let total = ids.len();
    let bar = &progress(total, "signalled");
    let signalled: Vec<(String, String)> = futures::stream::iter(ids)
        .map(|id| async move {
            let workflow_id = syncs.id(&id);
            // A sync already running on another queue would get the signal, and this queue's
            // workers would never see it: say so instead of signalling it.
            let running = common::temporal::running_task_queue(client, &workflow_id)
                .await
                .with_context(|| format!("describing the sync of {id}"))?;
            if let Some(run_queue) = running.filter(|q| q != task_queue) {
                bar.inc(1);
                return anyhow::Ok((id, run_queue));
            }
            client
                .signal_with_start_workflow(
                    ProductSync::run,
                    ProductSyncInput {
                        catalog_id: id.clone(),
                        ..Default::default()
                    },
                    ProductSync::product_changed,
                    ProductChanged {
                        catalog_version: None,
                        source: "starter".into(),
                    },
                    WorkflowStartOptions::new(task_queue, workflow_id).build(),
                )
                .await
                .with_context(|| format!("starting the sync of {id}"))?;
            bar.inc(1);
            anyhow::Ok((id, task_queue.to_string()))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    let (started, mut stranded): (Vec<_>, Vec<_>) = signalled
        .into_iter()
        .partition(|(_, run_queue)| run_queue == task_queue);
    stranded.sort();
    for (id, run_queue) in &stranded {
        let reason = format!(
            "its sync {} runs on task queue {run_queue}, not {task_queue}, where this queue's \
             workers never see it: not signalled. End it (`temporal workflow terminate \
             --workflow-id {}`) and sync again",
            syncs.id(id),
            syncs.id(id),
        );
        if json {
            let line = serde_json::json!({
                "product_id": id, "outcome": "stranded", "reason": reason,
            });
            println!("{line}");
        } else {
            println!("{:<OUTCOME_WIDTH$} {id}: {reason}", "stranded");
        }
    }
    let summary = format!(
        "signalled {} product syncs on task queue {task_queue}{}",
        started.len(),
        if stranded.is_empty() {
            String::new()
        } else {
            format!(", {} stranded on other queues", stranded.len())
        }
    );
    if json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok(Signalled {
        started: started.into_iter().map(|(id, _)| id).collect(),
        stranded,
    })
}

/// Width of the outcome column: `unchanged` fits, longer outcomes keep one space before the id.
const OUTCOME_WIDTH: usize = 9;

/// Waits for the latest sync of each product and prints the outcomes; the exit code is the
/// worst of them ([`Exit::of_outcome`]).
async fn results(
    syncs: &Syncs,
    started: Vec<String>,
    concurrency: usize,
    json: bool,
) -> anyhow::Result<Exit> {
    let (client, task_queue) = (&syncs.client, syncs.task_queue.as_str());
    let total = started.len();
    let bar = &progress(total, "finished");
    // The results are fetched a few at a time, in id order, while syncs finish in any order: the
    // count fetched lags the count finished. The syncs that closed on the queue since now (one
    // count every 2 s) keep the bar and its ETA honest.
    let closed = closed_syncs(client, task_queue, total, bar.clone());
    let fetched = &std::sync::atomic::AtomicU64::new(0);
    let results: Vec<(String, anyhow::Result<ProductSyncResult>)> = futures::stream::iter(started)
        .map(|id| async move {
            let result = match syncs.latest_id(&id).await {
                Ok(workflow_id) => client
                    .get_workflow_handle::<ProductSync>(workflow_id)
                    .get_result(WorkflowGetResultOptions::default())
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            let done = fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            raise(bar, done);
            (id, result)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    closed.abort();
    bar.finish_and_clear();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut exit = Exit::Ok;
    let mut sorted = results;
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, result) in &sorted {
        let (outcome, detail) = match result {
            Ok(r) => {
                exit = exit.worst(Exit::of_outcome(r.outcome));
                *counts.entry(r.outcome.as_str()).or_default() += 1;
                (r.outcome.as_str(), outcome_detail(r, total))
            }
            Err(e) => {
                // The run itself failed (terminated, timed out): not a product outcome.
                exit = exit.worst(Exit::NotSynced);
                *counts.entry("run failed").or_default() += 1;
                ("failed", Some(format!(": {e:#}")))
            }
        };
        if json {
            let ok = result.as_ref().ok();
            let line = serde_json::json!({
                "product_id": id,
                "outcome": outcome,
                "catalog_version": ok.map(|r| r.catalog_version),
                "writes": ok.map(|r| r.report.operations.len()),
                "reason": detail.as_deref().and_then(|d| d.strip_prefix(": ")),
            });
            println!("{line}");
        } else if let Some(detail) = detail {
            println!("{outcome:<OUTCOME_WIDTH$} {id}{detail}");
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    if json {
        eprintln!("done: {}", summary.join(", "));
    } else {
        println!("done: {}", summary.join(", "));
    }
    if exit != Exit::Ok {
        eprintln!(
            "not every product synced: exit code {} (README, \"Exit codes\")",
            exit as u8
        );
    }
    Ok(exit)
}

/// Moves `bar` up to the number of syncs that closed on `task_queue` since it was called (at most
/// `total`), every 2 s until aborted.
fn closed_syncs(
    client: &Client,
    task_queue: &str,
    total: usize,
    bar: indicatif::ProgressBar,
) -> tokio::task::JoinHandle<()> {
    let since = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    let query = format!(
        "WorkflowType = 'ProductSync' AND TaskQueue = '{}' AND CloseTime >= '{since}'",
        task_queue.replace('\'', "")
    );
    let client = client.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            if let Ok(count) = client
                .count_workflows(
                    query.as_str(),
                    temporalio_client::WorkflowCountOptions::default(),
                )
                .await
            {
                raise(&bar, (count.count() as u64).min(total as u64));
            }
        }
    })
}

/// Moves `bar` to `done` unless it is already further.
fn raise(bar: &indicatif::ProgressBar, done: u64) {
    if done > bar.position() {
        bar.set_position(done);
    }
}

/// What is printed after a product's outcome: the reason for any outcome that is not in sync,
/// and the version and writes of the others when few products were asked for.
fn outcome_detail(r: &ProductSyncResult, total: usize) -> Option<String> {
    match r.outcome {
        SyncOutcome::Invalid => {
            let reasons: Vec<String> = r.issues.iter().map(ToString::to_string).collect();
            Some(format!(": {}", reasons.join("; ")))
        }
        SyncOutcome::Failed => Some(format!(": {}", r.error.as_deref().unwrap_or("unknown"))),
        SyncOutcome::SkippedUnmanaged => Some(
            ": a Stripe product with this id exists and was not made by catalog-sync: it is \
             left alone"
                .to_string(),
        ),
        _ => match r
            .report
            .other_catalog
            .as_ref()
            .or(r.report.archive_held.as_ref())
        {
            Some(why) => Some(format!(": {why}")),
            None => (total <= 50).then(|| {
                format!(
                    " (version {}, {} writes)",
                    r.catalog_version,
                    r.report.operations.len()
                )
            }),
        },
    }
}
