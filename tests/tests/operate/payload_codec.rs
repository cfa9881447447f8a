//! Payload encryption end to end, with the binaries as a user runs them: a `worker` without
//! `CATALOG_SYNC_PAYLOAD_KEY` fails the workflow task and says why, one with it completes the sync
//! (`starter` with the key); Temporal's history holds only ciphertext, a refusal from Stripe
//! included (search attributes stay readable); a client without the key cannot read the result;
//! `codec-server` shows it decrypted to the `temporal` CLI (`--codec-endpoint`) and to the Web UI
//! in a real browser (the dev server's `--ui-codec-endpoint`, CORS from the UI's origin). With
//! `CATALOG_SYNC_CODEC_SCREENSHOT=docs/webui-decrypted.png` it also saves the README's screenshot.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use harness::{
    Backend, DevServer, DevServerOptions, Running, Sandbox, binary, eventually, fresh_catalog,
    headless_chromium, temporal_cli, unique,
};
use prost::Message;
use temporalio_client::{UntypedWorkflow, WorkflowGetResultOptions, WorkflowListOptions};
use temporalio_common::data_converters::{DataConverter, PayloadConversionError};
use temporalio_common::payload_visitor::{
    AsyncPayloadVisitor, PayloadField, PayloadFieldData, PayloadVisitable,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use workflows::model::CatalogProduct;
use workflows::{ProductSyncResult, SyncOutcome};

fn succeeded(what: &str, out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The message of the workflow's first failed workflow task, if one failed.
async fn workflow_task_failure(
    plain: &temporalio_client::Client,
    workflow_id: &str,
) -> Option<String> {
    let events: Vec<HistoryEvent> = plain
        .get_workflow_handle::<UntypedWorkflow>(workflow_id)
        .fetch_history(Default::default())
        .try_collect()
        .await
        .ok()?;
    events
        .into_iter()
        .find_map(|event| match event.attributes? {
            Attributes::WorkflowTaskFailedEventAttributes(failed) => Some(failed.failure?.message),
            _ => None,
        })
}

/// Every event of the workflow's history as Temporal stores it (protobuf), read by a client
/// without the key.
async fn stored_history(plain: &temporalio_client::Client, workflow_id: &str) -> Vec<u8> {
    let events: Vec<_> = plain
        .get_workflow_handle::<UntypedWorkflow>(workflow_id)
        .fetch_history(Default::default())
        .try_collect()
        .await
        .unwrap();
    events.iter().flat_map(|e| e.encode_to_vec()).collect()
}

/// Walks every payload field of the stored history: how many payloads are encrypted, and the
/// fields of those that are not, apart from what stays plain by design: search attributes (the
/// server indexes them) and the bookkeeping of local-activity markers (sequence number, activity
/// type, times), which the SDK's core writes below the codec.
async fn payload_encodings(
    plain: &temporalio_client::Client,
    workflow_id: &str,
) -> (usize, Vec<String>) {
    let mut events: Vec<_> = plain
        .get_workflow_handle::<UntypedWorkflow>(workflow_id)
        .fetch_history(Default::default())
        .try_collect()
        .await
        .unwrap();
    let mut seen = Encodings::default();
    for event in &mut events {
        seen.event = event.event_type();
        event.visit_payloads_mut(&mut seen).await.unwrap();
    }
    let encrypted = seen
        .fields
        .iter()
        .filter(|f| f.encoding == b"binary/encrypted")
        .count();
    let not_encrypted = seen
        .fields
        .iter()
        .filter(|f| f.encoding != b"binary/encrypted")
        .filter(|f| !f.path.contains("SearchAttributes"))
        .filter(|f| !(f.event == EventType::MarkerRecorded && is_marker_bookkeeping(&f.data)))
        .map(|f| {
            format!(
                "{:?} {}: {}",
                f.event,
                f.path,
                String::from_utf8_lossy(&f.data)
            )
        })
        .collect();
    (encrypted, not_encrypted)
}

/// Core's local-activity marker data: `{"seq":…,"attempt":…,"activity_id":…,"activity_type":…,
/// "complete_time":…, …}`.
fn is_marker_bookkeeping(data: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(data).is_ok_and(|v| {
        ["seq", "attempt", "activity_type", "complete_time"]
            .iter()
            .all(|k| v.get(k).is_some())
    })
}

struct Field {
    event: EventType,
    path: &'static str,
    encoding: Vec<u8>,
    data: Vec<u8>,
}

/// Every payload visited, with the event it is in.
#[derive(Default)]
struct Encodings {
    event: EventType,
    fields: Vec<Field>,
}

impl AsyncPayloadVisitor for Encodings {
    fn visit<'a>(
        &'a mut self,
        field: PayloadField<'a>,
    ) -> BoxFuture<'a, Result<(), PayloadConversionError>> {
        let payloads: Vec<&Payload> = match field.data {
            PayloadFieldData::Single(p) => vec![p],
            PayloadFieldData::Repeated(v) => v.iter().collect(),
            PayloadFieldData::Payloads(p) => p.payloads.iter().collect(),
        };
        for payload in payloads {
            self.fields.push(Field {
                event: self.event,
                path: field.path,
                encoding: payload
                    .metadata
                    .get("encoding")
                    .cloned()
                    .unwrap_or_default(),
                data: payload.data.clone(),
            });
        }
        Box::pin(async { Ok(()) })
    }
}

