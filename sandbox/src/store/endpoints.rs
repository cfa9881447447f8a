//! Webhook endpoints (`/v1/webhook_endpoints`): create (the signing secret is returned once, on
//! create), retrieve, list, update and delete, with Stripe's validation of `url` and
//! `enabled_events`. Events are delivered to every enabled endpoint of the account whose
//! `enabled_events` match (or `*`); a connected account's events go to the platform's endpoints
//! made with `connect=true`, with the event's `account` set (see `Webhooks::emit`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Account, Change, now, random_id};
use crate::error::ApiError;
use crate::form::Params;
use crate::model;

/// The event types an endpoint may ask for: the sandbox's objects' events, and `*` (all).
pub const EVENT_TYPES: &[&str] = &[
    "*",
    "product.created",
    "product.updated",
    "product.deleted",
    "price.created",
    "price.updated",
    "price.deleted",
];

/// One webhook endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct WebhookEndpoint {
    id: String,
    url: String,
    enabled_events: Vec<String>,
    secret: String,
    status: String,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    api_version: Option<String>,
    /// Receives the events of connected accounts instead of the account's own.
    connect: bool,
    created: i64,
}

/// Where one event goes: the endpoint's URL and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Endpoint URL.
    pub url: String,
    /// Its signing secret.
    pub secret: String,
}

impl WebhookEndpoint {
    fn to_json(&self, with_secret: bool) -> Value {
        let mut out = json!({
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": self.api_version,
            "application": null,
            "created": self.created,
            "description": self.description,
            "enabled_events": self.enabled_events,
            "livemode": false,
            "metadata": self.metadata,
            "status": self.status,
            "url": self.url,
        });
        if with_secret {
            out["secret"] = json!(self.secret);
        }
        out
    }

    fn wants(&self, event_type: &str, connect: bool) -> bool {
        self.status == "enabled"
            && self.connect == connect
            && self
                .enabled_events
                .iter()
                .any(|e| e == "*" || e == event_type)
    }
}

fn check_url(url: &str) -> Result<(), ApiError> {
    let ok = ["https://", "http://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    });
    if ok && url.len() <= 2048 {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("Invalid URL: {url}. URLs must be valid HTTP or HTTPS URLs."),
            Some("url".into()),
        ))
    }
}

fn check_events(events: &[String]) -> Result<(), ApiError> {
    if events.is_empty() {
        return Err(ApiError::missing("enabled_events"));
    }
    for (i, e) in events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(ApiError::invalid(
                format!(
                    "Invalid enabled_events[{i}]: must be one of {}",
                    EVENT_TYPES.join(", ")
                ),
                Some(format!("enabled_events[{i}]")),
            ));
        }
    }
    Ok(())
}

impl Account {
    /// `POST /v1/webhook_endpoints`.
    pub fn create_webhook_endpoint(
        &mut self,
        mut p: Params,
    ) -> Result<(Value, Vec<Change>), ApiError> {
        let url = p.required_string("url")?;
        check_url(&url)?;
        let enabled_events = p.string_list("enabled_events")?.unwrap_or_default();
        check_events(&enabled_events)?;
        let description = p.nullable_string("description")?.flatten();
        let mut metadata = BTreeMap::new();
        if let Some(md) = p.string_map("metadata")? {
            model::apply_metadata(&mut metadata, md, "metadata")?;
        }
        let api_version = p.string("api_version")?;
        if let Some(v) = &api_version
            && !crate::SUPPORTED_API_VERSIONS.contains(&v.as_str())
        {
            return Err(ApiError::invalid(
                format!("Invalid Stripe API version: {v}"),
                Some("api_version".into()),
            ));
        }
        let connect = p.boolean("connect")?.unwrap_or(false);
        p.finish()?;
        let seq = self.seq();
        let endpoint = WebhookEndpoint {
            id: random_id("we"),
            url,
            enabled_events,
            secret: random_id("whsec"),
            status: "enabled".into(),
            description,
            metadata,
            api_version,
            connect,
            created: now(),
        };
        let out = endpoint.to_json(true);
        self.endpoints.insert(seq, endpoint.id.clone(), endpoint);
        Ok((out, Vec::new()))
    }

    /// `GET /v1/webhook_endpoints/{id}` (without the secret, as Stripe).
    pub fn get_webhook_endpoint(&self, id: &str, p: Params) -> Result<Value, ApiError> {
        p.finish()?;
        self.endpoints
            .get(id)
            .map(|e| e.to_json(false))
            .ok_or_else(|| ApiError::not_found("webhook endpoint", id))
    }

    /// `POST /v1/webhook_endpoints/{id}`: `url`, `enabled_events`, `disabled`, `description`,
    /// `metadata`.
    pub fn update_webhook_endpoint(
        &mut self,
        id: &str,
        mut p: Params,
    ) -> Result<(Value, Vec<Change>), ApiError> {
        let url = p.string("url")?;
        if let Some(url) = &url {
            check_url(url)?;
        }
        let events = p.string_list("enabled_events")?;
        if let Some(events) = &events {
            check_events(events)?;
        }
        let disabled = p.boolean("disabled")?;
        let description = p.nullable_string("description")?;
        let metadata = p.string_map("metadata")?;
        p.finish()?;
        let ours = self.endpoints.get(id).is_some();
        if !ours {
            return Err(ApiError::not_found("webhook endpoint", id));
        }
        let endpoint = self
            .endpoints
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("webhook endpoint", id))?;
        if let Some(url) = url {
            endpoint.url = url;
        }
        if let Some(events) = events {
            endpoint.enabled_events = events;
        }
        if let Some(disabled) = disabled {
            endpoint.status = if disabled { "disabled" } else { "enabled" }.into();
        }
        if let Some(description) = description {
            endpoint.description = description;
        }
        if let Some(md) = metadata {
            model::apply_metadata(&mut endpoint.metadata, md, "metadata")?;
        }
        Ok((endpoint.to_json(false), Vec::new()))
    }

    /// `DELETE /v1/webhook_endpoints/{id}`.
    pub fn delete_webhook_endpoint(&mut self, id: &str) -> Result<(Value, Vec<Change>), ApiError> {
        self.endpoints
            .remove(id)
            .ok_or_else(|| ApiError::not_found("webhook endpoint", id))?;
        Ok((
            json!({ "id": id, "object": "webhook_endpoint", "deleted": true }),
            Vec::new(),
        ))
    }

    /// `GET /v1/webhook_endpoints`.
    pub fn list_webhook_endpoints(&self, mut p: Params) -> Result<Value, ApiError> {
        let page = self.page(&mut p, &self.endpoints.seq_of, "webhook endpoint")?;
        p.finish()?;
        let (items, has_more) = Self::paginate(&self.endpoints.by_seq, &page, |_| true);
        let data = items.into_iter().map(|e| e.to_json(false)).collect();
        Ok(Self::list_json("/v1/webhook_endpoints", data, has_more))
    }

    /// The endpoints an event of `event_type` goes to: this account's own (`connect` false), or
    /// its Connect endpoints for an event of one of its connected accounts.
    pub fn webhook_targets(&self, event_type: &str, connect: bool) -> Vec<Target> {
        self.endpoints
            .by_seq
            .values()
            .filter(|e| e.wants(event_type, connect))
            .map(|e| Target {
                url: e.url.clone(),
                secret: e.secret.clone(),
            })
            .collect()
    }
}
