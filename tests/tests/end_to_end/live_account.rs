//! Setting catalog-sync up on a Stripe account as a team does on day one, through the binaries:
//! `starter webhooks install` (then a Dashboard edit comes back through the installed endpoint
//! and is repaired), and Stripe Connect (a catalog synced into one connected account, its
//! webhooks routed by their `account`).

use std::process::{Command, Stdio};
use std::time::Duration;

use harness::{Backend, Running, Sandbox, TestEnv, eventually, free_port};
use serde_json::Value;
use workflows::SyncOutcome;

use super::guards::{starter, text};

/// The relay binary for a catalog and task queue, serving webhooks on `port` with `secret`, with
/// `extra` settings.
fn relay(
    catalog_url: &str,
    queue: &str,
    port: u16,
    secret: &str,
    extra: &[(&str, &str)],
) -> Running {
    let mut command = Command::new(harness::binary("relay"));
    command
        .env("TEMPORAL_ADDRESS", harness::temporal_address())
        .env("CATALOG_DATABASE_URL", catalog_url)
        .env("CATALOG_SYNC_TASK_QUEUE", queue)
        .env("CATALOG_SYNC_LISTEN", format!("127.0.0.1:{port}"))
        .env("STRIPE_WEBHOOK_SECRET", secret)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra {
        command.env(k, v);
    }
    Running(command.spawn().unwrap())
}

