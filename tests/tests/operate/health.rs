//! `/healthz` and `/readyz` of the worker (`CATALOG_SYNC_HEALTH_ADDR`), the relay (on
//! `CATALOG_SYNC_LISTEN`) and the codec server, as an orchestrator probes them: live at once, ready
//! once their dependencies answer (the worker: once Temporal lists its pollers; an empty
//! `TEMPORAL_API_KEY` is no key, so a plaintext Temporal is reached), not ready (503, with the
//! reason) when the catalog database goes away, while still live; the relay live while Temporal
//! is away.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::contract::deploy::env_file;
use harness::{
    Backend, Running, Sandbox, eventually, free_port, fresh_catalog, unique, worker_command,
};

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

/// Waits until `{base}/readyz` answers 200; its body.
async fn ready(base: &str, within: Duration) -> String {
    let url = format!("{base}/readyz");
    let (_, body) = eventually(within, &url, || async {
        get(&url).await.filter(|(s, _)| *s == 200)
    })
    .await;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_are_live_then_ready_and_not_ready_without_their_catalog() {
    let sandbox = Sandbox::start().await;
    let (url, catalog) = fresh_catalog(Backend::Postgres).await;
    let port = free_port();
    let _worker = Running(
        worker_command(&url, &sandbox, &unique("health"))
            .env("CATALOG_SYNC_HEALTH_ADDR", format!("127.0.0.1:{port}"))
            // As a Secret with an empty key leaves it for a self-hosted, plaintext Temporal.
            .env("TEMPORAL_API_KEY", "")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let relay_port = free_port();
    let _relay = Running(
        Command::new(harness::binary("relay"))
            .env("TEMPORAL_ADDRESS", harness::temporal_address())
            .env("TEMPORAL_API_KEY", "")
            .env("CATALOG_DATABASE_URL", &url)
            .env("CATALOG_SYNC_TASK_QUEUE", unique("health-relay"))
            .env("CATALOG_SYNC_LISTEN", format!("127.0.0.1:{relay_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let codec_port = free_port();
    let _codec = Running(
        Command::new(harness::binary("codec-server"))
            .env(codec::keys::KEY_ENV, codec::keys::new_key())
            .args(["--listen", &format!("127.0.0.1:{codec_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let relay = format!("http://127.0.0.1:{relay_port}");
    let codec = format!("http://127.0.0.1:{codec_port}");
    for base in [&relay, &codec] {
        let body = ready(base, Duration::from_secs(30)).await;
        assert!(body.starts_with("ready"), "{base}: {body}");
        assert_eq!(get(&format!("{base}/healthz")).await.unwrap().0, 200);
    }
    let base = format!("http://127.0.0.1:{port}");
    let live = eventually(Duration::from_secs(30), "/healthz", || async {
        get(&format!("{base}/healthz")).await
    })
    .await;
    assert_eq!(live.0, 200, "{live:?}");
    let ready = eventually(Duration::from_secs(30), "/readyz 200", || async {
        get(&format!("{base}/readyz"))
            .await
            .filter(|(s, _)| *s == 200)
    })
    .await;
    assert_eq!(ready.1, "ready\n");

    // The catalog database goes away (dropped, its connections ended).
    let catalog::Db::Postgres(pool) = catalog.db() else {
        unreachable!()
    };
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    pool.close().await;
    let admin = sqlx::PgPool::connect(&harness::postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    let (status, body) = eventually(Duration::from_secs(30), "/readyz 503", || async {
        get(&format!("{base}/readyz"))
            .await
            .filter(|(s, _)| *s == 503)
    })
    .await;
    assert_eq!(status, 503);
    assert!(body.contains("catalog database"), "{body}");
    assert_eq!(
        get(&format!("{base}/healthz")).await.unwrap().0,
        200,
        "still live"
    );
}

/// A relay whose Temporal is away is live from its first seconds (an orchestrator must not
/// restart it: it is built to wait, its changes safe in the outbox) and answers the rest with 503
/// saying what it waits for. A codec server on a pod's address without a token refuses to start,
/// naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_waiting_for_temporal_is_live_and_a_codec_server_without_a_token_refuses() {
    let (url, catalog) = fresh_catalog(Backend::Sqlite).await;
    // Changes wait in the outbox (the built-in tables' triggers write them).
    catalog
        .save_product(&catalog::seed::sample_product(1, 36))
        .await
        .unwrap();
    let nobody = free_port();
    let relay_port = free_port();
    let metrics_port = free_port();
    let _relay = Running(
        Command::new(harness::binary("relay"))
            .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{nobody}"))
            .env("TEMPORAL_API_KEY", "")
            .env("CATALOG_DATABASE_URL", &url)
            .env("CATALOG_SYNC_LISTEN", format!("127.0.0.1:{relay_port}"))
            .env(
                "CATALOG_SYNC_METRICS_ADDR",
                format!("127.0.0.1:{metrics_port}"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{relay_port}");
    let live = eventually(
        Duration::from_secs(20),
        "/healthz while Temporal is away",
        || async { get(&format!("{base}/healthz")).await },
    )
    .await;
    assert_eq!(live.0, 200, "{live:?}");
    let (status, body) = get(&format!("{base}/readyz")).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("waiting for Temporal"), "{body}");
    let ingest = reqwest::Client::new()
        .post(format!("{base}/v1/changes"))
        .json(&serde_json::json!({"product_ids": ["sku-1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ingest.status().as_u16(),
        503,
        "nothing taken while Temporal is away"
    );
    // Its metrics tell the outage meanwhile: the changes waiting, the refused requests.
    let metrics = eventually(
        Duration::from_secs(20),
        "the outbox's state while Temporal is away",
        || async {
            let (_, text) = get(&format!("http://127.0.0.1:{metrics_port}/metrics")).await?;
            text.lines()
                .filter_map(|l| l.strip_prefix("catalog_sync_relay_pending "))
                .any(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
                .then_some(text)
        },
    )
    .await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("catalog_sync_http_requests_total{")
                && l.contains(r#"route="starting""#)
                && l.contains(r#"status="503""#)
                && l.ends_with(" 2")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "catalog_sync_capture_missing_triggers 0"),
        "{metrics}"
    );

    let out = Command::new(harness::binary("codec-server"))
        .env(codec::keys::KEY_ENV, codec::keys::new_key())
        .env("CATALOG_SYNC_CODEC_AUTH_TOKEN", "")
        .args(["--listen", &format!("0.0.0.0:{}", free_port())])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("CATALOG_SYNC_CODEC_AUTH_TOKEN is not set")
            && said.contains("CATALOG_SYNC_CODEC_NO_AUTH"),
        "{said}"
    );
}

/// The Kubernetes example as shipped (the base's settings, the example's, its Secret with every
/// optional key empty) starts the worker and the relay against a plaintext, self-hosted Temporal:
/// only the addresses of Temporal, the catalog and Stripe are this machine's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_example_settings_start_the_worker_and_the_relay() {
    let sandbox = Sandbox::start().await;
    let (url, _catalog) = fresh_catalog(Backend::Postgres).await;
    let mut settings: Vec<(String, String)> = env_file("deploy/kubernetes/base/settings.env")
        .into_iter()
        .collect();
    let example = yaml_literals("deploy/kubernetes/overlays/example/kustomization.yaml");
    settings.extend(example);
    settings.extend(env_file(
        "deploy/kubernetes/overlays/example/secrets.example.env",
    ));
    for (key, _) in &settings {
        assert!(
            !key.starts_with("CATALOG_SYNC_") || common::settings::environment::is_known(key),
            "{key}"
        );
    }
    let queue = unique("k8s-example");
    let here = [
        ("TEMPORAL_ADDRESS", harness::temporal_address()),
        ("CATALOG_DATABASE_URL", url.clone()),
        ("STRIPE_API_BASE", sandbox.base.clone()),
        ("CATALOG_SYNC_TASK_QUEUE", queue),
    ];
    let start = |binary: &str, port: u16, addr_setting: &str| {
        let mut command = Command::new(harness::binary(binary));
        command
            .envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(here.iter().map(|(k, v)| (*k, v.as_str())))
            .env(addr_setting, format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Running(command.spawn().unwrap())
    };
    let (worker_port, relay_port) = (free_port(), free_port());
    let _worker = start("worker", worker_port, "CATALOG_SYNC_HEALTH_ADDR");
    let _relay = start("relay", relay_port, "CATALOG_SYNC_LISTEN");
    for port in [worker_port, relay_port] {
        ready(&format!("http://127.0.0.1:{port}"), Duration::from_secs(60)).await;
    }
}

/// The `literals` of a kustomization's `configMapGenerator`, as `KEY=value` pairs.
fn yaml_literals(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(harness::workspace_root().join(path)).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    doc["configMapGenerator"][0]["literals"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|l| {
            let (k, v) = l.as_str().unwrap().split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}
