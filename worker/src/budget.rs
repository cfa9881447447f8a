//! One Stripe budget for all workers.
//!
//! Stripe grants an account a request rate (25/s in test mode, 100/s live), not a process. Every
//! Stripe-calling activity runs on the Stripe task queue ([`workflows::queues`]), and two things
//! keep any number of workers inside the one budget:
//!
//! 1. **Server-side dispatch rate.** The Stripe-queue workers ask the Temporal server to dispatch
//!    at most `budget` activity tasks per second on that queue, across all workers
//!    (`max_task_queue_activities_per_second`). Every such task makes at least one request, so
//!    the backlog beyond the budget waits in Temporal, in priority order, visible to
//!    `starter status`, rather than in worker memory.
//! 2. **Requests paced to a share.** A task can make several requests (read, then write), so each
//!    worker also spaces its own requests at `budget / workers`, where `workers` is the number of
//!    processes the server reports polling the Stripe queue ([`count_workers`], every
//!    [`SHARE_REFRESH`]). A worker that joins holds its first request until the others have had
//!    time to see it and shrink their shares ([`JOIN_HOLD`], and one refresh past the moment the
//!    server first lists it, however late that is); a worker that dies keeps counting
//!    for up to [`ACTIVE_POLLER`], which only makes the others slower meanwhile.
//!
//! Both shares are per endpoint too: Stripe also limits each API endpoint
//! ([`stripe::client::ENDPOINT_REQUESTS_PER_SECOND`]), and a backfill sends most of its requests to
//! `POST /v1/prices` and `POST /v1/products`, so each worker paces each endpoint at its share of
//! that limit ([`share_of_endpoint`]).
//!
//! A 429 that gets through anyway is sent again by the Stripe client after the limiter's time
//! (`stripe::client::RATE_LIMITED_RETRIES`); only repeated refusals fail the attempt, as
//! retryable, and Temporal retries it with backoff.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::metrics::Metrics;
use stripe::client::Pacer;
use temporalio_client::Client;
use temporalio_client::tonic;
use temporalio_common::protos::temporal::api::enums::v1::TaskQueueType;

/// How often a worker recounts the workers sharing the budget.
pub const SHARE_REFRESH: Duration = Duration::from_secs(5);

/// How long a joining worker holds its first Stripe request (see [`BudgetShare::join`]).
pub const JOIN_HOLD: Duration = Duration::from_secs(6);

/// A poller the server saw this recently is a live worker. Activity polls are long polls of up to
/// a minute, so an idle but live worker may not have polled anew for that long.
pub const ACTIVE_POLLER: Duration = Duration::from_secs(90);

/// The requests per second each of `workers` workers may send (at least 1).
pub fn share(budget: u32, workers: u32) -> u32 {
    (budget / workers.max(1)).max(1)
}

/// The requests per second to one endpoint each of `workers` workers may send: their share of
/// Stripe's limit per endpoint (or of the budget, when that is lower), to the fraction, so that
/// the workers together use all of it (two workers at 12 each left 1 of Stripe's 25 unused: 0.93
/// of a backfill's pace instead of 0.99).
pub fn share_of_endpoint(budget: u32, workers: u32) -> f64 {
    f64::from(stripe::client::ENDPOINT_REQUESTS_PER_SECOND.min(budget)) / f64::from(workers.max(1))
}

/// Keeps this worker's pacer at its share of the budget.
pub struct BudgetShare {
    client: Client,
    stripe_queue: String,
    identity: String,
    budget: u32,
    pacer: Arc<Pacer>,
    metrics: Option<Metrics>,
}

impl BudgetShare {
    /// `identity` is this worker's identity on the Stripe queue.
    pub fn new(
        client: Client,
        stripe_queue: String,
        identity: String,
        budget: u32,
        pacer: Arc<Pacer>,
        metrics: Option<Metrics>,
    ) -> Self {
        Self {
            client,
            stripe_queue,
            identity,
            budget,
            pacer,
            metrics,
        }
    }

    /// Joins the workers sharing the budget (before polling): the first request waits
    /// [`JOIN_HOLD`], long enough for this worker's polls to reach the server, for it to count
    /// its peers, and for every peer to recount and shrink its share, so that workers started
    /// together never send at the whole budget each.
    pub async fn join(&self) {
        self.pacer.hold_for(JOIN_HOLD).await;
    }

