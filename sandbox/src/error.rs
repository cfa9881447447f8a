//! Stripe-shaped errors: `{"error": {"type", "code", "message", "param", "doc_url"}}` with the status
//! code Stripe uses for each kind.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// An API error as Stripe reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `invalid_request_error`, `api_error`, `idempotency_error`, …
    pub kind: &'static str,
    /// Machine-readable code, e.g. `resource_missing`.
    pub code: Option<String>,
    /// Human-readable message.
    pub message: String,
    /// The parameter at fault.
    pub param: Option<String>,
    /// A 429's `Stripe-Rate-Limited-Reason`: which limiter refused (`global-rate`,
    /// `endpoint-rate`).
    pub rate_limited_reason: Option<&'static str>,
}

impl ApiError {
    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>, param: Option<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            message: message.into(),
            param,
            rate_limited_reason: None,
        }
    }

    /// 400 `parameter_missing`.
    pub fn missing(param: &str) -> Self {
        Self::invalid(
            format!("Missing required param: {param}."),
            Some(param.into()),
        )
        .with_code("parameter_missing")
    }

    /// 404 `resource_missing`.
    pub fn not_found(object: &str, id: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::invalid(format!("No such {object}: '{id}'"), Some("id".into()))
        }
        .with_code("resource_missing")
    }

    /// 404 for an unknown route.
    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::invalid(
                format!("Unrecognized request URL ({method}: {path})."),
                None,
            )
        }
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            ..Self::invalid(message, None)
        }
    }

    /// 400 `idempotency_error`.
    pub fn idempotency(message: impl Into<String>) -> Self {
        Self {
            kind: "idempotency_error",
            ..Self::invalid(message, None)
        }
    }

    /// 429 `rate_limit`, refused by the limiter `reason` names (`Stripe-Rate-Limited-Reason`).
    pub fn rate_limited(reason: &'static str) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            rate_limited_reason: Some(reason),
            ..Self::invalid(
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                None,
            )
        }
        .with_code("rate_limit")
    }

    /// A server-side failure (`api_error`) with the given status.
    pub fn server(status: StatusCode) -> Self {
        Self {
            status,
            kind: "api_error",
            code: None,
            message: "An error occurred with our connection to Stripe. (sandbox fault injection)"
                .into(),
            param: None,
            rate_limited_reason: None,
        }
    }

    /// Sets the error code.
    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.into());
        self
    }

    /// The error of a nested hash's parameter, named from the top (`unit_amount` within
    /// `default_price_data` is `default_price_data[unit_amount]`).
    pub fn within(mut self, hash: &str) -> Self {
        if let Some(param) = self.param.take() {
            let (head, rest) = param.split_at(param.find('[').unwrap_or(param.len()));
            self.param = Some(format!("{hash}[{head}]{rest}"));
        }
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({ "type": self.kind, "message": self.message });
        if let Some(code) = &self.code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = &self.param {
            error["param"] = json!(param);
        }
        json!({ "error": error })
    }
}
