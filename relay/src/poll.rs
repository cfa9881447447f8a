//! Polling capture's loop: a pass over the mapped tables every interval, an id diff every few
//! passes (see `catalog::poll` for what a pass does and the bound on how late it sees an edit).
//! It only appends to the outbox; the relay carries those changes like the triggers' ones.

use std::future::Future;
use std::time::{Duration, Instant};

use catalog::Catalog;

/// Polling capture's timing.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Between passes.
    pub interval: Duration,
    /// How long after its `updated_at` a change may commit and still be seen.
    pub lookback: Duration,
    /// Between id diffs (hard deletes).
    pub diff_every: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            lookback: Duration::from_secs(30),
            diff_every: Duration::from_secs(60),
        }
    }
}

/// Polls until `shutdown` resolves. A failed pass is logged and the next one tries again (a
/// pass is one transaction: nothing of a failed one is kept).
/// Each successful pass is recorded in `metrics` (`catalog_sync_capture_last_pass_timestamp_seconds`:
/// a pass that stops succeeding shows as its age growing).
pub async fn poll_until(
    catalog: Catalog,
    options: PollOptions,
    metrics: Option<common::metrics::Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last_diff: Option<Instant> = None;
    loop {
        let diff = last_diff.is_none_or(|at| at.elapsed() >= options.diff_every);
        match catalog.poll_changes(options.lookback, diff).await {
            Ok(pass) => {
                if let Some(m) = &metrics {
                    m.capture_pass();
                }
                if diff && !pass.skipped {
                    last_diff = Some(Instant::now());
                }
                if pass.initialized {
                    tracing::info!(
                        "polling capture: recorded the catalog as it is; changes from now on are relayed"
                    );
                } else if pass.changed + pass.deleted > 0 {
                    tracing::info!(
                        changed = pass.changed,
                        deleted = pass.deleted,
                        "polling capture: changes enqueued"
                    );
                }
                for (product, updated_at) in &pass.from_the_future {
                    tracing::warn!(
                        %product,
                        %updated_at,
                        "polling capture: the row's updated_at is later than the database's clock; \
                         it is synced, and the cursor stays at the database's now() so later edits \
                         are still seen. Fix the clock of whatever wrote it"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "polling capture: pass failed; retrying"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(options.interval) => {}
        }
    }
}