/// The data of every payload in the CLI's JSON output (base64 there), decoded, one per line.
fn payload_texts(value: &serde_json::Value) -> String {
    use base64::Engine;
    match value {
        serde_json::Value::Object(map) => {
            if let (Some(_), Some(serde_json::Value::String(data))) =
                (map.get("metadata"), map.get("data"))
            {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap_or_default();
                return format!("{}\n", String::from_utf8_lossy(&bytes));
            }
            map.values().map(payload_texts).collect()
        }
        serde_json::Value::Array(items) => items.iter().map(payload_texts).collect(),
        _ => String::new(),
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_data_is_encrypted_in_history_and_readable_through_the_codec_server() {
    // The Web UI is told where the codec server is when the dev server starts: a server of the
    // test's own.
    let codec_endpoint = format!("http://127.0.0.1:{}", harness::free_port());
    let server = DevServer::start(&DevServerOptions {
        ui_codec_endpoint: Some(codec_endpoint.clone()),
        ..DevServerOptions::default()
    });
    let address = server.address().to_string();
    let ui = server.ui_address().to_string();
    let key = codec::keys::new_key();
    let codec_listen = codec_endpoint.trim_start_matches("http://").to_string();
    let codec_metrics = format!("127.0.0.1:{}", harness::free_port());
    let codec_server = Running(
        Command::new(binary("codec-server"))
            .env(codec::keys::KEY_ENV, &key)
            .env("CATALOG_SYNC_METRICS_ADDR", &codec_metrics)
            .args(["--listen", &codec_listen])
            .args(["--cors-origin", &format!("http://{ui}")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let sandbox = Sandbox::start().await;
    let (catalog_url, catalog) = fresh_catalog(Backend::Sqlite).await;
    let identity = catalog.identity().await.unwrap();
    let product_sync_id = |id: &str| workflows::product_sync_id(&identity, id);
    let product = CatalogProduct {
        id: unique("enc"),
        name: format!("Confidential linen {}", unique("shirt")),
        description: Some(format!("Private description {}", unique("d"))),
        ..catalog::seed::sample_product(1, 7)
    };
    catalog
        .save_products(std::slice::from_ref(&product))
        .await
        .unwrap();
    let task_queue = unique("enc");
    let worker = |with_key: bool| {
        let mut command = harness::worker_command(&catalog_url, &sandbox, &task_queue);
        command.env("TEMPORAL_ADDRESS", &address);
        if with_key {
            command.env(codec::keys::KEY_ENV, &key);
        }
        Running(
            command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let starter = |args: &[&str]| {
        Command::new(binary("starter"))
            .env("TEMPORAL_ADDRESS", &address)
            .env("CATALOG_DATABASE_URL", &catalog_url)
            .env("CATALOG_SYNC_TASK_QUEUE", &task_queue)
            .env(codec::keys::KEY_ENV, &key)
            .args(args)
            .output()
            .unwrap()
    };
    let workflow_id = product_sync_id(&product.id);
    let plain = server.client_with(DataConverter::default()).await;

    // A worker without the key fails the workflow task, saying what is missing; Temporal retries
    // it, and once a worker with the key runs, the sync completes: nothing is lost.
    let keyless = worker(false);
    succeeded("starter sync", starter(&["sync", &product.id]));
    let refusal = eventually(
        Duration::from_secs(30),
        "the keyless worker fails the workflow task",
        || async { workflow_task_failure(&plain, &workflow_id).await },
    )
    .await;
    assert!(
        refusal.contains("no key: set CATALOG_SYNC_PAYLOAD_KEY"),
        "{refusal}"
    );
    drop(keyless);
    let _worker = worker(true);
    let stdout = succeeded("starter sync", starter(&["sync", &product.id, "--wait"]));
    assert!(
        stdout.contains(&format!("synced    {}", product.id)),
        "{stdout}"
    );
    // Stripe gets the product as it is: only Temporal's copy is encrypted.
    let in_stripe = sandbox.product(&product.id).await.expect("in Stripe");
    assert_eq!(in_stripe["name"], product.name.as_str());

    // Temporal's history, as stored: no product data, only encrypted payloads.
    let stored = stored_history(&plain, &workflow_id).await;
    assert!(
        !contains(&stored, &product.name)
            && !contains(&stored, product.description.as_deref().unwrap()),
        "product data in plain text in the history"
    );
    let (encrypted, plain_fields) = payload_encodings(&plain, &workflow_id).await;
    assert!(
        plain_fields.is_empty(),
        "payloads stored unencrypted: {plain_fields:?}"
    );
    assert!(
        encrypted >= 4,
        "input, activity inputs and results are encrypted ({encrypted})"
    );
    // Search attributes are not payload data: still indexed and searchable.
    let query = format!(
        "CatalogProductId = '{}' AND SyncOutcome = 'synced'",
        product.id
    );
    let run_id = eventually(
        Duration::from_secs(20),
        "the sync is found by its search attributes",
        || async {
            let listed = plain
                .list_workflows(query.as_str(), WorkflowListOptions::default())
                .next()
                .await?
                .ok()?;
            Some(listed.run_id().to_string())
        },
    )
    .await;

    // A process without the key (as the binaries build their client) cannot read the result,
    // and says which setting is missing; with the key it can.
    let keyless = server
        .client_with(codec::data_converter(codec::Keyring::default()))
        .await;
    let err = keyless
        .get_workflow_handle::<workflows::ProductSync>(&workflow_id)
        .get_result(WorkflowGetResultOptions::default())
        .await
        .expect_err("no key, no result");
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(message.contains("CATALOG_SYNC_PAYLOAD_KEY"), "{message}");
    let keyed = server
        .client_with(codec::data_converter(
            codec::Keyring::new(Some(&key), &[]).unwrap(),
        ))
        .await;
    let result: ProductSyncResult = keyed
        .get_workflow_handle::<workflows::ProductSync>(&workflow_id)
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert_eq!(result.outcome, SyncOutcome::Synced);

    // A sync Stripe refuses: its failure message (Stripe's error can quote the product) is
    // encrypted too, and the workflow still reads it back as the reason.
    let refused = CatalogProduct {
        id: unique("enc"),
        name: format!("Refused linen {}", unique("shirt")),
        ..catalog::seed::sample_product(2, 7)
    };
    catalog
        .save_products(std::slice::from_ref(&refused))
        .await
        .unwrap();
    sandbox
        .faults(serde_json::json!({"error_rate": 1.0, "error_statuses": [400], "endpoints": ["POST /v1/products"]}))
        .await;
    starter(&["sync", &refused.id, "--wait"]);
    sandbox.clear_faults().await;
    let refused_id = product_sync_id(&refused.id);
    let result: ProductSyncResult = keyed
        .get_workflow_handle::<workflows::ProductSync>(&refused_id)
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert_eq!(result.outcome, SyncOutcome::Failed);
    let reason = result.error.expect("the reason Stripe gave");
    let stored = stored_history(&plain, &refused_id).await;
    assert!(
        !contains(&stored, &reason) && !contains(&stored, &refused.name),
        "the failure's message in plain text in the history: {reason}"
    );

    // The temporal CLI through the codec server: the fetched product, decrypted.
    let show = |extra: &[&str]| {
        let out = Command::new(temporal_cli())
            .args(["workflow", "show", "-w", &workflow_id, "-o", "json"])
            .args(["--address", &address])
            .args(extra)
            .output()
            .unwrap();
        payload_texts(&serde_json::from_str(&succeeded("temporal workflow show", out)).unwrap())
    };
    let decoded = show(&["--codec-endpoint", &codec_endpoint]);
    assert!(decoded.contains(&product.name), "{decoded}");
    // The codec server counts what it answered, by route.
    let metrics = reqwest::get(format!("http://{codec_metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("catalog_sync_http_requests_total{")
                && l.contains(r#"route="/decode""#)
                && l.contains(r#"server="codec-server""#)
                && l.contains(r#"status="200""#)),
        "{metrics}"
    );
    assert!(metrics.contains(r#"binary="codec-server""#), "{metrics}");
    assert!(
        decoded.contains("\"outcome\":\"synced\""),
        "the result: {decoded}"
    );
    assert!(
        !show(&[]).contains(&product.name),
        "without the codec: ciphertext"
    );

    // The Web UI in a real browser: its page calls the codec server (CORS) and shows the
    // workflow's input and result decrypted.
    let url = format!("http://{ui}/namespaces/default/workflows/{workflow_id}/{run_id}/history");
    eventually(
        Duration::from_secs(60),
        "the Web UI shows the decrypted input and result",
        || async {
            let dom = tokio::task::block_in_place(|| headless_chromium(&url, &["--dump-dom"]));
            decrypted_in(&dom).then_some(())
        },
    )
    .await;
    // `CATALOG_SYNC_CODEC_SCREENSHOT=docs/webui-decrypted.png`: the README's screenshot.
    if let Ok(path) = std::env::var("CATALOG_SYNC_CODEC_SCREENSHOT") {
        let target = harness::workspace_root().join(path);
        let action = format!("--screenshot={}", target.display());
        tokio::task::block_in_place(|| headless_chromium(&url, &[&action]));
        assert!(target.exists());
    }
    // The same page with the codec server gone: only ciphertext to show.
    drop(codec_server);
    let dom = tokio::task::block_in_place(|| headless_chromium(&url, &["--dump-dom"]));
    assert!(dom.contains(&run_id), "the page rendered");
    assert!(!decrypted_in(&dom), "decrypted without the codec server?");
}

/// Whether the page shows the workflow's input and result as JSON (field names of
/// `ProductSyncInput` and `ProductSyncResult`).
fn decrypted_in(dom: &str) -> bool {
    dom.contains("max_passes_per_run") && dom.contains("catalog_version")
}
