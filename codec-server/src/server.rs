//! The codec server: Temporal's remote codec protocol, so the Web UI (`TEMPORAL_CODEC_ENDPOINT`,
//! or `temporal server start-dev --ui-codec-endpoint`) and the `temporal` CLI
//! (`--codec-endpoint`) show encrypted payloads decrypted.
//!
//! - `POST /decode`, `POST /encode`: body and answer `{"payloads": [{"metadata": {k: base64},
//!   "data": base64}]}` (the protobuf JSON of `Payloads`). A payload that is not encrypted decodes
//!   as it is; one that cannot be decrypted makes the request fail with 400 and the reason.
//! - CORS for the Web UI's origins: the browser calls this server directly, with the page's
//!   `X-Namespace` header (and `Authorization` when the UI passes the user's token on).
//! - With a token configured, both endpoints need `Authorization: Bearer <token>`: whoever can
//!   call `/decode` can read product data, so the server listens on localhost unless told
//!   otherwise.
//! - `GET /healthz`, `GET /readyz` (ready once serving: the keys load before the listener opens).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use tower_http::cors::{AllowOrigin, CorsLayer};

use codec::{CodecError, Keyring};

/// What the server accepts beyond its keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerOptions {
    /// Origins whose pages may call the server (the Web UI's, e.g. `http://localhost:8233`).
    pub(crate) cors_origins: Vec<String>,
    /// When set, requests need `Authorization: Bearer <token>`.
    pub(crate) auth_token: Option<String>,
}

/// A setting the server cannot start with.
#[derive(Debug, thiserror::Error)]
#[error("CORS origin {0:?} is not a valid header value")]
pub(crate) struct OriginError(String);

/// Payloads in Temporal's protobuf JSON form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct JsonPayloads {
    /// The payloads.
    #[serde(default)]
    pub(crate) payloads: Vec<JsonPayload>,
}

/// One payload: metadata values and data in base64.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct JsonPayload {
    /// Metadata, each value base64.
    #[serde(default)]
    pub(crate) metadata: BTreeMap<String, String>,
    /// Data, base64 (absent when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) data: String,
}

impl JsonPayload {
    /// From a payload.
    pub(crate) fn from_payload(payload: &Payload) -> Self {
        Self {
            metadata: payload
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), STANDARD.encode(v)))
                .collect(),
            data: STANDARD.encode(&payload.data),
        }
    }

    /// To a payload; `None` if a field is not base64.
    pub(crate) fn to_payload(&self) -> Option<Payload> {
        Some(Payload {
            metadata: self
                .metadata
                .iter()
                .map(|(k, v)| Some((k.clone(), STANDARD.decode(v).ok()?)))
                .collect::<Option<_>>()?,
            data: STANDARD.decode(&self.data).ok()?,
            ..Default::default()
        })
    }
}

struct Shared {
    keyring: Keyring,
    auth_token: Option<String>,
}

