//! Events (`GET /v1/events`): what changed in the account, kept by Stripe for 30 days. An
//! incremental reconciliation reads the product and price events after its cursor
//! ([`crate::webhook_endpoints::EVENTS`], the ones the relay's webhook takes too).

use reqwest::Method;
use serde_json::Value;

use crate::client::{Form, List, Response, StripeClient, StripeError};
use crate::webhook_endpoints::EVENTS;

/// How long Stripe keeps events.
pub use domain::limits::EVENT_RETENTION_SECS;

/// An event's id and creation time: a position in the account's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMark {
    /// `evt_…`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
}

impl EventMark {
    /// The id and creation time of an event's JSON.
    pub fn of(event: &Value) -> Option<Self> {
        Some(Self {
            id: event["id"].as_str()?.to_string(),
            created: event["created"].as_i64()?,
        })
    }
}

impl StripeClient {
    /// The product and price events right after `after` (oldest of them first), up to 100, and
    /// whether more follow. Stripe lists newest first; `ending_before` pages toward newer events.
    pub async fn events_after(&self, after: &str) -> Result<(Vec<Value>, bool), StripeError> {
        let mut form = Form::new();
        form.push("limit", "100").push("ending_before", after);
        for kind in EVENTS {
            form.push("types[]", *kind);
        }
        let page: Response<List<Value>> = self.call(Method::GET, "/v1/events", &form, None).await?;
        let mut events = page.value.data;
        events.reverse();
        Ok((events, page.value.has_more))
    }

    /// The newest product or price event, if any: where an incremental reconciliation starts
    /// after a full scan.
    pub async fn newest_event(&self) -> Result<Option<EventMark>, StripeError> {
        let mut form = Form::new();
        form.push("limit", "1");
        for kind in EVENTS {
            form.push("types[]", *kind);
        }
        let page: Response<List<Value>> = self.call(Method::GET, "/v1/events", &form, None).await?;
        Ok(page.value.data.first().and_then(EventMark::of))
    }
}
