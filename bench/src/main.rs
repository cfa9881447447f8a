//! `bench`: catalog-sync's benchmarks against a running stack (worker and relay, the sandbox or
//! a Stripe account), judged by the audit ledger, Temporal's visibility and the sandbox's request
//! counter; each prints a JSON line and a summary and fails when its target is missed.
//! `scripts/bench-changes` and `scripts/bench-reconcile` start the stack and run them; the figures
//! are in BENCHMARKS.md. Temporal connection settings come from `TEMPORAL_ADDRESS`,
//! `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY` or a `temporal.toml` profile, as for `starter`.

mod capture;
mod changes;
mod faults;
mod reconcile;
mod usage;

use catalog::Catalog;
use clap::{Parser, Subcommand};
use common::temporal::WhenUnreachable;

/// catalog-sync benchmarks.
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

#[derive(Subcommand)]
enum Command {
    /// Edits at a steady rate; commit-to-Stripe latency percentiles.
    Live(changes::LiveArgs),
    /// Raw-SQL edits of a team's own tables at a steady rate; commit-to-Stripe latency.
    Capture(capture::CaptureArgs),
    /// A burst of edits of one product; the Stripe writes it costs.
    Burst(changes::BurstArgs),
    /// The naive inline handler beside catalog-sync under the sandbox's faults; updates lost.
    Faults(faults::FaultsArgs),
    /// One reconciliation of the whole catalog with drift; requests against the formula.
    Reconcile(reconcile::ReconcileBenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::tls::install_ring();
    let cli = Cli::parse();
    common::telemetry::init_tracing(&cli.log, "warn", true);
    common::settings::environment::check(std::env::vars())?;
    let catalog = Catalog::connect_with(
        catalog::required_url(cli.catalog.database_url.as_deref())?,
        catalog::mapping::from_config(&cli.catalog.config_file()?)?.as_ref(),
    )
    .await?;
    let connect = || async {
        anyhow::Ok(
            common::temporal::connect(&cli.payload, WhenUnreachable::Fail)
                .await?
                .0,
        )
    };
    match cli.command {
        Command::Live(args) => {
            changes::live(&connect().await?, &cli.catalog.task_queue, &catalog, args).await
        }
        Command::Capture(args) => capture::run(&catalog, args).await,
        Command::Burst(args) => changes::burst(&catalog, args).await,
        Command::Faults(args) => faults::faults(&catalog, args).await,
        Command::Reconcile(args) => {
            reconcile::run(&connect().await?, &cli.catalog.task_queue, &catalog, args).await
        }
    }
}

common::test_flags_read_listed_variables!(super::Cli);
