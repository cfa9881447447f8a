//! The HTTP front: authentication, rate limiting, fault injection, idempotency, request ids and
//! statistics around the `/v1` routes, plus the `/_sandbox` control surface.
//!
//! Over 500 lines: the edges every request crosses (auth, rate limit, faults, idempotency, stats)
//! and the `/_sandbox` control surface share the `Sandbox` state and its locks; the objects
//! themselves live in `store`, the wire format in `form`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::DEFAULT_API_VERSION;
use crate::error::ApiError;
use crate::faults::{Fault, FaultConfig, Faults};
use crate::form::{self, Params};
use crate::limits::{Limiter, Limits};
use crate::store::{Account, Change, Target};
use crate::webhooks::{WebhookConfig, Webhooks};

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Stripe's rate limiters (`crate::limits`): as a Stripe sandbox by default (25/s per
    /// account, 25/s per endpoint).
    pub limits: Limits,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Where to persist state between restarts.
    pub state_file: Option<PathBuf>,
    /// Initial webhook endpoint.
    pub webhook: Option<WebhookConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::sandbox(),
            max_body_bytes: 1 << 20,
            state_file: None,
            webhook: None,
        }
    }
}

/// A response kept for its idempotency key; the body as compact JSON (a parsed `Value` takes
/// several times the memory, and every write with a key is kept).
struct IdempotentResponse {
    fingerprint: String,
    status: StatusCode,
    body: Box<str>,
}

#[derive(Default)]
struct Stats {
    by_endpoint: BTreeMap<(String, u16), u64>,
    /// 429s by endpoint and `Stripe-Rate-Limited-Reason`.
    refused: BTreeMap<(String, &'static str), u64>,
    writes: HashMap<String, u64>,
    total: u64,
    current_second: u64,
    current_count: u64,
    peak_rps: u64,
    started: Option<Instant>,
    /// Requests in each second from the first one (the first hour's), for a benchmark's timeline.
    per_second: Vec<u64>,
    /// Wall-clock times of the first and the latest request (Unix milliseconds).
    first_unix_ms: Option<u64>,
    last_unix_ms: Option<u64>,
}

/// How many seconds of [`Stats`]' timeline are kept.
const TIMELINE_SECONDS: usize = 3600;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Stats {
    fn record(&mut self, endpoint: &str, status: u16, refused: Option<&'static str>) {
        if let Some(reason) = refused {
            *self
                .refused
                .entry((endpoint.to_string(), reason))
                .or_default() += 1;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let second = started.elapsed().as_secs();
        let now = unix_ms();
        self.first_unix_ms.get_or_insert(now);
        self.last_unix_ms = Some(now);
        if let Ok(i) = usize::try_from(second)
            && i < TIMELINE_SECONDS
        {
            if self.per_second.len() <= i {
                self.per_second.resize(i + 1, 0);
            }
            self.per_second[i] += 1;
        }
        if second != self.current_second {
            self.current_second = second;
            self.current_count = 0;
        }
        self.current_count += 1;
        self.peak_rps = self.peak_rps.max(self.current_count);
        self.total += 1;
        *self
            .by_endpoint
            .entry((endpoint.to_string(), status))
            .or_default() += 1;
    }

    fn json(&self) -> Value {
        let requests: Vec<Value> = self
            .by_endpoint
            .iter()
            .map(|((endpoint, status), count)| json!({"endpoint": endpoint, "status": status, "count": count}))
            .collect();
        let writes: BTreeMap<&String, &u64> = self.writes.iter().collect();
        let rate_limited: Vec<Value> = self
            .refused
            .iter()
            .map(|((endpoint, reason), count)| json!({"endpoint": endpoint, "reason": reason, "count": count}))
            .collect();
        json!({
            "total_requests": self.total,
            "rate_limited": rate_limited,
            "peak_requests_per_second": self.peak_rps,
            "requests_each_second": self.per_second,
            "first_request_unix_ms": self.first_unix_ms,
            "last_request_unix_ms": self.last_unix_ms,
            "requests": requests,
            "writes": writes,
            "total_writes": self.writes.values().sum::<u64>(),
        })
    }
}

/// Shared server state.
pub struct Sandbox {
    config: Mutex<Config>,
    accounts: Mutex<HashMap<String, Account>>,
    idempotency: Mutex<HashMap<(String, String), IdempotentResponse>>,
    limiter: Mutex<Limiter>,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    webhooks: Webhooks,
    dirty: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock must not take the whole sandbox down with poisoned state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Serialize, Deserialize)]
struct Persisted {
    accounts: HashMap<String, Account>,
}

impl Sandbox {
    /// Builds the state, loading `config.state_file` when it exists.
    pub fn new(config: Config) -> anyhow::Result<Arc<Self>> {
        let accounts = match &config.state_file {
            Some(path) if path.exists() => {
                let raw = std::fs::read(path)?;
                serde_json::from_slice::<Persisted>(&raw)
                    .map_err(|e| {
                        anyhow::anyhow!("state file {} is not readable: {e}", path.display())
                    })?
                    .accounts
            }
            _ => HashMap::new(),
        };
        let mut accounts = accounts;
        for account in accounts.values_mut() {
            account.reindex();
        }
        let webhooks = Webhooks::new(config.webhook.clone());
        Ok(Arc::new(Self {
            config: Mutex::new(config),
            accounts: Mutex::new(accounts),
            idempotency: Mutex::new(HashMap::new()),
            limiter: Mutex::new(Limiter::default()),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(Stats::default()),
            webhooks,
            dirty: AtomicBool::new(false),
        }))
    }

