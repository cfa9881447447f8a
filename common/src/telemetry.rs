//! Logging set-up, one call per binary.

use std::io::IsTerminal;

use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::settings::{LogFormat, LogSettings};

/// Installs the tracing subscriber: `RUST_LOG` when set, else `default_filter` (`info` for the
/// services, `warn` for the CLI), in the format `log` asks for. `to_stderr` keeps standard output
/// for a command's own answer. Colour only when the output is a terminal; JSON lines carry the
/// event's fields and those of the span it ran in (an activity's kind, workflow id, run id,
/// attempt and product), so a log pipeline can index them.
pub fn init_tracing(log: &LogSettings, default_filter: &str, to_stderr: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let (writer, terminal) = if to_stderr {
        (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        )
    } else {
        (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        )
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match log.format {
        LogFormat::Text => builder.with_ansi(terminal).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
