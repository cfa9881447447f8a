//! Fake implementations of catalog-sync's activities, for the workflow tier: an in-memory catalog,
//! the real (pure) transform, and a scripted Stripe that records every upsert and how many ran at
//! once. They implement the same definitions (`workflows::activities::definitions`) as the real
//! ones, so the compiler holds them to the same contracts.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{Worker, WorkerOptions};
use workflows::activities::{
    CountInput, FetchInput, FetchOutput, OrphanPageInput, OrphanPageOutput, PlanInput, PlanOutput,
    PricePageInput, PricePageOutput, ReconcilePageInput, ReconcilePageOutput, TransformInput,
    TransformOutput, UpsertInput, UpsertReport, definitions as sync_activities,
};
use workflows::drift::{Drift, DriftKind};
use workflows::model::{CatalogProduct, SyncPlan, ValidationIssue};
use workflows::reconcile::method::{MethodBasis, ReconcileMethod};
use workflows::retry::{RetryConfig, failure_types};
use workflows::{ProductSync, ReconcileCatalog};

/// What the fake Stripe answers to the next upsert.
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer {
    /// A 503: retryable (`StripeUnavailable`).
    Unavailable,
    /// A 400: final (`StripeRejected`).
    Rejected,
    /// Stripe already matches: nothing written.
    Unchanged,
    /// A Stripe product with this id that catalog-sync did not make: left alone.
    Unmanaged,
    /// A product of another catalog: left alone.
    OtherCatalog,
    /// The live archive guard holds the archive: nothing written.
    Held,
}

impl Answer {
    /// The report of an answer that is not a failure, `None` for a failure.
    fn report(self) -> Option<UpsertReport> {
        let report = match self {
            Answer::Unavailable | Answer::Rejected => return None,
            Answer::Unchanged => UpsertReport {
                unchanged: true,
                ..UpsertReport::default()
            },
            Answer::Unmanaged => UpsertReport {
                skipped_unmanaged: true,
                ..UpsertReport::default()
            },
            Answer::OtherCatalog => UpsertReport {
                other_catalog: Some("cat_another's (fake)".into()),
                ..UpsertReport::default()
            },
            Answer::Held => UpsertReport {
                archive_held: Some("over the live archive budget (fake)".into()),
                ..UpsertReport::default()
            },
        };
        Some(UpsertReport {
            stripe_requests: 1,
            ..report
        })
    }
}

/// One upsert the fake Stripe applied: the catalog id and the name written (none for an archive).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Applied {
    pub(super) catalog_id: String,
    pub(super) name: Option<String>,
}

#[derive(Default)]
struct State {
    catalog: Mutex<BTreeMap<String, CatalogProduct>>,
    /// Rows that exist but cannot be read, with the columns at fault.
    corrupt: Mutex<BTreeMap<String, Vec<ValidationIssue>>>,
    /// Ids the reconciliation pages report as drifted, with the kind.
    drifted: Mutex<BTreeMap<String, DriftKind>>,
    answers: Mutex<VecDeque<Answer>>,
    attempts: AtomicUsize,
    transforms: AtomicUsize,
    applied: Mutex<Vec<Applied>>,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    upsert_latency: Mutex<Duration>,
}

/// The fakes, shared by the test and the worker that runs them.
#[derive(Clone, Default)]
pub(super) struct Fakes(Arc<State>);

impl Fakes {
    /// Puts `product` in the catalog (replacing the row with its id).
    pub(super) fn save(&self, product: CatalogProduct) {
        self.0
            .catalog
            .lock()
            .unwrap()
            .insert(product.id.clone(), product);
    }

    /// Makes `id`'s row unreadable: `column` holds a value of the wrong type.
    pub(super) fn corrupt(&self, id: &str, column: &str) {
        self.0.corrupt.lock().unwrap().insert(
            id.to_string(),
            vec![ValidationIssue {
                field: column.to_string(),
                reason: "not a number (fake)".into(),
            }],
        );
    }

    /// Transforms run so far.
    pub(super) fn transforms(&self) -> usize {
        self.0.transforms.load(Ordering::SeqCst)
    }

    /// Marks `id` as drifted for the reconciliation pages: missing from Stripe.
    pub(super) fn drift(&self, id: &str) {
        self.drift_as(id, DriftKind::Missing);
    }

    /// Marks `id` as drifted for the reconciliation pages, as `kind`.
    pub(super) fn drift_as(&self, id: &str, kind: DriftKind) {
        self.0.drifted.lock().unwrap().insert(id.to_string(), kind);
    }

    /// The next upserts' answers, in order; then success.
    pub(super) fn answer(&self, answers: &[Answer]) {
        self.0.answers.lock().unwrap().extend(answers);
    }

    /// How long each upsert takes.
    pub(super) fn set_upsert_latency(&self, latency: Duration) {
        *self.0.upsert_latency.lock().unwrap() = latency;
    }

    /// Upsert attempts so far, failed ones included.
    pub(super) fn attempts(&self) -> usize {
        self.0.attempts.load(Ordering::SeqCst)
    }

