//! `worker`: load settings, connect, register, run; ctrl-c drains gracefully.

use std::time::Duration;

use clap::Parser;
use common::settings::{CatalogArgs, PayloadSettings, SettingsError, StripeSettings};
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
    #[command(flatten)]
    catalog: CatalogArgs,
    #[command(flatten)]
    stripe: StripeSettings,
    #[command(flatten)]
    payload: PayloadSettings,
    #[command(flatten)]
    log: common::settings::LogSettings,
    /// Stripe requests per second for the whole account, all workers together (default: Stripe's
    /// budget for the key, 25 for test keys and 100 for live keys; 0 turns the limit off). Every
    /// worker must be given the same value: they split it among themselves. Empty = the default.
    #[arg(long, env = "CATALOG_SYNC_STRIPE_BUDGET")]
    stripe_budget: Option<String>,
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
    /// The Worker Deployment the Temporal Worker Controller registered this pod under (it sets
    /// the variable); wins over `CATALOG_SYNC_DEPLOYMENT_NAME`, which must agree if set.
    #[arg(long, env = "TEMPORAL_DEPLOYMENT_NAME")]
    controller_deployment_name: Option<String>,
    /// The build the Temporal Worker Controller registered this pod as (it sets the variable);
    /// wins over `CATALOG_SYNC_BUILD_ID`, which must agree if set.
    #[arg(long, env = "TEMPORAL_WORKER_BUILD_ID")]
    controller_build_id: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::tls::install_ring();
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

impl Args {
    /// The worker's settings: the config file (read once: `[catalog]` and `[retry]`), then the
    /// environment and flags clap has read, each checked.
    fn settings(&self, metrics: Option<common::metrics::Metrics>) -> anyhow::Result<Settings> {
        let catalog_url = catalog::required_url(self.catalog.database_url.as_deref())?.to_string();
        let file = self.catalog.config_file()?;
        let stripe = stripe::client::StripeConfig::from_settings(&self.stripe)?;
        let budget = match self.stripe_budget.as_deref().map(str::trim) {
            None | Some("") => stripe::client::default_requests_per_second(&stripe.api_key),
            Some(n) => n.parse().map_err(|_| {
                SettingsError::invalid(
                    "CATALOG_SYNC_STRIPE_BUDGET",
                    n,
                    "is not a number of requests per second (0 turns the limit off; unset: \
                     Stripe's budget for the key)",
                )
            })?,
        };
        Ok(Settings {
            task_queue: self.catalog.task_queue.clone(),
            catalog_url,
            catalog_mapping: catalog::mapping::from_config(&file)?,
            stripe: stripe.paced(budget),
            retry: worker::config::load(&file)?,
            ownership: domain::ownership::Ownership::parse(&self.stripe_owned_fields, false)?,
            workflow_task_pollers: self.workflow_task_pollers,
            archive_budget: self.archive_budget()?,
            metrics,
            deployment: worker::deployment::Deployment::from_settings_or_controller(
                self.deployment_name.as_deref(),
                self.build_id.as_deref(),
                self.controller_deployment_name.as_deref(),
                self.controller_build_id.as_deref(),
            )?,
        })
    }

    /// The live archive guard's budget, checked.
    fn archive_budget(&self) -> Result<catalog::ArchiveBudget, SettingsError> {
        if !(0.0..=100.0).contains(&self.archive_limit_percent) {
            return Err(SettingsError::invalid(
                "CATALOG_SYNC_ARCHIVE_LIMIT_PERCENT",
                self.archive_limit_percent.to_string(),
                "is not a percentage between 0 and 100",
            ));
        }
        // A window of seconds would let a `DELETE` through a few archives at a time.
        if self.archive_window < MIN_ARCHIVE_WINDOW {
            return Err(SettingsError::invalid(
                "CATALOG_SYNC_ARCHIVE_WINDOW",
                humantime::format_duration(self.archive_window).to_string(),
                format!(
                    "is too short: the live archive guard counts archives per window, and one \
                     shorter than {} turns it off; expected e.g. 1h",
                    humantime::format_duration(MIN_ARCHIVE_WINDOW)
                ),
            ));
        }
        Ok(catalog::ArchiveBudget {
            percent: self.archive_limit_percent,
            min: self.archive_limit_min,
            window: self.archive_window,
        })
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    common::settings::environment::check(std::env::vars())?;
    // Settings first (the config file read once), so that a mistake is refused before a metrics
    // port is taken.
    let mut settings = args.settings(None)?;
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
    settings.metrics = metrics;
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
        stripe_budget = settings.stripe.requests_per_second,
        stripe = %settings.stripe.base_url,
        stripe_api_version = %settings.stripe.api_version,
        stripe_account = settings.stripe.account.as_deref().unwrap_or("-"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut all = vec![
            "worker",
            "--database-url",
            "sqlite:unused.db",
            "--stripe-api-base",
            "http://127.0.0.1:12111",
            "--stripe-api-key",
            "sk_test_x",
        ];
        all.extend(extra);
        Args::try_parse_from(all).unwrap()
    }

    fn refused(extra: &[&str]) -> SettingsError {
        let error = args(extra).settings(None).unwrap_err();
        error
            .downcast_ref::<SettingsError>()
            .unwrap_or_else(|| panic!("not a SettingsError: {error:#}"))
            .clone()
    }

    #[test]
    fn flags_and_the_config_file_make_one_settings() {
        let settings = args(&[]).settings(None).unwrap();
        assert_eq!(settings.stripe.base_url, "http://127.0.0.1:12111");
        assert_eq!(
            settings.stripe.requests_per_second, 25,
            "a test key's budget"
        );
        assert_eq!(settings.task_queue, workflows::TASK_QUEUE);
        assert!(settings.catalog_mapping.is_none());

        let dir = std::env::temp_dir().join(format!("worker-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("catalog-sync.toml");
        std::fs::write(&file, "[retry.upsert]\nmaximum_attempts = 7\n").unwrap();
        let path = file.to_str().unwrap();
        let settings = args(&["--config", path, "--stripe-budget", "0"])
            .settings(None)
            .unwrap();
        assert_eq!(settings.retry.upsert.maximum_attempts, 7);
        assert_eq!(settings.stripe.requests_per_second, 0);

        std::fs::write(&file, "[retry.upsert]\nmaximum_attempts = 7\n[catlog]\n").unwrap();
        let error = refused(&["--config", path]);
        assert_eq!(error.setting(), Some("CATALOG_SYNC_CONFIG"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_refusal_names_its_setting_and_the_value_given() {
        for (extra, setting, shown) in [
            (
                &["--archive-window", "5s"][..],
                "CATALOG_SYNC_ARCHIVE_WINDOW",
                "=5s ",
            ),
            (
                &["--archive-limit-percent", "150"][..],
                "CATALOG_SYNC_ARCHIVE_LIMIT_PERCENT",
                "=150 ",
            ),
            (
                &["--stripe-budget", "lots"][..],
                "CATALOG_SYNC_STRIPE_BUDGET",
                "=lots ",
            ),
            (
                &["--stripe-account", "acct-1"][..],
                "STRIPE_ACCOUNT",
                "=acct-1 ",
            ),
        ] {
            let error = refused(extra);
            assert_eq!(error.setting(), Some(setting), "{error}");
            assert!(error.to_string().contains(shown), "{error}");
        }
    }
}

common::test_flags_read_listed_variables!(super::Args);
