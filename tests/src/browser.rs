//! Headless Chromium, for the Web UI tests.

use std::path::PathBuf;
use std::process::Command;

use crate::which;

/// Debian's Chromium, for the browser test.
pub fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| which(name))
        .unwrap_or_else(|| {
            panic!(
                "the browser test needs Chromium and none was found: `scripts/setup-tools` installs \
                 it (Debian package chromium), or put chromium on PATH"
            )
        })
}

/// Headless Chromium on `url` with `extra` arguments (`--dump-dom`, `--screenshot=…`), after up to
/// 20 s of the page's (virtual) time: what it printed. Panics if Chromium fails.
pub fn headless_chromium(url: &str, extra: &[&str]) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=20000",
            "--window-size=1440,1000",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
