//! Traces over OTLP, as a collector receives them: the `relay` and `worker` binaries export to an
//! OTLP/HTTP receiver the test runs, which decodes each `ExportTraceServiceRequest` (protobuf) as
//! a collector does. One catalog change, captured by the outbox, is one trace: the relay's
//! `catalog change` span, its `SignalWithStartWorkflow:ProductSync`, the workflow's activities on
//! the worker, and the Stripe requests inside the upsert, each with Stripe's request id (the same
//! id the sandbox's events carry).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use harness::{
    Backend, Running, Sandbox, eventually, fresh_catalog, temporal_address, unique, worker_command,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// A span as received, with the service that sent it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn name(&self) -> &str {
        &self.span.name
    }

    fn attribute(&self, key: &str) -> Option<String> {
        attribute(&self.span.attributes, key)
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            AnyValue::BoolValue(b) => b.to_string(),
            other => format!("{other:?}"),
        })
}

/// An OTLP/HTTP trace receiver on a free port: `POST /v1/traces` with a protobuf body.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
    let store = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
                let mut store = store.lock().unwrap();
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .as_ref()
                        .and_then(|r| attribute(&r.attributes, "service.name"))
                        .unwrap_or_default();
                    for scope in resource_spans.scope_spans {
                        for span in scope.spans {
                            store.push(Received {
                                service: service.clone(),
                                span,
                            });
                        }
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_catalog_change_is_one_trace_from_the_relay_to_stripe() {
    let (endpoint, spans) = receiver().await;
    let sandbox = Sandbox::start().await;
    let (catalog_url, catalog) = fresh_catalog(Backend::Sqlite).await;
    let task_queue = unique("traces");
    let _worker = Running(
        worker_command(&catalog_url, &sandbox, &task_queue)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _relay = Running(
        Command::new(harness::binary("relay"))
            .env("TEMPORAL_ADDRESS", temporal_address())
            .env("CATALOG_DATABASE_URL", &catalog_url)
            .env("CATALOG_SYNC_TASK_QUEUE", &task_queue)
            .env("CATALOG_SYNC_RELAY_POLL_MS", "50")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // A change captured by the outbox.
    let product = workflows::model::CatalogProduct {
        id: unique("traced"),
        ..catalog::seed::sample_product(1, 7)
    };
    catalog
        .save_products(std::slice::from_ref(&product))
        .await
        .unwrap();

    // Its trace, once all of it has been exported: the workflow's own span ends when the workflow
    // does, after the Stripe writes (and a moment later on a loaded machine).
    let change = eventually(Duration::from_secs(60), "the change's span", || async {
        let spans = spans.lock().unwrap().clone();
        spans.into_iter().find(|s| {
            s.name() == "catalog change"
                && s.attribute("catalog.product_id").as_deref() == Some(product.id.as_str())
        })
    })
    .await;
    let whole = |spans: &[Received]| {
        let trace: Vec<&Received> = spans
            .iter()
            .filter(|s| s.span.trace_id == change.span.trace_id)
            .collect();
        let has = |name: &str| trace.iter().any(|s| s.name() == name);
        has("RunWorkflow:ProductSync")
            && has("stripe POST /v1/prices/{id}")
            && trace.iter().all(|s| {
                s.span.parent_span_id.is_empty()
                    || trace
                        .iter()
                        .any(|p| p.span.span_id == s.span.parent_span_id)
            })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !whole(&spans.lock().unwrap()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let spans = spans.lock().unwrap().clone();
    let trace: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.trace_id == change.span.trace_id)
        .collect();
    let by_id: HashMap<&[u8], &Received> = trace
        .iter()
        .map(|s| (s.span.span_id.as_slice(), *s))
        .collect();
    let parent_of = |s: &Received| by_id.get(s.span.parent_span_id.as_slice()).copied();
    let named = |name: &str| -> Vec<&Received> {
        trace.iter().copied().filter(|s| s.name() == name).collect()
    };

    // The relay: the change, and the signal-with-start under it.
    assert_eq!(change.service, "catalog-sync-relay");
    assert_eq!(
        change.attribute("catalog.change_source").as_deref(),
        Some("outbox")
    );
    assert!(
        change.span.parent_span_id.is_empty(),
        "the change starts the trace"
    );
    let signal = named("SignalWithStartWorkflow:ProductSync");
    assert_eq!(signal.len(), 1, "{trace:#?}");
    assert_eq!(signal[0].service, "catalog-sync-relay");
    assert_eq!(
        parent_of(signal[0]).map(Received::name),
        Some("catalog change")
    );

    // The worker: the upsert activity's run, in the same trace.
    let upsert = named("RunActivity:UpsertProduct");
    assert_eq!(upsert.len(), 1, "{trace:#?}");
    assert_eq!(upsert[0].service, "catalog-sync-worker");

    // The Stripe requests: children of the upsert's run, with Stripe's request id.
    let stripe: Vec<&Received> = trace
        .iter()
        .copied()
        .filter(|s| s.name().starts_with("stripe "))
        .collect();
    // The product with its first price, and that price's lookup key.
    assert!(stripe.len() >= 2, "a product and its price: {trace:#?}");
    let events = sandbox.get("/_sandbox/events").await.1;
    for request in &stripe {
        assert_eq!(
            parent_of(request).map(Received::name),
            Some("RunActivity:UpsertProduct"),
            "{request:#?}"
        );
        let request_id = request
            .attribute("stripe.request_id")
            .unwrap_or_else(|| panic!("no request id: {request:#?}"));
        assert!(request_id.starts_with("req_"), "{request_id}");
        let status = request.attribute("http.response.status_code");
        if request.name().starts_with("stripe GET") {
            // A new product is not read (the mirror does not know it): any read is another's.
            assert!(
                matches!(status.as_deref(), Some("200" | "404")),
                "{status:?}"
            );
        } else {
            assert_eq!(status.as_deref(), Some("200"), "{request:#?}");
            // The write's request id is the one Stripe's event of it names.
            let evented = events["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["request"]["id"].as_str() == Some(request_id.as_str()));
            assert!(evented, "no event from {request_id}");
        }
    }
    // Every span of the trace hangs from the change: none lost its parent on the way.
    for span in &trace {
        let mut at = *span;
        let mut hops = 0;
        while let Some(parent) = parent_of(at) {
            at = parent;
            hops += 1;
            assert!(hops < 64);
        }
        assert_eq!(at.name(), "catalog change", "{span:#?} is detached");
    }
}