    /// Upserts running right now.
    pub(super) fn running(&self) -> usize {
        self.0.running.load(Ordering::SeqCst)
    }

    /// The most upserts that ran at once.
    pub(super) fn most_at_once(&self) -> usize {
        self.0.most_at_once.load(Ordering::SeqCst)
    }

    /// The upserts applied, in order.
    pub(super) fn applied(&self) -> Vec<Applied> {
        self.0.applied.lock().unwrap().clone()
    }

    fn ids_in(&self, from: Option<&String>, to: Option<&String>) -> Vec<String> {
        self.0
            .catalog
            .lock()
            .unwrap()
            .keys()
            .filter(|id| from.is_none_or(|f| *id >= f) && to.is_none_or(|t| *id <= t))
            .cloned()
            .collect()
    }
}

fn stripe_failure(answer: Answer) -> ActivityError {
    let (type_name, retryable) = match answer {
        Answer::Unavailable => (failure_types::STRIPE_UNAVAILABLE, true),
        Answer::Rejected => (failure_types::STRIPE_REJECTED, false),
        other => unreachable!("{other:?} is not a failure"),
    };
    ActivityError::application(
        ApplicationFailure::builder(format!("fake Stripe: {type_name}"))
            .type_name(type_name.to_string())
            .non_retryable(!retryable)
            .build(),
    )
}

// The macro generates a constant per activity, unused here (the worker registers the implementer,
// the workflows call the definitions): allowed in this module only.
#[allow(dead_code)]
mod implementation {
    use super::*;

    #[activities]
    impl Fakes {
        /// The row from the in-memory catalog.
        #[activity(definition = sync_activities::FetchProduct)]
        async fn fetch_product(
            self: Arc<Self>,
            _ctx: ActivityContext,
            input: FetchInput,
        ) -> Result<FetchOutput, ActivityError> {
            let corrupt = self
                .0
                .corrupt
                .lock()
                .unwrap()
                .get(&input.catalog_id)
                .cloned()
                .unwrap_or_default();
            Ok(FetchOutput {
                product: self
                    .0
                    .catalog
                    .lock()
                    .unwrap()
                    .get(&input.catalog_id)
                    .cloned(),
                search_attributes: true,
                corrupt,
            })
        }

        /// The real transform: it is pure.
        #[activity(definition = sync_activities::TransformProduct)]
        async fn transform_product(
            self: Arc<Self>,
            _ctx: ActivityContext,
            input: TransformInput,
        ) -> Result<TransformOutput, ActivityError> {
            self.0.transforms.fetch_add(1, Ordering::SeqCst);
            Ok(domain::transform::transform(
                &input.catalog_id,
                input.product.as_ref(),
            ))
        }

        /// Scripted answers, a latency, and a record of what was applied.
        #[activity(definition = sync_activities::UpsertProduct)]
        async fn upsert_product(
            self: Arc<Self>,
            _ctx: ActivityContext,
            input: UpsertInput,
        ) -> Result<UpsertReport, ActivityError> {
            let state = &self.0;
            state.attempts.fetch_add(1, Ordering::SeqCst);
            let now = state.running.fetch_add(1, Ordering::SeqCst) + 1;
            state.most_at_once.fetch_max(now, Ordering::SeqCst);
            let latency = *state.upsert_latency.lock().unwrap();
            tokio::time::sleep(latency).await;
            state.running.fetch_sub(1, Ordering::SeqCst);
            if let Some(answer) = state.answers.lock().unwrap().pop_front() {
                return answer.report().ok_or_else(|| stripe_failure(answer));
            }
            let (name, archived) = match &input.plan {
                SyncPlan::Upsert(desired) => (Some(desired.name.clone()), false),
                SyncPlan::Archive { .. } => (None, true),
            };
            state.applied.lock().unwrap().push(Applied {
                catalog_id: input.plan.catalog_id().to_string(),
                name,
            });
            Ok(UpsertReport {
                operations: vec!["fake write".into()],
                archived,
                stripe_requests: 1,
                ..UpsertReport::default()
            })
        }

        /// Products in scope.
        #[activity(definition = sync_activities::CountCatalog)]
        async fn count_catalog(
            self: Arc<Self>,
            _ctx: ActivityContext,
            input: CountInput,
        ) -> Result<u64, ActivityError> {
            Ok(self.ids_in(input.from.as_ref(), input.to.as_ref()).len() as u64)
        }

        /// The fake Stripe is read by ids (the scan's reads are the end-to-end tier's).
        #[activity(definition = sync_activities::PlanReconcile)]
        async fn plan_reconcile(
            self: Arc<Self>,
            _ctx: ActivityContext,
            input: PlanInput,
        ) -> Result<PlanOutput, ActivityError> {
            let in_scope = self
                .ids_in(input.scope.from.as_ref(), input.scope.to.as_ref())
                .len() as u64;
            Ok(PlanOutput {
                basis: MethodBasis {
                    in_scope,
                    ..MethodBasis::default()
                },
                method: ReconcileMethod::Ids,
                reason: "the fake Stripe is read by ids".into(),
                cursor: None,
                catalog: Some(crate::workflow::CATALOG.into()),
            })
        }

