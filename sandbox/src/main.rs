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
    /// Requests per second per API key over all endpoints, Stripe's global limiter: 25 as a
    /// Stripe sandbox (test mode), 100 as live mode; 0 turns it off.
    #[arg(long, env = "SANDBOX_RATE_LIMIT", default_value_t = 25)]
    rate_limit: u32,
    /// Requests per second per API key and endpoint (`POST /v1/prices`, `POST /v1/prices/{id}`
    /// …), Stripe's endpoint limiter: 25 in both modes; 0 turns it off.
    #[arg(long, env = "SANDBOX_ENDPOINT_RATE_LIMIT", default_value_t = 25)]
    endpoint_rate_limit: u32,
    /// An endpoint's own limit, `"POST /v1/prices=50"`; repeat for more.
    #[arg(long = "endpoint-limit", value_parser = endpoint_limit)]
    endpoint_limits: Vec<(String, u32)>,
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
        limits: stripe_sandbox::limits::Limits {
            global: args.rate_limit,
            per_endpoint: args.endpoint_rate_limit,
            endpoints: args.endpoint_limits.into_iter().collect(),
        },
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

/// `"POST /v1/prices=50"`: an endpoint as the stats name it, and its requests per second.
fn endpoint_limit(arg: &str) -> Result<(String, u32), String> {
    let (endpoint, rate) = arg
        .rsplit_once('=')
        .ok_or_else(|| format!("{arg:?}: expected ENDPOINT=RATE, e.g. \"POST /v1/prices=50\""))?;
    let rate = rate
        .trim()
        .parse()
        .map_err(|_| format!("{arg:?}: {rate:?} is not a number of requests per second"))?;
    Ok((endpoint.trim().to_string(), rate))
}
