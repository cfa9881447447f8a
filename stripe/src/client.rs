//! The request core of a thin Stripe client over reqwest (rustls): configuration, form bodies,
//! headers, pacing to the budget, metrics, traces and the one error mapping. The requests of each
//! Stripe object live in that object's module ([`crate::products`], [`crate::prices`],
//! [`crate::webhook_endpoints`]), as `impl StripeClient` blocks over its one `call`.
//!
//! Why not `async-stripe` 1.0: it generates the whole API (a long build on 2 cores for the four
//! endpoints we call), and it hides the response headers catalog-sync must see (`Request-Id`,
//! `Stripe-Should-Retry`, `Stripe-Rate-Limited-Reason`, `Retry-After`). A few hundred lines give
//! exact control of the wire format, idempotency keys, and one error type with a retryable flag.
//!
//! Temporal owns retrying, with one exception: a request Stripe's rate limiter refused (429) is
//! sent again here, after the time the limiter needs ([`RATE_LIMITED_RETRIES`]), so that a
//! refusal costs a short wait instead of the activity's next attempt re-reading what this one
//! read. The same idempotency key goes with it: Stripe applied nothing.
//!
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use common::metrics::Metrics;
use common::metrics::endpoint_label;

/// The API version catalog-sync is written against (`STRIPE_API_VERSION` overrides it).
pub const API_VERSION: &str = common::settings::PINNED_API_VERSION;

pub use crate::envelope::{Expandable, List, Response};
pub use crate::error::{ApiFailure, StripeError};
pub use crate::objects::{Price, PriceOfProduct, PriceRecurring, Product};
pub use common::settings::Secret;
pub use domain::form::Form;
use domain::form::encode_component;

/// Where and how to reach Stripe.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com` in production; the sandbox's address in development.
    pub base_url: String,
    /// The secret key.
    pub api_key: Secret,
    /// `Stripe-Version` of every request ([`API_VERSION`] unless configured otherwise).
    pub api_version: String,
    /// The connected account every request acts on (`Stripe-Account`), with a platform's key;
    /// `None` for the key's own account.
    pub account: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests per second this process may send (0 = no pacing). Stripe allows 25/s in test
    /// mode and 100/s in live mode per account; see [`default_requests_per_second`].
    pub requests_per_second: u32,
    /// Where to record request counts and latencies (the worker's metrics endpoint), if anywhere.
    pub metrics: Option<Metrics>,
}

impl StripeConfig {
    /// The client configuration [`StripeSettings`](common::settings::StripeSettings) give,
    /// checked ([`check`](common::settings::StripeSettings::check)): unpaced and without metrics
    /// until [`paced`](Self::paced) and [`with_metrics`](Self::with_metrics) say otherwise.
    pub fn from_settings(
        settings: &common::settings::StripeSettings,
    ) -> Result<Self, common::settings::SettingsError> {
        settings.check()?;
        Ok(Self {
            base_url: settings.base(),
            api_key: settings.api_key()?,
            api_version: settings.api_version(),
            account: settings.account().map(str::to_string),
            timeout: settings.timeout(),
            requests_per_second: 0,
            metrics: None,
        })
    }

    /// At most `requests_per_second` (0: no pacing).
    pub fn paced(self, requests_per_second: u32) -> Self {
        Self {
            requests_per_second,
            ..self
        }
    }

    /// Request counts and latencies recorded in `metrics`, if any.
    pub fn with_metrics(self, metrics: Option<Metrics>) -> Self {
        Self { metrics, ..self }
    }
}

/// The trace span of one Stripe request (see `common::traces`): a client span under whatever
/// span is current (an activity's run), named by its endpoint (ids left out), with the status and
/// Stripe's `Request-Id`. A no-op when traces are off.
struct RequestSpan(opentelemetry::global::BoxedSpan);