    /// Writes the state file if anything changed since the last save.
    pub fn save_if_dirty(&self) -> anyhow::Result<()> {
        let Some(path) = lock(&self.config).state_file.clone() else {
            return Ok(());
        };
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let raw = {
            let accounts = lock(&self.accounts);
            serde_json::to_vec(&json!({ "accounts": &*accounts }))?
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, raw)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// The axum router: everything goes through one handler so every route gets the same edges.
pub fn router(sandbox: Arc<Sandbox>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(sandbox)
}

fn request_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..14)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("req_{tail}")
}

fn respond(status: StatusCode, body: &Value, request_id: &str, api_version: &str) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(api_version) {
        h.insert("stripe-version", v);
    }
    resp
}

fn error_response(err: &ApiError, request_id: &str, api_version: &str) -> Response {
    let mut resp = respond(err.status, &err.body(), request_id, api_version);
    let h = resp.headers_mut();
    if err.status == StatusCode::TOO_MANY_REQUESTS {
        h.insert(
            "stripe-rate-limited-reason",
            HeaderValue::from_static(err.rate_limited_reason.unwrap_or("global-rate")),
        );
        h.insert("stripe-should-retry", HeaderValue::from_static("true"));
    } else if err.status.is_server_error()
        || (err.kind == "idempotency_error" && err.status == StatusCode::CONFLICT)
    {
        h.insert("stripe-should-retry", HeaderValue::from_static("true"));
    }
    resp
}

/// A response whose body fails at once, so the client sees the connection break.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault injection: connection dropped",
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// The connected account a request acts on (`Stripe-Account: acct_…`), if any. The sandbox
/// keeps each connected account's objects apart from the platform's and from each other's; any
/// well-formed `acct_` id is a connected account of the key (they need not be created first).
fn connected_account(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("stripe-account") else {
        return Ok(None);
    };
    let account = raw.to_str().unwrap_or_default().trim();
    let well_formed = account
        .strip_prefix("acct_")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if !well_formed {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            ..ApiError::invalid(
                format!(
                    "The provided key does not have access to account '{account}' (or that \
                     account does not exist). Application access may have been revoked."
                ),
                None,
            )
        }
        .with_code("account_invalid"));
    }
    Ok(Some(account.to_string()))
}

/// Where an account's state is kept: the key's own, or one connected account's.
fn account_key(key: &str, connected: Option<&str>) -> String {
    match connected {
        Some(account) => format!("{key}/{account}"),
        None => key.to_string(),
    }
}

