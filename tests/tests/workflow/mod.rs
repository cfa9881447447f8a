//! Workflow tier: `ProductSync` and `ReconcileCatalog` run by real SDK workers on the shared dev
//! server, against fake activities ([`fakes`]): the orchestration alone (coalescing, retries and
//! final failures, each outcome's decision, the repair window, continue-as-new, the archive guard),
//! in seconds, with no Stripe and no catalog.

mod fakes;

use std::time::Duration;

use fakes::{Answer, Applied, FakeWorker, Fakes};
use harness::{eventually, temporal_client, unique};
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::drift::DriftKind;
use workflows::model::CatalogProduct;
use workflows::{
    ProductChanged, ProductSync, ProductSyncInput, ProductSyncResult, ReconcileCatalog,
    ReconcileInput, ReconcileResult, SyncOutcome,
};

fn product(id: &str, name: &str) -> CatalogProduct {
    CatalogProduct {
        id: id.to_string(),
        name: name.to_string(),
        ..catalog::seed::sample_product(1, 7)
    }
}

/// The fake catalog's identity: its syncs' workflow ids carry it.
const CATALOG: &str = "cat_workflowtier";

/// A live change of `id`, as the relay sends it (signal-with-start).
async fn changed(client: &Client, task_queue: &str, id: &str) {
    client
        .signal_with_start_workflow(
            ProductSync::run,
            ProductSyncInput {
                catalog_id: id.to_string(),
                ..ProductSyncInput::default()
            },
            ProductSync::product_changed,
            ProductChanged {
                catalog_version: None,
                source: "test".into(),
            },
            WorkflowStartOptions::new(task_queue, workflows::product_sync_id(CATALOG, id)).build(),
        )
        .await
        .unwrap();
}

