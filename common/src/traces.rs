//! OpenTelemetry traces over OTLP, on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, off (no exporter, no cost beyond a no-op call per
//! span) when it is not.
//!
//! One trace follows a catalog change end to end:
//! - the relay's `catalog change` span, for a change captured by the outbox, the ingest endpoint or
//!   a Stripe webhook (product id and source as attributes);
//! - the Temporal SDK's OpenTelemetry plugin (on every client, so on every worker too): the
//!   `SignalWithStartWorkflow:ProductSync` call, whose context travels in the workflow's
//!   `_tracer-data` header, the workflow run, each activity it schedules and each activity's run
//!   on whichever worker takes it;
//! - the Stripe client's `stripe POST /v1/products/{id}` spans inside the activity, with the
//!   status and Stripe's `Request-Id` (`stripe.request_id`), the id Stripe's Dashboard and
//!   support know the request by.
//!
//! The exporter speaks OTLP over HTTP with protobuf (`http/protobuf`, port 4318 on a collector),
//! batching spans off the request path; the standard `OTEL_*` variables apply (`OTEL_SERVICE_NAME`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`, …). Workflow spans get replay-safe ids
//! and are not exported again when a workflow replays (the SDK's `WorkflowIdGenerator` and
//! `WorkflowSpanProcessor`).

use std::sync::OnceLock;

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use temporalio_sdk::opentelemetry::{
    OpenTelemetryPlugin, WorkflowIdGenerator, WorkflowSpanProcessor,
};

/// The instrumentation scope of catalog-sync's own spans.
pub const SCOPE: &str = "catalog-sync";

static ENABLED: OnceLock<bool> = OnceLock::new();

/// The installed tracer provider: flush it before the process exits ([`Traces::shutdown`]).
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Exports the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "traces: could not flush the last spans");
        }
    }
}

/// The OTLP endpoint the environment names, if any.
fn endpoint() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .filter_map(|name| std::env::var(name).ok())
    .map(|v| v.trim().to_string())
    .find(|v| !v.is_empty())
}

/// Installs the global tracer provider and propagator when an OTLP endpoint is configured, for
/// the process `service` (unless `OTEL_SERVICE_NAME` names it). Call once, inside the Tokio
/// runtime, before the Temporal client is made ([`crate::temporal::connect`] adds the SDK's
/// plugin when traces are on).
pub fn init(service: &str) -> anyhow::Result<Option<Traces>> {
    let Some(endpoint) = endpoint() else {
        let _ = ENABLED.set(false);
        return Ok(None);
    };
    if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
        && !protocol.trim().is_empty()
        && protocol.trim() != "http/protobuf"
    {
        anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol:?}: catalog-sync exports traces as http/protobuf \
             (a collector's port 4318); unset it or set it to http/protobuf"
        );
    }
    // The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT itself (appending /v1/traces) and
    // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given; checked here so a bad value fails at start.
    url::Url::parse(&endpoint).with_context(|| {
        format!(
            "OTEL_EXPORTER_OTLP_ENDPOINT={endpoint:?}: expected a URL such as http://collector:4318"
        )
    })?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .context("OTLP trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT)")?;
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| service.to_string());
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service.clone())
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        )
        .with_id_generator(WorkflowIdGenerator::default())
        .with_span_processor(WorkflowSpanProcessor::new(
            BatchSpanProcessor::builder(exporter).build(),
        ))
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let _ = ENABLED.set(true);
    tracing::info!(%endpoint, %service, "exporting traces over OTLP");
    Ok(Some(Traces { provider }))
}

/// Whether [`init`] turned traces on.
pub fn enabled() -> bool {
    ENABLED.get().copied().unwrap_or(false)
}

/// The SDK's plugin that carries trace context through clients, workflows and activities.
pub fn temporal_plugin() -> temporalio_sdk::SimplePlugin {
    OpenTelemetryPlugin::builder().build()
}