/// Each change with the webhook endpoints its event goes to: the account's own endpoints, or,
/// for a connected account, the platform's Connect endpoints.
fn targets(
    sb: &Sandbox,
    key: &str,
    connected: Option<&str>,
    changes: Vec<Change>,
) -> Vec<(Change, Vec<Target>)> {
    let accounts = lock(&sb.accounts);
    let endpoints = accounts.get(key);
    changes
        .into_iter()
        .map(|change| {
            let to = endpoints.map_or_else(Vec::new, |a| {
                a.webhook_targets(change.event_type, connected.is_some())
            });
            (change, to)
        })
        .collect()
}

/// The API key from `Authorization: Bearer …` or basic auth (key as user name).
fn api_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let raw = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::unauthorized("You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
        })?;
    let key = if let Some(token) = raw.strip_prefix("Bearer ") {
        token.trim().to_string()
    } else if let Some(b64) = raw.strip_prefix("Basic ") {
        let decoded = base64_decode(b64.trim())
            .ok_or_else(|| ApiError::unauthorized("Invalid basic authorization header."))?;
        decoded.split(':').next().unwrap_or_default().to_string()
    } else {
        return Err(ApiError::unauthorized(
            "Invalid authorization header. Use Bearer auth with your API key.",
        ));
    };
    let valid = ["sk_test_", "rk_test_", "sk_live_", "rk_live_"]
        .iter()
        .any(|p| key.starts_with(p) && key.len() > p.len());
    if !valid {
        let shown: String = key.chars().take(8).collect();
        return Err(ApiError::unauthorized(format!(
            "Invalid API Key provided: {shown}****"
        )));
    }
    Ok(key)
}

fn base64_decode(s: &str) -> Option<String> {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c)? as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The route pattern of a request, for stats and fault filters: `POST /v1/products/{id}`.
fn endpoint_label(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let pattern = match segments.as_slice() {
        ["v1", kind] => format!("/v1/{kind}"),
        ["v1", "billing", kind] => format!("/v1/billing/{kind}"),
        ["v1", "billing", kind, _] => format!("/v1/billing/{kind}/{{id}}"),
        ["v1", "billing", kind, _, action] => format!("/v1/billing/{kind}/{{id}}/{action}"),
        ["v1", kind, _] => format!("/v1/{kind}/{{id}}"),
        _ => path.to_string(),
    };
    format!("{method} {pattern}")
}

async fn handle(State(sb): State<Arc<Sandbox>>, req: Request) -> Response {
    let request_id = request_id();
    let (parts, body) = req.into_parts();
    let api_version = parts
        .headers
        .get("stripe-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(DEFAULT_API_VERSION)
        .to_string();
    let path = parts.uri.path().to_string();
    let max_body = lock(&sb.config).max_body_bytes;
    let body = match axum::body::to_bytes(body, max_body).await {
        Ok(b) => b,
        Err(_) => {
            let err = ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                ..ApiError::invalid(
                    format!("Request body too large: the limit is {max_body} bytes."),
                    None,
                )
            };
            return error_response(&err, &request_id, &api_version);
        }
    };
    let incoming = Incoming {
        method: &parts.method,
        path: &path,
        headers: &parts.headers,
        query: parts.uri.query(),
        body: &body,
        request_id: &request_id,
    };
    if let Some(rest) = path.strip_prefix("/_sandbox") {
        return control(&sb, rest, &incoming).await;
    }
    let endpoint = endpoint_label(&parts.method, &path);
    let outcome = api(&sb, &incoming, &endpoint).await;
    let refused = match &outcome {
        Outcome::Error(e) => e.rate_limited_reason,
        _ => None,
    };
    let (resp, status) = match outcome {
        Outcome::Json(status, value, replayed) => {
            let mut r = respond(status, &value, &request_id, &api_version);
            if replayed {
                r.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            (r, status.as_u16())
        }
        Outcome::Error(e) => (
            error_response(&e, &request_id, &api_version),
            e.status.as_u16(),
        ),
        Outcome::Drop => (dropped_connection(), 0),
    };
    lock(&sb.stats).record(&endpoint, status, refused);
    resp
}

/// One request, as the handlers read it.
#[derive(Clone, Copy)]
struct Incoming<'a> {
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    body: &'a Bytes,
    request_id: &'a str,
}

enum Outcome {
    Json(StatusCode, Value, bool),
    Error(ApiError),
    Drop,
}