async fn serving(port: u16) {
    eventually(Duration::from_secs(30), "relay serving", || async {
        reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
}

/// The secret `starter webhooks install` printed.
fn secret_of(said: &str) -> String {
    said.lines()
        .find_map(|l| l.strip_prefix("STRIPE_WEBHOOK_SECRET="))
        .unwrap_or_else(|| panic!("no secret printed: {said}"))
        .to_string()
}

/// A request to the sandbox as `account`'s (Connect) or the key's own.
async fn sandbox_request(
    sandbox: &Sandbox,
    method: reqwest::Method,
    path: &str,
    account: Option<&str>,
    form: &str,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", sandbox.base))
        .bearer_auth(&sandbox.key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string());
    if let Some(account) = account {
        request = request.header("Stripe-Account", account);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// `starter webhooks install` creates the endpoint (events: exactly catalog-sync's) and prints the
/// secret once; a second install updates it instead of adding one. The relay, given that secret,
/// receives a Dashboard edit through it and the edit is reverted. `uninstall` removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_endpoint_brings_dashboard_edits_back_for_repair() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let product = env.sample(1);
    env.catalog.save_product(&product).await.unwrap();
    assert_eq!(env.sync(&product.id).await.outcome, SyncOutcome::Synced);

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/stripe/webhook");
    let queue = &env.worker.task_queue;
    let install = |url: &str| {
        starter(
            &env.catalog_url,
            &env.sandbox,
            queue,
            &["webhooks", "install", "--url", url],
        )
    };
    let out = tokio::task::block_in_place(|| install(&url));
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let secret = secret_of(&said);
    assert!(secret.starts_with("whsec_"), "{said}");
    let out = tokio::task::block_in_place(|| install(&url));
    let again = text(&out);
    assert!(out.status.success() && again.contains("updated"), "{again}");
    assert!(
        !again.contains("STRIPE_WEBHOOK_SECRET="),
        "the secret is shown once: {again}"
    );
    let (_, endpoints) = env.sandbox.get("/v1/webhook_endpoints").await;
    let endpoints = endpoints["data"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    let events: Vec<&str> = endpoints[0]["enabled_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(events, stripe::webhook_endpoints::EVENTS);
    assert!(
        endpoints[0].get("secret").is_none(),
        "listed without its secret"
    );

    let _relay = relay(&env.catalog_url, queue, port, &secret, &[]);
    serving(port).await;
    env.sandbox
        .dashboard_edit(&product.id, "name=Edited+in+the+Dashboard")
        .await;
    eventually(Duration::from_secs(60), "the edit reverted", || async {
        let s = env.sandbox.product(&product.id).await?;
        (s["name"] == product.name.as_str()).then_some(())
    })
    .await;

    let out = starter(
        &env.catalog_url,
        &env.sandbox,
        queue,
        &["webhooks", "uninstall"],
    );
    assert!(text(&out).contains("deleted 1 endpoints"), "{}", text(&out));
    let (_, endpoints) = env.sandbox.get("/v1/webhook_endpoints").await;
    assert_eq!(endpoints["data"].as_array().unwrap().len(), 0);
}

/// With `STRIPE_ACCOUNT`, the catalog lands in that connected account and nowhere else (the
/// platform and a second connected account see none of it); `verify` checks that account. The
/// Connect endpoint `webhooks install` makes on the platform brings a Dashboard edit in the
/// connected account back to this relay, which repairs it; another account's relay leaves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_sync_lands_in_the_connected_account_only() {
    const SELLER: &str = "acct_seller1";
    let env = TestEnv::start_configured(Backend::Sqlite, |s| {
        s.stripe.account = Some(SELLER.into());
    })
    .await;
    let products: Vec<_> = (1..=3).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        assert_eq!(env.sync(&p.id).await.outcome, SyncOutcome::Synced);
    }
    let path = |id: &str| format!("/v1/products/{id}");
    for p in &products {
        let (status, seen) = sandbox_request(
            &env.sandbox,
            reqwest::Method::GET,
            &path(&p.id),
            Some(SELLER),
            "",
        )
        .await;
        assert_eq!(
            (status, &seen["name"]),
            (200, &Value::from(p.name.as_str()))
        );
        for elsewhere in [None, Some("acct_seller2")] {
            let (status, _) = sandbox_request(
                &env.sandbox,
                reqwest::Method::GET,
                &path(&p.id),
                elsewhere,
                "",
            )
            .await;
            assert_eq!(status, 404, "{} is in {elsewhere:?}", p.id);
        }
    }
    let verify = |account: &str| {
        let mut command = Command::new(harness::binary("starter"));
        command
            .args(["verify", "--requests-per-second", "200"])
            .env("CATALOG_DATABASE_URL", &env.catalog_url)
            .env("STRIPE_API_BASE", &env.sandbox.base)
            .env("STRIPE_API_KEY", &env.sandbox.key)
            .env("STRIPE_ACCOUNT", account);
        command.output().unwrap()
    };
    let out = tokio::task::block_in_place(|| verify(SELLER));
    assert!(
        text(&out).contains("3 products compared, 0 differences"),
        "{}",
        text(&out)
    );
    let out = tokio::task::block_in_place(|| verify("acct_seller2"));
    assert!(text(&out).contains("missing in Stripe"), "{}", text(&out));

    // Each account's catalog installs a Connect endpoint on the platform; Stripe sends every
    // connected account's events to both, and each relay takes its own account's.
    let port = free_port();
    let other_port = free_port();
    let (other_url, other_catalog) = harness::fresh_catalog(Backend::Sqlite).await;
    let install = |catalog_url: &str, port: u16, account: &str| {
        let mut command = Command::new(harness::binary("starter"));
        command
            .args([
                "webhooks",
                "install",
                "--url",
                &format!("http://127.0.0.1:{port}/stripe/webhook"),
            ])
            .env("CATALOG_DATABASE_URL", catalog_url)
            .env("STRIPE_API_BASE", &env.sandbox.base)
            .env("STRIPE_API_KEY", &env.sandbox.key)
            .env("STRIPE_ACCOUNT", account);
        command.output().unwrap()
    };
    // An endpoint of the platform's own events at the same URL, made first, is not turned into
    // the Connect one (Stripe cannot change its kind): a Connect endpoint is made beside it.
    let account_only = tokio::task::block_in_place(|| {
        let mut command = Command::new(harness::binary("starter"));
        command
            .args(["webhooks", "install", "--url"])
            .arg(format!("http://127.0.0.1:{port}/stripe/webhook"))
            .env("CATALOG_DATABASE_URL", &env.catalog_url)
            .env("STRIPE_API_BASE", &env.sandbox.base)
            .env("STRIPE_API_KEY", &env.sandbox.key);
        command.output().unwrap()
    });
    let said = text(&account_only);
    assert!(account_only.status.success(), "{said}");
    let account_endpoint = said
        .split_whitespace()
        .find(|w| w.starts_with("we_"))
        .unwrap()
        .to_string();
    let out = tokio::task::block_in_place(|| install(&env.catalog_url, port, SELLER));
    let said = text(&out);
    assert!(said.contains("Connect"), "{said}");
    assert!(
        said.contains(&format!("left     {account_endpoint}")) && said.contains("created"),
        "{said}"
    );
    let secret = secret_of(&said);
    // The account endpoint has served its purpose here: its events would reach the relay signed
    // with another secret.
    let (status, _) = sandbox_request(
        &env.sandbox,
        reqwest::Method::DELETE,
        &format!("/v1/webhook_endpoints/{account_endpoint}"),
        None,
        "",
    )
    .await;
    assert_eq!(status, 200);
    let out = tokio::task::block_in_place(|| install(&other_url, other_port, "acct_seller2"));
    let other_secret = secret_of(&text(&out));
    let (_, on_platform) = sandbox_request(
        &env.sandbox,
        reqwest::Method::GET,
        "/v1/webhook_endpoints",
        None,
        "",
    )
    .await;
    assert_eq!(
        on_platform["data"].as_array().unwrap().len(),
        2,
        "{on_platform}"
    );
    let queue = env.worker.task_queue.clone();
    let _relay = relay(
        &env.catalog_url,
        &queue,
        port,
        &secret,
        &[("STRIPE_ACCOUNT", SELLER)],
    );
    let other_queue = harness::unique("seller2");
    let _other = relay(
        &other_url,
        &other_queue,
        other_port,
        &other_secret,
        &[("STRIPE_ACCOUNT", "acct_seller2")],
    );
    serving(port).await;
    serving(other_port).await;

    let edit = format!("/_sandbox/dashboard/products/{}", products[0].id);
    let (status, _) = sandbox_request(
        &env.sandbox,
        reqwest::Method::POST,
        &edit,
        Some(SELLER),
        "name=Edited+by+the+seller",
    )
    .await;
    assert_eq!(status, 200);
    eventually(
        Duration::from_secs(60),
        "the seller's edit reverted",
        || async {
            let (_, seen) = sandbox_request(
                &env.sandbox,
                reqwest::Method::GET,
                &path(&products[0].id),
                Some(SELLER),
                "",
            )
            .await;
            (seen["name"] == products[0].name.as_str()).then_some(())
        },
    )
    .await;
    // The event carried the seller's account; the other account's relay took it and left it.
    let (_, events) = env.sandbox.get("/_sandbox/events").await;
    let event = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["type"] == "product.updated"
                && e["request"]["id"].is_null()
                && e["data"]["object"]["id"] == products[0].id.as_str()
        })
        .expect("the Dashboard edit's event")
        .clone();
    assert_eq!(event["account"], SELLER, "{event:#}");
    let id = event["id"].as_str().unwrap();
    assert_eq!(
        env.catalog
            .webhook_event_decision(id)
            .await
            .unwrap()
            .as_deref(),
        Some("repair")
    );
    let left = eventually(
        Duration::from_secs(30),
        "the other relay's decision",
        || async { other_catalog.webhook_event_decision(id).await.unwrap() },
    )
    .await;
    assert_eq!(left, "other_account");
}
