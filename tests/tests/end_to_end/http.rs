//! The relay's HTTP endpoints against a real dev server, worker and sandbox: change ingest
//! (`POST /v1/changes`) and Stripe webhooks (`POST /stripe/webhook`) with signature checks,
//! de-duplication, echo suppression and field ownership.

use std::time::Duration;

use catalog::Catalog;
use domain::ownership::Ownership;
use harness::sandbox::Sandbox;
use harness::{Backend, TestEnv, eventually};
use relay::http::HttpConfig;
use relay::signature::header_value;
use serde_json::{Value, json};
use workflows::SyncOutcome;
use workflows::model::CatalogProduct;

/// Serves the endpoints over the test's catalog and task queue, recognising the worker's writes as
/// the relay binary does; returns the base URL.
async fn serve(env: &TestEnv, mut config: HttpConfig) -> String {
    config.own_writes = Some(harness::own_writes(&env.catalog).await);
    let router = relay::http::router(env.catalog.clone(), env.signaller(), config, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<String>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).body(body.into());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn change_ingest_authenticates_limits_and_reports_each_rejected_id() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let base = serve(
        &env,
        HttpConfig {
            ingest_tokens: vec!["token-old".into(), "token-new".into()],
            max_ids: 5,
            max_body_bytes: 2048,
            ..HttpConfig::default()
        },
    )
    .await;
    let url = format!("{base}/v1/changes");
    let ids: Vec<String> = (1..=3).map(|n| env.id(n)).collect();
    for n in 1..=3 {
        env.catalog.save_product(&env.sample(n)).await.unwrap();
    }
    let body = json!({ "product_ids": [ids[0], ids[1], "not a valid id!", ids[2]] }).to_string();

    let (status, _) = post(&url, &[], body.clone()).await;
    assert_eq!(status, 401, "no token");
    let (status, _) = post(
        &url,
        &[("authorization", "Bearer token-guess")],
        body.clone(),
    )
    .await;
    assert_eq!(status, 401, "wrong token");

    let (status, answer) = post(&url, &[("authorization", "Bearer token-new")], body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], json!(ids));
    assert_eq!(answer["rejected"][0]["product_id"], "not a valid id!");
    assert!(
        answer["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("letters")
    );
    for id in &ids {
        assert_eq!(env.result(id).await.outcome, SyncOutcome::Synced);
    }

    let auth = [("authorization", "Bearer token-old")];
    let six: Vec<String> = (1..=6).map(|n| env.id(n)).collect();
    let (status, answer) = post(&url, &auth, json!({ "product_ids": six }).to_string()).await;
    assert_eq!(status, 413, "too many ids: {answer}");
    let huge = json!({ "product_ids": ["x".repeat(4000)] }).to_string();
    assert_eq!(post(&url, &auth, huge).await.0, 413, "body over the limit");
    assert_eq!(post(&url, &auth, "{not json").await.0, 400);
    assert_eq!(post(&url, &auth, r#"{"ids": ["a"]}"#).await.0, 400);
    let (status, answer) = post(&url, &auth, r#"{"product_ids": [""]}"#).await;
    assert_eq!(status, 400, "nothing accepted: {answer}");
}

/// Decisions recorded for the webhook events handled so far, by decision.
async fn decisions(catalog: &Catalog) -> Vec<(String, i64)> {
    let sql = "SELECT decision, COUNT(*) FROM {events} GROUP BY decision ORDER BY decision";
    match catalog.db() {
        catalog::Db::Sqlite(pool) => {
            sqlx::query_as(&sql.replace("{events}", "catalog_sync_webhook_events_total"))
                .fetch_all(pool)
                .await
                .unwrap()
        }
        catalog::Db::Postgres(pool) => {
            sqlx::query_as(&sql.replace("{events}", "catalog_sync.webhook_events"))
                .fetch_all(pool)
                .await
                .unwrap()
        }
    }
}

/// Waits (at most 30 s) until a row of the product's ledger says `text`.
async fn ledger_says(catalog: &Catalog, product: &str, text: &str) {
    eventually(Duration::from_secs(30), text, || async {
        let history = catalog.audit_history(product, 10).await.unwrap();
        history
            .iter()
            .any(|r| r.entry.detail.as_deref().is_some_and(|d| d.contains(text)))
            .then_some(())
    })
    .await;
}

/// A test environment whose relay serves Stripe's signed webhooks, with `stripe_owned` fields
/// owned by Stripe and written back to the catalog.
async fn writing_back(backend: Backend, stripe_owned: &str) -> TestEnv {
    let ownership = Ownership::parse(stripe_owned, true).unwrap();
    let env = TestEnv::start_configured(backend, |s| s.ownership = ownership.clone()).await;
    let base = serve(
        &env,
        HttpConfig {
            webhook_secrets: vec!["whsec_write_back".into()],
            ownership,
            ..HttpConfig::default()
        },
    )
    .await;
    env.sandbox
        .deliver_webhooks_to(&format!("{base}/stripe/webhook"), "whsec_write_back")
        .await;
    env
}

/// How many events the sandbox's account has sent (every page of `GET /v1/events`).
async fn events_sent(sandbox: &Sandbox) -> i64 {
    let (mut total, mut after) = (0, None::<String>);
    loop {
        let path = match &after {
            Some(id) => format!("/v1/events?limit=100&starting_after={id}"),
            None => "/v1/events?limit=100".to_string(),
        };
        let (_, page) = sandbox.get(&path).await;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        total += data.len() as i64;
        if page["has_more"] != true {
            return total;
        }
        after = data
            .last()
            .and_then(|e| e["id"].as_str())
            .map(str::to_string);
    }
}

async fn count_of(catalog: &Catalog, decision: &str) -> i64 {
    decisions(catalog)
        .await
        .into_iter()
        .find(|(d, _)| d == decision)
        .map_or(0, |(_, n)| n)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn dashboard_edits_are_reverted_or_kept_by_ownership_and_echoes_cost_nothing() {
    let ownership = Ownership::parse("description", false).unwrap();
    let env =
        TestEnv::start_configured(Backend::Postgres, |s| s.ownership = ownership.clone()).await;
    let base = serve(
        &env,
        HttpConfig {
            // We are rolling our secret: both are accepted; the sandbox signs with the new one.
            webhook_secrets: vec!["whsec_old".into(), "whsec_new".into()],
            ownership: ownership.clone(),
            max_body_bytes: 64 * 1024,
            ..HttpConfig::default()
        },
    )
    .await;
    let hook = format!("{base}/stripe/webhook");
    env.sandbox.deliver_webhooks_to(&hook, "whsec_new").await;
    let (one, two) = (env.sample(1), env.sample(2));
    env.catalog
        .save_products(&[one.clone(), two.clone()])
        .await
        .unwrap();
    assert_eq!(env.sync(&one.id).await.outcome, SyncOutcome::Synced);
    assert_eq!(env.sync(&two.id).await.outcome, SyncOutcome::Synced);
    // The events of our own writes are echoes: recognised, and nothing is started.
    eventually(Duration::from_secs(20), "echo events handled", || async {
        (count_of(&env.catalog, "echo").await >= 4).then_some(())
    })
    .await;
    assert_eq!(
        count_of(&env.catalog, "repair").await,
        0,
        "{:?}",
        decisions(&env.catalog).await
    );

    // A catalog-owned field edited in the Dashboard is reverted through the webhook alone.
    env.sandbox
        .dashboard_edit(&one.id, "name=Renamed+in+the+Dashboard")
        .await;
    eventually(Duration::from_secs(30), "the name reverted", || async {
        env.sandbox
            .product(&one.id)
            .await
            .filter(|s| s["name"] == json!(one.name))
    })
    .await;
    assert_eq!(count_of(&env.catalog, "repair").await, 1);

    // Another integration that sends an idempotency key shaped like catalog-sync's old ones is
    // not taken for an echo: its edit is reverted like any other.
    let (status, _) = env
        .sandbox
        .api_post(
            &format!("/v1/products/{}", one.id),
            "name=Evil",
            Some("cs-x"),
        )
        .await;
    assert_eq!(status, 200);
    eventually(
        Duration::from_secs(30),
        "the spoofed edit reverted",
        || async {
            env.sandbox
                .product(&one.id)
                .await
                .filter(|s| s["name"] == json!(one.name))
        },
    )
    .await;
    assert_eq!(count_of(&env.catalog, "repair").await, 2);

    // A Stripe-owned field edited in the Dashboard stays, even through a full sync.
    env.sandbox
        .dashboard_edit(&two.id, "description=Written+by+marketing")
        .await;
    eventually(Duration::from_secs(20), "the edit kept", || async {
        (count_of(&env.catalog, "kept").await == 1).then_some(())
    })
    .await;
    // Every event tells the mirror of Stripe's state: the Dashboard edit is there, from its event.
    eventually(Duration::from_secs(20), "the edit mirrored", || async {
        let rows = env
            .catalog
            .mirror_products(std::slice::from_ref(&two.id))
            .await
            .unwrap();
        rows.into_iter()
            .find(|r| r.seen_in.starts_with("evt_") && r.object.contains("Written by marketing"))
    })
    .await;
    let writes = env.writes().await;
    let again = env.sync(&two.id).await;
    assert_eq!(again.outcome, SyncOutcome::Unchanged, "{again:?}");
    assert_eq!(env.writes().await, writes);
    let stripe = env.sandbox.product(&two.id).await.unwrap();
    assert_eq!(stripe["description"], "Written by marketing");

    // Each decision is in the audit ledger.
    let audit = |id: String| {
        let catalog = env.catalog.clone();
        async move { catalog.audit_history(&id, 50).await.unwrap() }
    };
    let reverted = audit(one.id.clone()).await;
    assert!(reverted.iter().any(|r| {
        r.entry.outcome == "conflict"
            && r.entry
                .detail
                .as_deref()
                .unwrap()
                .starts_with("name: Stripe edit reverted")
    }));
    let kept = audit(two.id.clone()).await;
    assert!(kept.iter().any(|r| {
        r.entry.outcome == "conflict"
            && r.entry
                .detail
                .as_deref()
                .unwrap()
                .starts_with("description: Stripe edit kept")
    }));

    // The repairs' own writes came back as echoes and started nothing more: once the relay has
    // decided every event the account has sent, there are still two repairs.
    eventually(Duration::from_secs(20), "every event decided", || async {
        let decided: i64 = decisions(&env.catalog).await.iter().map(|(_, n)| n).sum();
        (decided == events_sent(&env.sandbox).await).then_some(())
    })
    .await;
    assert_eq!(
        count_of(&env.catalog, "repair").await,
        2,
        "{:?}",
        decisions(&env.catalog).await
    );

    // Forged, stale, replayed and oversized deliveries.
    let event = json!({
        "id": "evt_test_replayed", "object": "event", "type": "product.updated",
        "data": { "object": { "id": one.id, "object": "product", "name": "x",
                              "metadata": { "catalog_sync_managed": "true", "catalog_sync_id": one.id } },
                  "previous_attributes": { "name": "y" } },
        "request": { "id": null, "idempotency_key": null }
    })
    .to_string();
    let signed = |secret: &str, t: i64| header_value(secret, t, event.as_bytes());
    let forged = signed("whsec_attacker", now());
    let (status, answer) = post(&hook, &[("stripe-signature", &forged)], event.clone()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("no signature matches the endpoint secret"))
    );
    let stale = signed("whsec_new", now() - 600);
    assert_eq!(
        post(&hook, &[("stripe-signature", &stale)], event.clone())
            .await
            .0,
        400
    );
    assert_eq!(post(&hook, &[], event.clone()).await.0, 400, "unsigned");
    let valid = signed("whsec_old", now());
    let (status, first) = post(&hook, &[("stripe-signature", &valid)], event.clone()).await;
    assert_eq!((status, first["decision"].as_str()), (200, Some("repair")));
    let (status, second) = post(&hook, &[("stripe-signature", &valid)], event.clone()).await;
    assert_eq!((status, second["duplicate"].as_bool()), (200, Some(true)));
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    let big_signature = header_value("whsec_new", now(), big.as_bytes());
    assert_eq!(
        post(&hook, &[("stripe-signature", &big_signature)], big)
            .await
            .0,
        413
    );
}

#[tokio::test]
async fn a_kept_dashboard_edit_is_written_back_to_the_catalog() {
    let env = writing_back(Backend::Sqlite, "description,images").await;
    let product = env.sample(1);
    env.catalog.save_product(&product).await.unwrap();
    assert_eq!(env.sync(&product.id).await.outcome, SyncOutcome::Synced);
    let version = env
        .catalog
        .fetch_product(&product.id)
        .await
        .unwrap()
        .unwrap()
        .version;

    env.sandbox
        .dashboard_edit(&product.id, "description=Marketing+copy")
        .await;
    let updated = eventually(
        Duration::from_secs(20),
        "the description written back",
        || async {
            env.catalog
                .fetch_product(&product.id)
                .await
                .unwrap()
                .filter(|p| p.description.as_deref() == Some("Marketing copy"))
        },
    )
    .await;
    assert_eq!(
        updated.version,
        version + 1,
        "written back as a catalog change"
    );
    assert_eq!(updated.name, product.name, "nothing else changed");
    // The relay writes the catalog, then its ledger row: wait for the row too.
    ledger_says(&env.catalog, &product.id, "written back to the catalog").await;
    // The next sync finds Stripe already right about the description.
    let after = env.sync(&product.id).await;
    assert_ne!(after.outcome, SyncOutcome::Failed);
    assert_eq!(
        env.sandbox.product(&product.id).await.unwrap()["description"],
        "Marketing copy"
    );

    // A Dashboard edit that also points `catalog_sync_id` at another product: nothing is
    // written back to that product's row (nor to this one's), the conflict is recorded, and
    // this product is repaired by its own id, its identity metadata restored.
    let other = env.sample(2);
    env.catalog.save_product(&other).await.unwrap();
    env.sandbox
        .dashboard_edit(
            &product.id,
            &format!("description=Forged&metadata[catalog_sync_id]={}", other.id),
        )
        .await;
    ledger_says(
        &env.catalog,
        &product.id,
        "disagrees with the product's own id",
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the product repaired by its own id",
        || async {
            env.sandbox
                .product(&product.id)
                .await
                .filter(|p| p["metadata"]["catalog_sync_id"] == json!(product.id))
        },
    )
    .await;
    let untouched = env.catalog.fetch_product(&other.id).await.unwrap().unwrap();
    assert_eq!(
        untouched.description, other.description,
        "nothing written to the other row"
    );
    let own = env
        .catalog
        .fetch_product(&product.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        own.description.as_deref(),
        Some("Marketing copy"),
        "nor to its own"
    );
}

/// The shipping fields under field ownership: Stripe owns the marketing features, shipping flag
/// and dimensions (a merchandiser edits them in the Dashboard), the catalog the statement
/// descriptor. Dashboard edits of the first are kept and written back; of the second, reverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_owned_shipping_fields_are_kept_and_written_back_and_catalog_owned_ones_reverted() {
    let env = writing_back(
        Backend::Sqlite,
        "marketing_features,shippable,package_dimensions",
    )
    .await;
    let mut product = env.sample(1);
    product.statement_descriptor = Some("SAMPLE SHOP".into());
    product.shippable = Some(true);
    product.marketing_features = vec!["Free returns".into()];
    env.catalog.save_product(&product).await.unwrap();
    assert_eq!(env.sync(&product.id).await.outcome, SyncOutcome::Synced);

    env.sandbox
        .dashboard_edit(
            &product.id,
            "marketing_features[0][name]=Gift+wrap&marketing_features[1][name]=Engraving\
             &shippable=false&package_dimensions[height]=2&package_dimensions[length]=3\
             &package_dimensions[weight]=4&package_dimensions[width]=5\
             &statement_descriptor=DASHBOARD+EDIT",
        )
        .await;
    let written = eventually(
        Duration::from_secs(20),
        "the Stripe-owned fields written back",
        || async {
            env.catalog
                .fetch_product(&product.id)
                .await
                .unwrap()
                .filter(|p| p.marketing_features.len() == 2 && p.package_dimensions.is_some())
                .filter(|p| p.shippable == Some(false))
        },
    )
    .await;
    assert_eq!(written.marketing_features, ["Gift wrap", "Engraving"]);
    assert_eq!(written.package_dimensions.unwrap().weight, 4.0);
    assert_eq!(
        written.statement_descriptor.as_deref(),
        Some("SAMPLE SHOP"),
        "a catalog-owned field is not written back"
    );
    // The catalog-owned descriptor is put back; the kept fields stay as edited.
    let stripe = eventually(
        Duration::from_secs(20),
        "the descriptor reverted",
        || async {
            env.sandbox
                .product(&product.id)
                .await
                .filter(|p| p["statement_descriptor"] == "SAMPLE SHOP")
        },
    )
    .await;
    assert_eq!(stripe["marketing_features"][1]["name"], "Engraving");
    assert_eq!(stripe["shippable"], false);
    assert_eq!(stripe["package_dimensions"]["width"], 5.0);
}

/// xorshift64: a reproducible stream of pseudo-random numbers for the fuzz-style test.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_and_never_panic_the_relay() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let base = serve(
        &env,
        HttpConfig {
            ingest_tokens: vec!["token-fuzz".into()],
            webhook_secrets: vec!["whsec_fuzz".into()],
            max_body_bytes: 16 * 1024,
            ..HttpConfig::default()
        },
    )
    .await;
    let (hook, ingest) = (
        format!("{base}/stripe/webhook"),
        format!("{base}/v1/changes"),
    );
    let templates: Vec<String> = vec![
        json!({"product_ids": ["sku-1", "sku-2"]}).to_string(),
        json!({"id": "evt_1", "type": "product.updated",
               "data": {"object": {"id": "sku-1", "metadata": {"catalog_sync_managed": "true"}}}})
        .to_string(),
        r#"{"product_ids": 1}"#.into(),
        r#"{"product_ids": [1, null, {}]}"#.into(),
        r#"{"product_ids": null}"#.into(),
        r#"[["product_ids"]]"#.into(),
        "[".repeat(10_000),
        "\u{0}\u{ffff}".into(),
    ];
    let signatures = [
        "t=-9223372036854775808,v1=00".to_string(),
        "t=9223372036854775807,v1=00".into(),
        "t=,v1=".into(),
        "v1=zz".into(),
        format!("t={},v1=00", now()),
        "t=1,t=2,v1=0,v1=1".into(),
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..400 {
        // A body: a template cut short (never valid JSON of the right shape), or random bytes.
        let template = &templates[(next(&mut seed) % templates.len() as u64) as usize];
        let body: Vec<u8> = if round % 3 == 0 {
            (0..next(&mut seed) % 512)
                .map(|_| next(&mut seed) as u8)
                .collect()
        } else {
            let cut = (next(&mut seed) % template.len().max(1) as u64) as usize;
            let mut bytes = template.as_bytes()[..cut].to_vec();
            if round % 2 == 0 && !bytes.is_empty() {
                let at = (next(&mut seed) % bytes.len() as u64) as usize;
                bytes[at] = next(&mut seed) as u8;
            }
            bytes
        };
        let signature = &signatures[(next(&mut seed) % signatures.len() as u64) as usize];
        let client = reqwest::Client::new();
        let status = client
            .post(&hook)
            .header("stripe-signature", signature.as_str())
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the webhook endpoint did not answer: {e}"))
            .status()
            .as_u16();
        assert_eq!(status, 400, "round {round}: webhook {signature:?}");
        let status = client
            .post(&ingest)
            .header("authorization", "Bearer token-fuzz")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the ingest endpoint did not answer: {e}"))
            .status()
            .as_u16();
        assert!(
            (400..500).contains(&status),
            "round {round}: ingest answered {status}"
        );
        // Random headers of every kind, without the right token or signature.
        let name = ["authorization", "stripe-signature", "content-type", "x-any"]
            [(next(&mut seed) % 4) as usize];
        let value: String = (0..next(&mut seed) % 64)
            .map(|_| (32 + next(&mut seed) % 95) as u8 as char)
            .collect();
        for url in [&hook, &ingest] {
            let status = client
                .post(url)
                .header(name, value.as_str())
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("round {round}: {url} did not answer: {e}"))
                .status()
                .as_u16();
            assert!(
                (400..500).contains(&status),
                "round {round}: {url} {name}: {value:?} → {status}"
            );
        }
    }
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the relay still serves");
}