impl RequestSpan {
    fn start(method: &str, path: &str, idempotency_key: Option<&str>) -> Self {
        use opentelemetry::KeyValue;
        use opentelemetry::trace::{SpanKind, Tracer};
        let tracer = opentelemetry::global::tracer(common::traces::SCOPE);
        let endpoint = endpoint_label(method, path);
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("url.path", path.to_string()),
            KeyValue::new("stripe.endpoint", endpoint.clone()),
        ];
        if let Some(key) = idempotency_key {
            attributes.push(KeyValue::new("stripe.idempotency_key", key.to_string()));
        }
        Self(
            tracer
                .span_builder(format!("stripe {endpoint}"))
                .with_kind(SpanKind::Client)
                .with_attributes(attributes)
                .start(&tracer),
        )
    }

    fn end<T>(mut self, result: &Result<Response<T>, StripeError>) {
        use opentelemetry::KeyValue;
        use opentelemetry::trace::{Span, Status};
        let (status, request_id) = match result {
            Ok(response) => (Some(200), response.request_id.clone()),
            Err(StripeError::Api(failure)) => {
                (Some(i64::from(failure.status)), failure.request_id.clone())
            }
            Err(_) => (None, None),
        };
        if let Some(status) = status {
            self.0
                .set_attribute(KeyValue::new("http.response.status_code", status));
        }
        if let Some(id) = request_id {
            self.0.set_attribute(KeyValue::new("stripe.request_id", id));
        }
        if let Err(e) = result {
            self.0.set_status(Status::error(e.to_string()));
        }
        self.0.end();
    }
}

/// Why [`StripeClient::check_access`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AccessRefused {
    /// A setting is wrong (the message names it): stop.
    #[error("{0}")]
    Setting(String),
    /// Stripe could not be asked (it may come up later).
    #[error("Stripe could not be reached to check the key: {0}")]
    Unreachable(StripeError),
}

/// Stripe's documented budget for a key: 100 requests/s live, 25/s test mode.
pub fn default_requests_per_second(api_key: &Secret) -> u32 {
    if api_key.expose().starts_with("sk_live_") || api_key.expose().starts_with("rk_live_") {
        100
    } else {
        25
    }
}

/// Stripe's limit per API endpoint, on top of the account's budget: "API endpoints have a default
/// limit of 25 requests per second", each named operation its own endpoint (`POST /v1/prices` and
/// `POST /v1/prices/{id}` are two; requests for different ids share one).
pub const ENDPOINT_REQUESTS_PER_SECOND: u32 = 25;

/// How often a request a rate limiter refused (429) is sent again before the refusal is the
/// activity's error: after 50 ms, then twice as long each time (1.55 s in all), or after
/// `Retry-After` when Stripe sends one.
pub const RATE_LIMITED_RETRIES: u32 = 5;

