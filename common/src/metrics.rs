//! catalog-sync's own metrics, recorded through the Temporal SDK's meter so that they appear on
//! the worker's Prometheus endpoint next to the SDK's (`temporal_*`) metrics.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `catalog_sync_stripe_requests_total` | counter | `endpoint` (`GET /v1/products/{id}`), `status` (`200`, `429`, …, `transport_error`) |
//! | `catalog_sync_stripe_request_latency` | histogram (ms) | `endpoint`, `status` |
//! | `catalog_sync_stripe_pacing_wait` | histogram (ms) | — : time a request waited for the process's Stripe budget |
//! | `catalog_sync_stripe_share` | gauge (requests/s) | — : this worker's share of the account's Stripe budget |
//! | `catalog_sync_stripe_workers` | gauge | — : workers polling the Stripe task queue, as this worker last counted them |
//! | `catalog_sync_sync_outcomes_total` | counter | `outcome` (`synced`, `unchanged`, `archived`, `skipped_unmanaged`, `skipped_other_catalog`, `invalid`, `failed`) |
//! | `catalog_sync_sync_lag` | histogram (ms) | — : from a catalog row's change (`updated_at`) to the Stripe write that carries it (passes that wrote because the catalog changed; not repairs of edits made in Stripe) |
//! | `catalog_sync_drift_total` | counter | `kind` (`missing`, `stale`, `edited_in_stripe`, `price_drift`, `should_archive`, `orphan`) |
//! | `catalog_sync_relay_lag` | gauge (s) | — : age of the oldest catalog change not yet relayed to Temporal |
//! | `catalog_sync_relay_pending` | gauge | — : catalog changes waiting in the outbox |
//! | `catalog_sync_relay_changes_total` | counter | `result` (`relayed`, `released`, `rejected`) |
//! | `catalog_sync_webhook_events_total` | counter | `decision` (`repair`, `echo`, `unmanaged`, `ignored`, `duplicate`, `invalid_signature`, …) |
//! | `catalog_sync_capture_last_pass_timestamp_seconds` | gauge (Unix s) | — : the end of polling capture's last successful pass (relay, polling capture only) |
//! | `catalog_sync_capture_missing_triggers` | gauge | — : catalog tables without catalog-sync's capture triggers (relay, trigger capture only) |
//! | `catalog_sync_capture_slot_lag_bytes` | gauge (bytes) | — : WAL the replication slot holds for the relay, from its confirmed position to the server's (relay, logical capture only; -1: the slot is gone or its WAL was removed) |
//! | `catalog_sync_capture_slot_lag_seconds` | gauge (s) | — : how far behind the server's WAL the relay confirms the slot (0 when caught up; relay, logical capture only) |
//! | `catalog_sync_capture_resyncs_total` | counter | `reason` (`untraceable`: a truncate, or a delete whose old row does not name its product; `slot_lost`: the slot lost WAL it had not read, and was made anew): every product enqueued because the log could not say which changed (relay, logical capture only) |
//! | `catalog_sync_http_requests_total` | counter | `server` (`relay`, `codec-server`), `route` (`/stripe/webhook`, …, `unmatched`), `status` (`200`, …) |
//! | `catalog_sync_http_request_latency` | histogram (ms) | `server`, `route` |
//! | `catalog_sync_build_info` | gauge (always 1) | `binary` (`worker`, `relay`, `codec-server`), `version`, `build_id` (the worker's Worker Deployment build) |
//!
//! The counters with a fixed set of label values start at 0 for each ([`Metrics::start_at_zero`]):
//! a series that first appears at its first event has no earlier sample, so `increase()` and
//! `rate()` would not see that first failure, drift or rejected change.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, Gauge, GaugeF64, HistogramDuration, MetricAttributes, MetricKeyValue,
    MetricParameters, NewAttributes,
};

/// The sync-lag histogram's name.
const SYNC_LAG: &str = "catalog_sync_sync_lag";

/// Its buckets (ms), from a second to four hours: the SDK's default ones end at 10 s, and a sync
/// lag SLO is minutes (the alert rules read the 300 000 ms bucket).
pub const SYNC_LAG_BUCKETS_MS: [f64; 10] = [
    1_000.,
    5_000.,
    15_000.,
    30_000.,
    60_000.,
    120_000.,
    300_000.,
    900_000.,
    3_600_000.,
    14_400_000.,
];

