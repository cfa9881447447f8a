//! The sandbox against Stripe's documented behaviour, over real HTTP.

use serde_json::{Value, json};
use stripe_sandbox::limits::Limits;
use stripe_sandbox::{Config, spawn};

struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    async fn start(config: Config) -> Self {
        let addr = spawn("127.0.0.1:0", config).await.unwrap();
        Self {
            base: format!("http://{addr}"),
            key: "sk_test_api".into(),
            http: reqwest::Client::new(),
        }
    }
    async fn new() -> Self {
        Self::start(Config {
            limits: Limits::off(),
            ..Config::default()
        })
        .await
    }
    async fn post(&self, path: &str, form: &str) -> (u16, Value) {
        self.post_with(path, form, None).await
    }
    async fn post_with(&self, path: &str, form: &str, idem: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string());
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
    /// Serves `app` (a `POST /hook` route) on a free port and registers it for signed webhooks.
    async fn deliver_webhooks_to(&self, app: axum::Router, secret: &str) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let r = self
            .http
            .post(format!("{}/_sandbox/webhooks", self.base))
            .json(&json!({"url": hook, "secret": secret}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

#[tokio::test]
async fn product_lifecycle() {
    let api = Api::new().await;
    let (s, p) = api
        .post(
            "/v1/products",
            "id=hat-1&name=Hat&metadata[color]=red&images[0]=https://e/x.png&active=true",
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["id"], "hat-1");
    assert_eq!(p["active"], json!(true));
    assert_eq!(p["metadata"]["color"], "red");
    let (s, e) = api.post("/v1/products", "id=hat-1&name=Hat").await;
    assert_eq!(s, 400);
    assert_eq!(e["error"]["code"], "resource_already_exists");
    let (s, p) = api
        .post(
            "/v1/products/hat-1",
            "metadata[color]=&metadata[size]=L&active=false",
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(p["metadata"], json!({"size": "L"}));
    assert_eq!(p["active"], json!(false));
    assert_eq!(p["name"], "Hat", "update is partial");
    let (s, e) = api.get("/v1/products/nope").await;
    assert_eq!(s, 404);
    assert_eq!(e["error"]["code"], "resource_missing");
    let (s, _) = api
        .post("/v1/prices", "product=hat-1&currency=usd&unit_amount=100")
        .await;
    assert_eq!(s, 200);
    let r = api
        .http
        .delete(format!("{}/v1/products/hat-1", api.base))
        .bearer_auth(&api.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a product with prices cannot be deleted");
    api.post("/v1/products", "id=plain&name=Plain").await;
    let r = api
        .http
        .delete(format!("{}/v1/products/plain", api.base))
        .bearer_auth(&api.key)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["deleted"], json!(true));
}

#[tokio::test]
async fn validation_errors_are_stripe_shaped() {
    let api = Api::new().await;
    let cases = [
        ("/v1/products", "description=x", "name", "parameter_missing"),
        (
            "/v1/products",
            "name=x&bogus=1",
            "bogus",
            "parameter_unknown",
        ),
        ("/v1/products", "name=x&active=maybe", "active", ""),
        (
            "/v1/prices",
            "product=p&currency=usd&unit_amount=abc",
            "unit_amount",
            "parameter_invalid_integer",
        ),
    ];
    for (path, form, param, code) in cases {
        let (s, e) = api.post(path, form).await;
        assert_eq!(s, 400, "{form}: {e}");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["param"], param, "{form}");
        if !code.is_empty() {
            assert_eq!(e["error"]["code"], code, "{form}");
        }
    }
    api.post("/v1/products", "id=p&name=P").await;
    for form in [
        "product=p&currency=zzz&unit_amount=1",
        "product=p&currency=usd&unit_amount=-1",
        "product=p&currency=usd&unit_amount=100000000",
        "product=p&currency=usd&unit_amount=1&recurring[interval]=decade",
    ] {
        let (s, e) = api.post("/v1/prices", form).await;
        assert_eq!(s, 400, "{form}: {e}");
    }
    let long_key = "k".repeat(41);
    let (s, e) = api
        .post("/v1/products/p", &format!("metadata[{long_key}]=v"))
        .await;
    assert_eq!(s, 400, "{e}");
    let many: Vec<String> = (0..51).map(|i| format!("metadata[k{i}]=v")).collect();
    let (s, _) = api.post("/v1/products/p", &many.join("&")).await;
    assert_eq!(s, 400);
    let r = api
        .http
        .post(format!("{}/v1/products", api.base))
        .bearer_auth(&api.key)
        .header("content-type", "application/json")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = api
        .http
        .post(format!("{}/v1/products", api.base))
        .bearer_auth(&api.key)
        .body(vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = api
        .http
        .post(format!("{}/v1/products", api.base))
        .bearer_auth(&api.key)
        .body(vec![b'a'; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let (s, _) = api.get("/v1/widgets").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn auth_and_per_key_scoping() {
    let api = Api::new().await;
    let r = api
        .http
        .get(format!("{}/v1/products", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = api
        .http
        .get(format!("{}/v1/products", api.base))
        .bearer_auth("pk_test_x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    api.post("/v1/products", "id=mine&name=Mine").await;
    // Basic auth with the key as user name sees the same account.
    let r = api
        .http
        .get(format!("{}/v1/products/mine", api.base))
        .basic_auth(&api.key, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get("request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let r = api
        .http
        .get(format!("{}/v1/products/mine", api.base))
        .bearer_auth("sk_test_other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "another key is another account");
}

#[tokio::test]
async fn idempotency_replays_and_rejects_changed_params() {
    let api = Api::new().await;
    api.post("/v1/products", "id=p&name=P").await;
    let (s1, a) = api
        .post_with(
            "/v1/prices",
            "product=p&currency=usd&unit_amount=5",
            Some("k1"),
        )
        .await;
    let (s2, b) = api
        .post_with(
            "/v1/prices",
            "product=p&currency=usd&unit_amount=5",
            Some("k1"),
        )
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        a["id"], b["id"],
        "same key, same params: the first response replays"
    );
    let (_, list) = api.get("/v1/prices?product=p").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (s, e) = api
        .post_with(
            "/v1/prices",
            "product=p&currency=usd&unit_amount=6",
            Some("k1"),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(e["error"]["type"], "idempotency_error");
}

#[tokio::test]
async fn prices_lookup_keys_transfer_and_immutability() {
    let api = Api::new().await;
    api.post("/v1/products", "id=p&name=P").await;
    let (_, old) = api
        .post(
            "/v1/prices",
            "product=p&currency=usd&unit_amount=5&lookup_key=lk&recurring[interval]=month",
        )
        .await;
    assert_eq!(old["type"], "recurring");
    let (s, e) = api
        .post(
            "/v1/prices",
            "product=p&currency=usd&unit_amount=6&lookup_key=lk",
        )
        .await;
    assert_eq!(s, 400, "lookup keys are unique: {e}");
    let (s, new) = api
        .post(
            "/v1/prices",
            "product=p&currency=usd&unit_amount=6&lookup_key=lk&transfer_lookup_key=true",
        )
        .await;
    assert_eq!(s, 200);
    let (_, found) = api.get("/v1/prices?lookup_keys[]=lk").await;
    assert_eq!(found["data"][0]["id"], new["id"]);
    let (_, old_now) = api
        .get(&format!("/v1/prices/{}", old["id"].as_str().unwrap()))
        .await;
    assert_eq!(old_now["lookup_key"], Value::Null);
    let (s, _) = api
        .post(
            &format!("/v1/prices/{}", new["id"].as_str().unwrap()),
            "unit_amount=7",
        )
        .await;
    assert_eq!(s, 400, "amounts are immutable");
    let (s, p) = api
        .post(
            &format!("/v1/prices/{}", old["id"].as_str().unwrap()),
            "active=false&nickname=Old",
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(p["active"], json!(false));
    let (_, active) = api.get("/v1/prices?product=p&active=true").await;
    assert_eq!(active["data"].as_array().unwrap().len(), 1);
    let (_, recurring) = api.get("/v1/prices?type=recurring").await;
    assert_eq!(recurring["data"].as_array().unwrap().len(), 1);
    // default_price and expansion.
    let (s, prod) = api
        .post(
            "/v1/products/p",
            &format!(
                "default_price={}&expand[]=default_price",
                new["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(s, 200, "{prod}");
    assert_eq!(prod["default_price"]["unit_amount"], 6);
    let (_, list) = api.get("/v1/products?expand[]=data.default_price").await;
    assert_eq!(list["data"][0]["default_price"]["id"], new["id"]);
    // A price's product, expanded: in a list and alone.
    let (_, prices) = api
        .get("/v1/prices?product=p&active=true&expand[]=data.product")
        .await;
    assert_eq!(prices["data"][0]["product"]["id"], "p");
    assert_eq!(prices["data"][0]["product"]["object"], "product");
    let (_, one) = api
        .get(&format!(
            "/v1/prices/{}?expand[]=product",
            new["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one["product"]["id"], "p");
    let (_, plain) = api
        .get(&format!("/v1/prices/{}", new["id"].as_str().unwrap()))
        .await;
    assert_eq!(plain["product"], "p");
    let (s, created) = api
        .post(
            "/v1/products",
            "name=Q&default_price_data[currency]=jpy&default_price_data[unit_amount]=500",
        )
        .await;
    assert_eq!(s, 200);
    let price_id = created["default_price"].as_str().unwrap();
    let (_, price) = api.get(&format!("/v1/prices/{price_id}")).await;
    assert_eq!(price["currency"], "jpy");
    // What Stripe's `default_price_data` takes besides (other currencies, metadata, tax
    // behavior), expanded in the answer; the lookup key and the nickname are set after.
    let (s, created) = api
        .post(
            "/v1/products",
            "id=r&name=R&default_price_data[currency]=usd&default_price_data[unit_amount]=900\
             &default_price_data[currency_options][eur][unit_amount]=800\
             &default_price_data[metadata][k]=v&default_price_data[tax_behavior]=exclusive\
             &expand[]=default_price&expand[]=default_price.currency_options",
        )
        .await;
    assert_eq!(s, 200, "{created}");
    let price = &created["default_price"];
    assert_eq!(price["currency_options"]["eur"]["unit_amount"], 800);
    assert_eq!(
        (
            &price["metadata"]["k"],
            &price["tax_behavior"],
            &price["lookup_key"]
        ),
        (&json!("v"), &json!("exclusive"), &Value::Null)
    );
    for unknown in ["nickname=N", "lookup_key=k", "billing_scheme=tiered"] {
        let (s, e) = api
            .post(
                "/v1/products",
                &format!(
                    "name=S&default_price_data[currency]=usd&default_price_data[unit_amount]=1\
                     &default_price_data[{}",
                    unknown.replacen('=', "]=", 1)
                ),
            )
            .await;
        assert_eq!(s, 400, "{unknown}: {e}");
        assert_eq!(e["error"]["code"], "parameter_unknown", "{unknown}");
    }
    let (s, e) = api
        .post("/v1/products", "name=S&default_price_data[currency]=usd")
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        e["error"]["param"], "default_price_data[unit_amount]",
        "{e}"
    );
}

#[tokio::test]
async fn lists_paginate_newest_first() {
    let api = Api::new().await;
    for i in 0..25 {
        api.post("/v1/products", &format!("id=p{i:02}&name=P{i}"))
            .await;
    }
    let (_, first) = api.get("/v1/products?limit=10").await;
    let ids: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], "p24");
    assert_eq!(ids.len(), 10);
    assert_eq!(first["has_more"], json!(true));
    let (_, next) = api.get("/v1/products?limit=10&starting_after=p15").await;
    assert_eq!(next["data"][0]["id"], "p14");
    let (_, last) = api.get("/v1/products?limit=10&starting_after=p05").await;
    assert_eq!(last["data"].as_array().unwrap().len(), 5);
    assert_eq!(last["has_more"], json!(false));
    let (_, before) = api.get("/v1/products?limit=3&ending_before=p10").await;
    let ids: Vec<&str> = before["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["p13", "p12", "p11"]);
    let (_, by_ids) = api
        .get("/v1/products?ids[]=p03&ids[]=p20&ids[]=missing")
        .await;
    assert_eq!(by_ids["data"].as_array().unwrap().len(), 2);
    let (s, _) = api.get("/v1/products?limit=101").await;
    assert_eq!(s, 400);
}

/// Stripe's two limiters, each refusing with a 429 that names it and Stripe's error body, and the
/// refusals counted by endpoint and reason. (The exact budgets: `limits`' unit tests.)
#[tokio::test]
async fn rate_limits_answer_429_naming_the_limiter() {
    let api = Api::start(Config {
        // The endpoint limiter alone first: 2 a second per endpoint.
        limits: Limits {
            global: 0,
            per_endpoint: 2,
            endpoints: Default::default(),
        },
        ..Config::default()
    })
    .await;
    let burst = |path: &'static str| {
        let api = &api;
        async move {
            let mut answers = Vec::new();
            for _ in 0..6 {
                let r = api
                    .http
                    .get(format!("{}{path}", api.base))
                    .bearer_auth(&api.key)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let reason = r
                    .headers()
                    .get("stripe-rate-limited-reason")
                    .map(|v| v.to_str().unwrap().to_string());
                let body: Value = r.json().await.unwrap();
                if status == 429 {
                    assert_eq!(body["error"]["code"], "rate_limit", "{body}");
                    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
                    answers.push(reason.expect("a reason"));
                }
            }
            answers
        }
    };
    let configure = |limits: Value| {
        let api = &api;
        async move {
            let r = api
                .http
                .post(format!("{}/_sandbox/config", api.base))
                .json(&limits)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let by_endpoint = burst("/v1/products").await;
    assert!(!by_endpoint.is_empty(), "6 requests at once, 2 a second");
    assert!(
        by_endpoint.iter().all(|r| r == "endpoint-rate"),
        "{by_endpoint:?}"
    );
    // The account's limiter alone: 2 a second over all endpoints.
    configure(json!({"rate_limit": 2, "endpoint_rate_limit": 0})).await;
    let global = burst("/v1/prices").await;
    assert!(!global.is_empty());
    assert!(global.iter().all(|r| r == "global-rate"), "{global:?}");
    let (_, stats) = api.get("/_sandbox/stats").await;
    let refused = |endpoint: &str, reason: &str| {
        stats["rate_limited"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["endpoint"] == endpoint && r["reason"] == reason)
            .map_or(0, |r| r["count"].as_u64().unwrap())
    };
    assert_eq!(
        refused("GET /v1/products", "endpoint-rate"),
        by_endpoint.len() as u64,
        "{stats}"
    );
    assert_eq!(
        refused("GET /v1/prices", "global-rate"),
        global.len() as u64,
        "{stats}"
    );
    // 0 turns both off.
    configure(json!({"rate_limit": 0})).await;
    assert!(burst("/v1/products").await.is_empty());
}

#[tokio::test]
async fn faults_and_stats() {
    let api = Api::new().await;
    let r = api.http.post(format!("{}/_sandbox/faults", api.base))
        .json(&json!({"seed": 1, "error_rate": 1.0, "error_statuses": [503], "endpoints": ["POST /v1/products"]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = api.post("/v1/products", "id=x&name=X").await;
    assert_eq!(s, 503);
    let (s, _) = api.get("/v1/products").await;
    assert_eq!(s, 200, "other endpoints unaffected");
    api.http
        .delete(format!("{}/_sandbox/faults", api.base))
        .send()
        .await
        .unwrap();
    api.http.post(format!("{}/_sandbox/faults", api.base))
        .json(&json!({"drop_rate": 1.0, "drop_after_apply": true, "endpoints": ["POST /v1/products"]}))
        .send().await.unwrap();
    let r = api
        .http
        .post(format!("{}/v1/products", api.base))
        .bearer_auth(&api.key)
        .body("id=dropped&name=D")
        .send()
        .await;
    let broken = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(broken, "the connection must break");
    api.http
        .delete(format!("{}/_sandbox/faults", api.base))
        .send()
        .await
        .unwrap();
    let (s, _) = api.get("/v1/products/dropped").await;
    assert_eq!(s, 200, "drop_after_apply: the write took effect");
    let stats: Value = api
        .http
        .get(format!("{}/_sandbox/stats", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["writes"]["dropped"], 1);
    let post_503 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["endpoint"] == "POST /v1/products" && r["status"] == 503)
        .unwrap();
    assert_eq!(post_503["count"], 1);
}

#[tokio::test]
async fn dashboard_edits_and_signed_webhooks() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let sig = headers["stripe-signature"].to_str().unwrap().to_string();
                sink.lock().unwrap().push((sig, body));
                "ok"
            }
        }),
    );

    let api = Api::new().await;
    api.deliver_webhooks_to(app, "whsec_test").await;
    api.post("/v1/products", "id=w&name=W").await;
    let r = api
        .http
        .post(format!("{}/_sandbox/dashboard/products/w", api.base))
        .bearer_auth(&api.key)
        .body("name=Edited+by+hand")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, p) = api.get("/v1/products/w").await;
    assert_eq!(p["name"], "Edited by hand");
    for _ in 0..100 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let events = received.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    for (sig, body) in &events {
        let t: i64 = sig
            .split(',')
            .next()
            .unwrap()
            .trim_start_matches("t=")
            .parse()
            .unwrap();
        assert_eq!(
            sig,
            &stripe_sandbox::webhooks::sign("whsec_test", t, body.as_bytes())
        );
    }
    let dashboard: Value = events
        .iter()
        .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
        .find(|e| e["type"] == "product.updated")
        .unwrap();
    assert_eq!(
        dashboard["request"]["id"],
        Value::Null,
        "Dashboard edits have no request id"
    );
    assert_eq!(dashboard["data"]["previous_attributes"]["name"], "W");
}

#[tokio::test]
async fn state_survives_restart() {
    let dir = std::env::temp_dir().join(format!("sandbox-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let _ = std::fs::remove_file(&file);
    let sandbox = stripe_sandbox::Sandbox::new(Config {
        state_file: Some(file.clone()),
        limits: Limits::off(),
        ..Config::default()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(stripe_sandbox::serve(listener, sandbox, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{addr}/v1/products"))
        .bearer_auth("sk_test_p")
        .body("id=kept&name=Kept")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let addr = spawn(
        "127.0.0.1:0",
        Config {
            state_file: Some(file),
            limits: Limits::off(),
            ..Config::default()
        },
    )
    .await
    .unwrap();
    let r = http
        .get(format!("http://{addr}/v1/products/kept"))
        .bearer_auth("sk_test_p")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creates_with_one_idempotency_key_make_one_object() {
    let api = std::sync::Arc::new(Api::new().await);
    api.post("/v1/products", "id=p&name=P").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                api.post_with(
                    "/v1/prices",
                    "product=p&currency=usd&unit_amount=5",
                    Some("same"),
                )
                .await
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "one object for one key: {ids:?}");
    let (_, list) = api.get("/v1/prices?product=p").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

/// Random bodies, paths and headers: never a panic, never a hang, always a Stripe-shaped error.
#[tokio::test]
async fn random_requests_get_stripe_shaped_errors() {
    use rand::{Rng, SeedableRng};
    let api = Api::new().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let alphabet: &[u8] = b"abc[]=&%0-_.xyz/{}\"'\\\x00\xff\xfe \n";
    let paths = [
        "/v1/products",
        "/v1/prices",
        "/v1/products/x",
        "/v1/prices/y",
        "/v1/zzz",
        "/_sandbox/faults",
    ];
    for i in 0..400 {
        let len = rng.gen_range(0..200);
        let body: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect();
        let path = paths[rng.gen_range(0..paths.len())];
        let method = if rng.gen_bool(0.7) {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let query: String = (0..rng.gen_range(0..30))
            .map(|_| alphabet[rng.gen_range(0..14)] as char)
            .collect();
        let url = format!("{}{path}?{}", api.base, query.replace(' ', ""));
        let r = api
            .http
            .request(method, url)
            .bearer_auth(&api.key)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i} broke the server: {e}"));
        let status = r.status().as_u16();
        let value: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("request {i}: not JSON: {e}"));
        if status >= 400 {
            assert!(
                value["error"]["message"].is_string(),
                "request {i}: {value}"
            );
            assert!(value["error"]["type"].is_string(), "request {i}: {value}");
        }
        assert!(status < 500, "request {i} got {status}: {value}");
    }
    let (s, _) = api.get("/v1/products").await;
    assert_eq!(s, 200, "still serving");
}

#[tokio::test]
async fn outage_latency_and_stats_reset() {
    let api = Api::new().await;
    let admin = |path: &str| format!("{}/_sandbox/{path}", api.base);
    api.http
        .post(admin("faults"))
        .json(&json!({"outage_seconds": 1}))
        .send()
        .await
        .unwrap();
    let (s, e) = api.get("/v1/products").await;
    assert_eq!(s, 503, "{e}");
    assert_eq!(e["error"]["type"], "api_error");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, _) = api.get("/v1/products").await;
    assert_eq!(s, 200, "the outage ends by itself");

    api.http
        .post(admin("faults"))
        .json(&json!({"seed": 5, "latency_ms": 150, "jitter_ms": 50}))
        .send()
        .await
        .unwrap();
    let t = std::time::Instant::now();
    api.get("/v1/products").await;
    let took = t.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(150),
        "latency injected: {took:?}"
    );
    api.http.delete(admin("faults")).send().await.unwrap();
    let r = api
        .http
        .post(admin("faults"))
        .json(&json!({"bogus": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown fault settings are refused");

    let stats: Value = api
        .http
        .get(admin("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["total_requests"].as_u64().unwrap() >= 3);
    assert!(stats["peak_requests_per_second"].as_u64().unwrap() >= 1);
    api.http
        .post(admin("reset"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let stats: Value = api
        .http
        .get(admin("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_requests"], 0);
}

#[tokio::test]
async fn webhook_delivery_is_retried_until_the_endpoint_answers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    // Fails the first two deliveries, then accepts.
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let api = Api::new().await;
    api.deliver_webhooks_to(app, "whsec_retry").await;
    api.post("/v1/products", "id=r&name=R").await;
    for _ in 0..100 {
        if attempts.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "two failures, then delivered, then no more"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let events: Value = api
        .http
        .get(format!("{}/_sandbox/events", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["data"][0]["type"], "product.created");
}

/// `GET /v1/events`: every write's event, newest first, with Stripe's filters and pagination,
/// per account, and `GET /v1/events/{id}`.
#[tokio::test]
async fn events_list_newest_first_with_filters_and_pages() {
    let api = Api::new().await;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(api.post("/v1/products", "id=ev-1&name=Mug").await.0, 200);
    assert_eq!(api.post("/v1/products/ev-1", "name=Mug+2").await.0, 200);
    let (status, price) = api
        .post("/v1/prices", "product=ev-1&currency=usd&unit_amount=500")
        .await;
    assert_eq!(status, 200, "{price}");

    let (status, all) = api.get("/v1/events").await;
    assert_eq!(status, 200, "{all}");
    let types: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["price.created", "product.updated", "product.created"]
    );
    assert_eq!(all["url"], "/v1/events");
    let updated = &all["data"][1];
    assert_eq!(updated["object"], "event");
    assert_eq!(updated["data"]["object"]["name"], "Mug 2");
    assert_eq!(updated["data"]["previous_attributes"]["name"], "Mug");

    // Filters: a type, a wildcard, several types, the creation time.
    let (_, products) = api.get("/v1/events?type=product.*").await;
    assert_eq!(products["data"].as_array().unwrap().len(), 2);
    let (_, one) = api.get("/v1/events?type=product.created").await;
    assert_eq!(one["data"][0]["data"]["object"]["id"], "ev-1");
    let (_, some) = api
        .get("/v1/events?types[]=price.created&types[]=product.created")
        .await;
    assert_eq!(some["data"].as_array().unwrap().len(), 2);
    let (_, later) = api
        .get(&format!("/v1/events?created[gt]={}", started + 3600))
        .await;
    assert_eq!(later["data"].as_array().unwrap().len(), 0);
    let (_, since) = api.get(&format!("/v1/events?created[gte]={started}")).await;
    assert_eq!(since["data"].as_array().unwrap().len(), 3);

    // Pages of one, newest first, then back.
    let (_, first) = api.get("/v1/events?limit=1").await;
    assert_eq!(first["has_more"], true);
    let newest = first["data"][0]["id"].as_str().unwrap().to_string();
    let (_, second) = api
        .get(&format!("/v1/events?limit=1&starting_after={newest}"))
        .await;
    assert_eq!(second["data"][0]["type"], "product.updated");
    let (_, back) = api
        .get(&format!(
            "/v1/events?limit=1&ending_before={}",
            second["data"][0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(back["data"][0]["id"], newest.as_str());

    // One event; Stripe's errors.
    let (status, event) = api.get(&format!("/v1/events/{newest}")).await;
    assert_eq!(
        (status, event["type"].as_str()),
        (200, Some("price.created"))
    );
    let (status, missing) = api.get("/v1/events/evt_nope").await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "resource_missing");
    let (status, both) = api
        .get("/v1/events?type=product.created&types[]=price.created")
        .await;
    assert_eq!(status, 400, "{both}");
    let (status, bad) = api.get("/v1/events?created[after]=1").await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"]["param"], "created[after]");

    // Another key's account has its own events.
    let other = Api {
        base: api.base.clone(),
        key: "sk_test_other_events".into(),
        http: reqwest::Client::new(),
    };
    let (_, none) = other.get("/v1/events").await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0, "{none}");
}

#[tokio::test]
async fn shipping_statement_and_tax_fields_follow_stripe() {
    let api = Api::new().await;
    let (s, p) = api
        .post(
            "/v1/products",
            "id=mug&name=Mug&shippable=true&statement_descriptor=CS+MUGS\
             &package_dimensions[height]=4&package_dimensions[length]=3.5\
             &package_dimensions[weight]=12.25&package_dimensions[width]=3\
             &marketing_features[0][name]=Handmade&marketing_features[1][name]=Dishwasher+safe",
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["shippable"], true);
    assert_eq!(p["statement_descriptor"], "CS MUGS");
    assert_eq!(p["package_dimensions"]["weight"], 12.25);
    assert_eq!(p["marketing_features"][1]["name"], "Dishwasher safe");
    // Empty values unset where Stripe's API takes them; a statement descriptor cannot be unset.
    let (s, p) = api
        .post(
            "/v1/products/mug",
            "package_dimensions=&marketing_features=",
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["package_dimensions"], Value::Null);
    assert_eq!(p["marketing_features"], json!([]));
    let (s, e) = api.post("/v1/products/mug", "statement_descriptor=").await;
    assert_eq!(
        (s, &e["error"]["param"]),
        (400, &json!("statement_descriptor")),
        "{e}"
    );
    // Refused with the parameter named.
    let features: String = (0..16)
        .map(|i| format!("&marketing_features[{i}][name]=F{i}"))
        .collect();
    for (form, param) in [
        ("statement_descriptor=1234", "statement_descriptor"),
        ("statement_descriptor=NO%3CTAGS%3E", "statement_descriptor"),
        (
            "package_dimensions[height]=0&package_dimensions[length]=1&package_dimensions[weight]=1&package_dimensions[width]=1",
            "package_dimensions[height]",
        ),
        ("package_dimensions[height]=1", "package_dimensions[length]"),
        (&features[1..], "marketing_features"),
    ] {
        let (s, e) = api.post("/v1/products/mug", form).await;
        assert_eq!(s, 400, "{form}: {e}");
        assert_eq!(e["error"]["param"], param, "{form}: {e}");
        assert_eq!(e["error"]["type"], "invalid_request_error");
    }
    // A price's tax behavior: set once while unspecified, then fixed.
    let (_, price) = api
        .post("/v1/prices", "product=mug&currency=usd&unit_amount=1800")
        .await;
    assert_eq!(price["tax_behavior"], "unspecified");
    let path = format!("/v1/prices/{}", price["id"].as_str().unwrap());
    let (s, p) = api.post(&path, "tax_behavior=exclusive").await;
    assert_eq!((s, &p["tax_behavior"]), (200, &json!("exclusive")), "{p}");
    let (s, e) = api.post(&path, "tax_behavior=inclusive").await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["param"], "tax_behavior");
    let (s, _) = api.post(&path, "tax_behavior=exclusive").await;
    assert_eq!(s, 200, "the same value again is no change");
    let (s, e) = api
        .post(
            "/v1/prices",
            "product=mug&currency=usd&unit_amount=1&tax_behavior=gross",
        )
        .await;
    assert_eq!((s, &e["error"]["param"]), (400, &json!("tax_behavior")));
}

#[tokio::test]
async fn tiered_multi_currency_custom_and_packaged_prices_follow_stripe() {
    let api = Api::new().await;
    api.post("/v1/products", "id=seat&name=Seat").await;
    let tiers = "billing_scheme=tiered&tiers_mode=graduated\
                 &tiers[0][up_to]=10&tiers[0][unit_amount]=1000\
                 &tiers[1][up_to]=inf&tiers[1][unit_amount]=800&tiers[1][flat_amount]=100";
    let (s, price) = api
        .post(
            "/v1/prices",
            &format!(
                "product=seat&currency=usd&{tiers}\
                 &currency_options[eur][tiers][0][up_to]=10&currency_options[eur][tiers][0][unit_amount]=900\
                 &currency_options[eur][tiers][1][up_to]=inf&currency_options[eur][tiers][1][unit_amount]=700"
            ),
        )
        .await;
    assert_eq!(s, 200, "{price}");
    assert_eq!(price["billing_scheme"], "tiered");
    assert_eq!(price["unit_amount"], Value::Null);
    assert!(price.get("tiers").is_none(), "tiers only when expanded");
    assert!(price.get("currency_options").is_none());
    let id = price["id"].as_str().unwrap();
    let (_, got) = api
        .get(&format!(
            "/v1/prices/{id}?expand[]=tiers&expand[]=currency_options"
        ))
        .await;
    assert_eq!(got["tiers"][1]["up_to"], Value::Null);
    assert_eq!(got["tiers"][1]["flat_amount"], 100);
    assert_eq!(
        got["currency_options"]["usd"]["tax_behavior"],
        "unspecified"
    );
    assert_eq!(
        got["currency_options"]["eur"]["tiers"][0]["unit_amount"],
        900
    );
    api.post("/v1/products/seat", &format!("default_price={id}"))
        .await;
    let (_, listed) = api
        .get(
            "/v1/products?ids[]=seat&expand[]=data.default_price&expand[]=data.default_price.tiers",
        )
        .await;
    assert_eq!(listed["data"][0]["default_price"]["tiers"][0]["up_to"], 10);
    let (_, listed) = api.get("/v1/prices?product=seat&expand[]=data.tiers").await;
    assert_eq!(listed["data"][0]["tiers"][0]["up_to"], 10);

    // Currency options change in place; `currency_options=` removes them.
    let (_, one) = api
        .post("/v1/prices", "product=seat&currency=usd&unit_amount=500")
        .await;
    let path = format!("/v1/prices/{}", one["id"].as_str().unwrap());
    let (s, p) = api
        .post(
            &format!("{path}?expand[]=currency_options"),
            "currency_options[gbp][unit_amount]=400&currency_options[gbp][tax_behavior]=inclusive",
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let (_, p) = api.get(&format!("{path}?expand[]=currency_options")).await;
    assert_eq!(p["currency_options"]["gbp"]["unit_amount"], 400);
    let (s, e) = api
        .post(
            &path,
            "currency_options[gbp][unit_amount]=450&currency_options[gbp][tax_behavior]=exclusive",
        )
        .await;
    assert_eq!(s, 400, "a set tax behavior is fixed: {e}");
    let (s, _) = api
        .post(&path, "currency_options[gbp][unit_amount]=450")
        .await;
    assert_eq!(
        s, 200,
        "the amount changes in place, the tax behavior stays"
    );
    let (_, p) = api.get(&format!("{path}?expand[]=currency_options")).await;
    assert_eq!(p["currency_options"]["gbp"]["tax_behavior"], "inclusive");
    api.post(&path, "currency_options=").await;
    let (_, p) = api.get(&format!("{path}?expand[]=currency_options")).await;
    assert_eq!(p["currency_options"].as_object().unwrap().len(), 1, "{p}");

    // Pay what you want, and packages.
    let (s, custom) = api
        .post(
            "/v1/prices",
            "product=seat&currency=usd&custom_unit_amount[enabled]=true\
             &custom_unit_amount[minimum]=500&custom_unit_amount[preset]=1500",
        )
        .await;
    assert_eq!(s, 200, "{custom}");
    assert_eq!(custom["custom_unit_amount"]["minimum"], 500);
    assert_eq!(custom["unit_amount"], Value::Null);
    let (s, packaged) = api
        .post(
            "/v1/prices",
            "product=seat&currency=usd&unit_amount=1200&transform_quantity[divide_by]=6&transform_quantity[round]=up",
        )
        .await;
    assert_eq!(s, 200, "{packaged}");
    assert_eq!(
        packaged["transform_quantity"],
        json!({"divide_by": 6, "round": "up"})
    );

    // Refused with Stripe's parameter named, nothing stored.
    for (form, param) in [
        (
            "billing_scheme=tiered&tiers_mode=volume&tiers[0][up_to]=10&tiers[0][unit_amount]=1",
            "tiers[0][up_to]",
        ),
        (
            "billing_scheme=tiered&tiers_mode=volume&tiers[0][up_to]=10&tiers[0][unit_amount]=1\
             &tiers[1][up_to]=5&tiers[1][unit_amount]=1&tiers[2][up_to]=inf&tiers[2][unit_amount]=1",
            "tiers[1][up_to]",
        ),
        (
            "billing_scheme=tiered&tiers_mode=volume&tiers[0][up_to]=inf",
            "tiers[0][unit_amount]",
        ),
        (
            "billing_scheme=tiered&tiers[0][up_to]=inf&tiers[0][unit_amount]=1",
            "tiers_mode",
        ),
        (&format!("{tiers}&unit_amount=5"), "unit_amount"),
        ("tiers_mode=volume&unit_amount=5", "tiers_mode"),
        (
            "custom_unit_amount[enabled]=true&recurring[interval]=month",
            "custom_unit_amount",
        ),
        (
            "custom_unit_amount[enabled]=true&custom_unit_amount[minimum]=900&custom_unit_amount[maximum]=100",
            "custom_unit_amount[minimum]",
        ),
        (
            "unit_amount=5&transform_quantity[divide_by]=0&transform_quantity[round]=up",
            "transform_quantity[divide_by]",
        ),
        (
            "unit_amount=5&currency_options[usd][unit_amount]=5",
            "currency_options[usd]",
        ),
        (
            "unit_amount=5&currency_options[xyz][unit_amount]=5",
            "currency_options[xyz]",
        ),
        (
            "unit_amount=5&currency_options[eur][tax_behavior]=inclusive",
            "currency_options[eur][unit_amount]",
        ),
    ] {
        let (s, e) = api
            .post("/v1/prices", &format!("product=seat&currency=usd&{form}"))
            .await;
        assert_eq!(s, 400, "{form}: {e}");
        assert_eq!(e["error"]["param"], param, "{form}: {e}");
    }
    let (_, all) = api.get("/v1/prices?product=seat&limit=100").await;
    assert_eq!(
        all["data"].as_array().unwrap().len(),
        4,
        "refused prices are not stored"
    );
    let (s, e) = api
        .post(&format!("/v1/prices/{id}"), "tiers_mode=volume")
        .await;
    assert_eq!((s, &e["error"]["param"]), (400, &json!("tiers_mode")));
}

#[tokio::test]
async fn billing_meters_and_metered_prices_follow_stripe() {
    let api = Api::new().await;
    api.post("/v1/products", "id=api&name=API").await;
    let (s, meter) = api
        .post(
            "/v1/billing/meters",
            "display_name=API+calls&event_name=api_calls&default_aggregation[formula]=sum",
        )
        .await;
    assert_eq!(s, 200, "{meter}");
    assert_eq!(meter["object"], "billing.meter");
    let id = meter["id"].as_str().unwrap();
    assert!(id.starts_with("mtr_"));
    let (s, e) = api
        .post(
            "/v1/billing/meters",
            "display_name=Again&event_name=api_calls&default_aggregation[formula]=sum",
        )
        .await;
    assert_eq!(
        (s, &e["error"]["param"]),
        (400, &json!("event_name")),
        "{e}"
    );
    let (_, listed) = api.get("/v1/billing/meters?status=active").await;
    assert_eq!(listed["data"][0]["id"], id);
    let metered = format!(
        "product=api&currency=usd&unit_amount=2&recurring[interval]=month&recurring[usage_type]=metered&recurring[meter]={id}"
    );
    let (s, price) = api.post("/v1/prices", &metered).await;
    assert_eq!(s, 200, "{price}");
    assert_eq!(price["recurring"]["usage_type"], "metered");
    assert_eq!(price["recurring"]["meter"], id);
    for (form, param) in [
        (
            "product=api&currency=usd&unit_amount=2&recurring[interval]=month&recurring[usage_type]=metered",
            "recurring[meter]",
        ),
        (
            "product=api&currency=usd&unit_amount=2&recurring[interval]=month&recurring[usage_type]=metered&recurring[meter]=mtr_nope",
            "recurring[meter]",
        ),
        (
            &format!(
                "product=api&currency=usd&unit_amount=2&recurring[interval]=month&recurring[meter]={id}"
            ),
            "recurring[meter]",
        ),
    ] {
        let (s, e) = api.post("/v1/prices", form).await;
        assert_eq!(
            (s, &e["error"]["param"]),
            (400, &json!(param)),
            "{form}: {e}"
        );
    }
    let (s, _) = api
        .post(&format!("/v1/billing/meters/{id}/deactivate"), "")
        .await;
    assert_eq!(s, 200);
    let (s, e) = api.post("/v1/prices", &metered).await;
    assert_eq!(s, 400, "an inactive meter takes no new price: {e}");
}
