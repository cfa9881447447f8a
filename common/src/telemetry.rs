//! Logging set-up, one call per binary.

/// Installs the tracing subscriber: `RUST_LOG` when set, else `default_filter` (`info` for the
/// services, `warn` for the CLI). `to_stderr` keeps standard output for a command's own answer.
pub fn init_tracing(default_filter: &str, to_stderr: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if to_stderr {
        builder.with_writer(std::io::stderr).init();
    } else {
        builder.init();
    }
}
