//! `codec-server`: decrypts catalog-sync's payloads for the Temporal Web UI and CLI.
//!
//! Needs the workers' keys (`CATALOG_SYNC_PAYLOAD_KEY`, `CATALOG_SYNC_PAYLOAD_OLD_KEYS`, the same
//! settings as theirs). `codec-server --new-key` prints a fresh key and exits.

mod server;

use clap::Parser;
use common::settings::PayloadSettings;

use crate::server::{ServerOptions, router};

#[derive(Parser)]
#[command(about = "Temporal codec server for catalog-sync's encrypted payloads")]
struct Args {
    /// Address to listen on. Whoever reaches it can read product data: keep it private.
    #[arg(
        long,
        env = "CATALOG_SYNC_CODEC_LISTEN",
        default_value = "127.0.0.1:8234"
    )]
    listen: String,
    /// Origins of the Web UI pages allowed to call it (comma-separated).
    #[arg(
        long = "cors-origin",
        env = "CATALOG_SYNC_CODEC_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:8233,http://127.0.0.1:8233"
    )]
    cors_origins: Vec<String>,
    /// Require `Authorization: Bearer <token>` (the CLI: `--codec-auth "Bearer <token>"`).
    #[arg(long, env = "CATALOG_SYNC_CODEC_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Print a new random key (base64) for CATALOG_SYNC_PAYLOAD_KEY and exit.
    #[arg(long)]
    new_key: bool,
    #[command(flatten)]
    payload: PayloadSettings,
    #[command(flatten)]
    log: common::settings::LogSettings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    common::telemetry::init_tracing(&args.log, "info", false);
    common::settings::environment::check(std::env::vars())?;
    if args.new_key {
        println!("{}", codec::keys::new_key());
        return Ok(());
    }
    let keyring = args.payload.keyring()?;
    if keyring.key_ids().is_empty() {
        anyhow::bail!(
            "no key: set {} (and {} while rotating) to the workers' keys",
            codec::keys::KEY_ENV,
            codec::keys::OLD_KEYS_ENV
        );
    }
    let app = router(
        keyring.clone(),
        ServerOptions {
            cors_origins: args.cors_origins.clone(),
            auth_token: args.auth_token.clone(),
        },
    )?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {}: {e}", args.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        keys = ?keyring.key_ids(),
        encrypts_with = keyring.current_key_id().unwrap_or("-"),
        cors_origins = ?args.cors_origins,
        auth = args.auth_token.is_some(),
        "codec server started"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(common::shutdown_signal())
        .await?;
    Ok(())
}

common::test_flags_read_listed_variables!(super::Args);
