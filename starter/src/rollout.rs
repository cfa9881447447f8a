//! `starter rollout`: where a versioned rollout stands (docs/deploying.md, "Versioned rollout").
//! `temporal worker deployment describe` shows the deployment's routing, but not whether the
//! change has reached the task queues yet (it does a few seconds after `set-current-version`
//! returns; a workflow started in between is routed by the previous configuration), nor both of
//! catalog-sync's queues at once. This shows, and with `--wait` waits for, each queue holding the
//! deployment's routing, and where each version stands (current, ramping, draining, drained).

use std::time::{Duration, Instant};

use common::deployment::{QueueRouting, describe, queue_routing};
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::enums::v1::{
    TaskQueueType, WorkerDeploymentVersionStatus,
};

use crate::exit::Exit;

/// `starter rollout`.
#[derive(clap::Args)]
pub(crate) struct RolloutArgs {
    /// The Worker Deployment (the workers' `CATALOG_SYNC_DEPLOYMENT_NAME`; under the Temporal
    /// Worker Controller, `<namespace>/<WorkerDeployment name>`).
    #[arg(long, env = "CATALOG_SYNC_DEPLOYMENT_NAME")]
    deployment_name: String,
    /// Wait up to this many seconds for both task queues to route as the deployment says;
    /// exit 1 if they do not by then.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait: u64,
}

/// Prints the rollout's state; `Exit::Failed` while a task queue does not route as the
/// deployment says (after `--wait`), or when the deployment does not exist.
pub(crate) async fn run(
    client: &Client,
    task_queue: &str,
    args: RolloutArgs,
) -> anyhow::Result<Exit> {
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let stripe_queue = workflows::queues::stripe_task_queue(task_queue);
    let queues = [
        (task_queue, TaskQueueType::Workflow, "workflow"),
        (stripe_queue.as_str(), TaskQueueType::Activity, "activity"),
    ];
    loop {
        let Some(info) = describe(client, &args.deployment_name).await? else {
            println!(
                "no Worker Deployment {:?} in this namespace: no worker with \
                 CATALOG_SYNC_DEPLOYMENT_NAME={0} has polled yet",
                args.deployment_name
            );
            return Ok(Exit::Failed);
        };
        let config = info.routing_config.clone().unwrap_or_default();
        let wanted = QueueRouting {
            current: config
                .current_deployment_version
                .map(|v| v.build_id)
                .filter(|b| !b.is_empty()),
            ramping: config
                .ramping_deployment_version
                .map(|v| v.build_id)
                .filter(|b| !b.is_empty())
                .map(|b| (b, config.ramping_version_percentage)),
        };
        let mut seen = Vec::new();
        for (queue, kind, label) in queues {
            seen.push((queue, label, queue_routing(client, queue, kind).await?));
        }
        let routed = seen.iter().all(|(_, _, r)| *r == wanted);
        if routed || Instant::now() >= deadline {
            println!(
                "deployment {}: {}",
                args.deployment_name,
                describe_routing(&wanted)
            );
            for (queue, label, routing) in &seen {
                let state = if *routing == wanted {
                    "routed"
                } else {
                    "not routed yet"
                };
                println!(
                    "  task queue {queue} ({label}): {}  {state}",
                    describe_routing(routing)
                );
            }
            let mut summaries = info.version_summaries.clone();
            summaries.sort_by_key(|s| s.create_time.as_ref().map(|t| (t.seconds, t.nanos)));
            for summary in &summaries {
                let build = summary
                    .deployment_version
                    .as_ref()
                    .map_or("?", |v| v.build_id.as_str());
                println!("  version {build}: {}", version_state(summary.status()));
            }
            if !routed {
                println!(
                    "a task queue does not route as the deployment says yet: workflows started now \
                     may go by the previous routing (rerun with --wait SECONDS)"
                );
                return Ok(Exit::Failed);
            }
            return Ok(Exit::Ok);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn describe_routing(routing: &QueueRouting) -> String {
    let current = routing.current.as_deref().unwrap_or("unversioned workers");
    match &routing.ramping {
        Some((build, percent)) => format!("current {current}, ramping {build} at {percent}%"),
        None => format!("current {current}"),
    }
}

fn version_state(status: WorkerDeploymentVersionStatus) -> &'static str {
    use WorkerDeploymentVersionStatus as S;
    match status {
        S::Current => "current (new workflows)",
        S::Ramping => "ramping (a share of new workflows)",
        S::Draining => "draining (runs pinned to it are still open: keep its workers)",
        S::Drained => "drained (no open run is pinned to it: its workers may stop)",
        S::Inactive | S::Created => "inactive (never current or ramping)",
        S::Unspecified => "unknown",
    }
}
