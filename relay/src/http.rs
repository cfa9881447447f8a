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
//! - `GET /healthz` (the process answers) and `GET /readyz` (the catalog and Temporal answer; 503
//!   with the reasons otherwise).
//!
//! Over 500 lines with its unit tests (the code is under 500): the tests of the signature, echo and
//! ownership checks stay beside the handlers they guard.

use std::collections::BTreeSet;
use std::sync::Arc;
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
use domain::metadata::{META_CATALOG, META_ID, META_MANAGED};
use domain::ownership::{Ownership, changed_fields};
use domain::transform::check_id;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use stripe::client::Product;
use stripe::identity::CatalogIdentity;
use stripe::write_key::WriteKeys;
use subtle::ConstantTimeEq;
use workflows::model::ValidationIssue;

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
    let limit = config.max_body_bytes;
    let state = Arc::new(AppState {
        catalog,
        signaller,
        config,
        metrics,
    });
    axum::Router::new()
        .route("/v1/changes", post(ingest))
        .route("/stripe/webhook", post(stripe_webhook))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
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

/// What a Stripe event calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not a product or price event.
    Ignored,
    /// An object catalog-sync does not manage.
    Unmanaged,
    /// An object catalog-sync manages for another catalog, or made before catalog identities
    /// and not adopted (see `stripe::identity`): this relay's catalog leaves it alone.
    OtherCatalog,
    /// An event of another Stripe account (Connect): another relay's.
    OtherAccount,
    /// Caused by catalog-sync's own write (its signed idempotency key): nothing to do.
    Echo,
    /// Only Stripe-owned fields changed: the edit stands, nothing to repair.
    Kept {
        /// Catalog id.
        catalog_id: String,
        /// The Stripe-owned fields edited.
        kept: Vec<&'static str>,
    },
    /// A product whose `catalog_sync_id` metadata names another catalog id than its own id (an
    /// edit in the Dashboard, or a forgery): nothing is written back to either catalog row, the
    /// conflict is recorded, and the product is repaired by its own id.
    IdMismatch {
        /// The product's own id: the catalog id it is repaired as.
        catalog_id: String,
        /// The catalog id its metadata claims.
        claimed: String,
    },
    /// Make Stripe match the catalog again.
    Repair {
        /// Catalog id.
        catalog_id: String,
        /// Catalog-owned fields edited in Stripe, which the repair reverts.
        reverted: Vec<&'static str>,
        /// Stripe-owned fields edited in Stripe, which the repair leaves.
        kept: Vec<&'static str>,
    },
}

impl Decision {
    /// The label in metrics and in `stripe_webhook_events.decision`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ignored => "ignored",
            Self::Unmanaged => "unmanaged",
            Self::OtherCatalog => "other_catalog",
            Self::OtherAccount => "other_account",
            Self::Echo => "echo",
            Self::Kept { .. } => "kept",
            Self::IdMismatch { .. } => "id_mismatch",
            Self::Repair { .. } => "repair",
        }
    }
}

