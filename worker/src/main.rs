//! `worker`: load settings, connect, register, run; ctrl-c drains gracefully.

use std::time::Duration;

use clap::Parser;
use common::settings::{PayloadSettings, StripeSettings};
use common::temporal::WhenUnreachable;
use temporalio_common::telemetry::TelemetryOptions;
use temporalio_sdk::Runtime;
use temporalio_sdk::runtime::RuntimeOptions;
use worker::Settings;

/// catalog-sync worker. Temporal connection settings come from `TEMPORAL_ADDRESS`,
/// `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY` or a `temporal.toml` profile.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Catalog database URL.
    #[arg(long, env = "CATALOG_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(flatten)]
    stripe: StripeSettings,
    #[command(flatten)]
    payload: PayloadSettings,
    #[command(flatten)]
    log: common::settings::LogSettings,
    /// Timeout of one Stripe request, in seconds.
    #[arg(long, env = "STRIPE_TIMEOUT_SECS", default_value_t = 30)]
    stripe_timeout_secs: u64,
    /// The config file (TOML; see catalog-sync.example.toml): activity timeouts and retry
    /// policies, and the mapping of your own catalog tables.
    #[arg(long, env = "CATALOG_SYNC_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Stripe requests per second for the whole account, all workers together (default: Stripe's
    /// budget for the key, 25 for test keys and 100 for live keys; 0 turns the limit off). Every
    /// worker must be given the same value: they split it among themselves. Empty = the default.
    #[arg(long, env = "CATALOG_SYNC_STRIPE_BUDGET")]
    stripe_budget: Option<String>,
    /// Task queue.
    #[arg(long, env = "CATALOG_SYNC_TASK_QUEUE", default_value = workflows::TASK_QUEUE)]
    task_queue: String,
    /// Serve Prometheus metrics (the SDK's `temporal_*` and catalog-sync's `catalog_sync_*`) at
    /// `http://ADDR/metrics`, e.g. `0.0.0.0:9464`. Off when unset.
    #[arg(long, env = "CATALOG_SYNC_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Product fields Stripe owns, comma-separated (any of `domain::fields::PRODUCT_FIELDS`, e.g.
    /// `description,images`): written when a product is created, never overwritten after.
    /// The catalog owns the rest (Dashboard edits are reverted).
    #[arg(long, env = "CATALOG_SYNC_STRIPE_OWNED_FIELDS", default_value = "")]
    stripe_owned_fields: String,
    /// The live archive guard: live syncs archive at most this percentage of the catalog's
    /// products per `--archive-window` (or `--archive-limit-min`, whichever is larger); archives
    /// beyond wait for `starter archives confirm`.
    #[arg(
        long,
        env = "CATALOG_SYNC_ARCHIVE_LIMIT_PERCENT",
        default_value_t = 2.0
    )]
    archive_limit_percent: f64,
    /// See `--archive-limit-percent`.
    #[arg(long, env = "CATALOG_SYNC_ARCHIVE_LIMIT_MIN", default_value_t = 10)]
    archive_limit_min: u64,
    /// See `--archive-limit-percent`, e.g. `1h`, `30m`.
    #[arg(long, env = "CATALOG_SYNC_ARCHIVE_WINDOW", default_value = "1h", value_parser = humantime::parse_duration)]
    archive_window: Duration,
    /// Serve `/healthz` (the process answers) and `/readyz` (catalog reachable, this worker's
    /// pollers listed by Temporal) on this address, for orchestrators' probes, e.g. `0.0.0.0:8080`.
    /// Off when unset.
    #[arg(long, env = "CATALOG_SYNC_HEALTH_ADDR")]
    health_addr: Option<std::net::SocketAddr>,
    /// Concurrent workflow-task polls (half for new runs, half for cached ones).
    #[arg(long, env = "CATALOG_SYNC_WORKFLOW_TASK_POLLERS", default_value_t = worker::DEFAULT_WORKFLOW_TASK_POLLERS)]
    workflow_task_pollers: usize,
    /// Worker Deployment Versioning: the Worker Deployment this worker belongs to (e.g.
    /// `catalog-sync`). When set, the worker runs only workflows of its version, and new workflows
    /// go to the version made current with `temporal worker deployment set-current-version`
    /// (docs/deploying.md, "Versioned rollout"). Unversioned when unset.
    #[arg(long, env = "CATALOG_SYNC_DEPLOYMENT_NAME")]
    deployment_name: Option<String>,
    /// This build's id in the Worker Deployment (default: the package version and the git commit
    /// it was built from, e.g. `0.1.0+3f9c2a1b7d0e`).
    #[arg(long, env = "CATALOG_SYNC_BUILD_ID")]
    build_id: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    common::telemetry::init_tracing(&args.log, "info", false);
    let traces = common::traces::init("catalog-sync-worker")?;
    let result = run(args).await;
    if let Some(traces) = traces {
        // Exporting the last batch blocks: off the async workers.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    result
}

