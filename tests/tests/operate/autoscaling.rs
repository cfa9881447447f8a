//! The autoscaler's metric against a real Temporal server's `/metrics`: the labels the HPA
//! selects and the adapter sums are the ones the server reports for catalog-sync's workflow task
//! queue (`approximate_backlog_count`, its dashes as underscores, per partition and priority).

use std::time::Duration;

use harness::{DevServer, DevServerOptions, eventually};
use temporalio_client::WorkflowStartOptions;
use temporalio_common::data_converters::DataConverter;
use workflows::{ProductSync, ProductSyncInput};

use crate::contract::deploy::{kubernetes_settings, metric_label, yaml};

/// `name{labels} value` lines of `metric` in a Prometheus text page, as (labels, value).
fn series(page: &str, metric: &str) -> Vec<(String, f64)> {
    page.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            Some((labels.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autoscaler_selects_the_backlog_the_server_reports() {
    let server = DevServer::start(&DevServerOptions {
        metrics: true,
        ..DevServerOptions::default()
    });
    let metrics_url = server.metrics_url().unwrap().to_string();
    let client = server.client_with(DataConverter::default()).await;
    // The deployment's own queue, with no worker: its workflow tasks wait.
    let queue = kubernetes_settings()["CATALOG_SYNC_TASK_QUEUE"].clone();
    for n in 0..3 {
        client
            .start_workflow(
                ProductSync::run,
                ProductSyncInput {
                    catalog_id: format!("sku-{n}"),
                    ..ProductSyncInput::default()
                },
                WorkflowStartOptions::new(queue.as_str(), format!("backlog-{n}")).build(),
            )
            .await
            .unwrap();
    }
    let label = format!("taskqueue=\"{}\"", metric_label(&queue));
    // The server emits the gauge about once a minute, each partition on its own.
    let waiting: f64 = eventually(
        Duration::from_secs(150),
        "the backlog in /metrics",
        || async {
            let page = reqwest::get(&metrics_url).await.ok()?.text().await.ok()?;
            let total: f64 = series(&page, "approximate_backlog_count")
                .iter()
                .filter(|(labels, _)| labels.contains(&label))
                .map(|(_, value)| value)
                .sum();
            (total >= 3.0).then_some(total)
        },
    )
    .await;
    assert_eq!(waiting, 3.0, "three workflow tasks wait on {label}");

    let hpa = yaml("deploy/kubernetes/overlays/autoscaling/worker-hpa.yaml");
    let selector = &hpa["spec"]["metrics"][0]["external"]["metric"]["selector"]["matchLabels"];
    assert_eq!(
        format!("taskqueue=\"{}\"", selector["taskqueue"].as_str().unwrap()),
        label,
        "the HPA selects the label the server reports"
    );
}