/// Every metric this module exports (without the `_bucket`/`_sum`/`_count` of histograms).
pub const METRIC_NAMES: &[&str] = &[
    "catalog_sync_stripe_requests_total",
    "catalog_sync_stripe_request_latency",
    "catalog_sync_stripe_pacing_wait",
    "catalog_sync_stripe_share",
    "catalog_sync_stripe_workers",
    "catalog_sync_sync_outcomes_total",
    "catalog_sync_sync_lag",
    "catalog_sync_drift_total",
    "catalog_sync_relay_lag",
    "catalog_sync_relay_pending",
    "catalog_sync_relay_changes_total",
    "catalog_sync_webhook_events_total",
    "catalog_sync_capture_last_pass_timestamp_seconds",
    "catalog_sync_capture_missing_triggers",
    "catalog_sync_capture_slot_lag_bytes",
    "catalog_sync_capture_slot_lag_seconds",
    "catalog_sync_capture_resyncs_total",
    "catalog_sync_http_requests_total",
    "catalog_sync_http_request_latency",
    "catalog_sync_build_info",
];

/// The counters whose label values are known in advance (see [`Metrics::start_at_zero`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// `catalog_sync_sync_outcomes_total`, by `outcome`.
    Outcomes,
    /// `catalog_sync_drift_total`, by `kind`.
    Drift,
    /// `catalog_sync_relay_changes_total`, by `result`.
    RelayChanges,
    /// `catalog_sync_webhook_events_total`, by `decision`.
    WebhookEvents,
    /// `catalog_sync_capture_resyncs_total`, by `reason`.
    CaptureResyncs,
}

