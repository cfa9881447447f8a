//! `stripe-sandbox`: a local, stateful Stripe for Products and Prices.

use std::path::PathBuf;

use clap::Parser;
use stripe_sandbox::webhooks::WebhookConfig;
use stripe_sandbox::{Config, Sandbox, serve};

/// A Stripe-compatible sandbox for Products and Prices.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "SANDBOX_ADDR", default_value = "127.0.0.1:12111")]
    addr: String,
    /// Persist state to this file, so a demo survives restarts.
    #[arg(long, env = "SANDBOX_STATE")]
    state: Option<PathBuf>,
    /// Requests per second per API key; 0 turns the limit off. Stripe test mode allows 25.
    #[arg(long, env = "SANDBOX_RATE_LIMIT", default_value_t = 25)]
    rate_limit: u32,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Deliver webhook events to this URL…
    #[arg(long, env = "SANDBOX_WEBHOOK_URL", requires = "webhook_secret")]
    webhook_url: Option<String>,
    /// …signed with this secret.
    #[arg(long, env = "SANDBOX_WEBHOOK_SECRET")]
    webhook_secret: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = Config {
        rate_limit: args.rate_limit,
        max_body_bytes: args.max_body_bytes,
        state_file: args.state,
        webhook: args
            .webhook_url
            .zip(args.webhook_secret)
            .map(|(url, secret)| WebhookConfig { url, secret }),
    };
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    let addr = listener.local_addr()?;
    let sandbox = Sandbox::new(config)?;
    // Tests and scripts read this line to find the port.
    println!("stripe-sandbox listening on http://{addr}");
    serve(listener, sandbox, stripe_sandbox::shutdown_signal()).await
}