/// A `/v1` request: key, rate limit, faults, idempotency, then the route.
async fn api(sb: &Arc<Sandbox>, req: &Incoming<'_>, endpoint: &str) -> Outcome {
    let Incoming {
        method,
        path,
        headers,
        query,
        body,
        request_id,
    } = *req;
    let key = match api_key(headers) {
        Ok(k) => k,
        Err(e) => return Outcome::Error(e),
    };
    let connected = match connected_account(headers) {
        Ok(c) => c,
        Err(e) => return Outcome::Error(e),
    };
    if let Some(version) = headers.get("stripe-version")
        && !version
            .to_str()
            .is_ok_and(|v| crate::SUPPORTED_API_VERSIONS.contains(&v))
    {
        let shown = String::from_utf8_lossy(version.as_bytes()).into_owned();
        return Outcome::Error(ApiError::invalid(
            format!("Invalid Stripe API version: {shown}"),
            None,
        ));
    }
    let limits = lock(&sb.config).limits.clone();
    if let Err(refusal) = lock(&sb.limiter).admit(&limits, &key, endpoint) {
        return Outcome::Error(ApiError::rate_limited(refusal.reason()));
    }
    let (fault, latency) = lock(&sb.faults).decide(endpoint);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Fault::Error(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Outcome::Error(ApiError::server(status));
        }
        Fault::RateLimit => return Outcome::Error(ApiError::rate_limited("global-rate")),
        Fault::DropBefore => return Outcome::Drop,
        Fault::None | Fault::DropAfter => {}
    }
    let params = match parse_params(method, headers, query, body) {
        Ok(p) => p,
        Err(e) => return Outcome::Error(e),
    };
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|_| *method == Method::POST);
    if idempotency_key.as_ref().is_some_and(|ik| ik.len() > 255) {
        return Outcome::Error(ApiError::invalid(
            "Idempotency-Key must be at most 255 characters.",
            None,
        ));
    }
    let fingerprint = format!("{method} {path} {}", String::from_utf8_lossy(body));
    // Check, execute and remember under one lock, so that parallel requests with one key make
    // one object and the others replay its response.
    let mut cache = idempotency_key.as_ref().map(|_| lock(&sb.idempotency));
    if let (Some(cache), Some(ik)) = (&cache, &idempotency_key)
        && let Some(saved) = cache.get(&(key.clone(), ik.clone()))
    {
        if saved.fingerprint != fingerprint {
            return Outcome::Error(ApiError::idempotency(format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{ik}' if you meant to execute a different request."
            )));
        }
        let body = serde_json::from_str(&saved.body).expect("a kept response is JSON");
        return Outcome::Json(saved.status, body, true);
    }
    let result = {
        let mut accounts = lock(&sb.accounts);
        let account = accounts
            .entry(account_key(&key, connected.as_deref()))
            .or_default();
        route(account, method, path, params)
    };
    let (status, value, changes) = match result {
        Ok((value, changes)) => (StatusCode::OK, value, changes),
        Err(e) => (e.status, e.body(), Vec::new()),
    };
    if let (Some(cache), Some(ik)) = (cache.as_mut(), idempotency_key.clone()) {
        cache.insert(
            (key.clone(), ik),
            IdempotentResponse {
                fingerprint,
                status,
                body: value.to_string().into_boxed_str(),
            },
        );
    }
    drop(cache);
    if !changes.is_empty() {
        sb.dirty.store(true, Ordering::SeqCst);
        let mut stats = lock(&sb.stats);
        for c in &changes {
            *stats.writes.entry(c.object_id.clone()).or_default() += 1;
        }
        drop(stats);
        let changes = targets(sb, &key, connected.as_deref(), changes);
        let events = sb.webhooks.emit(
            &key,
            connected.as_deref(),
            changes,
            Some((request_id, idempotency_key.as_deref())),
        );
        record_events(sb, &key, connected.as_deref(), &events);
    }
    if fault == Fault::DropAfter {
        return Outcome::Drop;
    }
    // Route errors travel as values, so the idempotency cache keeps them too, as Stripe does.
    Outcome::Json(status, value, false)
}