/// catalog-sync's instruments, shared by the Stripe client and the activities.
#[derive(Clone)]
pub struct Metrics {
    meter: Arc<dyn CoreMeter>,
    requests: Counter,
    latency: HistogramDuration,
    pacing_wait: HistogramDuration,
    outcomes: Counter,
    sync_lag: HistogramDuration,
    drift: Counter,
    relay_lag: GaugeF64,
    stripe_share: GaugeF64,
    stripe_workers: Gauge,
    relay_pending: Gauge,
    relay_changes: Counter,
    webhook_events: Counter,
    capture_last_pass: GaugeF64,
    capture_slot_lag: GaugeF64,
    capture_slot_age: GaugeF64,
    capture_resyncs: Counter,
    capture_missing_triggers: Gauge,
    http_requests: Counter,
    http_latency: HistogramDuration,
    build_info: Gauge,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: Arc<dyn CoreMeter>) -> Self {
        let requests = meter.counter(
            MetricParameters::builder()
                .name("catalog_sync_stripe_requests_total")
                .description("Requests sent to Stripe, by endpoint and response status")
                .build(),
        );
        let latency = meter.histogram_duration(
            MetricParameters::builder()
                .name("catalog_sync_stripe_request_latency")
                .description("Latency of Stripe requests, by endpoint and response status")
                .unit("ms")
                .build(),
        );
        let pacing_wait = meter.histogram_duration(
            MetricParameters::builder()
                .name("catalog_sync_stripe_pacing_wait")
                .description("Time a Stripe request waited for the worker's request budget")
                .unit("ms")
                .build(),
        );
        let outcomes = meter.counter(
            MetricParameters::builder()
                .name("catalog_sync_sync_outcomes_total")
                .description("Product sync passes by outcome")
                .build(),
        );
        let sync_lag = meter.histogram_duration(
            MetricParameters::builder()
                .name(SYNC_LAG)
                .description(
                    "From a catalog change to the Stripe write that carries it (change-driven passes)",
                )
                .unit("ms")
                .build(),
        );
        let drift = meter.counter(
            MetricParameters::builder()
                .name("catalog_sync_drift_total")
                .description("Differences reconciliation found, by kind")
                .build(),
        );
        let relay_lag = meter.gauge_f64(
            MetricParameters::builder()
                .name("catalog_sync_relay_lag")
                .description("Age of the oldest catalog change not yet relayed to Temporal")
                .unit("s")
                .build(),
        );
        let stripe_share = meter.gauge_f64(
            MetricParameters::builder()
                .name("catalog_sync_stripe_share")
                .description("This worker's share of the account's Stripe request budget")
                .unit("requests/s")
                .build(),
        );
        let stripe_workers = meter.gauge(
            MetricParameters::builder()
                .name("catalog_sync_stripe_workers")
                .description("Workers polling the Stripe task queue, as this worker counted them")
                .build(),
        );
        let relay_pending = meter.gauge(
            MetricParameters::builder()
                .name("catalog_sync_relay_pending")
                .description("Catalog changes waiting in the outbox")
                .build(),
        );
        let relay_changes = meter.counter(
            MetricParameters::builder()
                .name("catalog_sync_relay_changes_total")
                .description("Outbox changes handled by the relay, by result")
                .build(),
        );
        let webhook_events = meter.counter(
            MetricParameters::builder()
                .name("catalog_sync_webhook_events_total")
                .description("Stripe webhook events received, by decision")
                .build(),
        );
        let capture_last_pass = meter.gauge_f64(
            MetricParameters::builder()
                .name("catalog_sync_capture_last_pass_timestamp_seconds")
                .description("When polling capture last finished a pass over the catalog")
                .unit("s")
                .build(),
        );
        let capture_slot_lag = meter.gauge_f64(
            MetricParameters::builder()
                .name("catalog_sync_capture_slot_lag_bytes")
                .description(
                    "WAL the replication slot holds for logical capture (-1: the slot is gone)",
                )
                .unit("By")
                .build(),
        );
        let capture_slot_age = meter.gauge_f64(
            MetricParameters::builder()
                .name("catalog_sync_capture_slot_lag_seconds")
                .description("How far behind the server's WAL the relay confirms the slot")
                .unit("s")
                .build(),
        );
        let capture_resyncs = meter.counter(
            MetricParameters::builder()
                .name("catalog_sync_capture_resyncs_total")
                .description(
                    "Every product enqueued because the log could not say which changed, by reason",
                )
                .build(),
        );
        let capture_missing_triggers = meter.gauge(
            MetricParameters::builder()
                .name("catalog_sync_capture_missing_triggers")
                .description("Catalog tables without catalog-sync's capture triggers")
                .build(),
        );
        let http_requests = meter.counter(
            MetricParameters::builder()
                .name("catalog_sync_http_requests_total")
                .description("HTTP requests answered, by server, route and status")
                .build(),
        );
        let http_latency = meter.histogram_duration(
            MetricParameters::builder()
                .name("catalog_sync_http_request_latency")
                .description("Time to answer HTTP requests, by server and route")
                .unit("ms")
                .build(),
        );
        let build_info = meter.gauge(
            MetricParameters::builder()
                .name("catalog_sync_build_info")
                .description("Always 1: the binary, its version and its build id")
                .build(),
        );
        Self {
            meter,
            build_info,
            requests,
            latency,
            pacing_wait,
            outcomes,
            sync_lag,
            drift,
            relay_lag,
            stripe_share,
            stripe_workers,
            relay_pending,
            relay_changes,
            webhook_events,
            capture_last_pass,
            capture_slot_lag,
            capture_slot_age,
            capture_resyncs,
            capture_missing_triggers,
            http_requests,
            http_latency,
        }
    }

    fn labelled(&self, key: &str, value: &str) -> MetricAttributes {
        self.meter
            .new_attributes(NewAttributes::from(vec![MetricKeyValue::new(
                key.to_string(),
                value.to_string(),
            )]))
    }

    /// Puts `counter`'s series for each of `values` at 0 (adding 0 makes the series exist).
    pub fn start_at_zero(&self, counter: Counted, values: &[&str]) {
        let (instrument, key) = match counter {
            Counted::Outcomes => (&self.outcomes, "outcome"),
            Counted::Drift => (&self.drift, "kind"),
            Counted::RelayChanges => (&self.relay_changes, "result"),
            Counted::WebhookEvents => (&self.webhook_events, "decision"),
            Counted::CaptureResyncs => (&self.capture_resyncs, "reason"),
        };
        for value in values {
            instrument.add(0, &self.labelled(key, value));
        }
    }

    /// Publishes `catalog_sync_build_info{binary, version, build_id} 1`.
    pub fn build_info(&self, binary: &str, build_id: &str) {
        let attributes = self.meter.new_attributes(NewAttributes::from(vec![
            MetricKeyValue::new("binary", binary.to_string()),
            MetricKeyValue::new("version", env!("CARGO_PKG_VERSION").to_string()),
            MetricKeyValue::new("build_id", build_id.to_string()),
        ]));
        self.build_info.record(1, &attributes);
    }

    /// Counts the outcome of a sync pass.
    pub fn sync_outcome(&self, outcome: &str) {
        self.outcomes.add(1, &self.labelled("outcome", outcome));
    }

    /// Records how long after the catalog change its Stripe write happened.
    pub fn sync_lag(&self, lag: Duration) {
        let none = self.meter.new_attributes(NewAttributes::from(vec![]));
        self.sync_lag.record(lag, &none);
    }

    /// Counts `n` differences of one kind.
    pub fn drift(&self, kind: &str, n: u64) {
        if n > 0 {
            self.drift.add(n, &self.labelled("kind", kind));
        }
    }

    /// Publishes the outbox's state.
    pub fn relay_state(&self, pending: u64, lag: Duration) {
        let none = self.meter.new_attributes(NewAttributes::from(vec![]));
        self.relay_pending.record(pending, &none);
        self.relay_lag.record(lag.as_secs_f64(), &none);
    }

    /// Records the end of a successful polling pass, now.
    pub fn capture_pass(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let none = self.meter.new_attributes(NewAttributes::from(vec![]));
        self.capture_last_pass.record(now.as_secs_f64(), &none);
    }

    /// Records the WAL the replication slot holds (`None`: the slot is gone or lost).
    pub fn capture_slot_lag(&self, bytes: Option<i64>) {
        let none = self.meter.new_attributes(NewAttributes::from(vec![]));
        self.capture_slot_lag
            .record(bytes.map_or(-1.0, |b| b as f64), &none);
    }

    /// Records how far behind the relay confirms the slot (`None`: unknown, not recorded).
    pub fn capture_slot_age(&self, seconds: Option<f64>) {
        if let Some(seconds) = seconds {
            let none = self.meter.new_attributes(NewAttributes::from(vec![]));
            self.capture_slot_age.record(seconds, &none);
        }
    }

    /// Counts one resync of every product, for `reason` (`untraceable`, `slot_lost`).
    pub fn capture_resync(&self, reason: &str) {
        self.capture_resyncs
            .add(1, &self.labelled("reason", reason));
    }

    /// Records how many catalog tables lack the capture triggers.
    pub fn capture_missing_triggers(&self, tables: u64) {
        let none = self.meter.new_attributes(NewAttributes::from(vec![]));
        self.capture_missing_triggers.record(tables, &none);
    }

    /// Records one HTTP request a server answered.
    pub fn http_request(&self, server: &str, route: &str, status: u16, took: Duration) {
        let route = [
            MetricKeyValue::new("server", server.to_string()),
            MetricKeyValue::new("route", route.to_string()),
        ];
        let mut with_status = route.to_vec();
        with_status.push(MetricKeyValue::new("status", status.to_string()));
        self.http_requests.add(
            1,
            &self.meter.new_attributes(NewAttributes::from(with_status)),
        );
        self.http_latency.record(
            took,
            &self
                .meter
                .new_attributes(NewAttributes::from(route.to_vec())),
        );
    }

    /// Counts `n` outbox changes handled with `result`.
    pub fn relay_changes(&self, result: &str, n: u64) {
        if n > 0 {
            self.relay_changes.add(n, &self.labelled("result", result));
        }
    }

    /// Counts a webhook event by the decision taken.
    pub fn webhook_event(&self, decision: &str) {
        self.webhook_events
            .add(1, &self.labelled("decision", decision));
    }

    /// Records one request.
    pub fn request(&self, endpoint: &str, status: &str, took: Duration) {
        let attributes = self.meter.new_attributes(NewAttributes::from(vec![
            MetricKeyValue::new("endpoint", endpoint.to_string()),
            MetricKeyValue::new("status", status.to_string()),
        ]));
        self.requests.add(1, &attributes);
        self.latency.record(took, &attributes);
    }

    /// Records this worker's share of the Stripe budget and how many workers split it.
    pub fn stripe_share(&self, requests_per_second: f64, workers: u64) {
        let attributes = self.meter.new_attributes(NewAttributes::from(vec![]));
        self.stripe_share.record(requests_per_second, &attributes);
        self.stripe_workers.record(workers, &attributes);
    }

    /// Records a wait for the request budget.
    pub fn pacing_wait(&self, waited: Duration) {
        let attributes = self.meter.new_attributes(NewAttributes::from(vec![]));
        self.pacing_wait.record(waited, &attributes);
    }
}

