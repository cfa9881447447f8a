//! `starter schedule …`: the Temporal Schedule that runs `ReconcileCatalog` periodically.
//!
//! `apply` is declarative and idempotent: it creates the schedule if it is missing and otherwise
//! updates its spec, action, overlap policy and catch-up window in place (keeping its paused state
//! and history), so running it twice leaves one schedule.

mod describe;

use describe::describe;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, DeleteScheduleOptions, PauseScheduleOptions, ScheduleAction,
    ScheduleError, ScheduleOverlapPolicy, ScheduleSpec, TriggerScheduleOptions,
    UnpauseScheduleOptions,
};
use workflows::ReconcileCatalog;
use workflows::reconcile::{OrphanPolicy, ReconcileInput, ReconcileMode};

#[derive(Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Create the schedule, or bring an existing one up to date.
    Apply(ApplyArgs),
    /// Print the schedule: spec, policies, state, recent and next runs.
    Describe(DescribeArgs),
    /// Stop starting runs (runs in progress go on).
    Pause(NoteArgs),
    /// Start runs again.
    Unpause(NoteArgs),
    /// Start a run now (subject to the overlap policy).
    Trigger(IdArg),
    /// Remove the schedule (runs in progress go on).
    Delete(IdArg),
}

#[derive(Args)]
pub(crate) struct DescribeArgs {
    #[command(flatten)]
    id: IdArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct IdArg {
    /// The schedule's name: its id is `{catalog identity}:{name}`, this catalog's (default
    /// `reconcile`; e.g. `full-scan` for a second one).
    #[arg(long, conflicts_with = "id")]
    name: Option<String>,
    /// The schedule's exact id instead (one made by hand).
    #[arg(long)]
    id: Option<String>,
}

#[derive(Args)]
pub(crate) struct NoteArgs {
    #[command(flatten)]
    id: IdArg,
    /// Why (shown in the Web UI).
    #[arg(long)]
    note: Option<String>,
}

#[derive(Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    id: IdArg,
    /// Run at this interval, e.g. `1h`, `30m`, `1d`.
    #[arg(long, value_parser = humantime::parse_duration, required_unless_present = "cron", conflicts_with = "cron")]
    every: Option<Duration>,
    /// Run on this cron spec instead, e.g. `"0 3 * * *"` (UTC).
    #[arg(long)]
    cron: Option<String>,
    /// What to do when a run is due while the previous one is still going.
    #[arg(long, value_enum, default_value_t = Overlap::Skip)]
    overlap: Overlap,
    /// How late a missed run (e.g. the server was down) may still start.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    catchup_window: Duration,
    /// Scheduled runs only report (dry-run).
    #[arg(long)]
    dry_run: bool,
    /// Orphans are only reported, not archived.
    #[arg(long)]
    report_orphans: bool,
    /// Repairs in flight per run (1..=500).
    #[arg(long, default_value_t = 100)]
    max_in_flight: u32,
    /// The archive guard of each run (see `starter reconcile --help`). A scheduled run never
    /// archives beyond it: a run that stops there waits for `starter reconcile
    /// --allow-mass-archive`.
    #[arg(long, default_value_t = workflows::reconcile::DEFAULT_ARCHIVE_LIMIT_PERCENT)]
    archive_limit_percent: f64,
    /// See `--archive-limit-percent`.
    #[arg(long, default_value_t = workflows::reconcile::DEFAULT_ARCHIVE_LIMIT_MIN)]
    archive_limit_min: u64,
    /// How each run reads Stripe (see `starter reconcile --help`): e.g. `events` hourly, with a
    /// second schedule (`--name full-scan`) running `scan` daily.
    #[arg(long, value_enum, default_value_t = crate::reconcile::Method::Auto)]
    method: crate::reconcile::Method,
    /// Create the schedule paused (an existing schedule keeps its state).
    #[arg(long)]
    paused: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Overlap {
    Skip,
    BufferOne,
    BufferAll,
    CancelOther,
    TerminateOther,
    AllowAll,
}

impl From<Overlap> for ScheduleOverlapPolicy {
    fn from(o: Overlap) -> Self {
        match o {
            Overlap::Skip => Self::Skip,
            Overlap::BufferOne => Self::BufferOne,
            Overlap::BufferAll => Self::BufferAll,
            Overlap::CancelOther => Self::CancelOther,
            Overlap::TerminateOther => Self::TerminateOther,
            Overlap::AllowAll => Self::AllowAll,
        }
    }
}

/// Runs `cmd` on the schedule of `catalog` (its identity) that `--name` names (or `--id`).
pub(crate) async fn run(
    client: &Client,
    catalog: &str,
    task_queue: &str,
    cmd: ScheduleCommand,
) -> anyhow::Result<()> {
    match cmd {
        ScheduleCommand::Apply(args) => {
            let id = args.id.resolve(catalog);
            let name = args.id.catalog_name().map(str::to_string);
            apply(client, &id, task_queue, args).await?;
            if let Some(name) = name {
                replace_legacy(client, &id, &name, task_queue).await?;
            }
            Ok(())
        }
        ScheduleCommand::Describe(args) => {
            describe(client, &args.id.resolve(catalog), args.json).await
        }
        ScheduleCommand::Pause(NoteArgs { id, note }) => {
            let id = id.resolve(catalog);
            let note = note.unwrap_or_else(|| "paused with starter".into());
            client
                .get_schedule_handle(&id)
                .pause(Some(note), PauseScheduleOptions::default())
                .await
                .with_context(|| format!("pausing schedule {id}"))?;
            println!("schedule {id} paused");
            Ok(())
        }
        ScheduleCommand::Unpause(NoteArgs { id, note }) => {
            let id = id.resolve(catalog);
            let note = note.unwrap_or_else(|| "unpaused with starter".into());
            client
                .get_schedule_handle(&id)
                .unpause(Some(note), UnpauseScheduleOptions::default())
                .await
                .with_context(|| format!("unpausing schedule {id}"))?;
            println!("schedule {id} unpaused");
            Ok(())
        }
        ScheduleCommand::Trigger(id) => {
            let id = id.resolve(catalog);
            client
                .get_schedule_handle(&id)
                .trigger(
                    ScheduleOverlapPolicy::Unspecified,
                    TriggerScheduleOptions::default(),
                )
                .await
                .with_context(|| format!("triggering schedule {id}"))?;
            println!("schedule {id} triggered");
            Ok(())
        }
        ScheduleCommand::Delete(id) => {
            let id = id.resolve(catalog);
            client
                .get_schedule_handle(&id)
                .delete(DeleteScheduleOptions::default())
                .await
                .with_context(|| format!("deleting schedule {id}"))?;
            println!("schedule {id} deleted");
            Ok(())
        }
    }
}

impl IdArg {
    /// The schedule's id: `--id` as given, else `{catalog}:{name}`.
    fn resolve(&self, catalog: &str) -> String {
        match (&self.id, self.catalog_name()) {
            (Some(id), _) => id.clone(),
            (None, name) => domain::ids::schedule_id(
                catalog,
                name.unwrap_or(domain::ids::DEFAULT_SCHEDULE_NAME),
            ),
        }
    }