/// The wait before resending a request refused for the `n`th time (from 0): 50 ms doubling, each
/// between half and all of that (jitter: workers refused together do not come back together).
fn rate_limited_backoff(n: u32) -> Duration {
    let full = Duration::from_millis(50) * 2u32.pow(n.min(5));
    use rand::Rng;
    full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// Spaces requests evenly so one process stays inside its share of the budget instead of
/// collecting 429s: its share of the account's rate over all requests, and of each endpoint's
/// rate per endpoint ([`ENDPOINT_REQUESTS_PER_SECOND`]), since a backfill sends most of its
/// requests to one or two endpoints. (Pacing, not retrying: a request that fails still fails, and
/// Temporal retries the activity.) The rates can change while requests wait: the worker sets them
/// to its shares as workers come and go.
#[derive(Debug)]
pub struct Pacer {
    /// Nanoseconds between two requests.
    interval_nanos: AtomicU64,
    /// When the next request may go.
    next: tokio::sync::Mutex<tokio::time::Instant>,
    /// Nanoseconds between two requests to one endpoint (0: no pacing per endpoint).
    endpoint_interval_nanos: AtomicU64,
    /// When the next request to each endpoint may go.
    endpoints: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<tokio::time::Instant>>>>,
}

impl Pacer {
    /// A pacer allowing `requests_per_second` (at least 1).
    pub fn new(requests_per_second: u32) -> Self {
        let pacer = Self {
            interval_nanos: AtomicU64::new(0),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            endpoint_interval_nanos: AtomicU64::new(0),
            endpoints: std::sync::Mutex::new(HashMap::new()),
        };
        pacer.set_requests_per_second(requests_per_second);
        pacer.set_endpoint_requests_per_second(f64::from(
            ENDPOINT_REQUESTS_PER_SECOND.min(requests_per_second),
        ));
        pacer
    }

    /// Changes the rate per endpoint for the requests from now on (0: no pacing per endpoint). A
    /// fraction is kept: two workers at 12.5 each use all of Stripe's 25.
    pub fn set_endpoint_requests_per_second(&self, requests_per_second: f64) {
        let interval = match requests_per_second {
            n if n > 0.0 => (1e9 / n) as u64,
            _ => 0,
        };
        self.endpoint_interval_nanos
            .store(interval, Ordering::Relaxed);
    }

    /// The current rate per endpoint (0: not paced per endpoint).
    pub fn endpoint_requests_per_second(&self) -> f64 {
        match self.endpoint_interval_nanos.load(Ordering::Relaxed) {
            0 => 0.0,
            n => 1e9 / n as f64,
        }
    }

    /// Waits for a slot of the budget, then for one of `endpoint` (`POST /v1/prices`), and
    /// returns how long that took.
    ///
    /// Each endpoint keeps a schedule (the generic cell rate algorithm): slots one interval
    /// apart, each request taking the next, and a request may go up to one interval before its
    /// slot. So the endpoint's rate holds over any stretch of time, give or take one request,
    /// and neither a late wake-up nor a request that arrives a little after its slot (the
    /// previous step of the same sync still answering) costs the endpoint a slot: a backfill
    /// keeps two or three endpoints at their limit at once, each fed by the one before.
    pub async fn wait_for(&self, endpoint: &str) -> Duration {
        let started = tokio::time::Instant::now();
        self.wait().await;
        let interval = Duration::from_nanos(self.endpoint_interval_nanos.load(Ordering::Relaxed));
        if !interval.is_zero() {
            let slot = self.endpoint_slot(endpoint);
            let mut next = slot.lock().await;
            let early = next.checked_sub(interval).unwrap_or(*next);
            if early > tokio::time::Instant::now() {
                tokio::time::sleep_until(early).await;
            }
            *next = (*next).max(tokio::time::Instant::now()) + interval;
        }
        started.elapsed()
    }

    /// Sends nothing to `endpoint` for `duration` from now (its limiter refused a request).
    pub fn hold_endpoint(&self, endpoint: &str, duration: Duration) {
        let slot = self.endpoint_slot(endpoint);
        let interval = Duration::from_nanos(self.endpoint_interval_nanos.load(Ordering::Relaxed));
        // Taken without waiting when free; a request holding it is about to go anyway. (A
        // request may go one interval before its slot: the hold counts it.)
        if let Ok(mut next) = slot.try_lock() {
            *next = (*next).max(tokio::time::Instant::now() + duration + interval);
        }
    }

    fn endpoint_slot(&self, endpoint: &str) -> Arc<tokio::sync::Mutex<tokio::time::Instant>> {
        self.endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(endpoint.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(tokio::time::Instant::now())))
            .clone()
    }

    /// Changes the rate for the requests from now on.
    pub fn set_requests_per_second(&self, requests_per_second: u32) {
        let interval = 1_000_000_000 / u64::from(requests_per_second.max(1));
        self.interval_nanos.store(interval, Ordering::Relaxed);
    }

    /// The current rate.
    pub fn requests_per_second(&self) -> f64 {
        1e9 / self.interval_nanos.load(Ordering::Relaxed) as f64
    }

    /// Sends nothing for `duration` from now (requests already waiting wait longer).
    pub async fn hold_for(&self, duration: Duration) {
        let mut next = self.next.lock().await;
        *next = (*next).max(tokio::time::Instant::now() + duration);
    }

    /// Waits for this request's slot; returns how long that took.
    ///
    /// Slots keep a schedule, one interval apart: a request that waited takes its slot and the
    /// next slot is one interval after it, however late the runtime woke it (spacing from the
    /// wake-up instead let every late wake-up push all later requests back: a busy 2-core machine
    /// lost a tenth of the budget that way). A request that finds its slot past goes at once, and
    /// the schedule starts again from it: time nobody used is not saved up for a burst. So the
    /// rate holds over any stretch of time, give or take one request.
    pub async fn wait(&self) -> Duration {
        let started = tokio::time::Instant::now();
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        let slot = (*next).max(now);
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
        let interval = Duration::from_nanos(self.interval_nanos.load(Ordering::Relaxed));
        *next = slot + interval;
        started.elapsed()
    }
}