fn parse_params(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Params, ApiError> {
    let raw: &[u8] = if *method == Method::POST {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/x-www-form-urlencoded");
        if content_type.starts_with("application/json") || body.first() == Some(&b'{') {
            return Err(ApiError::invalid(
                "Invalid request: Stripe's API takes form-encoded bodies (application/x-www-form-urlencoded), not JSON.",
                None,
            ));
        }
        if !query.unwrap_or_default().is_empty() && body.is_empty() {
            query.unwrap_or_default().as_bytes()
        } else {
            body
        }
    } else {
        query.unwrap_or_default().as_bytes()
    };
    if std::str::from_utf8(raw).is_err() {
        return Err(ApiError::invalid(
            "Invalid request: the body is not valid UTF-8.",
            None,
        ));
    }
    Ok(Params::new(form::parse(raw)?))
}

/// Keeps the events a write made in the account it happened in (`GET /v1/events`).
fn record_events(sb: &Sandbox, key: &str, connected: Option<&str>, events: &[Value]) {
    lock(&sb.accounts)
        .entry(account_key(key, connected))
        .or_default()
        .record_events(events);
}

fn route(
    account: &mut Account,
    method: &Method,
    path: &str,
    params: Params,
) -> Result<(Value, Vec<Change>), ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let read = |v: Result<Value, ApiError>| v.map(|v| (v, Vec::new()));
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "products"]) => account.create_product(params),
        ("GET", ["v1", "products"]) => read(account.list_products(params)),
        ("GET", ["v1", "products", id]) => read(account.get_product(id, params)),
        ("POST", ["v1", "products", id]) => account.update_product(id, params),
        ("DELETE", ["v1", "products", id]) => {
            params.finish()?;
            account.delete_product(id)
        }
        ("POST", ["v1", "prices"]) => account.create_price(params),
        ("GET", ["v1", "prices"]) => read(account.list_prices(params)),
        ("GET", ["v1", "prices", id]) => read(account.get_price(id, params)),
        ("POST", ["v1", "prices", id]) => account.update_price(id, params),
        ("POST", ["v1", "billing", "meters"]) => account.create_meter(params),
        ("GET", ["v1", "billing", "meters"]) => read(account.list_meters(params)),
        ("GET", ["v1", "billing", "meters", id]) => read(account.get_meter(id, params)),
        ("POST", ["v1", "billing", "meters", id, "deactivate"]) => {
            account.set_meter_status(id, false, params)
        }
        ("POST", ["v1", "billing", "meters", id, "reactivate"]) => {
            account.set_meter_status(id, true, params)
        }
        ("GET", ["v1", "events"]) => read(account.list_events(params)),
        ("GET", ["v1", "events", id]) => read(account.get_event(id, params)),
        ("POST", ["v1", "webhook_endpoints"]) => account.create_webhook_endpoint(params),
        ("GET", ["v1", "webhook_endpoints"]) => read(account.list_webhook_endpoints(params)),
        ("GET", ["v1", "webhook_endpoints", id]) => read(account.get_webhook_endpoint(id, params)),
        ("POST", ["v1", "webhook_endpoints", id]) => account.update_webhook_endpoint(id, params),
        ("DELETE", ["v1", "webhook_endpoints", id]) => {
            params.finish()?;
            account.delete_webhook_endpoint(id)
        }
        _ => Err(ApiError::unrecognized_url(method.as_str(), path)),
    }
}

