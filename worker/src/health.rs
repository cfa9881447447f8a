//! `/healthz` and `/readyz` (`CATALOG_SYNC_HEALTH_ADDR`), for orchestrators' probes:
//! - `/healthz`: the process answers (liveness; a restart is the cure when it does not);
//! - `/readyz`: the worker can do its job now: the catalog database answers, and Temporal lists
//!   this worker's Stripe pollers on the Stripe task queue (which also proves Temporal reachable
//!   and the namespace there). 503 with the reasons otherwise, each check bounded by a timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use catalog::Catalog;
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::enums::v1::TaskQueueType;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What `/readyz` checks.
#[derive(Clone)]
pub struct Readiness {
    pub(crate) client: Client,
    pub(crate) catalog: Catalog,
    pub(crate) stripe_queue: String,
    pub(crate) stripe_identity: String,
}

impl Readiness {
    /// `Ok` when ready; the reasons it is not otherwise.
    pub async fn check(&self) -> Result<(), Vec<String>> {
        let catalog = async {
            match tokio::time::timeout(CHECK_TIMEOUT, self.catalog.ping()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("catalog database: {e}")),
                Err(_) => Some(format!(
                    "catalog database: no answer within {CHECK_TIMEOUT:?}"
                )),
            }
        };
        let pollers = async {
            let described = tokio::time::timeout(
                CHECK_TIMEOUT,
                common::temporal::describe_task_queue(
                    &self.client,
                    &self.stripe_queue,
                    TaskQueueType::Activity,
                    false,
                ),
            )
            .await;
            match described {
                Ok(Ok(r)) if r.pollers.iter().any(|p| p.identity == self.stripe_identity) => None,
                Ok(Ok(_)) => Some(format!(
                    "Temporal lists no poller of this worker on {} yet",
                    self.stripe_queue
                )),
                Ok(Err(e)) => Some(format!("Temporal: {}", e.message())),
                Err(_) => Some(format!("Temporal: no answer within {CHECK_TIMEOUT:?}")),
            }
        };
        let (catalog, pollers) = tokio::join!(catalog, pollers);
        let problems: Vec<String> = catalog.into_iter().chain(pollers).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Serves `/healthz` and `/readyz` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, readiness: Readiness) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Arc::new(readiness));
    axum::serve(listener, app).await
}

async fn ready(State(readiness): State<Arc<Readiness>>) -> (StatusCode, String) {
    match readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(problems) => {
            tracing::warn!(problems = ?problems, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready:\n{}\n", problems.join("\n")),
            )
        }
    }
}
