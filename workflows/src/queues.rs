//! Where activities run and in what order.
//!
//! Every activity that calls Stripe (`UpsertProduct`, `ReconcilePage`, `ReconcileOrphanPage`)
//! runs on the Stripe task queue, `{workflow task queue}-stripe`. Its workers set a server-side
//! dispatch rate derived from the account's Stripe budget, and pace their own requests to their
//! share of it, so any number of workers together stay inside the one budget Stripe grants an
//! account. Inside that queue, live edits go first: their tasks carry [`LIVE_PRIORITY`],
//! reconciliation's scans and repairs [`RECONCILE_PRIORITY`] (Temporal dispatches a backlogged
//! queue in priority order).
//!
//! The workflows derive the Stripe queue from their own task queue, so one setting
//! (`CATALOG_SYNC_TASK_QUEUE`) names both, and replay does not depend on worker configuration.

use temporalio_common::Priority;
use temporalio_sdk::ActivityOptions;

/// Appended to the workflow task queue to name the Stripe task queue.
pub const STRIPE_QUEUE_SUFFIX: &str = "-stripe";

/// The task queue of the Stripe-calling activities of workflows on `workflow_task_queue`.
pub fn stripe_task_queue(workflow_task_queue: &str) -> String {
    format!("{workflow_task_queue}{STRIPE_QUEUE_SUFFIX}")
}

/// Priority key of a live edit's Stripe work (1 = first).
pub const LIVE_PRIORITY: u32 = 1;

/// Priority key of reconciliation's Stripe work: scans and repairs wait behind live edits.
pub const RECONCILE_PRIORITY: u32 = 4;

/// A task priority with the given key.
pub fn priority(key: u32) -> Priority {
    Priority::builder().priority_key(key).build()
}

/// `options` for an activity on the Stripe queue of `workflow_task_queue`, with `priority_key`.
pub fn on_stripe_queue(
    mut options: ActivityOptions,
    workflow_task_queue: &str,
    priority_key: u32,
) -> ActivityOptions {
    options.task_queue = Some(stripe_task_queue(workflow_task_queue));
    options.priority = Some(priority(priority_key));
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_queue_follows_the_workflow_queue() {
        assert_eq!(stripe_task_queue("catalog-sync"), "catalog-sync-stripe");
        assert_eq!(stripe_task_queue("tq-7"), "tq-7-stripe");
        const { assert!(LIVE_PRIORITY < RECONCILE_PRIORITY) };
    }
}
