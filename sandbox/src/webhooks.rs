//! Webhook delivery as Stripe does it: events for every write, signed with
//! `Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "{t}.{body}")`, delivered at least once with retries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::store::{Change, Target};

/// Where events go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// Endpoint URL.
    pub url: String,
    /// Signing secret (`whsec_…`).
    pub secret: String,
}

/// Signs a payload the way Stripe does; returns the `Stripe-Signature` header value.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

const RECENT: usize = 1000;
const ATTEMPTS: u32 = 6;

struct Inner {
    config: Option<WebhookConfig>,
    recent: VecDeque<Value>,
    counter: u64,
}

/// Event log and delivery queue.
pub struct Webhooks {
    inner: Arc<Mutex<Inner>>,
    queue: mpsc::UnboundedSender<(WebhookConfig, Value)>,
}

impl Webhooks {
    /// Starts the delivery task on the current Tokio runtime.
    pub fn new(config: Option<WebhookConfig>) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(deliver(rx));
        }
        Self {
            inner: Arc::new(Mutex::new(Inner {
                config,
                recent: VecDeque::new(),
                counter: 0,
            })),
            queue,
        }
    }

    /// Sets or clears the endpoint.
    pub fn configure(&self, config: Option<WebhookConfig>) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).config = config;
    }

    /// The most recent events, newest last.
    pub fn recent(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recent
            .iter()
            .cloned()
            .collect()
    }

    /// Records events for `changes` and queues each for delivery to its endpoints (and to the
    /// endpoint set through `/_sandbox/webhooks`, which receives every event). `connected` is the
    /// connected account the changes happened in (the event's `account`), `request` the API
    /// request (id, idempotency key) that caused them, or `None` for a Dashboard edit. Returns
    /// the events, for the account's `/v1/events`.
    pub fn emit(
        &self,
        account: &str,
        connected: Option<&str>,
        changes: Vec<(Change, Vec<Target>)>,
        request: Option<(&str, Option<&str>)>,
    ) -> Vec<Value> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut events = Vec::with_capacity(changes.len());
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for (change, targets) in changes {
            inner.counter += 1;
            let mut data = json!({ "object": change.object });
            if let Some(prev) = change.previous_attributes {
                data["previous_attributes"] = prev;
            }
            let event = json!({
                "id": format!("evt_{:016x}{:08x}", created, inner.counter),
                "object": "event",
                "api_version": crate::DEFAULT_API_VERSION,
                "created": created,
                "data": data,
                "livemode": false,
                "pending_webhooks": targets.len() + usize::from(inner.config.is_some()),
                "request": match request {
                    Some((id, key)) => json!({ "id": id, "idempotency_key": key }),
                    None => json!({ "id": null, "idempotency_key": null }),
                },
                "type": change.event_type,
                "account_key_suffix": account.chars().rev().take(4).collect::<String>(),
            });
            let mut event = event;
            if let Some(connected) = connected {
                event["account"] = json!(connected);
            }
            if inner.recent.len() == RECENT {
                inner.recent.pop_front();
            }
            inner.recent.push_back(event.clone());
            for target in targets {
                let config = WebhookConfig {
                    url: target.url,
                    secret: target.secret,
                };
                let _ = self.queue.send((config, event.clone()));
            }
            if let Some(config) = inner.config.clone() {
                let _ = self.queue.send((config, event.clone()));
            }
            events.push(event);
        }
        events
    }
}

async fn deliver(mut rx: mpsc::UnboundedReceiver<(WebhookConfig, Value)>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a default HTTP client builds");
    while let Some((config, event)) = rx.recv().await {
        let client = client.clone();
        // Each event is delivered on its own task: like Stripe, no ordering is promised.
        tokio::spawn(async move {
            let payload = event.to_string();
            for attempt in 0..ATTEMPTS {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let sent = client
                    .post(&config.url)
                    .header("content-type", "application/json")
                    .header(
                        "stripe-signature",
                        sign(&config.secret, t, payload.as_bytes()),
                    )
                    .body(payload.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::info!(status = %r.status(), attempt, "webhook endpoint refused event")
                    }
                    Err(e) => tracing::info!(error = %e, attempt, "webhook delivery failed"),
                }
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            tracing::warn!(event = %event["id"], "webhook event given up after {ATTEMPTS} attempts");
        });
    }
}