/// Decides what a (verified) event calls for, under the relay's `config`. Pure. An event of
/// another Stripe account (Connect) is another relay's. Only a key that `own_writes` verifies makes
/// an event an echo: anybody can send an idempotency key that looks like catalog-sync's. With the
/// relay's `catalog`, a managed object that carries another catalog's identity (or a product that
/// carries none) is that catalog's business, not this one's.
pub fn decide(event: &Value, config: &HttpConfig) -> Decision {
    let HttpConfig {
        ownership,
        own_writes,
        catalog,
        account,
        ..
    } = config;
    if event["account"].as_str() != account.as_deref() {
        return Decision::OtherAccount;
    }
    let event_type = event["type"].as_str().unwrap_or_default();
    let object = &event["data"]["object"];
    // Detaching a product in the Dashboard (removing `catalog_sync_managed`) is an edit of a managed
    // product too: the repair attaches it again while the catalog has it.
    let was_managed =
        event["data"]["previous_attributes"]["metadata"][META_MANAGED].as_str() == Some("true");
    let managed = object["metadata"][META_MANAGED].as_str() == Some("true") || was_managed;
    // A product is its catalog row by its own id, never by metadata a Dashboard user can edit.
    let catalog_id = if event_type.starts_with("product.") {
        object["id"].as_str()
    } else if event_type.starts_with("price.") {
        object["product"]
            .as_str()
            .or_else(|| object["product"]["id"].as_str())
    } else {
        return Decision::Ignored;
    };
    let Some(catalog_id) = catalog_id.filter(|_| managed) else {
        return Decision::Unmanaged;
    };
    if let Some(ours) = catalog {
        let stamped = object["metadata"][META_CATALOG]
            .as_str()
            .or_else(|| event["data"]["previous_attributes"]["metadata"][META_CATALOG].as_str());
        let product_event = event_type.starts_with("product.");
        // A price made by hand carries no identity: its product's decides, in the repair.
        match stamped {
            Some(c) if c != ours.as_str() => return Decision::OtherCatalog,
            None if product_event => return Decision::OtherCatalog,
            _ => {}
        }
    }
    if event_type.starts_with("product.")
        && let Some(claimed) = object["metadata"][META_ID].as_str()
        && claimed != catalog_id
    {
        return Decision::IdMismatch {
            catalog_id: catalog_id.to_string(),
            claimed: claimed.to_string(),
        };
    }
    let own_write = match (
        event["request"]["idempotency_key"].as_str(),
        own_writes.as_ref(),
    ) {
        // Ours only as a write to this product, applied within the key's window.
        (Some(key), Some(keys)) => {
            keys.is_own(key, catalog_id, event["created"].as_i64().unwrap_or(0))
        }
        _ => false,
    };
    if own_write {
        return Decision::Echo;
    }
    let catalog_id = catalog_id.to_string();
    if event_type != "product.updated" {
        return Decision::Repair {
            catalog_id,
            reverted: Vec::new(),
            kept: Vec::new(),
        };
    }
    let previous = event["data"].get("previous_attributes");
    let (kept, reverted): (Vec<&'static str>, Vec<&'static str>) = changed_fields(previous)
        .into_iter()
        .partition(|f| ownership.stripe_owns(f));
    // Anything else that changed (metadata, active, the default price…) belongs to the catalog.
    let other_changes = previous.and_then(Value::as_object).is_some_and(|p| {
        p.keys().any(|k| {
            k != "updated" && !kept.contains(&k.as_str()) && !reverted.contains(&k.as_str())
        })
    });
    if !kept.is_empty() && reverted.is_empty() && !other_changes {
        Decision::Kept { catalog_id, kept }
    } else {
        Decision::Repair {
            catalog_id,
            reverted,
            kept,
        }
    }
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
    let decision = decide(&event, &app.config);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(
        ownership: &Ownership,
        own_writes: Option<&WriteKeys>,
        catalog: Option<&CatalogIdentity>,
    ) -> HttpConfig {
        HttpConfig {
            ownership: ownership.clone(),
            own_writes: own_writes.cloned(),
            catalog: catalog.cloned(),
            ..HttpConfig::default()
        }
    }

    fn event(kind: &str, object: Value, previous: Option<Value>, key: Option<&str>) -> Value {
        let mut data = json!({ "object": object });
        if let Some(p) = previous {
            data["previous_attributes"] = p;
        }
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        json!({ "id": "evt_1", "type": kind, "data": data, "created": created,
                "request": { "id": "req_1", "idempotency_key": key } })
    }

    fn managed_product() -> Value {
        json!({ "id": "sku-1", "object": "product", "name": "New",
                "metadata": { "catalog_sync_managed": "true", "catalog_sync_id": "sku-1" } })
    }

    #[test]
    fn dashboard_edits_are_repaired_or_kept_by_ownership() {
        let owned = Ownership::parse("description", false).unwrap();
        let name_edit = event(
            "product.updated",
            managed_product(),
            Some(json!({"name": "Old"})),
            None,
        );
        assert_eq!(
            decide(&name_edit, &rules(&owned, None, None)),
            Decision::Repair {
                catalog_id: "sku-1".into(),
                reverted: vec!["name"],
                kept: vec![]
            }
        );
        let description_edit = event(
            "product.updated",
            managed_product(),
            Some(json!({"description": "Old", "updated": 1})),
            None,
        );
        assert_eq!(
            decide(&description_edit, &rules(&owned, None, None)),
            Decision::Kept {
                catalog_id: "sku-1".into(),
                kept: vec!["description"]
            }
        );
        // Under default ownership the catalog owns the description too.
        assert_eq!(
            decide(&description_edit, &rules(&Ownership::default(), None, None)).label(),
            "repair"
        );
        let metadata_edit = event(
            "product.updated",
            managed_product(),
            Some(json!({"description": "Old", "metadata": {}})),
            None,
        );
        assert_eq!(
            decide(&metadata_edit, &rules(&owned, None, None)).label(),
            "repair"
        );
    }

    #[test]
    fn a_product_is_its_catalog_row_by_its_own_id_not_by_editable_metadata() {
        // The Dashboard edit of sku-1 that also sets `catalog_sync_id=sku-2`: nothing goes to
        // sku-2's row, even for a Stripe-owned field with write-back on.
        let owned = Ownership::parse("description", true).unwrap();
        let mut forged = managed_product();
        forged["metadata"]["catalog_sync_id"] = json!("sku-2");
        let edit = event(
            "product.updated",
            forged,
            Some(json!({"description": "Old", "metadata": {"catalog_sync_id": "sku-1"}})),
            None,
        );
        assert_eq!(
            decide(&edit, &rules(&owned, None, None)),
            Decision::IdMismatch {
                catalog_id: "sku-1".into(),
                claimed: "sku-2".into()
            }
        );
        // Without the metadata, the product's own id decides.
        let mut bare = managed_product();
        bare["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("catalog_sync_id");
        let edit = event("product.updated", bare, Some(json!({"name": "Old"})), None);
        assert_eq!(
            decide(&edit, &rules(&owned, None, None)),
            Decision::Repair {
                catalog_id: "sku-1".into(),
                reverted: vec!["name"],
                kept: vec![]
            }
        );
    }

    #[test]
    fn echoes_unmanaged_objects_and_other_events_cause_nothing() {
        let o = Ownership::default();
        let keys = WriteKeys::new(b"the catalog's write_key");
        let mut form = stripe::client::Form::new();
        form.push("name", "New");
        let own_key = keys.key(
            "cat_00:product-sync:sku-1/run/3",
            std::time::SystemTime::now(),
            "sku-1",
            stripe::write_key::Step::UpdateProduct,
            "",
            &form,
        );
        let echo = event(
            "product.updated",
            managed_product(),
            Some(json!({"name": "Old"})),
            Some(&own_key),
        );
        assert_eq!(decide(&echo, &rules(&o, Some(&keys), None)), Decision::Echo);
        // Our key on another product's event, or minted two days before the event: an edit.
        let mut elsewhere = managed_product();
        elsewhere["id"] = json!("sku-2");
        elsewhere["metadata"]["catalog_sync_id"] = json!("sku-2");
        let moved = event(
            "product.updated",
            elsewhere,
            Some(json!({"name": "Old"})),
            Some(&own_key),
        );
        assert_eq!(
            decide(&moved, &rules(&o, Some(&keys), None)).label(),
            "repair"
        );
        let two_days_ago =
            std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        let stale_key = keys.key(
            "cat_00:product-sync:sku-1/run/3",
            two_days_ago,
            "sku-1",
            stripe::write_key::Step::UpdateProduct,
            "",
            &form,
        );
        let stale = event(
            "product.updated",
            managed_product(),
            Some(json!({"name": "Old"})),
            Some(&stale_key),
        );
        assert_eq!(
            decide(&stale, &rules(&o, Some(&keys), None)).label(),
            "repair"
        );
        // Without the secret nothing is an echo; a key that only looks like ours is an edit.
        assert_eq!(decide(&echo, &rules(&o, None, None)).label(), "repair");
        for spoof in [
            "cs-x",
            "cs-sku-1-abcdef-update-product-123456",
            "cs1-update-product-00-00",
        ] {
            let spoofed = event(
                "product.updated",
                managed_product(),
                Some(json!({"name": "Old"})),
                Some(spoof),
            );
            assert_eq!(
                decide(&spoofed, &rules(&o, Some(&keys), None)).label(),
                "repair",
                "{spoof}"
            );
        }
        let foreign = json!({ "id": "prod_x", "object": "product", "metadata": {} });
        assert_eq!(
            decide(
                &event("product.updated", foreign, None, None),
                &rules(&o, None, None)
            ),
            Decision::Unmanaged
        );
        let customer = json!({ "id": "cus_1", "object": "customer" });
        assert_eq!(
            decide(
                &event("customer.created", customer, None, None),
                &rules(&o, None, None)
            ),
            Decision::Ignored
        );
        let price = json!({ "id": "price_1", "object": "price", "product": "sku-1",
                            "metadata": { "catalog_sync_managed": "true" } });
        assert_eq!(
            decide(
                &event("price.updated", price, Some(json!({"active": true})), None),
                &rules(&o, None, None)
            ),
            Decision::Repair {
                catalog_id: "sku-1".into(),
                reverted: vec![],
                kept: vec![]
            }
        );
    }

    #[test]
    fn another_catalogs_objects_are_left_to_it() {
        let o = Ownership::default();
        let ours = CatalogIdentity::new("cat_ours");
        let with_catalog = |catalog: Option<&str>| {
            let mut p = managed_product();
            if let Some(c) = catalog {
                p["metadata"][META_CATALOG] = json!(c);
            }
            event("product.updated", p, Some(json!({"name": "Old"})), None)
        };
        let decide_ours = |e: &Value| decide(e, &rules(&o, None, Some(&ours))).label();
        assert_eq!(decide_ours(&with_catalog(Some("cat_ours"))), "repair");
        assert_eq!(
            decide_ours(&with_catalog(Some("cat_theirs"))),
            "other_catalog"
        );
        assert_eq!(
            decide_ours(&with_catalog(None)),
            "other_catalog",
            "not adopted"
        );
        // A price made by hand carries no identity: its product's sync decides.
        let hand_made = json!({ "id": "price_1", "object": "price", "product": "sku-1",
                                "metadata": { "catalog_sync_managed": "true" } });
        assert_eq!(
            decide_ours(&event("price.created", hand_made, None, None)),
            "repair"
        );
        let theirs = json!({ "id": "price_2", "object": "price", "product": "sku-1",
                             "metadata": { "catalog_sync_managed": "true",
                                           "catalog_sync_catalog": "cat_theirs" } });
        assert_eq!(
            decide_ours(&event("price.created", theirs, None, None)),
            "other_catalog"
        );
    }
}
