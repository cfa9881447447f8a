//! The Temporal client every binary uses: connection settings from the SDK's envconfig
//! (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_PROFILE`,
//! `temporal.toml`), payloads encrypted as the binary's [`PayloadSettings`] say. A `TEMPORAL_*`
//! variable set to an empty value counts as unset (a Kubernetes Secret or an env file with
//! `TEMPORAL_API_KEY=` for a self-hosted, plaintext Temporal), and values lose surrounding
//! whitespace (a secret file's trailing newline): to the SDK, an empty API key would turn TLS on.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;

use crate::settings::PayloadSettings;
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, NamespacedClient, tonic,
};
use temporalio_common::envconfig::load_client_config_profile;
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
    let (connection_options, mut client_options) = connection_settings(std::env::vars())?;
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

/// The connection and client options the environment `vars` (and a `temporal.toml` profile) give,
/// with empty `TEMPORAL_*` values taken as unset and the others trimmed.
pub fn connection_settings(
    vars: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<(ConnectionOptions, ClientOptions)> {
    let vars: HashMap<String, String> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            if !name.starts_with("TEMPORAL_") {
                return Some((name, value));
            }
            let value = value.trim();
            (!value.is_empty()).then(|| (name, value.to_string()))
        })
        .collect();
    let profile =
        load_client_config_profile(LoadClientConfigProfileOptions::default(), Some(&vars))
            .map_err(|e| anyhow::anyhow!("Temporal connection settings: {e}"))?;
    let namespace = profile
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let connection = ConnectionOptions::try_from(profile)
        .map_err(|e| anyhow::anyhow!("Temporal connection settings: {e}"))?;
    Ok((connection, ClientOptions::new(namespace).build()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_empty_api_key_is_unset_and_leaves_a_plaintext_server_plaintext() {
        let (connection, client) = connection_settings(vars(&[
            ("TEMPORAL_ADDRESS", "temporal:7233"),
            ("TEMPORAL_API_KEY", ""),
            ("TEMPORAL_NAMESPACE", " "),
        ]))
        .unwrap();
        assert_eq!(
            connection.target.scheme(),
            "http",
            "{:?}",
            connection.target
        );
        assert!(connection.tls_options.is_none() && connection.api_key.is_none());
        assert_eq!(client.namespace, "default");

        let (connection, client) = connection_settings(vars(&[
            ("TEMPORAL_ADDRESS", "ns.acct.tmprl.cloud:7233"),
            ("TEMPORAL_API_KEY", "key-from-a-file\n"),
            ("TEMPORAL_NAMESPACE", "ns.acct"),
        ]))
        .unwrap();
        assert_eq!(connection.target.scheme(), "https");
        assert!(connection.tls_options.is_some(), "an API key means TLS");
        assert_eq!(connection.api_key.as_deref(), Some("key-from-a-file"));
        assert_eq!(client.namespace, "ns.acct");
    }
}
