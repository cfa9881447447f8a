//! A stateful, Stripe-compatible server for Products and Prices, for development, tests and
//! benchmarks without the internet. It speaks Stripe's wire format (form bodies with bracket
//! nesting, Stripe-shaped errors, idempotency keys, request ids, rate limits) so that the official
//! Stripe SDKs cannot tell it from Stripe for what catalog-sync does.
//!
//! # Layout
//! - [`form`]: the bracket-nested form dialect and typed parameter access.
//! - [`error`]: Stripe-shaped errors.
//! - [`model`]: Product and Price objects and their validation rules.
//! - [`store`]: per-key state, ordering, pagination, lookup keys.
//! - [`server`]: the HTTP edges (auth, rate limit, faults, idempotency, stats) and `/_sandbox`.
//! - [`faults`]: seeded fault injection.
//! - [`webhooks`]: signed event delivery.
#![deny(missing_docs)]

pub mod error;
pub mod faults;
pub mod form;
pub mod limits;
pub mod model;
pub mod server;
pub mod store;
pub mod webhooks;

pub use server::{Config, Sandbox, router, serve};

/// The API version reported when a client pins none.
pub const DEFAULT_API_VERSION: &str = "2026-09-30.endive";

/// The API versions the sandbox serves: catalog-sync's pinned one and the official SDKs' (their
/// shapes agree for everything the sandbox implements). Any other `Stripe-Version` is refused as
/// Stripe refuses a version it does not know: 400 `invalid_request_error`, "Invalid Stripe API
/// version: …".
pub const SUPPORTED_API_VERSIONS: &[&str] = &["2026-09-30.endive", "2026-10-28.endive"];

/// Starts a sandbox on `addr` in the background; returns its address. For tests and benchmarks.
pub async fn spawn(addr: &str, config: Config) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let sandbox = Sandbox::new(config)?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, sandbox, std::future::pending()).await {
            tracing::error!(error = %e, "sandbox stopped");
        }
    });
    Ok(local)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, so `kill` and container stops save state too.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
