//! The in-flight window: the repairs a run has queued, running (at most `max_in_flight`) and
//! finished but not yet counted, polled alongside whatever the workflow awaits.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use temporalio_sdk::WorkflowContext;

use super::repair::{RepairOutcome, record, repair};
use super::{ReconcileCatalog, ReconcileTotals};
use crate::drift::Drift;

type Repair<'a> = Pin<Box<dyn Future<Output = RepairOutcome> + 'a>>;

/// The repairs of a run: queued, running (at most the window), and finished but not yet counted.
///
/// The running repairs are polled in order, with the workflow's own waker, whenever the workflow
/// awaits something through [`Repairs::alongside`] or [`Repairs::drain`]. (Not a
/// `FuturesUnordered`: it wakes its own waker to yield, which the SDK's determinism check rightly
/// rejects as a wake from outside the SDK.)
pub(super) struct Repairs<'a> {
    ctx: &'a WorkflowContext<ReconcileCatalog>,
    /// The run's archive guard applies: the archives it queues have passed it.
    approve_archives: bool,
    /// The catalog whose workflow ids the repairs take (`None`: legacy ids).
    catalog: Option<String>,
    pub(super) queue: VecDeque<Drift>,
    pub(super) running: Vec<Repair<'a>>,
    finished: Vec<RepairOutcome>,
}

impl<'a> Repairs<'a> {
    pub(super) fn new(
        ctx: &'a WorkflowContext<ReconcileCatalog>,
        approve_archives: bool,
        catalog: Option<String>,
    ) -> Self {
        Self {
            ctx,
            approve_archives,
            catalog,
            queue: VecDeque::new(),
            running: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// Starts queued repairs while the window has room, polls the running ones, and repeats
    /// while some finish (making room).
    fn drive(&mut self, cx: &mut Context<'_>) {
        loop {
            let window = self.ctx.state(|s| s.progress.max_in_flight).max(1) as usize;
            while self.running.len() < window {
                let Some(drift) = self.queue.pop_front() else {
                    break;
                };
                let approve = self.approve_archives;
                self.running.push(Box::pin(repair(
                    self.ctx,
                    drift,
                    self.catalog.clone(),
                    approve,
                )));
            }
            let before = self.finished.len();
            let mut i = 0;
            while i < self.running.len() {
                match self.running[i].as_mut().poll(cx) {
                    Poll::Ready(outcome) => {
                        drop(self.running.remove(i));
                        self.finished.push(outcome);
                    }
                    Poll::Pending => i += 1,
                }
            }
            if self.finished.len() == before || self.queue.is_empty() {
                return;
            }
        }
    }

    /// Awaits `fut` while the repairs make progress.
    pub(super) async fn alongside<T>(&mut self, fut: impl Future<Output = T>) -> T {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            self.drive(cx);
            fut.as_mut().poll(cx)
        })
        .await
    }

    /// Awaits every queued and running repair.
    pub(super) async fn drain(&mut self) {
        poll_fn(|cx| {
            self.drive(cx);
            if self.running.is_empty() && self.queue.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Counts the finished repairs into `totals`.
    pub(super) fn record(&mut self, totals: &mut ReconcileTotals, sample_size: usize) {
        for outcome in self.finished.drain(..) {
            record(totals, outcome, sample_size);
        }
    }
}
