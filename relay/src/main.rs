//! `relay`: relays captured catalog changes to Temporal and, with `--listen`, serves change ingest
//! and Stripe webhooks. Run one or several next to the workers; ctrl-c finishes the batch in hand.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use catalog::Catalog;
use clap::Parser;
use common::settings::{CaptureMode as Capture, PayloadSettings, Secret};
use common::temporal::WhenUnreachable;
use domain::ownership::Ownership;
use relay::http::HttpConfig;
use relay::{Relay, RelayOptions, Signaller};
use stripe::identity::CatalogIdentity;
use stripe::write_key::{self, WriteKeys};

/// catalog-sync relay. Temporal connection settings come from `TEMPORAL_ADDRESS`,
/// `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY` or a `temporal.toml` profile.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    catalog: common::settings::CatalogArgs,
    /// Do not relay the outbox (serve the HTTP endpoints only).
    #[arg(long)]
    no_outbox: bool,
    /// Changes claimed at once.
    #[arg(long, env = "CATALOG_SYNC_RELAY_BATCH", default_value_t = 500)]
    batch_size: i64,
    /// Seconds a claim holds before another relay may take the changes over.
    #[arg(long, env = "CATALOG_SYNC_RELAY_LEASE_SECS", default_value_t = 60)]
    lease_secs: u64,
    /// Milliseconds between looks at the outbox when no notification woke the relay (PostgreSQL
    /// notifies at commit; SQLite relies on this).
    #[arg(long, env = "CATALOG_SYNC_RELAY_POLL_MS", default_value_t = 250)]
    poll_ms: u64,
    /// How catalog changes reach the outbox: `triggers` (the built-in tables' own, or those of
    /// `starter capture install` on your tables), `polling`: this relay follows the mapped
    /// `updated_at` columns and diffs ids for hard deletes, with no trigger on your tables, or
    /// `logical`: this relay reads PostgreSQL's write-ahead log through the replication slot
    /// `starter capture install` made, every committed change, no trigger.
    #[arg(long, env = "CATALOG_SYNC_CAPTURE", value_enum, default_value_t = Capture::Triggers)]
    capture: Capture,
    /// Polling capture: milliseconds between passes.
    #[arg(long, env = "CATALOG_SYNC_POLL_INTERVAL_MS", default_value_t = 1000)]
    poll_interval_ms: u64,
    /// Polling capture: seconds after its `updated_at` a change may commit and still be seen
    /// (longer transactions are left to the scheduled reconciliation).
    #[arg(long, env = "CATALOG_SYNC_POLL_LOOKBACK_SECS", default_value_t = 30)]
    poll_lookback_secs: u64,
    /// Polling capture: seconds between id diffs (rows deleted for good).
    #[arg(long, env = "CATALOG_SYNC_POLL_DIFF_SECS", default_value_t = 60)]
    poll_diff_secs: u64,
    /// Serve `POST /v1/changes`, `POST /stripe/webhook` and `GET /healthz` on this address.
    #[arg(long, env = "CATALOG_SYNC_LISTEN")]
    listen: Option<SocketAddr>,
    /// Bearer tokens of `POST /v1/changes`, comma-separated (off when unset).
    #[arg(
        long,
        env = "CATALOG_SYNC_INGEST_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    ingest_tokens: Vec<Secret>,
    /// Stripe webhook endpoint secrets (`whsec_…`), comma-separated while rotating (off when unset).
    #[arg(
        long,
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_delimiter = ','
    )]
    webhook_secret: Vec<Secret>,
    /// Seconds a webhook signature stays valid.
    #[arg(long, env = "STRIPE_WEBHOOK_TOLERANCE_SECS", default_value_t = 300)]
    webhook_tolerance_secs: u64,
    /// Product fields Stripe owns (Dashboard edits kept), comma-separated; the catalog owns the rest.
    #[arg(long, env = "CATALOG_SYNC_STRIPE_OWNED_FIELDS", default_value = "")]
    stripe_owned_fields: String,
    /// Stripe Connect: the connected account (`acct_…`) this catalog syncs into. Webhook events
    /// of other accounts (the `account` of a Connect endpoint's events) are left to their relays.
    #[arg(long, env = "STRIPE_ACCOUNT")]
    stripe_account: Option<String>,
    /// Copy Dashboard edits of Stripe-owned fields into the catalog.
    #[arg(long, env = "CATALOG_SYNC_WRITE_BACK")]
    write_back: bool,
    #[command(flatten)]
    payload: PayloadSettings,
    #[command(flatten)]
    log: common::settings::LogSettings,
    /// Serve Prometheus metrics (relay lag, webhook decisions) at `http://ADDR/metrics`.
    #[arg(long, env = "CATALOG_SYNC_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::tls::install_ring();
    let args = Args::parse();
    common::telemetry::init_tracing(&args.log, "info", false);
    let traces = common::traces::init("catalog-sync-relay")?;
    let result = run(args).await;
    if let Some(traces) = traces {
        // Exporting the last batch blocks: off the async workers.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    result
}

