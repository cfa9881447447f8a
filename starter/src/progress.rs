//! Progress of long operations: a bar with its rate and time left on a terminal, and a line
//! every few seconds elsewhere (a CI log, a pipe).

/// The progress bar of `starter sync`.
pub(crate) fn progress(total: usize, what: &str) -> indicatif::ProgressBar {
    let bar = progress_bar(total as u64);
    bar.set_message(format!("{what:>10}"));
    bar
}

/// How often a long operation prints a progress line when stderr is not a terminal.
pub(crate) const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A progress bar on stderr; the caller sets (and pads) its message. On a terminal it is drawn;
/// elsewhere (a CI log, a pipe) a line with the same figures is printed every few seconds until
/// it finishes, so a long operation never looks hung.
pub(crate) fn progress_bar(total: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    if !std::io::stderr().is_terminal() {
        let watched = bar.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if watched.is_finished() {
                    return;
                }
                eprintln!("{}", progress_line(&watched));
            }
        });
    }
    bar
}

/// `finished 509/2005 (24.1/s, eta 1m 2s)`: the bar's figures as one line (`looked at 300
/// (12.0/s)` when the total is not known).
pub(crate) fn progress_line(bar: &indicatif::ProgressBar) -> String {
    let (done, total) = (bar.position(), bar.length().unwrap_or_default());
    if total == 0 {
        return format!("{} {done} ({:.1}/s)", bar.message().trim(), bar.per_sec());
    }
    let rate = bar.per_sec();
    let eta = if rate > 0.0 && total > done {
        humantime::format_duration(std::time::Duration::from_secs(
            ((total - done) as f64 / rate) as u64,
        ))
        .to_string()
    } else {
        "-".into()
    };
    format!(
        "{} {done}/{total} ({rate:.1}/s, eta {eta})",
        bar.message().trim()
    )
}
