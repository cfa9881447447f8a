//! The signal every long-running binary stops on.

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what `docker stop` and Kubernetes send); a binary
/// then drains what it has in hand.
pub async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { terminate.as_mut()?.recv().await } => {}
    }
}