async fn run(args: Args) -> anyhow::Result<()> {
    common::settings::environment::check(std::env::vars())?;
    let ownership = Ownership::parse(&args.stripe_owned_fields, args.write_back)?;
    // Checked at start: a secret with a stray space would refuse every request, for days.
    let ingest_tokens =
        common::settings::checked_secrets(&args.ingest_tokens, "CATALOG_SYNC_INGEST_TOKENS")?;
    let webhook_secrets =
        common::settings::checked_secrets(&args.webhook_secret, "STRIPE_WEBHOOK_SECRET")?;
    // A typo here would leave every event to "another account": refused instead.
    let account = common::settings::connected_account(args.stripe_account.as_deref())?;
    let metrics = common::metrics::serve_for(args.metrics_addr, "relay")?;
    let catalog = Catalog::connect_with(
        catalog::required_url(args.catalog.database_url.as_deref())?,
        catalog::mapping::from_config(&args.catalog.config_file()?)?.as_ref(),
    )
    .await?;
    if ownership.write_back {
        for field in ownership.stripe_owned() {
            catalog.check_write_back(field).map_err(|e| {
                anyhow::anyhow!(
                    "CATALOG_SYNC_WRITE_BACK=true, but {e}: map {field} to a text column of a table, \
                     take it out of CATALOG_SYNC_STRIPE_OWNED_FIELDS, or set \
                     CATALOG_SYNC_WRITE_BACK=false"
                )
            })?;
        }
    }
    if args.capture == Capture::Triggers {
        // Triggers mode on tables without catalog-sync's triggers relays nothing, for ever.
        let state = catalog
            .capture_state()
            .await
            .map_err(|e| anyhow::anyhow!("CATALOG_SYNC_CAPTURE=triggers (the default), but {e}"))?;
        anyhow::ensure!(
            state.missing.is_empty(),
            "CATALOG_SYNC_CAPTURE=triggers (the default), but {} {} no catalog-sync capture \
             triggers: changes to {} would never reach Stripe. Run `starter capture install` \
             (`--print` shows the SQL to review first), or set CATALOG_SYNC_CAPTURE=polling",
            state.missing.join(" and "),
            if state.missing.len() == 1 {
                "has"
            } else {
                "have"
            },
            if state.missing.len() == 1 {
                "it"
            } else {
                "them"
            },
        );
        tracing::info!(tables = ?state.captured, "trigger capture on");
    }
    if args.capture == Capture::Polling {
        catalog.can_poll()?;
        if catalog
            .capture_state()
            .await
            .is_ok_and(|state| !state.captured.is_empty())
        {
            tracing::warn!(
                "capture triggers are on the catalog's tables (the built-in tables always have them) \
                 and polling is on: each change is enqueued twice (harmless, but use one: \
                 starter capture uninstall, or CATALOG_SYNC_CAPTURE=triggers)"
            );
        }
        let options = relay::poll::PollOptions {
            interval: Duration::from_millis(args.poll_interval_ms.max(10)),
            lookback: Duration::from_secs(args.poll_lookback_secs),
            diff_every: Duration::from_secs(args.poll_diff_secs.max(1)),
        };
        tracing::info!(?options, "polling capture on");
        tokio::spawn(relay::poll::poll_until(
            catalog.clone(),
            options,
            metrics.clone(),
            common::shutdown_signal(),
        ));
    }
    if args.capture == Capture::Logical {
        catalog
            .check_logical()
            .await
            .map_err(|e| anyhow::anyhow!("CATALOG_SYNC_CAPTURE=logical, but {e}"))?;
        if catalog
            .capture_state()
            .await
            .is_ok_and(|state| !state.captured.is_empty())
        {
            tracing::warn!(
                "capture triggers are on the catalog's tables (the built-in tables always have \
                 them) and logical capture is on: each change is enqueued twice (harmless, but \
                 use one: starter capture uninstall, or CATALOG_SYNC_CAPTURE=triggers)"
            );
        }
        tracing::info!(slot = %catalog.logical_slot().await?, "logical capture on");
        tokio::spawn(relay::logical::follow_until(
            catalog.clone(),
            catalog::required_url(args.catalog.database_url.as_deref())?.to_string(),
            metrics.clone(),
            common::shutdown_signal(),
        ));
    }
    if let Some(m) = &metrics {
        tokio::spawn(relay::gauges::publish_until(
            catalog.clone(),
            m.clone(),
            args.capture,
            Duration::from_secs(5),
            common::shutdown_signal(),
        ));
    }
    // `starter status` shows how changes are captured.
    catalog.record_capture_mode(args.capture.as_str()).await?;
    // The HTTP server starts now, not once Temporal answers: `/healthz` says the process lives
    // (an orchestrator would otherwise restart a relay that is only waiting), and the rest
    // answers 503 until the full router is in place.
    let http = match args.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            let full = Arc::new(OnceLock::new());
            let router = relay::http::starting_router(full.clone(), metrics.clone());
            let server = tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(common::shutdown_signal())
                    .await
            });
            tracing::info!(%addr, "serving /healthz; the rest once Temporal answers");
            Some((server, full))
        }
        None => None,
    };
    // Changes wait in the outbox while Temporal is away.
    let (client, _) = common::temporal::connect(&args.payload, WhenUnreachable::Wait).await?;
    let signaller = Signaller::new(
        client,
        catalog.identity().await?,
        args.catalog.task_queue.clone(),
        Duration::from_secs(10),
    );

    let http = match http {
        Some((server, full)) => {
            let config = HttpConfig {
                ingest_tokens,
                webhook_secrets,
                webhook_tolerance: Duration::from_secs(args.webhook_tolerance_secs),
                ownership,
                own_writes: Some(WriteKeys::new(
                    &catalog
                        .sync_secret(write_key::SECRET_NAME)
                        .await
                        .context("reading catalog-sync's write_key secret from the catalog")?,
                )),
                account,
                catalog: Some(CatalogIdentity::new(
                    catalog
                        .identity()
                        .await
                        .context("reading the catalog's identity")?,
                )),
                ..HttpConfig::default()
            };
            tracing::info!(
                ingest = !config.ingest_tokens.is_empty(),
                webhooks = !config.webhook_secrets.is_empty(),
                "serving HTTP"
            );
            let router =
                relay::http::router(catalog.clone(), signaller.clone(), config, metrics.clone());
            let _ = full.set(router);
            Some(server)
        }
        None => None,
    };
    if args.no_outbox {
        let Some(http) = http else {
            anyhow::bail!("--no-outbox leaves nothing to do without --listen");
        };
        return Ok(http.await??);
    }
    let relay = Relay::new(
        catalog,
        signaller,
        RelayOptions {
            batch_size: args.batch_size.max(1),
            lease: Duration::from_secs(args.lease_secs.max(1)),
            poll_interval: Duration::from_millis(args.poll_ms.max(10)),
            ..RelayOptions::default()
        },
    )
    .with_metrics(metrics);
    tracing::info!(relay = relay.id(), task_queue = %args.catalog.task_queue, "relaying the outbox");
    relay.run(common::shutdown_signal()).await?;
    if let Some(http) = http {
        http.await??;
    }
    Ok(())
}

common::test_flags_read_listed_variables!(super::Args);
