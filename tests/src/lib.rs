//! Test harness: real servers, started for the tests.
//!
//! - **Temporal** ([`temporal`]): one `temporal server start-dev` (in memory, on free ports) shared
//!   by every test of the run, or the server at `CATALOG_SYNC_TEST_TEMPORAL` if set. Each test
//!   uses its own task queue. A test that needs a server of its own (one it kills, or a Web UI with
//!   a codec endpoint) starts a [`DevServer`] or [`RestartableTemporal`].
//! - **Stripe** ([`sandbox`]): an in-process [`stripe_sandbox`] per test.
//! - **Catalog** ([`catalog`]): a fresh SQLite file per test, or a fresh PostgreSQL database per
//!   test on the server at `CATALOG_SYNC_TEST_POSTGRES` (an admin URL such as
//!   `postgres://postgres@127.0.0.1:5432/test`); without it, a throwaway cluster is started with
//!   the local `initdb`/`pg_ctl`.
//! - **Worker** ([`worker`]): the same `worker::build` the binary uses, in process, or the
//!   binaries themselves.
//! - [`TestEnv`] puts one of each together; [`checks`] holds the assertions tests share.
//!
//! Servers started here are tied to the test process through a pipe: when the process exits,
//! however it exits, they are stopped.
#![allow(missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod browser;
pub mod catalog;
pub mod checks;
mod env;
pub mod sandbox;
pub mod temporal;
pub mod worker;

pub use browser::{chromium, headless_chromium};
pub use catalog::{Backend, fresh_catalog, fresh_database, postgres_admin_url};
pub use checks::{assert_no_duplicate_prices, assert_verify_clean, count_workflows, signal_all};
pub use env::TestEnv;
pub use sandbox::Sandbox;
pub use temporal::{
    DevServer, DevServerOptions, RestartableTemporal, connect, temporal_address, temporal_cli,
    temporal_client, temporal_client_with, temporal_ui_address, wait_until_polled,
};
pub use worker::{RunningWorker, binary, own_writes, worker_command};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A short random suffix for names.
pub fn unique(prefix: &str) -> String {
    use rand::Rng;
    format!("{prefix}-{:08x}", rand::thread_rng().r#gen::<u32>())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Spawns `script` under `sh` so that it is stopped when this process exits: the shell waits for
/// stdin to close (this process's end of the pipe closes when it dies), then runs `on_exit`.
fn spawn_tied(script: &str, on_exit: &str) -> Child {
    let wrapped =
        format!("{script} & child=$!; cat >/dev/null; {on_exit}; kill $child 2>/dev/null; wait");
    Command::new("sh")
        .arg("-c")
        .arg(wrapped)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh starts")
}

fn wait_for_port(port: u16, what: &str, timeout: Duration) {
    assert!(
        port_opens(port, timeout),
        "{what} did not come up on port {port} within {timeout:?}"
    );
}

/// Whether something listens on `port` within `timeout`.
fn port_opens(port: u16, timeout: Duration) -> bool {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

struct Tied(#[allow(dead_code)] Child);

/// A process a test started (a binary under test): killed and reaped when dropped, however the
/// test ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`; panics with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < timeout, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs to the test output; `RUST_LOG` selects (default `warn`).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Every string of a JSON document, plus the base64-decoded form of those that decode (payload
/// data in histories is base64): for searching a history for a value.
pub fn decoded_text(json: &[u8]) -> String {
    use base64::Engine;
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    out.push('\n');
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(
        &serde_json::from_slice(json).expect("history JSON"),
        &mut out,
    );
    out
}
