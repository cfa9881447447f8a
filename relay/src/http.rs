//! The relay's HTTP endpoints:
//! - `POST /v1/changes` — change notifications from catalogs that emit webhooks instead of writing
//!   to our tables. `Authorization: Bearer <token>`; body `{"product_ids": ["sku-1", …]}`. Answers
//!   202 only after Temporal accepted every valid id; ids that cannot be synced are listed with the
//!   reason and do not hold the others back; 503 (retry) while Temporal is unavailable.
//! - `POST /stripe/webhook` — Stripe events. The signature is checked on the raw body; events are
//!   handled once (by id); events of objects catalog-sync does not manage, and the echoes of its own
//!   writes, cause nothing; other `product.*`/`price.*` events repair the product, with field
//!   ownership deciding whether a Dashboard edit is reverted or kept. Every event of the account
//!   (echoes too) also updates the mirror of Stripe's state (the `mirror` crate).
//! - `GET /healthz` (the process answers, from before Temporal does: [`starting_router`]) and
//!   `GET /readyz` (the catalog and Temporal answer; 503 with the reasons otherwise).
//!
//! What an event calls for is decided in `decide`.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use catalog::{AuditEntry, Catalog};
use common::metrics::Metrics;
use common::settings::Secret;
use domain::metadata::META_ID;
use domain::ownership::Ownership;
use domain::transform::check_id;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use stripe::client::Product;
use stripe::identity::CatalogIdentity;
use stripe::write_key::WriteKeys;
use subtle::ConstantTimeEq;
use workflows::model::ValidationIssue;

use crate::decide::{Decision, decide, event_product};
use crate::signal::{SignalError, Signaller};
use crate::signature;

/// Limits and secrets of the endpoints.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Bearer tokens accepted by `POST /v1/changes` (several while rotating). Empty: the endpoint
    /// is off (404).
    pub ingest_tokens: Vec<Secret>,
    /// Stripe endpoint secrets (`whsec_…`; several while rotating). Empty: the endpoint is off.
    pub webhook_secrets: Vec<Secret>,
    /// How old a signature may be.
    pub webhook_tolerance: Duration,
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Most ids in one `POST /v1/changes` (413 beyond).
    pub max_ids: usize,
    /// Who owns which product field.
    pub ownership: Ownership,
    /// Recognises the idempotency keys of catalog-sync's own writes (signed with the catalog's
    /// `write_key` secret): their events are echoes. `None`: every event is taken for an outside
    /// edit (safe: the repair finds Stripe in sync and writes nothing).
    pub own_writes: Option<WriteKeys>,
    /// The identity of the relay's catalog: events about other catalogs' objects are left alone.
    pub catalog: Option<CatalogIdentity>,
    /// Stripe Connect: the connected account this relay's catalog syncs into. A Connect endpoint
    /// receives the events of every connected account (`account` in the event); this relay takes
    /// those of its own account only. `None`: only events of the key's own account (no `account`).
    pub account: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            ingest_tokens: Vec::new(),
            webhook_secrets: Vec::new(),
            webhook_tolerance: Duration::from_secs(300),
            max_body_bytes: 1 << 20,
            max_ids: 1000,
            ownership: Ownership::default(),
            own_writes: None,
            catalog: None,
            account: None,
        }
    }
}

struct AppState {
    catalog: Catalog,
    signaller: Signaller,
    config: HttpConfig,
    metrics: Option<Metrics>,
}

/// The endpoints over `catalog` (webhook de-duplication, audit, write-back) and `signaller`.
pub fn router(
    catalog: Catalog,
    signaller: Signaller,
    config: HttpConfig,
    metrics: Option<Metrics>,
) -> axum::Router {
    if let Some(m) = &metrics {
        m.start_at_zero(
            common::metrics::Counted::WebhookEvents,
            &crate::decide::Decision::LABELS,
        );
    }
    let limit = config.max_body_bytes;
    let tracked = metrics.clone();
    let state = Arc::new(AppState {
        catalog,
        signaller,
        config,
        metrics,
    });
    let router = axum::Router::new()
        .route("/v1/changes", post(ingest))
        .route("/stripe/webhook", post(stripe_webhook))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(limit));
    common::metrics::track_http(router, tracked.as_ref(), "relay").with_state(state)
}

/// The router a relay serves while it waits for Temporal: `GET /healthz` answers at once, and
/// every other request goes to the router `full` holds once it is set, or gets a 503 saying
/// what the relay waits for (counted in `metrics` as route `starting`; the full router counts
/// its own).
pub fn starting_router(
    full: Arc<OnceLock<axum::Router>>,
    metrics: Option<Metrics>,
) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .fallback(move |request: axum::extract::Request| {
            let (full, metrics) = (full.clone(), metrics.clone());
            async move {
                match full.get() {
                    Some(router) => {
                        use tower::ServiceExt;
                        match router.clone().oneshot(request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        }
                    }
                    None => {
                        if let Some(m) = &metrics {
                            let status = StatusCode::SERVICE_UNAVAILABLE.as_u16();
                            m.http_request("relay", "starting", status, Duration::ZERO);
                        }
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "starting: waiting for Temporal (TEMPORAL_ADDRESS)\n",
                        )
                            .into_response()
                    }
                }
            }
        })
}

