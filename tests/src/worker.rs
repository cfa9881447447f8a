//! catalog-sync's worker, in process on its own task queue, and the workspace's binaries.

use std::path::PathBuf;
use std::process::Command;

use ::catalog::Catalog;
use temporalio_common::data_converters::DataConverter;
use temporalio_sdk::Runtime;

use crate::{Sandbox, connect, init_logging, temporal_address, unique};

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
        Self::start_on(&temporal_address(), catalog_url, sandbox, configure).await
    }

    /// As [`RunningWorker::start_configured`], against the Temporal server at `temporal`.
    pub async fn start_on(
        temporal: &str,
        catalog_url: &str,
        sandbox: &Sandbox,
        configure: impl FnOnce(&mut worker::Settings),
    ) -> Self {
        Self::start_build(
            temporal,
            catalog_url,
            sandbox,
            configure,
            worker::register_workflows,
        )
        .await
    }

    /// As [`RunningWorker::start_on`], with the workflow implementations `register` gives (a
    /// changed build of the code, for the rollout test).
    pub async fn start_build(
        temporal: &str,
        catalog_url: &str,
        sandbox: &Sandbox,
        configure: impl FnOnce(&mut worker::Settings),
        register: worker::RegisterWorkflows,
    ) -> Self {
        let temporal = temporal.to_string();
        let task_queue = unique("tq");
        let mut settings = worker::Settings {
            task_queue: task_queue.clone(),
            catalog_url: catalog_url.to_string(),
            catalog_mapping: None,
            stripe: sandbox.stripe_config(),
            retry: Default::default(),
            ownership: Default::default(),
            archive_budget: Default::default(),
            workflow_task_pollers: worker::DEFAULT_WORKFLOW_TASK_POLLERS,
            metrics: None,
            deployment: worker::deployment::Deployment::unversioned(),
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
                let client = connect(&temporal, DataConverter::default()).await;
                let built = worker::build_with(&runtime, client, &settings, register).await?;
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
pub async fn own_writes(catalog: &Catalog) -> stripe::write_key::WriteKeys {
    let secret = catalog
        .sync_secret(stripe::write_key::SECRET_NAME)
        .await
        .unwrap();
    stripe::write_key::WriteKeys::new(&secret)
}