/// The server's routes.
pub(crate) fn router(
    keyring: Keyring,
    options: ServerOptions,
) -> Result<axum::Router, OriginError> {
    let origins = options
        .cors_origins
        .iter()
        .map(|o| HeaderValue::from_str(o.trim_end_matches('/')).map_err(|_| OriginError(o.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-namespace"),
        ])
        .allow_credentials(true)
        .max_age(std::time::Duration::from_secs(600));
    let shared = Arc::new(Shared {
        keyring,
        auth_token: options.auth_token.filter(|t| !t.is_empty()),
    });
    Ok(axum::Router::new()
        .route("/decode", post(decode))
        .route("/encode", post(encode))
        .route("/healthz", get(|| async { "ok" }))
        // Ready as soon as it serves: the keys are loaded before the listener opens.
        .route("/readyz", get(|| async { "ready" }))
        .layer(DefaultBodyLimit::max(64 << 20))
        .layer(cors)
        .with_state(shared))
}

async fn decode(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<JsonPayloads>,
) -> Response {
    convert(&shared, &headers, &body, |keyring, payload| {
        keyring.decrypt(payload).inspect_err(|e| {
            tracing::warn!(error = %e, "cannot decode");
        })
    })
}

async fn encode(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<JsonPayloads>,
) -> Response {
    convert(&shared, &headers, &body, |keyring, payload| {
        Ok(keyring.encrypt(payload))
    })
}

/// Checks the token, then runs every payload of `body` through `f`; the first one that cannot be
/// read or converted answers 400 with its index and the reason.
fn convert(
    shared: &Shared,
    headers: &HeaderMap,
    body: &JsonPayloads,
    f: impl Fn(&Keyring, Payload) -> Result<Payload, CodecError>,
) -> Response {
    if let Some(refused) = check_auth(shared, headers) {
        return refused;
    }
    let mut out = Vec::with_capacity(body.payloads.len());
    for (i, json) in body.payloads.iter().enumerate() {
        let Some(payload) = json.to_payload() else {
            return bad_request(format!("payload {i}: metadata or data is not base64"));
        };
        match f(&shared.keyring, payload) {
            Ok(converted) => out.push(JsonPayload::from_payload(&converted)),
            Err(e) => return bad_request(format!("payload {i}: {e}")),
        }
    }
    Json(JsonPayloads { payloads: out }).into_response()
}

fn check_auth(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = shared.auth_token.as_deref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        None
    } else {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "Authorization: Bearer <token> required",
            )
                .into_response(),
        )
    }
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use codec::keys::new_key;
    use tower::ServiceExt;

    fn app(keyring: Keyring, token: Option<&str>) -> axum::Router {
        router(
            keyring,
            ServerOptions {
                cors_origins: vec!["http://localhost:8233".into()],
                auth_token: token.map(String::from),
            },
        )
        .unwrap()
    }

    async fn call(app: &axum::Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let response = app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn post_json(path: &str, body: &JsonPayloads, auth: Option<&str>) -> Request<Body> {
        let mut request = Request::post(path)
            .header("content-type", "application/json")
            .header("origin", "http://localhost:8233")
            .header("x-namespace", "default");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap()
    }

    fn plain(text: &str) -> JsonPayloads {
        JsonPayloads {
            payloads: vec![JsonPayload::from_payload(&Payload {
                metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                data: serde_json::to_vec(text).unwrap(),
                ..Default::default()
            })],
        }
    }

    #[tokio::test]
    async fn encode_then_decode_gives_back_the_payload() {
        let app = app(Keyring::new(Some(&new_key()), &[]).unwrap(), None);
        let (status, headers, body) = call(&app, post_json("/encode", &plain("shirt"), None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            headers["access-control-allow-origin"], "http://localhost:8233",
            "the Web UI's page may read the answer"
        );
        let encoded: JsonPayloads = serde_json::from_str(&body).unwrap();
        assert_eq!(
            encoded.payloads[0].metadata["encoding"],
            STANDARD.encode("binary/encrypted")
        );
        let (status, _, body) = call(&app, post_json("/decode", &encoded, None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let decoded: JsonPayloads = serde_json::from_str(&body).unwrap();
        assert_eq!(decoded.payloads[0].data, plain("shirt").payloads[0].data);
    }

    #[tokio::test]
    async fn the_browser_preflight_is_answered_for_the_web_ui_origin_only() {
        let app = app(Keyring::default(), None);
        let preflight = |origin: &str| {
            Request::builder()
                .method("OPTIONS")
                .uri("/decode")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type,x-namespace")
                .body(Body::empty())
                .unwrap()
        };
        let (status, headers, _) = call(&app, preflight("http://localhost:8233")).await;
        assert!(status.is_success());
        assert_eq!(
            headers["access-control-allow-origin"],
            "http://localhost:8233"
        );
        assert_eq!(headers["access-control-allow-credentials"], "true");
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("x-namespace"), "{allowed}");
        let (_, headers, _) = call(&app, preflight("http://evil.example")).await;
        assert!(!headers.contains_key("access-control-allow-origin"));
    }

    #[tokio::test]
    async fn a_token_is_required_when_configured() {
        let app = app(Keyring::default(), Some("s3cret"));
        let (status, _, _) = call(&app, post_json("/decode", &plain("x"), None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) =
            call(&app, post_json("/decode", &plain("x"), Some("Bearer nope"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(
            &app,
            post_json("/decode", &plain("x"), Some("Bearer s3cret")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn an_undecryptable_payload_is_a_400_with_the_reason() {
        let sealed = Keyring::new(Some(&new_key()), &[])
            .unwrap()
            .encrypt(plain("x").payloads[0].to_payload().unwrap());
        let app = app(Keyring::new(Some(&new_key()), &[]).unwrap(), None);
        let body = JsonPayloads {
            payloads: vec![JsonPayload::from_payload(&sealed)],
        };
        let (status, _, text) = call(&app, post_json("/decode", &body, None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            text.contains("payload 0") && text.contains("key id"),
            "{text}"
        );
    }
}