/// `/readyz`: the catalog and Temporal answer (ingest and webhooks would fail otherwise, with 503).
async fn ready(State(app): State<Arc<AppState>>) -> Response {
    let catalog = async {
        match tokio::time::timeout(Duration::from_secs(3), app.catalog.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("catalog database: {e}")),
            Err(_) => Some("catalog database: no answer within 3 s".to_string()),
        }
    };
    let (catalog, temporal) = tokio::join!(catalog, app.signaller.check_temporal());
    let problems: Vec<String> = catalog.into_iter().chain(temporal.err()).collect();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", problems.join("\n")),
        )
            .into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// 503 with `Retry-After`: Temporal or the catalog is unavailable; the sender should retry.
fn unavailable(body: Value) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesRequest {
    product_ids: Vec<String>,
}

async fn ingest(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if app.config.ingest_tokens.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "change ingest is off: set CATALOG_SYNC_INGEST_TOKENS",
        );
    }
    if !authorized(&headers, &app.config.ingest_tokens) {
        let mut response = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let request: ChangesRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"product_ids\": [\"…\"]}}: {e}"),
            );
        }
    };
    if request.product_ids.len() > app.config.max_ids {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} ids in one request; send at most {}",
                request.product_ids.len(),
                app.config.max_ids
            ),
        );
    }
    let mut rejected = Vec::new();
    let mut valid = BTreeSet::new();
    for id in request.product_ids {
        match check_id(&id) {
            Some(issue) => rejected.push(json!({ "product_id": id, "reason": issue.reason })),
            None => {
                valid.insert(id);
            }
        }
    }
    let results: Vec<(String, Result<(), SignalError>)> = futures::stream::iter(valid)
        .map(|id| {
            let app = &app;
            async move {
                let result = app.signaller.product_changed(&id, None, "ingest").await;
                (id, result)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut accepted = Vec::new();
    let mut waiting = Vec::new();
    for (id, result) in results {
        match result {
            Ok(()) => accepted.push(id),
            Err(SignalError::Rejected(reason)) => {
                rejected.push(json!({ "product_id": id, "reason": reason }))
            }
            Err(e) => waiting.push((id, e)),
        }
    }
    accepted.sort();
    if let Some((_, e)) = waiting.first() {
        // Signals are idempotent enough to repeat: the caller retries the whole request.
        let body = json!({
            "error": format!("{e}: {} of the products were not accepted; retry the request", waiting.len()),
            "accepted": accepted,
            "rejected": rejected,
        });
        return unavailable(body);
    }
    let status = if accepted.is_empty() && !rejected.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::ACCEPTED
    };
    (
        status,
        Json(json!({ "accepted": accepted, "rejected": rejected })),
    )
        .into_response()
}

/// Constant-time comparison against every configured token.
fn authorized(headers: &HeaderMap, tokens: &[Secret]) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let mut ok = false;
    for token in tokens {
        ok |= bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()));
    }
    ok
}

async fn stripe_webhook(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let count = |decision: &str| {
        if let Some(m) = &app.metrics {
            m.webhook_event(decision);
        }
    };
    if app.config.webhook_secrets.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "Stripe webhooks are off: set STRIPE_WEBHOOK_SECRET",
        );
    }
    let header_value = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if let Err(e) = signature::verify(
        header_value,
        &body,
        &app.config.webhook_secrets,
        app.config.webhook_tolerance,
        now,
    ) {
        count("invalid_signature");
        tracing::warn!(error = %e, "webhook refused");
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a JSON event: {e}")),
    };
    let (Some(event_id), Some(event_type)) = (event["id"].as_str(), event["type"].as_str()) else {
        return error(StatusCode::BAD_REQUEST, "an event has an `id` and a `type`");
    };
    // The row of a product `starter import` bound (a product is otherwise its row by its id).
    let bound_row = match event_product(&event) {
        Some(product) => match app.catalog.catalog_ids_of(&[product.to_string()]).await {
            Ok(rows) => rows.into_values().next(),
            Err(e) => return unavailable(json!({ "error": format!("catalog unavailable: {e}") })),
        },
        None => None,
    };
    let decision = decide(&event, &app.config, bound_row.as_deref());
    let object_id = event["data"]["object"]["id"].as_str();
    match app
        .catalog
        .record_webhook_event(event_id, event_type, object_id, decision.label())
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            count("duplicate");
            return (
                StatusCode::OK,
                Json(json!({ "received": true, "duplicate": true })),
            )
                .into_response();
        }
        Err(e) => return unavailable(json!({ "error": format!("catalog unavailable: {e}") })),
    }
    // Every event of this account tells the mirror of Stripe's state what Stripe holds now (a
    // cache: a failure here only leaves the row for the next scan).
    if !matches!(decision, Decision::OtherAccount)
        && let Err(e) = mirror::apply_event(&app.catalog, &event).await
    {
        tracing::warn!(event = event_id, error = %e, "mirror of Stripe's state not updated");
    }
    match act(&app, &event, &decision).await {
        Ok(()) => {
            count(decision.label());
            tracing::info!(
                event = event_id,
                r#type = event_type,
                decision = decision.label(),
                "webhook handled"
            );
            (
                StatusCode::OK,
                Json(json!({ "received": true, "decision": decision.label() })),
            )
                .into_response()
        }
        Err(message) => {
            // Not handled: forget it so that Stripe's retry is handled anew.
            if let Err(e) = app.catalog.forget_webhook_event(event_id).await {
                tracing::error!(error = %e, event = event_id, "could not forget an unhandled event");
            }
            unavailable(json!({ "error": message }))
        }
    }
}