    /// The name of a schedule of the catalog's own (none for an exact `--id`).
    fn catalog_name(&self) -> Option<&str> {
        match (&self.id, &self.name) {
            (Some(_), _) => None,
            (None, name) => Some(
                name.as_deref()
                    .unwrap_or(domain::ids::DEFAULT_SCHEDULE_NAME),
            ),
        }
    }
}

fn rpc_code(e: &ScheduleError) -> Option<temporalio_client::tonic::Code> {
    match e {
        ScheduleError::Rpc(status) => Some(status.code()),
        _ => None,
    }
}

/// The schedule of earlier releases of the same name (`catalog-sync-{name}`, one per namespace)
/// is deleted once this catalog's own is in place, when it starts its reconciliations on this
/// catalog's task queue: two schedules would reconcile the catalog twice. One on another queue is
/// another catalog's, and stays.
async fn replace_legacy(
    client: &Client,
    id: &str,
    name: &str,
    task_queue: &str,
) -> anyhow::Result<()> {
    use temporalio_client::tonic::Code;
    use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
    let legacy = &domain::ids::legacy_schedule_id(name);
    let handle = client.get_schedule_handle(legacy);
    let described = match handle.describe(Default::default()).await {
        Ok(d) => d,
        Err(e) if rpc_code(&e) == Some(Code::NotFound) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading schedule {legacy}")),
    };
    let queue = described
        .raw()
        .schedule
        .as_ref()
        .and_then(|s| s.action.as_ref())
        .and_then(|a| a.action.as_ref())
        .and_then(|Action::StartWorkflow(start)| start.task_queue.as_ref())
        .map(|q| q.name.clone());
    if queue.as_deref() != Some(task_queue) {
        return Ok(());
    }
    handle
        .delete(DeleteScheduleOptions::default())
        .await
        .with_context(|| format!("deleting the legacy schedule {legacy}"))?;
    println!(
        "schedule {legacy} deleted: {id} replaces it (it reconciled this catalog, on task queue \
         {task_queue}, under the id every catalog of the namespace shared)"
    );
    Ok(())
}

async fn apply(client: &Client, id: &str, task_queue: &str, args: ApplyArgs) -> anyhow::Result<()> {
    let id = id.to_string();
    let spec = match (&args.every, &args.cron) {
        (Some(every), _) => ScheduleSpec::from_interval(*every),
        (None, Some(cron)) => ScheduleSpec::builder()
            .cron_strings(vec![cron.clone()])
            .build(),
        (None, None) => anyhow::bail!("give --every or --cron"),
    };
    let input = ReconcileInput {
        mode: if args.dry_run {
            ReconcileMode::DryRun
        } else {
            ReconcileMode::Apply
        },
        orphans: if args.report_orphans {
            OrphanPolicy::Report
        } else {
            OrphanPolicy::Archive
        },
        max_in_flight: args.max_in_flight,
        archive_limit_percent: Some(args.archive_limit_percent),
        archive_limit_min: Some(args.archive_limit_min),
        method: args.method.into(),
        ..ReconcileInput::default()
    };
    input
        .check()
        .map_err(|why| anyhow::anyhow!("schedule: {why}"))?;
    // Scheduled runs get ids `{prefix}-{scheduled time}`.
    let action = || {
        ScheduleAction::start_workflow(
            ReconcileCatalog::run,
            input.clone(),
            task_queue,
            format!("{id}-run"),
        )
    };
    let overlap: ScheduleOverlapPolicy = args.overlap.into();
    let handle = client.get_schedule_handle(&id);
    use temporalio_client::tonic::Code;
    let created = match handle.describe(Default::default()).await {
        Ok(_) => false,
        Err(e) if rpc_code(&e) == Some(Code::NotFound) => {
            let created = client
                .create_schedule(
                    &id,
                    CreateScheduleOptions::builder()
                        .action(action())
                        .spec(spec.clone())
                        .overlap_policy(overlap)
                        .paused(args.paused)
                        .note("created by starter schedule apply")
                        .build(),
                )
                .await;
            match created {
                Ok(_) => true,
                // Another `apply` created it meanwhile: update it like any existing one.
                Err(e) if rpc_code(&e) == Some(Code::AlreadyExists) => false,
                Err(e) => return Err(e).with_context(|| format!("creating schedule {id}")),
            }
        }
        Err(e) => return Err(e).with_context(|| format!("reading schedule {id}")),
    };
    // Create cannot set the catch-up window; an update sets everything, the same way each time.
    let catchup = args.catchup_window;
    let action = action();
    handle
        .update(
            move |u| {
                u.set_spec(spec)
                    .set_action(action)
                    .set_overlap_policy(overlap)
                    .set_catchup_window(catchup);
            },
            Default::default(),
        )
        .await
        .with_context(|| format!("updating schedule {id}"))?;
    println!(
        "schedule {id} {} ({}, overlap {:?}, catch-up window {}){}",
        if created { "created" } else { "updated" },
        match (&args.every, &args.cron) {
            (Some(every), _) => format!("every {}", humantime::format_duration(*every)),
            (_, Some(cron)) => format!("cron {cron:?}"),
            _ => unreachable!(),
        },
        overlap,
        humantime::format_duration(catchup),
        if args.dry_run { ", dry-run" } else { "" }
    );
    Ok(())
}
