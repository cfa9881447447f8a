//! Stripe's error answers and whether a retry may help (the one place that reads Stripe's
//! retry headers; the activities map these to Temporal failure types).

use std::time::Duration;

/// An error answer from Stripe, with the headers that matter for retrying.
#[derive(Debug)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: u16,
    /// Error type (`invalid_request_error`, `api_error`, …).
    pub kind: String,
    /// Error code (`resource_missing`, `rate_limit`, …).
    pub code: Option<String>,
    /// Message.
    pub message: String,
    /// The parameter at fault.
    pub param: Option<String>,
    /// `Request-Id`.
    pub request_id: Option<String>,
    /// `Stripe-Should-Retry`, when sent: overrides the status code.
    pub should_retry: Option<bool>,
    /// `Stripe-Rate-Limited-Reason` on 429s.
    pub rate_limited_reason: Option<String>,
    /// `Retry-After`, when sent.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stripe {} {}", self.status, self.kind)?;
        if let Some(code) = &self.code {
            write!(f, "/{code}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(param) = &self.param {
            write!(f, " (param {param})")?;
        }
        if let Some(reason) = &self.rate_limited_reason {
            write!(f, " (rate limited: {reason})")?;
        }
        write!(
            f,
            " (request {})",
            self.request_id.as_deref().unwrap_or("-")
        )
    }
}

/// Errors of the Stripe client.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with an error body.
    #[error("{0}")]
    Api(Box<ApiFailure>),
    /// The request did not complete (connection refused or dropped, timeout).
    #[error("Stripe unreachable: {0}")]
    Transport(String),
    /// The response was not what Stripe sends.
    #[error("unexpected Stripe response ({status}): {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What went wrong.
        message: String,
    },
}

impl StripeError {
    /// Whether a retry may succeed: `Stripe-Should-Retry` if sent, else 409/429/5xx and transport errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            StripeError::Api(e) => match e.should_retry {
                Some(v) => v,
                None => e.status == 409 || e.status == 429 || e.status >= 500,
            },
            StripeError::Transport(_) | StripeError::Decode { .. } => true,
        }
    }

    /// Server-suggested delay before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StripeError::Api(e) => e.retry_after,
            _ => None,
        }
    }

    /// Stripe refused to create an object with an id one already has
    /// (`resource_already_exists`): nothing was created.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, StripeError::Api(e) if e.code.as_deref() == Some("resource_already_exists"))
    }

    /// The HTTP status, if a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            StripeError::Api(e) => Some(e.status),
            StripeError::Decode { status, .. } => Some(*status),
            StripeError::Transport(_) => None,
        }
    }
}