    /// Keeps this worker's share current, for good (spawn it).
    pub async fn run(self) {
        self.hold_until_seen().await;
        loop {
            match count_workers(&self.client, &self.stripe_queue, &self.identity).await {
                Ok(Pollers { others, .. }) => self.apply(others + 1),
                Err(status) => {
                    tracing::warn!(error = %status.message(), "cannot count the workers sharing the Stripe budget; keeping the share");
                }
            }
            tokio::time::sleep(SHARE_REFRESH).await;
        }
    }

    /// [`JOIN_HOLD`] assumes this worker's polls reach the server within a second of starting;
    /// on a loaded machine or server they may not, and peers that cannot see it keep their larger
    /// shares. So the hold also lasts until the server lists this worker's poller and a full
    /// [`SHARE_REFRESH`] (plus a second) after that, for every peer to recount (looked at every
    /// 250 ms, for at most a minute: past that the fixed hold alone applies, as before).
    async fn hold_until_seen(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Pollers { this: true, .. }) =
                count_workers(&self.client, &self.stripe_queue, &self.identity).await
            {
                self.pacer
                    .hold_for(SHARE_REFRESH + Duration::from_secs(1))
                    .await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tracing::warn!(
            queue = %self.stripe_queue,
            "the server does not list this worker as polling the Stripe queue after a minute: \
             peers may not count it yet"
        );
    }

    fn apply(&self, workers: u32) {
        let share = share(self.budget, workers);
        let per_endpoint = share_of_endpoint(self.budget, workers);
        if self.pacer.requests_per_second().round() as u32 != share {
            tracing::info!(
                workers,
                budget = self.budget,
                share,
                per_endpoint,
                "Stripe budget shared"
            );
        }
        self.pacer.set_requests_per_second(share);
        self.pacer.set_endpoint_requests_per_second(per_endpoint);
        if let Some(metrics) = &self.metrics {
            metrics.stripe_share(f64::from(share), u64::from(workers));
        }
    }
}

/// The recent pollers of the Stripe queue, as the server lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pollers {
    /// Other workers (distinct identities seen within [`ACTIVE_POLLER`]).
    pub others: u32,
    /// This worker (`identity`) is among them.
    pub this: bool,
}

/// The workers the server saw polling `stripe_queue` for activities within [`ACTIVE_POLLER`]:
/// those other than `identity`, and whether `identity` is among them.
pub async fn count_workers(
    client: &Client,
    stripe_queue: &str,
    identity: &str,
) -> Result<Pollers, tonic::Status> {
    let response =
        common::temporal::describe_task_queue(client, stripe_queue, TaskQueueType::Activity, false)
            .await?;
    let now = SystemTime::now();
    let mut recent: Vec<&str> = response
        .pollers
        .iter()
        .filter(|p| {
            p.last_access_time
                .and_then(|t| SystemTime::try_from(t).ok())
                .is_some_and(|seen| now.duration_since(seen).unwrap_or_default() <= ACTIVE_POLLER)
        })
        .map(|p| p.identity.as_str())
        .collect();
    recent.sort_unstable();
    recent.dedup();
    let this = recent.contains(&identity);
    Ok(Pollers {
        others: recent.len() as u32 - u32::from(this),
        this,
    })
}

/// A worker identity unique to this process and Stripe worker: `pid@host/stripe-XXXXXXXX`, so two
/// workers in one process (as in tests) count as two.
pub fn stripe_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!(
        "{}@{host}/stripe-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_split_the_budget_and_never_reach_zero() {
        assert_eq!(share(25, 1), 25);
        assert_eq!(share(25, 3), 8);
        assert_eq!(share(100, 3), 33);
        assert_eq!(share(25, 0), 25);
        assert_eq!(share(2, 5), 1);
    }

    #[test]
    fn endpoint_shares_add_up_to_stripes_limit() {
        assert_eq!(share_of_endpoint(100, 1), 25.0);
        assert_eq!(share_of_endpoint(100, 2), 12.5);
        assert!((share_of_endpoint(100, 3) * 3.0 - 25.0).abs() < 1e-9);
        assert_eq!(share_of_endpoint(20, 1), 20.0, "never above the budget");
        assert_eq!(share_of_endpoint(100, 0), 25.0);
    }
}
