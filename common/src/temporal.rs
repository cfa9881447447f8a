//! The Temporal client every binary uses: connection settings from the SDK's envconfig
//! (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_PROFILE`,
//! `temporal.toml`), payloads encrypted as the binary's [`PayloadSettings`] say.

use std::time::Duration;

use anyhow::Context;

use crate::settings::PayloadSettings;
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, NamespacedClient, tonic,
};
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::enums::v1::TaskQueueType;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflow::v1::WorkflowExecutionInfo;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeTaskQueueRequest, DescribeTaskQueueResponse, DescribeWorkflowExecutionRequest,
};

/// What to do while Temporal cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnreachable {
    /// Fail with the setting to check (commands a person runs).
    Fail,
    /// Keep trying, with back-off up to 10 s, logging each try (services started beside Temporal:
    /// their work waits meanwhile, in the outbox or in Temporal).
    Wait,
}

/// A client of the configured namespace, its payloads encrypted as `payload` says; also returns
/// the id of the payload key in use, if any.
pub async fn connect(
    payload: &PayloadSettings,
    when_unreachable: WhenUnreachable,
) -> anyhow::Result<(Client, Option<String>)> {
    let (connection_options, mut client_options) =
        ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
            .map_err(|e| anyhow::anyhow!("Temporal connection settings: {e}"))?;
    // Inputs, results, signals and failures carry product data: encrypted when a key is set.
    let keyring = payload.keyring()?;
    let key_id = keyring.current_key_id().map(str::to_string);
    client_options.data_converter = codec::data_converter(keyring);
    // Trace context through signals, workflows and activities (and every worker made from this
    // client), when traces are on.
    if crate::traces::enabled() {
        client_options = ClientOptions::new(client_options.namespace.clone())
            .data_converter(client_options.data_converter.clone())
            .client_interceptors(client_options.client_interceptors.clone())
            .plugin(crate::traces::temporal_plugin())
            .build();
    }
    let address = connection_options.target.to_string();
    let connection =
        match when_unreachable {
            WhenUnreachable::Fail => Connection::connect(connection_options).await.with_context(
                || {
                    format!(
                        "connecting to Temporal at {address} (TEMPORAL_ADDRESS, or the profile of \
                     TEMPORAL_PROFILE / temporal.toml)"
                    )
                },
            )?,
            WhenUnreachable::Wait => connect_waiting(connection_options).await,
        };
    Ok((Client::new(connection, client_options)?, key_id))
}

async fn connect_waiting(options: ConnectionOptions) -> Connection {
    let mut pause = Duration::from_millis(200);
    loop {
        match Connection::connect(options.clone()).await {
            Ok(connection) => return connection,
            Err(e) => {
                tracing::warn!(error = %e, address = %options.target, retry_in_ms = pause.as_millis() as u64, "Temporal not reachable yet (TEMPORAL_ADDRESS)");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// `DescribeTaskQueue` of one task queue of the client's namespace: its pollers and, with
/// `with_stats`, the approximate backlog and rates and the queue's configuration (the
/// server-side rate limit). `starter status` and the workers' budget share both read it.
pub async fn describe_task_queue(
    client: &Client,
    task_queue: &str,
    kind: TaskQueueType,
    with_stats: bool,
) -> Result<DescribeTaskQueueResponse, tonic::Status> {
    let response = client
        .connection()
        .workflow_service()
        .describe_task_queue(tonic::Request::new(DescribeTaskQueueRequest {
            namespace: client.namespace(),
            task_queue: Some(TaskQueue {
                name: task_queue.to_string(),
                ..TaskQueue::default()
            }),
            task_queue_type: kind as i32,
            report_stats: with_stats,
            report_config: with_stats,
            ..DescribeTaskQueueRequest::default()
        }))
        .await?;
    Ok(response.into_inner())
}

/// The task queue a workflow run was started on. A run never changes queue: a run started on a
/// queue no worker polls waits there, and every signal sent to its workflow id reaches it.
pub async fn run_task_queue(
    client: &Client,
    workflow_id: &str,
    run_id: &str,
) -> Result<String, tonic::Status> {
    Ok(describe_execution(client, workflow_id, run_id)
        .await?
        .map(|info| info.task_queue)
        .unwrap_or_default())
}

/// The task queue of the workflow's running run, `None` when no run of it is running (or it
/// never ran).
pub async fn running_task_queue(
    client: &Client,
    workflow_id: &str,
) -> Result<Option<String>, tonic::Status> {
    use temporalio_common::protos::temporal::api::enums::v1::WorkflowExecutionStatus;
    let info = match describe_execution(client, workflow_id, "").await {
        Err(status) if status.code() == tonic::Code::NotFound => None,
        other => other?,
    };
    Ok(info
        .filter(|i| i.status == WorkflowExecutionStatus::Running as i32)
        .map(|i| i.task_queue))
}

/// The task queue of the workflow's latest run, running or closed (and retained); `None` when
/// the server knows no run of it.
pub async fn latest_task_queue(
    client: &Client,
    workflow_id: &str,
) -> Result<Option<String>, tonic::Status> {
    match describe_execution(client, workflow_id, "").await {
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        other => Ok(other?.map(|info| info.task_queue)),
    }
}

/// `DescribeWorkflowExecution` of one run (the latest with an empty `run_id`).
async fn describe_execution(
    client: &Client,
    workflow_id: &str,
    run_id: &str,
) -> Result<Option<WorkflowExecutionInfo>, tonic::Status> {
    Ok(client
        .connection()
        .workflow_service()
        .describe_workflow_execution(tonic::Request::new(DescribeWorkflowExecutionRequest {
            namespace: client.namespace(),
            execution: Some(WorkflowExecution {
                workflow_id: workflow_id.to_string(),
                run_id: run_id.to_string(),
            }),
        }))
        .await?
        .into_inner()
        .workflow_execution_info)
}

/// How many workers poll `task_queue` for workflow tasks (catalog-sync's workers poll it for
/// workflows and activities alike).
pub async fn workflow_pollers(client: &Client, task_queue: &str) -> Result<usize, tonic::Status> {
    Ok(
        describe_task_queue(client, task_queue, TaskQueueType::Workflow, false)
            .await?
            .pollers
            .len(),
    )
}