/// The shortest window the live archive guard takes.
const MIN_ARCHIVE_WINDOW: Duration = Duration::from_secs(60);

async fn run(args: Args) -> anyhow::Result<()> {
    let catalog_url = catalog::required_url(args.database_url.as_deref())?.to_string();
    args.stripe.check().map_err(|e| anyhow::anyhow!(e))?;
    let api_key = args.stripe.api_key().map_err(anyhow::Error::msg)?;
    let (telemetry, metrics) = match args.metrics_addr {
        Some(addr) => {
            let (meter, metrics) =
                common::metrics::serve_prometheus(addr).map_err(|e| anyhow::anyhow!(e))?;
            (
                TelemetryOptions::builder().metrics(meter).build(),
                Some(metrics),
            )
        }
        None => (TelemetryOptions::default(), None),
    };
    let runtime_options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|e| anyhow::anyhow!("runtime options: {e}"))?;
    let settings = Settings {
        stripe_budget: match args.stripe_budget.as_deref().map(str::trim) {
            None | Some("") => stripe::client::default_requests_per_second(&api_key),
            Some(n) => n.parse().map_err(|_| {
                anyhow::anyhow!("CATALOG_SYNC_STRIPE_BUDGET={n:?}: expected requests per second")
            })?,
        },
        task_queue: args.task_queue,
        catalog_url,
        catalog_mapping: catalog::mapping::load(args.config.as_deref())?,
        stripe_base_url: args.stripe.base(),
        stripe_api_key: api_key,
        stripe_api_version: args.stripe.api_version(),
        stripe_account: args.stripe.account().map(str::to_string),
        stripe_timeout: Duration::from_secs(args.stripe_timeout_secs),
        retry: worker::config::load(args.config.as_deref())?,
        ownership: domain::ownership::Ownership::parse(&args.stripe_owned_fields, false)?,
        workflow_task_pollers: args.workflow_task_pollers,
        archive_budget: {
            anyhow::ensure!(
                (0.0..=100.0).contains(&args.archive_limit_percent),
                "CATALOG_SYNC_ARCHIVE_LIMIT_PERCENT={}: expected a percentage between 0 and 100",
                args.archive_limit_percent
            );
            // A window of seconds would let a `DELETE` through a few archives at a time.
            anyhow::ensure!(
                args.archive_window >= MIN_ARCHIVE_WINDOW,
                "CATALOG_SYNC_ARCHIVE_WINDOW={}: the live archive guard counts archives per \
                 window, and one shorter than {} turns it off; expected e.g. 1h",
                humantime::format_duration(args.archive_window),
                humantime::format_duration(MIN_ARCHIVE_WINDOW)
            );
            catalog::ArchiveBudget {
                percent: args.archive_limit_percent,
                min: args.archive_limit_min,
                window: args.archive_window,
            }
        },
        metrics,
        deployment: worker::deployment::Deployment::from_settings(
            args.deployment_name.as_deref(),
            args.build_id.as_deref(),
        )?,
    };
    let runtime = Runtime::from_current_tokio(runtime_options)?;
    let (client, payload_key) =
        common::temporal::connect(&args.payload, WhenUnreachable::Fail).await?;
    let payload_key = payload_key.as_deref().unwrap_or("off");
    let workers = worker::build(&runtime, client.clone(), &settings).await?;
    if let Some(addr) = args.health_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("serving health on {addr}: {e}"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /healthz and /readyz");
        let readiness = workers.readiness();
        tokio::spawn(async move {
            if let Err(e) = worker::health::serve(listener, readiness).await {
                tracing::error!(error = %e, "health endpoint stopped");
            }
        });
    }
    tracing::info!(
        task_queue = %settings.task_queue,
        stripe_task_queue = %workflows::queues::stripe_task_queue(&settings.task_queue),
        stripe_budget = settings.stripe_budget,
        stripe = %settings.stripe_base_url,
        stripe_api_version = %settings.stripe_api_version,
        stripe_account = settings.stripe_account.as_deref().unwrap_or("-"),
        payload_encryption = %payload_key,
        deployment = %settings.deployment,
        "worker started"
    );
    if let Some(name) = settings.deployment.name.clone() {
        tokio::spawn(worker::deployment::report_routing(
            client,
            name,
            settings.deployment.build_id.clone(),
        ));
    }
    worker::run_until(workers, common::shutdown_signal()).await
}
