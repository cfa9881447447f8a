//! `starter sync` and `starter results`: one catalog's product syncs, started or signalled
//! (signal-with-start, so a running sync picks the change up instead of racing it), and followed
//! to their outcomes.

use std::collections::BTreeMap;

use anyhow::Context;
use catalog::Catalog;
use futures::{StreamExt, TryStreamExt};
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::{ProductChanged, ProductSync, ProductSyncInput, ProductSyncResult, SyncOutcome};

use crate::exit::Exit;
use crate::progress::progress;
use crate::queue;

/// Where one catalog's product syncs run: the Temporal client, the catalog's identity (its syncs'
/// workflow ids carry it) and the workers' task queue.
pub(crate) struct Syncs {
    pub(crate) client: Client,
    pub(crate) catalog: String,
    pub(crate) task_queue: String,
}

impl Syncs {
    pub(crate) async fn of(
        catalog: Catalog,
        client: Client,
        task_queue: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            catalog: catalog.identity().await?,
            task_queue: task_queue.to_string(),
        })
    }

    /// The product's sync id in this catalog.
    pub(crate) fn id(&self, product_id: &str) -> String {
        workflows::product_sync_id(&self.catalog, product_id)
    }

    /// The id of the product's latest sync: its scoped id, or its legacy id on this queue while
    /// the product has synced only under that (a deployment moving to catalog-scoped ids).
    pub(crate) async fn latest_id(&self, product_id: &str) -> anyhow::Result<String> {
        use common::temporal::latest_task_queue;
        let scoped = self.id(product_id);
        if latest_task_queue(&self.client, &scoped).await?.is_some() {
            return Ok(scoped);
        }
        let legacy = workflows::legacy_product_sync_id(product_id);
        let legacy_queue = latest_task_queue(&self.client, &legacy).await?;
        let legacy_ours = legacy_queue.as_deref() == Some(self.task_queue.as_str());
        Ok(if legacy_ours { legacy } else { scoped })
    }
}

/// The ids named, or every id of the catalog with `--all`; at least one.
pub(crate) async fn chosen_ids<F, Fut>(
    ids: Vec<String>,
    all: bool,
    open_catalog: F,
) -> anyhow::Result<Vec<String>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Catalog>>,
{
    let ids = if all {
        all_ids(&open_catalog().await?).await?
    } else {
        ids
    };
    anyhow::ensure!(!ids.is_empty(), "name the products, or pass --all");
    Ok(ids)
}

pub(crate) async fn all_ids(catalog: &Catalog) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    loop {
        let page = catalog
            .product_ids(ids.last().map_or("", String::as_str), 1000)
            .await?;
        if page.is_empty() {
            return Ok(ids);
        }
        ids.extend(page);
    }
}

/// What `signal` did: the products whose sync now runs on the task queue, and those whose
/// running sync was found on another queue (the signal reached that run, not this queue's
/// workers).
pub(crate) struct Signalled {
    pub(crate) started: Vec<String>,
    pub(crate) stranded: Vec<(String, String)>,
}

impl Signalled {
    /// Stranded products did not sync.
    pub(crate) fn exit(&self) -> Exit {
        if self.stranded.is_empty() {
            Exit::Ok
        } else {
            Exit::NotSynced
        }
    }
}