#[tokio::test]
async fn write_back_refuses_a_value_the_catalog_would_refuse_and_reverts_stripe() {
    let env = writing_back(Backend::Sqlite, "url").await;
    let product = env.sample(1);
    env.catalog.save_product(&product).await.unwrap();
    assert_eq!(env.sync(&product.id).await.outcome, SyncOutcome::Synced);
    let before = env
        .catalog
        .fetch_product(&product.id)
        .await
        .unwrap()
        .unwrap();

    env.sandbox
        .dashboard_edit(&product.id, "url=javascript:alert(1)")
        .await;
    // Stripe gets the catalog's URL back, though Stripe owns `url`.
    eventually(
        Duration::from_secs(30),
        "the bad URL reverted in Stripe",
        || async {
            env.sandbox
                .product(&product.id)
                .await
                .filter(|s| s["url"] == json!(product.url))
        },
    )
    .await;
    let after = env
        .catalog
        .fetch_product(&product.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (after.url.as_deref(), after.version),
        (before.url.as_deref(), before.version),
        "the catalog is unchanged"
    );
    let history = env.catalog.audit_history(&product.id, 20).await.unwrap();
    assert!(
        history
            .iter()
            .any(|r| r.entry.detail.as_deref().is_some_and(|d| {
                d.starts_with("url: Stripe edit refused") && d.contains("http(s)://")
            })),
        "{history:?}"
    );
    // The product still syncs: a catalog edit reaches Stripe.
    let renamed = CatalogProduct {
        name: "Renamed after the refusal".into(),
        ..before
    };
    env.catalog.save_product(&renamed).await.unwrap();
    assert_eq!(env.sync(&product.id).await.outcome, SyncOutcome::Synced);
    assert_eq!(
        env.sandbox.product(&product.id).await.unwrap()["name"],
        "Renamed after the refusal"
    );
}

/// A Stripe-owned value the catalog database refuses for what it is (a NUL byte: PostgreSQL's
/// SQLSTATE 22021) is recorded as a conflict and the event answered, instead of a 503 that Stripe
/// would retry for three days; the catalog keeps its value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_back_the_database_refuses_is_recorded_not_retried() {
    let env = writing_back(Backend::Postgres, "description").await;
    let product = env.sample(1);
    env.catalog.save_product(&product).await.unwrap();
    assert_eq!(env.sync(&product.id).await.outcome, SyncOutcome::Synced);

    env.sandbox
        .dashboard_edit(&product.id, "description=Before%00After")
        .await;
    ledger_says(
        &env.catalog,
        &product.id,
        "not written back: the catalog database refused the value",
    )
    .await;
    let row = env
        .catalog
        .fetch_product(&product.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.description, product.description);
    assert_eq!(count_of(&env.catalog, "kept").await, 1);
}