/// The client.
#[derive(Debug, Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    config: StripeConfig,
    pacer: Option<Arc<Pacer>>,
}

impl StripeClient {
    /// Builds a client (connection pool shared by all activities).
    pub fn new(config: StripeConfig) -> Result<Self, StripeError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("catalog-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StripeError::Transport(e.to_string()))?;
        let pacer = (config.requests_per_second > 0)
            .then(|| Arc::new(Pacer::new(config.requests_per_second)));
        Ok(Self {
            http,
            config,
            pacer,
        })
    }

    /// The pacer of this client's requests (shared by its clones), unless pacing is off.
    pub fn pacer(&self) -> Option<Arc<Pacer>> {
        self.pacer.clone()
    }

    /// One request, paced to the budget and recorded in the metrics; sent again after a rate
    /// limiter's refusal (see [`RATE_LIMITED_RETRIES`]).
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &Form,
        idempotency_key: Option<&str>,
    ) -> Result<Response<T>, StripeError> {
        let endpoint = endpoint_label(method.as_str(), path);
        let mut refused = 0;
        loop {
            let result = self
                .call_once(&method, path, &endpoint, form, idempotency_key)
                .await;
            let Err(StripeError::Api(e)) = &result else {
                return result;
            };
            // `Stripe-Should-Retry: false` overrides the status here too.
            if e.status != 429 || e.should_retry == Some(false) || refused == RATE_LIMITED_RETRIES {
                return result;
            }
            let wait = e
                .retry_after
                .unwrap_or_else(|| rate_limited_backoff(refused));
            refused += 1;
            tracing::debug!(
                endpoint = %endpoint,
                reason = e.rate_limited_reason.as_deref().unwrap_or("-"),
                refused,
                wait_ms = wait.as_millis() as u64,
                "Stripe's rate limiter refused the request: sending it again"
            );
            match &self.pacer {
                // Only the endpoint's limiter refused: the account's other endpoints go on.
                Some(pacer) if e.rate_limited_reason.as_deref() == Some("endpoint-rate") => {
                    pacer.hold_endpoint(&endpoint, wait);
                }
                Some(pacer) => pacer.hold_for(wait).await,
                None => tokio::time::sleep(wait).await,
            }
        }
    }

    async fn call_once<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        endpoint: &str,
        form: &Form,
        idempotency_key: Option<&str>,
    ) -> Result<Response<T>, StripeError> {
        if let Some(pacer) = &self.pacer {
            let waited = pacer.wait_for(endpoint).await;
            if let Some(metrics) = &self.config.metrics {
                metrics.pacing_wait(waited);
            }
        }
        let span = RequestSpan::start(method.as_str(), path, idempotency_key);
        let Some(metrics) = &self.config.metrics else {
            let result = self.send(method.clone(), path, form, idempotency_key).await;
            span.end(&result);
            return result;
        };
        let started = std::time::Instant::now();
        let result = self.send(method.clone(), path, form, idempotency_key).await;
        span.end(&result);
        let status = match &result {
            Ok(_) => "200".to_string(),
            Err(StripeError::Transport(_)) => "transport_error".to_string(),
            Err(e) => e
                .status()
                .map_or_else(|| "unknown".into(), |s| s.to_string()),
        };
        metrics.request(endpoint, &status, started.elapsed());
        result
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &Form,
        idempotency_key: Option<&str>,
    ) -> Result<Response<T>, StripeError> {
        let mut url = format!("{}{}", self.config.base_url.trim_end_matches('/'), path);
        let is_get = method == Method::GET;
        if is_get && !form.is_empty() {
            url = format!("{url}?{}", form.encode());
        }
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(self.config.api_key.expose())
            .header("Stripe-Version", self.config.api_version.as_str());
        if let Some(account) = &self.config.account {
            req = req.header("Stripe-Account", account.as_str());
        }
        if !is_get {
            req = req
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form.encode());
        }
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| StripeError::Transport(without_url(e, &self.config.base_url)))?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("request-id");
        let should_retry = header("stripe-should-retry").map(|v| v == "true");
        let rate_limited_reason = header("stripe-rate-limited-reason");
        let retry_after = header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp
            .bytes()
            .await
            .map_err(|e| StripeError::Transport(without_url(e, &self.config.base_url)))?;
        if status.is_success() {
            let value = serde_json::from_slice(&body).map_err(|e| StripeError::Decode {
                status: status.as_u16(),
                message: e.to_string(),
            })?;
            return Ok(Response { value, request_id });
        }
        #[derive(Deserialize)]
        struct Envelope {
            error: ErrorBody,
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            param: Option<String>,
        }
        match serde_json::from_slice::<Envelope>(&body) {
            Ok(Envelope { error }) => Err(StripeError::Api(Box::new(ApiFailure {
                status: status.as_u16(),
                kind: error.kind,
                code: error.code,
                message: error.message.unwrap_or_default(),
                param: error.param,
                request_id,
                should_retry,
                rate_limited_reason,
                retry_after,
            }))),
            Err(_) => Err(StripeError::Api(Box::new(ApiFailure {
                status: status.as_u16(),
                kind: if status.is_server_error() {
                    "api_error".into()
                } else {
                    "unknown".into()
                },
                code: None,
                message: format!("non-Stripe error body ({} bytes)", body.len()),
                param: None,
                request_id,
                should_retry,
                rate_limited_reason,
                retry_after,
            }))),
        }
    }

    /// One cheap read (`GET /v1/products?limit=1`) that tells whether the key and the API version
    /// are accepted: a start-up check, so that a wrong setting fails the process with the
    /// setting's name instead of every sync. `Ok(())` when they are; the refusal otherwise, or a
    /// transport error when Stripe cannot be reached (which the caller may wait out).
    pub async fn check_access(&self) -> Result<(), AccessRefused> {
        let mut form = Form::new();
        form.push("limit", "1");
        // Not paced: one request at start, before this worker takes a share of the budget (a
        // starting worker's pacer holds its first request for seconds).
        match self
            .send::<List<Product>>(Method::GET, "/v1/products", &form, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(StripeError::Api(e)) if e.status == 401 => Err(AccessRefused::Setting(format!(
                "Stripe refused STRIPE_API_KEY (401: {}). Set STRIPE_API_KEY to a secret key \
                 (sk_…) or a restricted key (rk_…) of the account",
                e.message
            ))),
            Err(StripeError::Api(e)) if e.status == 403 => Err(AccessRefused::Setting(format!(
                "STRIPE_API_KEY may not read products (403: {}). A restricted key needs write \
                 access to Products and Prices (see docs/going-live.md)",
                e.message
            ))),
            Err(StripeError::Api(e)) if e.status == 400 && e.message.contains("API version") => {
                Err(AccessRefused::Setting(format!(
                    "Stripe refused STRIPE_API_VERSION={} ({}). Unset it to use the pinned version \
                     {API_VERSION}",
                    self.config.api_version, e.message
                )))
            }
            Err(e) => Err(AccessRefused::Unreachable(e)),
        }
    }

    /// The `Stripe-Version` this client sends.
    pub fn api_version(&self) -> &str {
        &self.config.api_version
    }
}