/// `/_sandbox/...`: configuration, statistics, Dashboard edits, webhooks.
async fn control(sb: &Arc<Sandbox>, rest: &str, req: &Incoming<'_>) -> Response {
    let Incoming {
        method,
        headers,
        query,
        body,
        request_id,
        ..
    } = *req;
    let json_body = || -> Result<Value, ApiError> {
        if body.is_empty() {
            Ok(json!({}))
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::invalid(format!("Invalid JSON body: {e}"), None))
        }
    };
    let result: Result<Value, ApiError> = (|| {
        let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["health"]) => Ok(json!({ "ok": true })),
            ("GET", ["stats"]) => Ok(lock(&sb.stats).json()),
            ("POST", ["reset"]) => {
                let opts = json_body()?;
                *lock(&sb.stats) = Stats::default();
                if opts["data"].as_bool().unwrap_or(false) {
                    lock(&sb.accounts).clear();
                    lock(&sb.idempotency).clear();
                    sb.dirty.store(true, Ordering::SeqCst);
                }
                Ok(json!({ "ok": true }))
            }
            ("GET", ["faults"]) => {
                Ok(serde_json::to_value(lock(&sb.faults).config()).unwrap_or_default())
            }
            ("POST", ["faults"]) => {
                let config: FaultConfig = serde_json::from_value(json_body()?).map_err(|e| {
                    ApiError::invalid(format!("Invalid fault configuration: {e}"), None)
                })?;
                *lock(&sb.faults) = Faults::new(config.clone());
                Ok(serde_json::to_value(config).unwrap_or_default())
            }
            ("DELETE", ["faults"]) => {
                *lock(&sb.faults) = Faults::default();
                Ok(json!({ "ok": true }))
            }
            ("POST", ["config"]) => {
                let v = json_body()?;
                let mut config = lock(&sb.config);
                if let Some(rate) = v["rate_limit"].as_u64() {
                    config.limits.global = rate as u32;
                }
                if let Some(rate) = v["endpoint_rate_limit"].as_u64() {
                    config.limits.per_endpoint = rate as u32;
                }
                if let Some(endpoints) = v.get("endpoint_limits") {
                    config.limits.endpoints =
                        serde_json::from_value(endpoints.clone()).map_err(|e| {
                            ApiError::invalid(format!("Invalid endpoint_limits: {e}"), None)
                        })?;
                }
                lock(&sb.limiter).reset();
                Ok(json!({
                    "rate_limit": config.limits.global,
                    "endpoint_rate_limit": config.limits.per_endpoint,
                    "endpoint_limits": config.limits.endpoints,
                    "max_body_bytes": config.max_body_bytes,
                }))
            }
            ("POST", ["webhooks"]) => {
                let config: WebhookConfig = serde_json::from_value(json_body()?).map_err(|e| {
                    ApiError::invalid(format!("Invalid webhook configuration: {e}"), None)
                })?;
                sb.webhooks.configure(Some(config));
                Ok(json!({ "ok": true }))
            }
            ("DELETE", ["webhooks"]) => {
                sb.webhooks.configure(None);
                Ok(json!({ "ok": true }))
            }
            ("GET", ["events"]) => Ok(json!({ "data": sb.webhooks.recent() })),
            ("POST", ["dashboard", kind @ ("products" | "prices"), id]) => {
                // An edit as a person makes it in the Dashboard: no API request, no rate limit,
                // not in the request stats, and events whose `request.id` is null.
                let key = api_key(headers)?;
                let connected = connected_account(headers)?;
                let params = Params::new(form::parse(if body.is_empty() {
                    query.unwrap_or_default().as_bytes()
                } else {
                    body
                })?);
                let (value, changes) = {
                    let mut accounts = lock(&sb.accounts);
                    let account = accounts
                        .entry(account_key(&key, connected.as_deref()))
                        .or_default();
                    if *kind == "products" {
                        account.update_product(id, params)?
                    } else {
                        account.update_price(id, params)?
                    }
                };
                sb.dirty.store(true, Ordering::SeqCst);
                let changes = targets(sb, &key, connected.as_deref(), changes);
                let events = sb.webhooks.emit(&key, connected.as_deref(), changes, None);
                record_events(sb, &key, connected.as_deref(), &events);
                Ok(value)
            }
            _ => Err(ApiError::unrecognized_url(
                method.as_str(),
                &format!("/_sandbox{rest}"),
            )),
        }
    })();
    match result {
        Ok(v) => respond(StatusCode::OK, &v, request_id, DEFAULT_API_VERSION),
        Err(e) => error_response(&e, request_id, DEFAULT_API_VERSION),
    }
}

/// Serves until `shutdown` resolves, saving state periodically and at the end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sandbox: Arc<Sandbox>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let saver = {
        let sb = sandbox.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                if let Err(e) = sb.save_if_dirty() {
                    tracing::warn!(error = %e, "could not save sandbox state");
                }
            }
        })
    };
    let result = axum::serve(listener, router(sandbox.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    saver.abort();
    sandbox.save_if_dirty()?;
    result.map_err(Into::into)
}