async fn sync_result(client: &Client, id: &str) -> ProductSyncResult {
    tokio::time::timeout(
        Duration::from_secs(60),
        client
            .get_workflow_handle::<ProductSync>(workflows::product_sync_id(CATALOG, id))
            .get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the sync finished in time")
    .unwrap()
}

async fn reconcile(client: &Client, task_queue: &str, input: ReconcileInput) -> ReconcileResult {
    let id = unique("reconcile");
    client
        .start_workflow(
            ReconcileCatalog::run,
            input,
            WorkflowStartOptions::new(task_queue, id.as_str()).build(),
        )
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(120),
        client
            .get_workflow_handle::<ReconcileCatalog>(id.as_str())
            .get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the reconciliation finished in time")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_during_a_pass_coalesce_into_one_more_pass_on_the_newest_version() {
    let fakes = Fakes::default();
    let worker = FakeWorker::start(&fakes).await;
    let client = temporal_client().await;
    let id = unique("sku");
    fakes.save(product(&id, "Linen shirt"));
    fakes.set_upsert_latency(Duration::from_millis(1500));

    changed(&client, &worker.task_queue, &id).await;
    eventually(Duration::from_secs(30), "the first upsert runs", || async {
        (fakes.running() == 1).then_some(())
    })
    .await;
    // A burst while the first pass writes: A → B → C, five signals.
    for (n, name) in [
        "Linen shirt (sale)",
        "Linen shirt (last days)",
        "Linen shirt",
    ]
    .iter()
    .enumerate()
    {
        fakes.save(product(&id, name));
        changed(&client, &worker.task_queue, &id).await;
        if n == 0 {
            changed(&client, &worker.task_queue, &id).await;
            changed(&client, &worker.task_queue, &id).await;
        }
    }

    let result = sync_result(&client, &id).await;
    assert_eq!(result.outcome, SyncOutcome::Synced);
    assert_eq!(result.passes, 2, "the burst became exactly one more pass");
    assert_eq!(
        fakes.applied(),
        vec![
            Applied {
                catalog_id: id.clone(),
                name: Some("Linen shirt".into())
            };
            2
        ],
        "the second pass wrote the newest version (the sale's end: back to A)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_and_a_rejection_ends_the_pass_with_its_reason() {
    let fakes = Fakes::default();
    let worker = FakeWorker::start(&fakes).await;
    let client = temporal_client().await;

    // Two 503s, then success: one pass, three attempts, written once.
    let flaky = unique("sku");
    fakes.save(product(&flaky, "Wool scarf"));
    fakes.answer(&[Answer::Unavailable, Answer::Unavailable]);
    changed(&client, &worker.task_queue, &flaky).await;
    let result = sync_result(&client, &flaky).await;
    assert_eq!(result.outcome, SyncOutcome::Synced);
    assert_eq!(fakes.attempts(), 3, "retried by the upsert's policy");
    assert_eq!(fakes.applied().len(), 1);

    // A 400: no retry; the sync completes (it does not fail) with outcome `failed` and the reason.
    let refused = unique("sku");
    fakes.save(product(&refused, "Cotton tote"));
    fakes.answer(&[Answer::Rejected]);
    changed(&client, &worker.task_queue, &refused).await;
    let result = sync_result(&client, &refused).await;
    assert_eq!(result.outcome, SyncOutcome::Failed);
    assert_eq!(fakes.attempts(), 4, "a rejection is not retried");
    assert!(
        result
            .error
            .as_deref()
            .unwrap_or("")
            .contains("StripeRejected"),
        "{result:?}"
    );
    assert_eq!(
        fakes.applied().len(),
        1,
        "nothing written for the rejection"
    );

    // A product whose row is gone: an archive plan.
    let gone = unique("sku");
    changed(&client, &worker.task_queue, &gone).await;
    let result = sync_result(&client, &gone).await;
    assert_eq!(result.outcome, SyncOutcome::Archived, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_keeps_its_repair_window_and_continues_as_new() {
    let fakes = Fakes::default();
    let worker = FakeWorker::start(&fakes).await;
    let client = temporal_client().await;
    let prefix = unique("rc");
    for n in 0..30 {
        let id = format!("{prefix}-{n:02}");
        fakes.save(product(&id, &format!("Product {n}")));
        if n % 3 != 0 {
            fakes.drift(&id);
        }
    }
    fakes.set_upsert_latency(Duration::from_millis(300));

    let result = reconcile(
        &client,
        &worker.task_queue,
        ReconcileInput {
            page_size: 5,
            pages_per_run: 2,
            max_in_flight: 3,
            ..ReconcileInput::default()
        },
    )
    .await;
    let totals = &result.totals;
    assert_eq!(totals.scanned, 30);
    assert_eq!(totals.in_sync, 10);
    assert_eq!(totals.drift.missing, 20);
    assert_eq!(totals.repaired, 20, "{totals:?}");
    assert_eq!(totals.failed, 0);
    assert_eq!(
        result.runs, 4,
        "six catalog pages, one of orphans and one of prices, two a run: continued as new three \
         times, totals carried"
    );
    assert_eq!(
        fakes.applied().len(),
        20,
        "each drifted product repaired once"
    );
    let most = fakes.most_at_once();
    assert!(
        (2..=3).contains(&most),
        "repairs ran in parallel within the window of 3: {most} at once"
    );

    // Dry run: the same differences found, nothing written.
    let dry = reconcile(
        &client,
        &worker.task_queue,
        ReconcileInput {
            mode: workflows::reconcile::ReconcileMode::DryRun,
            ..ReconcileInput::default()
        },
    )
    .await;
    assert_eq!(dry.totals.drift.missing, 20);
    assert_eq!(dry.totals.repaired, 0);
    assert_eq!(fakes.applied().len(), 20, "a dry run writes nothing");
}

/// The archive guard as the workflow applies it: archives found are held until the whole scope
/// is read; beyond the limit the run archives nothing and asks for confirmation, a rerun with
/// `allow_mass_archive` applies them, and within the limit they are applied at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_guard_holds_archives_until_the_scope_is_read_and_confirmed() {
    let fakes = Fakes::default();
    let worker = FakeWorker::start(&fakes).await;
    let client = temporal_client().await;
    let prefix = unique("guard");
    for n in 0..30 {
        let id = format!("{prefix}-{n:02}");
        let mut row = product(&id, &format!("Product {n}"));
        // Twelve rows soft-deleted in the catalog whose products Stripe still sells.
        if n % 5 < 2 {
            row.deleted = true;
            fakes.drift_as(&id, DriftKind::ShouldArchive);
        }
        fakes.save(row);
    }
    let guarded = |allow_mass_archive| ReconcileInput {
        page_size: 10,
        archive_limit_min: Some(5),
        archive_limit_percent: Some(0.0),
        allow_mass_archive,
        ..ReconcileInput::default()
    };

    let held = reconcile(&client, &worker.task_queue, guarded(false)).await;
    assert!(held.needs_confirmation, "{held:#?}");
    assert_eq!(held.archive_limit, 5);
    assert_eq!(held.totals.planned_archives, 12, "{:#?}", held.totals);
    assert_eq!(
        held.held_archives.len(),
        12,
        "every held archive is reported"
    );
    assert!(
        fakes.applied().is_empty(),
        "nothing archived beyond the guard"
    );

    let confirmed = reconcile(&client, &worker.task_queue, guarded(true)).await;
    assert!(!confirmed.needs_confirmation, "{confirmed:#?}");
    let archived: Vec<Applied> = fakes.applied();
    assert_eq!(archived.len(), 12, "{archived:?}");
    assert!(archived.iter().all(|a| a.name.is_none()), "archives only");

    // Within the limit: applied once the whole scope was read, no confirmation asked.
    let few = Fakes::default();
    let worker = FakeWorker::start(&few).await;
    for n in 0..30 {
        let id = format!("{prefix}-few-{n:02}");
        let mut row = product(&id, &format!("Product {n}"));
        if n < 3 {
            row.deleted = true;
            few.drift_as(&id, DriftKind::ShouldArchive);
        }
        few.save(row);
    }
    let within = reconcile(&client, &worker.task_queue, guarded(false)).await;
    assert!(!within.needs_confirmation, "{within:#?}");
    assert!(within.held_archives.is_empty());
    assert_eq!(few.applied().len(), 3);
}

/// ProductSync's decision table, one product per row: what the fetch, the transform and the upsert
/// report decides the outcome, and what is (not) run after. A row that cannot be read or a product
/// that is invalid never reaches Stripe; each report of Stripe's side ends in its own outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_report_of_the_activities_decides_its_own_outcome() {
    let fakes = Fakes::default();
    let worker = FakeWorker::start(&fakes).await;
    let client = temporal_client().await;
    let sync = |id: String| {
        let (client, queue) = (client.clone(), worker.task_queue.clone());
        async move {
            changed(&client, &queue, &id).await;
            sync_result(&client, &id).await
        }
    };

    // A row that cannot be read: `invalid` with the column, neither transformed nor written.
    let corrupt = unique("sku");
    fakes.save(product(&corrupt, "Garbled"));
    fakes.corrupt(&corrupt, "price_cents");
    let result = sync(corrupt).await;
    assert_eq!(result.outcome, SyncOutcome::Invalid, "{result:?}");
    assert_eq!(result.issues[0].field, "price_cents");
    assert_eq!(
        fakes.transforms(),
        0,
        "an unreadable row is not transformed"
    );
    assert_eq!(fakes.attempts(), 0, "nor sent to Stripe");

    // A product Stripe would refuse (no name): `invalid` with the field, not sent.
    let nameless = unique("sku");
    fakes.save(product(&nameless, ""));
    let result = sync(nameless).await;
    assert_eq!(result.outcome, SyncOutcome::Invalid, "{result:?}");
    assert!(
        result.issues.iter().any(|i| i.field == "name"),
        "{:?}",
        result.issues
    );
    assert_eq!(fakes.transforms(), 1);
    assert_eq!(
        fakes.attempts(),
        0,
        "an invalid product is not sent to Stripe"
    );

    // Each report of the upsert, in turn: its outcome, nothing recorded as written.
    for (answer, row, outcome) in [
        (Answer::Unchanged, true, SyncOutcome::Unchanged),
        (Answer::Unmanaged, true, SyncOutcome::SkippedUnmanaged),
        (Answer::OtherCatalog, true, SyncOutcome::SkippedOtherCatalog),
        (Answer::Held, false, SyncOutcome::ArchiveHeld),
    ] {
        let id = unique("sku");
        if row {
            fakes.save(product(&id, "Felt hat"));
        }
        let attempts = fakes.attempts();
        fakes.answer(&[answer]);
        let result = sync(id).await;
        assert_eq!(result.outcome, outcome, "{answer:?}: {result:?}");
        assert_eq!(result.passes, 1, "{answer:?}");
        assert_eq!(
            fakes.attempts(),
            attempts + 1,
            "{answer:?}: one upsert, no retry"
        );
    }
    assert!(fakes.applied().is_empty(), "{:?}", fakes.applied());
}