/// Starts the repair (if one is called for), then writes kept fields back if configured and
/// records each conflict decision. A Stripe-owned value that breaks the catalog's rules (see
/// [`Ownership::refused`]) is not kept: it is reported, the catalog stays as it is, and the repair
/// puts the catalog's value back in Stripe.
async fn act(app: &AppState, event: &Value, decision: &Decision) -> Result<(), String> {
    if let Decision::IdMismatch {
        catalog_id,
        claimed,
    } = decision
    {
        app.signaller
            .product_changed(catalog_id, None, "stripe_webhook")
            .await
            .map_err(|e| e.to_string())?;
        let detail = format!(
            "{META_ID}={claimed:?} in Stripe disagrees with the product's own id: refused \
             (nothing written back to {claimed:?} or {catalog_id:?}); {catalog_id} is repaired"
        );
        tracing::warn!(product = %catalog_id, %claimed, "webhook: identity metadata edited");
        return record_conflict(app, catalog_id, detail, event).await;
    }
    let (catalog_id, reverted, kept, repair) = match decision {
        Decision::Repair {
            catalog_id,
            reverted,
            kept,
        } => (catalog_id, reverted.as_slice(), kept.as_slice(), true),
        Decision::Kept { catalog_id, kept } => (catalog_id, &[][..], kept.as_slice(), false),
        _ => return Ok(()),
    };
    let object = &event["data"]["object"];
    let refused: Vec<ValidationIssue> = match serde_json::from_value::<Product>(object.clone()) {
        Ok(product) => app.config.ownership.refused(&product.json()),
        // Not a product (a price event): nothing of it is kept.
        Err(_) => Vec::new(),
    };
    let refusal = |field: &str| refused.iter().find(|i| i.top_field() == field);
    // The repair first: if Temporal is away, nothing is recorded and Stripe's retry starts over.
    if repair || kept.iter().any(|f| refusal(f).is_some()) {
        app.signaller
            .product_changed(catalog_id, None, "stripe_webhook")
            .await
            .map_err(|e| e.to_string())?;
    }
    for field in kept {
        if let Some(issue) = refusal(field) {
            let detail = format!(
                "{field}: Stripe edit refused ({}: {}); the catalog is unchanged and Stripe is reverted",
                issue.field, issue.reason
            );
            tracing::warn!(product = %catalog_id, %detail, "webhook");
            record_conflict(app, catalog_id, detail, event).await?;
            continue;
        }
        let mut detail = format!("{field}: Stripe edit kept (Stripe owns it)");
        if app.config.ownership.write_back {
            match app
                .catalog
                .write_back_field(catalog_id, field, &object[*field])
                .await
            {
                Ok(_) => detail.push_str("; written back to the catalog"),
                // The same value would be refused on each of Stripe's retries, for three days:
                // recorded, and the event answered.
                Err(e) if e.is_data_error() => {
                    tracing::warn!(product = %catalog_id, %field, error = %e, "write-back refused by the catalog");
                    detail.push_str(&format!(
                        "; not written back: the catalog database refused the value ({e})"
                    ));
                }
                Err(e) => return Err(format!("writing {field} back to the catalog: {e}")),
            }
        }
        record_conflict(app, catalog_id, detail, event).await?;
    }
    for field in reverted {
        let detail = format!("{field}: Stripe edit reverted (the catalog owns it)");
        record_conflict(app, catalog_id, detail, event).await?;
    }
    Ok(())
}

async fn record_conflict(
    app: &AppState,
    catalog_id: &str,
    detail: String,
    event: &Value,
) -> Result<(), String> {
    let entry = AuditEntry {
        product_id: catalog_id.to_string(),
        outcome: "conflict".into(),
        detail: Some(format!(
            "{detail} [event {}]",
            event["id"].as_str().unwrap_or("?")
        )),
        ..AuditEntry::default()
    };
    app.catalog
        .append_audit(&entry)
        .await
        .map_err(|e| format!("recording the decision: {e}"))
}
