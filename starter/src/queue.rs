//! Task queues nobody polls. A run started or signalled on such a queue waits for ever, and
//! because a product's workflow id is the same whatever the queue, every later change signalled
//! for that product reaches the waiting run instead of a worker. So `sync`, `results` and
//! `reconcile` refuse such a queue before touching anything, a sync that finds its product's run
//! on another queue says so, and `status` lists the runs stranded on queues nobody polls.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use temporalio_client::{Client, NamespacedClient, WorkflowListOptions};

/// The workflow types a catalog-sync worker runs.
const WORKFLOW_TYPES: &str = "WorkflowType IN ('ProductSync', 'ReconcileCatalog')";

/// How long a queue may show no poller before it is refused: a worker that was just started
/// polls within this.
const WORKER_GRACE: Duration = Duration::from_secs(5);

/// Recent runs read to find the queues catalog-sync workers poll.
const RUNS_SAMPLED: usize = 200;

/// Refuses `task_queue` when no worker polls it, naming the queues where catalog-sync workers do
/// poll (the default one and those of recent runs).
pub(crate) async fn ensure_polled(client: &Client, task_queue: &str) -> anyhow::Result<()> {
    // A worker started a moment ago may not have polled yet: look again for a few seconds.
    let deadline = tokio::time::Instant::now() + WORKER_GRACE;
    loop {
        let pollers = common::temporal::workflow_pollers(client, task_queue)
            .await
            .with_context(|| format!("describing task queue {task_queue}"))?;
        if pollers > 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let polled = polled_queues(client).await;
    let hint = if polled.is_empty() {
        "no catalog-sync worker polls any queue of this namespace that this command knows of: \
         start `worker`"
            .to_string()
    } else {
        format!(
            "catalog-sync workers poll {}: set CATALOG_SYNC_TASK_QUEUE (or --task-queue) to \
             the workers' queue, or start a worker on this one",
            polled.join(", ")
        )
    };
    anyhow::bail!(
        "no worker polls task queue {task_queue} (CATALOG_SYNC_TASK_QUEUE) in namespace {}: a \
         sync started there would wait for ever, and every later change of the product would \
         reach it instead of a worker. Nothing was started. {hint}",
        client.namespace()
    )
}

/// Queues of this namespace with workers polling them, among the default queue and those of
/// recent catalog-sync runs.
async fn polled_queues(client: &Client) -> Vec<String> {
    let mut candidates = BTreeSet::from([workflows::TASK_QUEUE.to_string()]);
    let mut runs = client.list_workflows(
        WORKFLOW_TYPES,
        WorkflowListOptions::builder().limit(RUNS_SAMPLED).build(),
    );
    while let Some(Ok(run)) = runs.next().await {
        candidates.insert(run.task_queue().to_string());
    }
    let mut polled = Vec::new();
    for queue in candidates {
        if common::temporal::workflow_pollers(client, &queue)
            .await
            .is_ok_and(|n| n > 0)
        {
            polled.push(queue);
        }
    }
    polled
}

/// Running syncs of this catalog's products on one task queue that no worker polls.
#[derive(Debug)]
pub(crate) struct StrandedRuns {
    /// The queue.
    pub(crate) task_queue: String,
    /// How many runs were seen there (at most the sample read).
    pub(crate) runs: usize,
    /// A few of their workflow ids.
    pub(crate) examples: Vec<String>,
}

impl StrandedRuns {
    /// What `status` says of them, with the command that ends them.
    pub(crate) fn problem(&self) -> String {
        format!(
            "{} syncs of this catalog's products wait on task queue {}, which no worker polls \
             (e.g. {}): changes to those products reach them and wait too. End them with \
             `temporal workflow terminate --query \"WorkflowType = 'ProductSync' AND TaskQueue = \
             '{}' AND ExecutionStatus = 'Running'\" --reason 'stranded on a queue nobody polls'`; \
             the next change or reconciliation syncs the products on the right queue",
            self.runs,
            self.task_queue,
            self.examples.join(", "),
            self.task_queue
        )
    }
}

/// Running syncs of this catalog's products on queues other than `task_queue` that no worker
/// polls. Runs on a polled queue belong to another deployment, and runs of products this catalog
/// does not hold to another catalog: both are left out.
pub(crate) async fn stranded_runs(
    client: &Client,
    catalog: &catalog::Catalog,
    task_queue: &str,
) -> anyhow::Result<Vec<StrandedRuns>> {
    let query = format!(
        "WorkflowType = 'ProductSync' AND ExecutionStatus = 'Running' AND TaskQueue != '{}'",
        task_queue.replace('\'', "")
    );
    let mut elsewhere: Vec<(String, String)> = Vec::new();
    let mut runs = client.list_workflows(
        query.as_str(),
        WorkflowListOptions::builder().limit(1000).build(),
    );
    while let Some(run) = runs.next().await {
        let run = run.context("listing running syncs")?;
        elsewhere.push((run.task_queue().to_string(), run.id().to_string()));
    }
    // A scoped id names its catalog; a legacy one is this catalog's if the catalog holds the
    // product.
    let identity = catalog.identity().await?;
    let legacy_products: Vec<String> = elsewhere
        .iter()
        .filter_map(|(_, id)| workflows::SyncId::parse(id))
        .filter(|sync| sync.catalog.is_none())
        .map(|sync| sync.product_id.to_string())
        .collect();
    let held = catalog.existing_ids(&legacy_products).await?;
    let mut by_queue: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (queue, id) in elsewhere {
        let ours = workflows::SyncId::parse(&id).is_some_and(|sync| match sync.catalog {
            Some(catalog) => catalog == identity,
            None => held.contains(sync.product_id),
        });
        if ours {
            by_queue.entry(queue).or_default().push(id);
        }
    }
    let mut stranded = Vec::new();
    for (queue, mut ids) in by_queue {
        let pollers = common::temporal::workflow_pollers(client, &queue)
            .await
            .with_context(|| format!("describing task queue {queue}"))?;
        if pollers == 0 {
            ids.sort();
            stranded.push(StrandedRuns {
                task_queue: queue,
                runs: ids.len(),
                examples: ids.into_iter().take(3).collect(),
            });
        }
    }
    Ok(stranded)
}