        /// One page in id order; the ids marked drifted are reported missing from Stripe.
        #[activity(definition = sync_activities::ReconcilePage)]
        async fn reconcile_page(
            self: Arc<Self>,
            _ctx: ActivityContext,
            input: ReconcilePageInput,
        ) -> Result<ReconcilePageOutput, ActivityError> {
            let ids = self.ids_in(input.from.as_ref(), input.to.as_ref());
            let rest: Vec<String> = ids.into_iter().filter(|id| *id > input.after).collect();
            let page: Vec<String> = rest.iter().take(input.limit as usize).cloned().collect();
            let drifted = self.0.drifted.lock().unwrap().clone();
            let drift: Vec<Drift> = page
                .iter()
                .filter_map(|id| {
                    drifted.get(id).map(|kind| Drift {
                        catalog_id: id.clone(),
                        kind: *kind,
                        detail: format!("{kind:?} in the fake"),
                    })
                })
                .collect();
            Ok(ReconcilePageOutput {
                scanned: page.len() as u32,
                last_id: page.last().cloned(),
                done: rest.len() <= page.len(),
                in_sync: (page.len() - drift.len()) as u32,
                drift,
                stripe_requests: 1,
                ..ReconcilePageOutput::default()
            })
        }

        /// No extra prices.
        #[activity(definition = sync_activities::ReconcilePricePage)]
        async fn reconcile_price_page(
            self: Arc<Self>,
            _ctx: ActivityContext,
            _input: PricePageInput,
        ) -> Result<PricePageOutput, ActivityError> {
            Ok(PricePageOutput {
                stripe_requests: 1,
                ..PricePageOutput::default()
            })
        }

        /// No orphans.
        #[activity(definition = sync_activities::ReconcileOrphanPage)]
        async fn reconcile_orphan_page(
            self: Arc<Self>,
            _ctx: ActivityContext,
            _input: OrphanPageInput,
        ) -> Result<OrphanPageOutput, ActivityError> {
            Ok(OrphanPageOutput {
                stripe_requests: 1,
                ..OrphanPageOutput::default()
            })
        }
    }
}

/// Retries fast enough for a test: 100 ms, doubling, at most 1 s.
pub(super) fn fast_retries() -> RetryConfig {
    let mut retry = RetryConfig::default();
    for activity in [
        &mut retry.fetch,
        &mut retry.transform,
        &mut retry.upsert,
        &mut retry.reconcile,
    ] {
        activity.initial_interval_ms = 100;
        activity.maximum_interval_ms = 1_000;
    }
    retry
}

/// The workflows and the fakes, run by SDK workers on a fresh task queue of the shared dev server
/// (and its Stripe queue), as `worker::build` registers the real ones.
pub(super) struct FakeWorker {
    pub(super) task_queue: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeWorker {
    pub(super) async fn start(fakes: &Fakes) -> Self {
        let task_queue = harness::unique("wf");
        let retry = fast_retries();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = tokio::sync::oneshot::channel::<anyhow::Result<()>>();
        let (fakes, queue) = (fakes.clone(), task_queue.clone());
        // The SDK's worker future is not `Send`: a thread and a runtime of its own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let built = async {
                    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
                    let client = harness::temporal_client().await;
                    let stripe_options =
                        WorkerOptions::new(workflows::queues::stripe_task_queue(&queue))
                            .register_activities(fakes.clone())
                            .build();
                    let options = WorkerOptions::new(queue.as_str())
                        .register_workflow_with_factory::<ProductSync, _>({
                            let retry = retry.clone();
                            move || ProductSync::with_retry(retry.clone())
                        })?
                        .register_workflow_with_factory::<ReconcileCatalog, _>({
                            let retry = retry.clone();
                            move || ReconcileCatalog::with_retry(retry.clone())
                        })?
                        .register_activities(fakes)
                        .build();
                    anyhow::Ok((
                        Worker::new(&runtime, client.clone(), options)?,
                        Worker::new(&runtime, client, stripe_options)?,
                    ))
                }
                .await;
                let (mut main, mut stripe) = match built {
                    Ok(workers) => workers,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                let (stop_main, stop_stripe) = (main.shutdown_handle(), stripe.shutdown_handle());
                let run = async { tokio::try_join!(main.run(), stripe.run()).map(|_| ()) };
                tokio::pin!(run);
                tokio::select! {
                    result = &mut run => result.expect("fake worker"),
                    _ = stopped => {
                        stop_main();
                        stop_stripe();
                        let _ = run.await;
                    }
                }
            });
        });
        is_ready
            .await
            .expect("fake worker thread")
            .expect("fake worker starts");
        Self {
            task_queue,
            stop: Some(stop),
        }
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
