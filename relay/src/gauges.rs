//! The relay's gauges, refreshed on a timer from the catalog alone, so that they tell the truth
//! from the relay's first seconds and all through a Temporal outage (when the outbox's lag is
//! what grows): the outbox's depth and lag, and, under trigger capture, how many catalog tables
//! have lost their triggers (a `DROP TRIGGER` or a restored dump without them stops capture
//! without an error anywhere else); under logical capture, the WAL the slot holds (a slot whose
//! reader stopped keeps WAL until the disk fills).

use std::future::Future;
use std::time::Duration;

use catalog::Catalog;
use common::metrics::Metrics;
use common::settings::CaptureMode;

/// Refreshes the gauges every `interval` until `shutdown` resolves, with those of the `capture`
/// mode: the tables without triggers, or the replication slot's lag (polling capture records its
/// passes itself, see [`crate::poll`]).
pub async fn publish_until(
    catalog: Catalog,
    metrics: Metrics,
    capture: CaptureMode,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let triggers = capture == CaptureMode::Triggers;
    tokio::pin!(shutdown);
    // Logged when it changes, not every pass: the gauge says it all the time.
    let mut missing_before = 0;
    loop {
        match catalog.outbox_stats().await {
            Ok(stats) => metrics.relay_state(stats.pending.max(0) as u64, stats.lag()),
            Err(e) => tracing::debug!(error = %e, "outbox stats unavailable"),
        }
        if triggers {
            match catalog.capture_state().await {
                Ok(state) => {
                    if state.missing.len() != missing_before && !state.missing.is_empty() {
                        tracing::warn!(
                            tables = ?state.missing,
                            "capture triggers are missing: changes to these tables no longer \
                             reach Stripe. Run `starter capture install`"
                        );
                    }
                    missing_before = state.missing.len();
                    metrics.capture_missing_triggers(missing_before as u64);
                }
                Err(e) => tracing::debug!(error = %e, "capture state unavailable"),
            }
        }
        if capture == CaptureMode::Logical {
            match catalog.slot_state().await {
                Ok(slot) => {
                    // A lost slot is the follow loop's to replace (`crate::logical`); it says so.
                    let lost = slot.as_ref().is_none_or(|s| s.lost);
                    if slot.is_none() {
                        tracing::error!(
                            "the replication slot is gone: changes are not captured. Run \
                             `starter capture install` (CATALOG_SYNC_CAPTURE=logical), then \
                             `starter reconcile`"
                        );
                    }
                    metrics.capture_slot_age(slot.as_ref().and_then(|s| s.age_seconds));
                    metrics.capture_slot_lag(slot.filter(|_| !lost).map(|s| s.lag_bytes));
                }
                Err(e) => tracing::debug!(error = %e, "replication slot unavailable"),
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
