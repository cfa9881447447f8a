//! `codec-server`: decrypts catalog-sync's payloads for the Temporal Web UI and CLI.
//!
//! Needs the workers' keys (`CATALOG_SYNC_PAYLOAD_KEY`, `CATALOG_SYNC_PAYLOAD_OLD_KEYS`, the same
//! settings as theirs). `codec-server --new-key` prints a fresh key and exits.

mod server;

use clap::Parser;
use common::settings::{PayloadSettings, Secret, SettingsError};

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
    /// Required unless the server listens on a loopback address or `--no-auth` is given.
    #[arg(long, env = "CATALOG_SYNC_CODEC_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<Secret>,
    /// Serve without a token on a non-loopback address: only where nobody but operators can
    /// reach it (the Web UI cannot send a fixed token; a private network, a port published on
    /// 127.0.0.1).
    #[arg(long, env = "CATALOG_SYNC_CODEC_NO_AUTH", default_value_t = false)]
    no_auth: bool,
    /// Serve Prometheus metrics (requests by route and status, their latency) at
    /// `http://ADDR/metrics`.
    #[arg(long, env = "CATALOG_SYNC_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
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
    common::tls::install_ring();
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
    let auth_token = auth_token(&args)?;
    let metrics = common::metrics::serve_for(args.metrics_addr, "codec-server")?;
    let app = router(
        keyring.clone(),
        ServerOptions {
            cors_origins: args.cors_origins.clone(),
            auth_token: auth_token.as_ref().map(|t| t.expose().to_string()),
        },
    )?;
    let app = common::metrics::track_http(app, metrics.as_ref(), "codec-server");
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {}: {e}", args.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        keys = ?keyring.key_ids(),
        encrypts_with = keyring.current_key_id().unwrap_or("-"),
        cors_origins = ?args.cors_origins,
        auth = auth_token.is_some(),
        "codec server started"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(common::shutdown_signal())
        .await?;
    Ok(())
}

/// The token requests must carry: a blank one counts as unset, and unset is refused unless the
/// address is a loopback one or `--no-auth` says so, since whoever reaches the server reads
/// product data.
fn auth_token(args: &Args) -> Result<Option<Secret>, SettingsError> {
    let token = match &args.auth_token {
        Some(token) => token.checked("CATALOG_SYNC_CODEC_AUTH_TOKEN")?,
        None => None,
    };
    let loopback = args
        .listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback())
        || args.listen.starts_with("localhost:");
    if token.is_none() && !loopback && !args.no_auth {
        return Err(SettingsError::Missing {
            setting: "CATALOG_SYNC_CODEC_AUTH_TOKEN",
            help: format!(
                " (or blank), and CATALOG_SYNC_CODEC_LISTEN={} is not a loopback address: \
                 whoever reaches it could read product data. Set a token (the CLI sends it with \
                 --codec-auth \"Bearer <token>\"), listen on 127.0.0.1, or set \
                 CATALOG_SYNC_CODEC_NO_AUTH=true where only operators can reach it",
                args.listen
            ),
        });
    }
    Ok(token)
}

common::test_flags_read_listed_variables!(super::Args);

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(args: &[&str]) -> Result<Option<String>, SettingsError> {
        let mut all = vec!["codec-server"];
        all.extend(args);
        let args = Args::try_parse_from(all).unwrap();
        auth_token(&args).map(|t| t.map(|t| t.expose().to_string()))
    }

    #[test]
    fn no_token_only_on_loopback_or_when_told() {
        assert_eq!(token_of(&[]), Ok(None), "the default listens on 127.0.0.1");
        let refused = token_of(&["--listen", "0.0.0.0:8234"]).unwrap_err();
        assert_eq!(refused.setting(), Some("CATALOG_SYNC_CODEC_AUTH_TOKEN"));
        assert!(refused.to_string().contains("0.0.0.0:8234"), "{refused}");
        assert!(
            token_of(&["--listen", "0.0.0.0:8234", "--auth-token", " "]).is_err(),
            "a blank token is no token"
        );
        assert_eq!(
            token_of(&["--listen", "0.0.0.0:8234", "--no-auth"]),
            Ok(None)
        );
        assert_eq!(
            token_of(&["--listen", "0.0.0.0:8234", "--auth-token", "s3cret\n"]),
            Ok(Some("s3cret".into()))
        );
    }
}