/// Signal-with-start of each product's sync on `task_queue`, refused when no worker polls it;
/// a product whose sync runs on another queue is reported stranded, not signalled.
/// With `json`, stranded products are JSON lines as `results` prints them, and the summary goes
/// to stderr.
pub(crate) async fn signal(
    syncs: &Syncs,
    ids: Vec<String>,
    concurrency: usize,
    json: bool,
) -> anyhow::Result<Signalled> {
    let (client, task_queue) = (&syncs.client, syncs.task_queue.as_str());
    queue::ensure_polled(client, task_queue).await?;
    let total = ids.len();
    // A sync already running on another queue would get the signal, and this queue's workers
    // would never see it: such a product is reported, not signalled. A few products are
    // described one by one; a backfill lists this catalog's syncs running on other queues in
    // one visibility query instead (half the requests per product, while the workers sync
    // against the same server; the gap: a run started elsewhere in the second before, which
    // visibility does not list yet).
    let elsewhere = match total > DESCRIBED_ONE_BY_ONE {
        true => Some(running_elsewhere(syncs).await?),
        false => None,
    };
    let elsewhere = &elsewhere;
    let bar = &progress(total, "signalled");
    let signalled: Vec<(String, String)> = futures::stream::iter(ids)
        .map(|id| async move {
            let workflow_id = syncs.id(&id);
            let running = match elsewhere {
                Some(listed) => listed.get(&workflow_id).cloned(),
                None => common::temporal::running_task_queue(client, &workflow_id)
                    .await
                    .with_context(|| format!("describing the sync of {id}"))?,
            };
            if let Some(run_queue) = running.filter(|q| q != task_queue) {
                bar.inc(1);
                return anyhow::Ok((id, run_queue));
            }
            client
                .signal_with_start_workflow(
                    ProductSync::run,
                    ProductSyncInput {
                        catalog_id: id.clone(),
                        ..Default::default()
                    },
                    ProductSync::product_changed,
                    ProductChanged {
                        catalog_version: None,
                        source: "starter".into(),
                    },
                    WorkflowStartOptions::new(task_queue, workflow_id).build(),
                )
                .await
                .with_context(|| format!("starting the sync of {id}"))?;
            bar.inc(1);
            anyhow::Ok((id, task_queue.to_string()))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    let (started, mut stranded): (Vec<_>, Vec<_>) = signalled
        .into_iter()
        .partition(|(_, run_queue)| run_queue == task_queue);
    stranded.sort();
    for (id, run_queue) in &stranded {
        let reason = format!(
            "its sync {} runs on task queue {run_queue}, not {task_queue}, where this queue's \
             workers never see it: not signalled. End it (`temporal workflow terminate \
             --workflow-id {}`) and sync again",
            syncs.id(id),
            syncs.id(id),
        );
        if json {
            let line = serde_json::json!({
                "product_id": id, "outcome": "stranded", "reason": reason,
            });
            println!("{line}");
        } else {
            println!("{:<OUTCOME_WIDTH$} {id}: {reason}", "stranded");
        }
    }
    let summary = format!(
        "signalled {} product syncs on task queue {task_queue}{}",
        started.len(),
        if stranded.is_empty() {
            String::new()
        } else {
            format!(", {} stranded on other queues", stranded.len())
        }
    );
    if json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok(Signalled {
        started: started.into_iter().map(|(id, _)| id).collect(),
        stranded,
    })
}

/// Up to this many products, `signal` describes each product's sync; beyond, it lists the
/// catalog's syncs running on other queues once.
const DESCRIBED_ONE_BY_ONE: usize = 100;

/// This catalog's syncs running on a task queue other than `syncs`' own: workflow id → queue.
async fn running_elsewhere(syncs: &Syncs) -> anyhow::Result<BTreeMap<String, String>> {
    let query = format!(
        "WorkflowType = 'ProductSync' AND ExecutionStatus = 'Running' AND TaskQueue != '{}' \
         AND WorkflowId STARTS_WITH '{}'",
        syncs.task_queue.replace('\'', ""),
        domain::ids::catalog_prefix(&syncs.catalog).replace('\'', "")
    );
    let mut runs = syncs.client.list_workflows(
        query.as_str(),
        temporalio_client::WorkflowListOptions::default(),
    );
    let mut elsewhere = BTreeMap::new();
    while let Some(run) = runs.next().await {
        let run = run.context("listing this catalog's syncs running on other task queues")?;
        elsewhere.insert(run.id().to_string(), run.task_queue().to_string());
    }
    Ok(elsewhere)
}

/// Width of the outcome column: `unchanged` fits, longer outcomes keep one space before the id.
pub(crate) const OUTCOME_WIDTH: usize = 9;

/// Whose syncs [`results`] waits for.
pub(crate) enum Products {
    /// Signalled by this starter a moment ago: their runs have the catalog's own sync ids.
    Signalled(Vec<String>),
    /// Named by the user: each product's latest sync, under a legacy id too
    /// ([`Syncs::latest_id`], one more request per product).
    Named(Vec<String>),
}

/// Waits for the latest sync of each product and prints the outcomes; the exit code is the
/// worst of them ([`Exit::of_outcome`]).
pub(crate) async fn results(
    syncs: &Syncs,
    products: Products,
    concurrency: usize,
    json: bool,
) -> anyhow::Result<Exit> {
    let (client, task_queue) = (&syncs.client, syncs.task_queue.as_str());
    let (started, signalled) = match products {
        Products::Signalled(ids) => (ids, true),
        Products::Named(ids) => (ids, false),
    };
    let total = started.len();
    let bar = &progress(total, "finished");
    // The results are fetched a few at a time, in id order, while syncs finish in any order: the
    // count fetched lags the count finished. The syncs that closed on the queue since now (one
    // count every 2 s) keep the bar and its ETA honest.
    let closed = closed_syncs(client, task_queue, total, bar.clone());
    let fetched = &std::sync::atomic::AtomicU64::new(0);
    let results: Vec<(String, anyhow::Result<ProductSyncResult>)> = futures::stream::iter(started)
        .map(|id| async move {
            let workflow_id = if signalled {
                Ok(syncs.id(&id))
            } else {
                syncs.latest_id(&id).await
            };
            let result = match workflow_id {
                Ok(workflow_id) => client
                    .get_workflow_handle::<ProductSync>(workflow_id)
                    .get_result(WorkflowGetResultOptions::default())
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            let done = fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            raise(bar, done);
            (id, result)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    closed.abort();
    bar.finish_and_clear();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut exit = Exit::Ok;
    let mut sorted = results;
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, result) in &sorted {
        let (outcome, detail) = match result {
            Ok(r) => {
                exit = exit.worst(Exit::of_outcome(r.outcome));
                *counts.entry(r.outcome.as_str()).or_default() += 1;
                (r.outcome.as_str(), outcome_detail(r, total))
            }
            Err(e) => {
                // The run itself failed (terminated, timed out): not a product outcome.
                exit = exit.worst(Exit::NotSynced);
                *counts.entry("run failed").or_default() += 1;
                ("failed", Some(format!(": {e:#}")))
            }
        };
        if json {
            let ok = result.as_ref().ok();
            let line = serde_json::json!({
                "product_id": id,
                "outcome": outcome,
                "catalog_version": ok.map(|r| r.catalog_version),
                "writes": ok.map(|r| r.report.operations.len()),
                "reason": detail.as_deref().and_then(|d| d.strip_prefix(": ")),
            });
            println!("{line}");
        } else if let Some(detail) = detail {
            println!("{outcome:<OUTCOME_WIDTH$} {id}{detail}");
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    if json {
        eprintln!("done: {}", summary.join(", "));
    } else {
        println!("done: {}", summary.join(", "));
    }
    if exit != Exit::Ok {
        eprintln!(
            "not every product synced: exit code {} (README, \"Exit codes\")",
            exit as u8
        );
    }
    Ok(exit)
}

/// Moves `bar` up to the number of syncs that closed on `task_queue` since it was called (at most
/// `total`), every 2 s until aborted.
pub(crate) fn closed_syncs(
    client: &Client,
    task_queue: &str,
    total: usize,
    bar: indicatif::ProgressBar,
) -> tokio::task::JoinHandle<()> {
    let since = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    let query = format!(
        "WorkflowType = 'ProductSync' AND TaskQueue = '{}' AND CloseTime >= '{since}'",
        task_queue.replace('\'', "")
    );
    let client = client.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            if let Ok(count) = client
                .count_workflows(
                    query.as_str(),
                    temporalio_client::WorkflowCountOptions::default(),
                )
                .await
            {
                raise(&bar, (count.count() as u64).min(total as u64));
            }
        }
    })
}

/// Moves `bar` to `done` unless it is already further.
pub(crate) fn raise(bar: &indicatif::ProgressBar, done: u64) {
    if done > bar.position() {
        bar.set_position(done);
    }
}

/// What is printed after a product's outcome: the reason for any outcome that is not in sync,
/// and the version and writes of the others when few products were asked for.
pub(crate) fn outcome_detail(r: &ProductSyncResult, total: usize) -> Option<String> {
    match r.outcome {
        SyncOutcome::Invalid => {
            let reasons: Vec<String> = r.issues.iter().map(ToString::to_string).collect();
            Some(format!(": {}", reasons.join("; ")))
        }
        SyncOutcome::Failed => Some(format!(": {}", r.error.as_deref().unwrap_or("unknown"))),
        SyncOutcome::SkippedUnmanaged => Some(
            ": a Stripe product with this id exists and was not made by catalog-sync: it is \
             left alone"
                .to_string(),
        ),
        _ => match r
            .report
            .other_catalog
            .as_ref()
            .or(r.report.archive_held.as_ref())
        {
            Some(why) => Some(format!(": {why}")),
            None => (total <= 50).then(|| {
                format!(
                    " (version {}, {} writes)",
                    r.catalog_version,
                    r.report.operations.len()
                )
            }),
        },
    }
}