/// Serves Prometheus metrics at `http://addr/metrics` (`CATALOG_SYNC_METRICS_ADDR` of the worker
/// and the relay); returns the meter (for the SDK's own metrics too) and catalog-sync's
/// instruments on it.
pub fn serve_prometheus(
    addr: std::net::SocketAddr,
) -> Result<(Arc<dyn CoreMeter>, Metrics), String> {
    use temporalio_common::telemetry::{
        PrometheusExporterOptions, start_prometheus_metric_exporter,
    };
    let exporter = start_prometheus_metric_exporter(
        PrometheusExporterOptions::builder()
            .socket_addr(addr)
            .histogram_bucket_overrides(temporalio_common::telemetry::HistogramBucketOverrides {
                overrides: [(SYNC_LAG.to_string(), SYNC_LAG_BUCKETS_MS.to_vec())].into(),
            })
            .build(),
    )
    .map_err(|e| format!("serving metrics on {addr}: {e}"))?;
    tracing::info!(addr = %exporter.bound_addr, "serving Prometheus metrics at /metrics");
    let meter: Arc<dyn CoreMeter> = exporter.meter;
    Ok((meter.clone(), Metrics::new(meter)))
}

/// [`serve_prometheus`] at `addr` when set (`CATALOG_SYNC_METRICS_ADDR`), with the process's
/// `catalog_sync_build_info{binary}`: what the relay and the codec server serve.
pub fn serve_for(
    addr: Option<std::net::SocketAddr>,
    binary: &str,
) -> anyhow::Result<Option<Metrics>> {
    let Some(addr) = addr else { return Ok(None) };
    let (_, metrics) = serve_prometheus(addr).map_err(|e| anyhow::anyhow!(e))?;
    metrics.build_info(binary, env!("CARGO_PKG_VERSION"));
    Ok(Some(metrics))
}