/// Ids are validated to `[A-Za-z0-9_-]` by the transform; encode anyway for ids from elsewhere.
pub(crate) fn path_segment(id: &str) -> String {
    encode_component(id, false)
}

/// reqwest errors print the URL; keep messages short and free of query strings, naming only the
/// base they were sent to (its scheme, host and port: whatever else it holds stays out).
fn without_url(e: reqwest::Error, base: &str) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    let base = url::Url::parse(base).map_or_else(
        |_| "an unparsable URL".to_string(),
        |u| {
            format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or_default(),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            )
        },
    );
    format!(
        "{kind} error at {base} (STRIPE_API_BASE): {}",
        e.without_url()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_keeps_brackets_and_escapes_values() {
        let mut f = Form::new();
        f.push("metadata[a b]", "x&y=z")
            .push("images[0]", "https://e/x.png");
        assert_eq!(
            f.encode(),
            "metadata[a+b]=x%26y%3Dz&images[0]=https%3A%2F%2Fe%2Fx.png"
        );
    }

    #[test]
    fn retryable_follows_stripe_rules() {
        let api = |status, should_retry| {
            StripeError::Api(Box::new(ApiFailure {
                status,
                kind: "x".into(),
                code: None,
                message: String::new(),
                param: None,
                request_id: None,
                should_retry,
                rate_limited_reason: None,
                retry_after: None,
            }))
        };
        assert!(api(429, None).is_retryable());
        assert!(api(503, None).is_retryable());
        assert!(!api(400, None).is_retryable());
        assert!(!api(500, Some(false)).is_retryable());
        assert!(api(400, Some(true)).is_retryable());
        assert!(StripeError::Transport("reset".into()).is_retryable());
    }

    #[tokio::test]
    async fn pacing_spaces_requests_to_the_budget() {
        let pacer = Pacer::new(100);
        let start = std::time::Instant::now();
        for _ in 0..11 {
            pacer.wait().await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "11 requests at 100/s span 100 ms"
        );
        // A smaller share slows the next requests down; a hold delays them all.
        pacer.set_requests_per_second(20);
        assert_eq!(pacer.requests_per_second(), 20.0);
        pacer.hold_for(Duration::from_millis(150)).await;
        let start = std::time::Instant::now();
        for _ in 0..3 {
            pacer.wait().await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "a 150 ms hold, then 3 requests at 20/s"
        );
    }

    #[tokio::test]
    async fn pacing_per_endpoint_leaves_other_endpoints_free() {
        let pacer = Pacer::new(1000);
        pacer.set_endpoint_requests_per_second(20.0);
        let start = std::time::Instant::now();
        for _ in 0..12 {
            pacer.wait_for("POST /v1/prices").await;
        }
        // One interval early at most: the first two go at once, then one per 50 ms.
        let one_endpoint = start.elapsed();
        assert!(
            one_endpoint >= Duration::from_millis(500),
            "12 requests to one endpoint at 20/s span 500 ms: {one_endpoint:?}"
        );
        let start = std::time::Instant::now();
        for endpoint in [
            "POST /v1/products",
            "POST /v1/products/{id}",
            "GET /v1/prices",
        ] {
            pacer.wait_for(endpoint).await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(40),
            "three endpoints' first requests go at the budget's pace: {:?}",
            start.elapsed()
        );
        // Never more per endpoint than the budget itself; 0 turns it off.
        assert_eq!(Pacer::new(10).endpoint_requests_per_second(), 10.0);
        pacer.set_endpoint_requests_per_second(0.0);
        assert_eq!(pacer.endpoint_requests_per_second(), 0.0);
    }

    #[test]
    fn a_refused_request_waits_longer_each_time_but_never_long() {
        for n in 0..RATE_LIMITED_RETRIES {
            let full = Duration::from_millis(50 * 2u64.pow(n));
            let wait = rate_limited_backoff(n);
            assert!(wait >= full / 2 && wait <= full, "{n}: {wait:?}");
        }
        let all: Duration = (0..RATE_LIMITED_RETRIES)
            .map(|n| Duration::from_millis(50 * 2u64.pow(n)))
            .sum();
        assert_eq!(all, Duration::from_millis(1550), "the doc's total");
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("sk_test_abc");
        assert!(!format!("{s:?}").contains("abc"));
    }
}
