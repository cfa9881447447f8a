//! Webhook endpoints (`/v1/webhook_endpoints`): what `starter webhooks install` and `uninstall`
//! need. An endpoint catalog-sync installs carries its catalog's identity in its metadata, so that
//! reinstalling updates it instead of adding another, and uninstalling removes only its own.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;

use crate::client::{Form, List, StripeClient, StripeError, path_segment};

/// The events catalog-sync consumes: what the relay turns into repairs (Dashboard edits of
/// products and prices, and their deletion).
pub const EVENTS: &[&str] = &[
    "product.created",
    "product.updated",
    "product.deleted",
    "price.created",
    "price.updated",
    "price.deleted",
];

/// A webhook endpoint, as Stripe returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEndpoint {
    /// `we_…`.
    pub id: String,
    /// Where events go.
    pub url: String,
    /// The event types sent.
    #[serde(default)]
    pub enabled_events: Vec<String>,
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The signing secret: only in the answer to the create request.
    #[serde(default)]
    pub secret: Option<String>,
}

impl StripeClient {
    /// Every webhook endpoint of the account (all pages).
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StripeError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut form = Form::new();
            form.push("limit", "100");
            form.push_opt("starting_after", after.as_deref());
            let page: List<WebhookEndpoint> = self
                .call(Method::GET, "/v1/webhook_endpoints", &form, None)
                .await?
                .value;
            let last = page.data.last().map(|e| e.id.clone());
            all.extend(page.data);
            match (page.has_more, last) {
                (true, Some(last)) => after = Some(last),
                _ => return Ok(all),
            }
        }
    }

    /// `POST /v1/webhook_endpoints`: the answer holds the signing secret, once.
    pub async fn create_webhook_endpoint(
        &self,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<WebhookEndpoint, StripeError> {
        Ok(self
            .call(
                Method::POST,
                "/v1/webhook_endpoints",
                form,
                Some(idempotency_key),
            )
            .await?
            .value)
    }

    /// `POST /v1/webhook_endpoints/{id}`.
    pub async fn update_webhook_endpoint(
        &self,
        id: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<WebhookEndpoint, StripeError> {
        let path = format!("/v1/webhook_endpoints/{}", path_segment(id));
        Ok(self
            .call(Method::POST, &path, form, Some(idempotency_key))
            .await?
            .value)
    }

    /// `DELETE /v1/webhook_endpoints/{id}`.
    pub async fn delete_webhook_endpoint(&self, id: &str) -> Result<(), StripeError> {
        let path = format!("/v1/webhook_endpoints/{}", path_segment(id));
        self.call::<serde_json::Value>(Method::DELETE, &path, &Form::new(), None)
            .await?;
        Ok(())
    }
}