/// `GET /v1/products/{id}`: the method and the path with object ids replaced, so that the label's
/// values stay few.
pub fn endpoint_label(method: &str, path: &str) -> String {
    let pattern: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .enumerate()
        .map(|(i, segment)| if i >= 2 { "{id}" } else { segment })
        .collect();
    format!("{method} /{}", pattern.join("/"))
}

/// Counts and times every request `router` answers (`catalog_sync_http_requests_total`,
/// `catalog_sync_http_request_latency`), by the route's pattern (`/v1/changes`; `unmatched` for
/// a path no route takes), labelled `server`. Without metrics, `router` as it is.
pub fn track_http<S>(
    router: axum::Router<S>,
    metrics: Option<&Metrics>,
    server: &'static str,
) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    match metrics {
        Some(metrics) => router.layer(axum::middleware::from_fn_with_state(
            (metrics.clone(), server),
            record_http,
        )),
        None => router,
    }
}

async fn record_http(
    axum::extract::State((metrics, server)): axum::extract::State<(Metrics, &'static str)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics.http_request(
        server,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_labels_hide_ids() {
        assert_eq!(endpoint_label("GET", "/v1/products"), "GET /v1/products");
        assert_eq!(
            endpoint_label("POST", "/v1/products/sku-000001"),
            "POST /v1/products/{id}"
        );
        assert_eq!(
            endpoint_label("POST", "/v1/prices/price_123"),
            "POST /v1/prices/{id}"
        );
    }
}
