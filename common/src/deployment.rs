//! Worker Deployment Versioning as the server reports it: which build takes new workflows, for
//! the deployment as a whole and for each task queue (the change reaches each queue a little
//! after `set-current-version` returns), and each version's task queues and drainage. Read by the
//! worker (which logs whether new workflows reach its build) and `starter rollout`.

use temporalio_client::{Client, NamespacedClient, tonic};
use temporalio_common::protos::temporal::api::deployment::v1::WorkerDeploymentInfo;
use temporalio_common::protos::temporal::api::deployment::v1::WorkerDeploymentVersion as WorkerDeploymentVersionProto;
use temporalio_common::protos::temporal::api::enums::v1::TaskQueueType;
use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeWorkerDeploymentRequest;

/// Which version of the deployment takes new workflows, as the server reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Routing {
    /// No such deployment yet (no versioned worker of it has polled).
    Unknown,
    /// The deployment exists but has no current version: new workflows go to unversioned
    /// workers, and wait when there are none.
    NoCurrentVersion,
    /// New workflows go to this build (and `ramping` of them to the ramping build).
    Current {
        /// The current version's build id.
        build_id: String,
        /// The ramping version's build id and percentage, if any.
        ramping: Option<(String, f32)>,
    },
}

/// `DescribeWorkerDeployment`: the deployment as the server knows it, `None` when it does not (no
/// versioned worker of it has polled yet).
pub async fn describe(
    client: &Client,
    deployment_name: &str,
) -> Result<Option<WorkerDeploymentInfo>, tonic::Status> {
    let response = client
        .connection()
        .workflow_service()
        .describe_worker_deployment(tonic::Request::new(DescribeWorkerDeploymentRequest {
            namespace: client.namespace(),
            deployment_name: deployment_name.to_string(),
        }))
        .await;
    match response {
        Ok(r) => Ok(r.into_inner().worker_deployment_info),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status),
    }
}

/// Reads the deployment's routing configuration.
pub async fn routing(client: &Client, deployment_name: &str) -> Result<Routing, tonic::Status> {
    let Some(info) = describe(client, deployment_name).await? else {
        return Ok(Routing::Unknown);
    };
    let Some(config) = info.routing_config else {
        return Ok(Routing::NoCurrentVersion);
    };
    let current = config
        .current_deployment_version
        .map(|v| v.build_id)
        .filter(|b| !b.is_empty());
    let ramping = config
        .ramping_deployment_version
        .map(|v| v.build_id)
        .filter(|b| !b.is_empty())
        .map(|b| (b, config.ramping_version_percentage));
    Ok(match current {
        Some(build_id) => Routing::Current { build_id, ramping },
        None => Routing::NoCurrentVersion,
    })
}

/// How one task queue routes new workflows and tasks, as the queue itself holds it: the
/// deployment's routing reaches each queue after `set-current-version` or `set-ramping-version`
/// returns. The deployment's own "propagation complete" flag can stay in progress after every
/// queue has the change (temporalio/temporal#11842), so a rollout waits on its queues instead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueRouting {
    /// The build new work goes to (`None`: unversioned workers).
    pub current: Option<String>,
    /// The build ramping, and its percentage.
    pub ramping: Option<(String, f32)>,
}

/// [`QueueRouting`] of `task_queue`, as its root partition holds it.
pub async fn queue_routing(
    client: &Client,
    task_queue: &str,
    kind: TaskQueueType,
) -> Result<QueueRouting, tonic::Status> {
    let response = crate::temporal::describe_task_queue(client, task_queue, kind, false).await?;
    let Some(info) = response.versioning_info else {
        return Ok(QueueRouting::default());
    };
    let build =
        |v: Option<WorkerDeploymentVersionProto>| v.map(|v| v.build_id).filter(|b| !b.is_empty());
    Ok(QueueRouting {
        current: build(info.current_deployment_version),
        ramping: build(info.ramping_deployment_version)
            .map(|b| (b, info.ramping_version_percentage)),
    })
}
