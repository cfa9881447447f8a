//! The Stripe sandbox, in process, and what tests ask of it.

use serde_json::Value;

use crate::unique;

/// An in-process Stripe sandbox.
pub struct Sandbox {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The API key the tests use.
    pub key: String,
    http: reqwest::Client,
}

impl Sandbox {
    /// A Stripe client's configuration for this sandbox: its key, the pinned API version, a
    /// 10-second request timeout, no pacing.
    pub fn stripe_config(&self) -> stripe::client::StripeConfig {
        stripe::client::StripeConfig {
            base_url: self.base.clone(),
            api_key: stripe::client::Secret::new(self.key.clone()),
            api_version: stripe::client::API_VERSION.into(),
            account: None,
            timeout: std::time::Duration::from_secs(10),
            requests_per_second: 0,
            metrics: None,
        }
    }

    /// Starts one with Stripe's test-mode rate limit off (tests control their own load).
    pub async fn start() -> Self {
        Self::start_with(stripe_sandbox::Config {
            limits: stripe_sandbox::limits::Limits::off(),
            ..Default::default()
        })
        .await
    }

    /// Starts one with the given configuration.
    pub async fn start_with(config: stripe_sandbox::Config) -> Self {
        let addr = stripe_sandbox::spawn("127.0.0.1:0", config).await.unwrap();
        Self {
            base: format!("http://{addr}"),
            key: unique("sk_test_harness").replace('-', "_"),
            http: reqwest::Client::new(),
        }
    }

    /// `GET` a `/v1` path as JSON, with the status.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// `POST` a form to a `/v1` path, as Stripe's Dashboard or another integration would; the
    /// status and the JSON answer.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A product, or `None` on 404.
    pub async fn product(&self, id: &str) -> Option<Value> {
        match self
            .get(&format!("/v1/products/{id}?expand[]=default_price"))
            .await
        {
            (200, v) => Some(v),
            (404, _) => None,
            (s, v) => panic!("GET product {id}: {s} {v}"),
        }
    }

    /// All prices of a product.
    pub async fn prices(&self, product: &str) -> Vec<Value> {
        let (_, v) = self
            .get(&format!("/v1/prices?product={product}&limit=100"))
            .await;
        v["data"].as_array().unwrap().clone()
    }

    /// `/_sandbox/stats`.
    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_sandbox/stats", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Installs a fault configuration (`/_sandbox/faults`).
    pub async fn faults(&self, config: Value) {
        let r = self
            .http
            .post(format!("{}/_sandbox/faults", self.base))
            .json(&config)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Clears faults.
    pub async fn clear_faults(&self) {
        self.http
            .delete(format!("{}/_sandbox/faults", self.base))
            .send()
            .await
            .unwrap();
    }

    /// Sets the requests per second the sandbox allows a key over all endpoints (0 = unlimited).
    pub async fn set_rate_limit(&self, rate_limit: u32) {
        self.http
            .post(format!("{}/_sandbox/config", self.base))
            .json(&serde_json::json!({ "rate_limit": rate_limit }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// Edits a product as a person in the Dashboard would.
    pub async fn dashboard_edit(&self, id: &str, form: &str) {
        self.dashboard_edit_object("products", id, form).await;
    }

    /// Edits a price as a person in the Dashboard would.
    pub async fn dashboard_edit_price(&self, id: &str, form: &str) {
        self.dashboard_edit_object("prices", id, form).await;
    }

    async fn dashboard_edit_object(&self, kind: &str, id: &str, form: &str) {
        let r = self
            .http
            .post(format!("{}/_sandbox/dashboard/{kind}/{id}", self.base))
            .bearer_auth(&self.key)
            .body(form.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// `POST` a `/v1` path with a form body through the API (not as catalog-sync: another
    /// integration holding the key), with an `Idempotency-Key` if given; the status and body.
    pub async fn api_post(
        &self,
        path: &str,
        form: &str,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string());
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let r = request.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Sends signed webhook events of every change to `url`.
    pub async fn deliver_webhooks_to(&self, url: &str, secret: &str) {
        let r = self
            .http
            .post(format!("{}/_sandbox/webhooks", self.base))
            .json(&serde_json::json!({ "url": url, "secret": secret }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Creates a product directly (not through catalog-sync).
    pub async fn create_product(&self, form: &str) {
        let r = self
            .http
            .post(format!("{}/v1/products", self.base))
            .bearer_auth(&self.key)
            .body(form.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}
