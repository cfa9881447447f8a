//! catalog-sync's workflows: deterministic orchestration only. This crate holds the workflow
//! types, their inputs and outputs, and the activity contracts; it depends on no HTTP or database
//! crate. The `activities` crate does the I/O.
//!
//! # Layout
//! - [`model`], [`drift`]: the data model (the `domain` crate's, re-exported).
//! - [`activities`]: activity names and input/output contracts.
//! - [`input`]: workflow inputs that never fail to decode (no input, the wrong shape).
//! - [`product_sync`]: the per-product `ProductSync` workflow.
//! - [`reconcile`]: the `ReconcileCatalog` workflow: full or scoped reconciliation with repairs.
//! - [`queues`]: the Stripe task queue and the priorities of live and reconciliation work.
//! - [`retry`]: every activity's timeouts and retry policy, in one table.
//! - [`search`]: the search attributes the workflows set.
#![deny(missing_docs)]

// The SDK's macros add undocumentable items next to each workflow/activity method.
#[allow(missing_docs)]
pub mod activities;
pub mod input;
#[allow(missing_docs)]
pub mod product_sync;
pub mod queues;
#[allow(missing_docs)]
pub mod reconcile;
pub mod retry;
pub mod search;

pub use domain::{drift, model};

pub use product_sync::{
    ProductChanged, ProductSync, ProductSyncInput, ProductSyncResult, SyncOutcome,
};
pub use reconcile::{ReconcileCatalog, ReconcileInput, ReconcileProgress, ReconcileResult};

/// Options of every continue-as-new. On versioned workers (Worker Deployment Versioning), the next
/// run starts on the deployment's current version (`AutoUpgrade` for its first task, pinned from
/// then on), so a long-lived workflow moves to new code at its next run while each run finishes on
/// the code it started with; why, and the contract it puts on workflow inputs: the worker's
/// `deployment` module. On unversioned workers, the defaults (the option would mean nothing).
/// Which one a worker is does not change the command's type, so replay is the same either way.
pub(crate) fn next_run_options(versioned: bool) -> temporalio_sdk::ContinueAsNewOptions {
    if !versioned {
        return temporalio_sdk::ContinueAsNewOptions::default();
    }
    temporalio_sdk::ContinueAsNewOptions::builder()
        .initial_versioning_behavior(
            temporalio_workflow::ContinueAsNewVersioningBehavior::AutoUpgrade,
        )
        .build()
}

pub use domain::ids::{SyncId, TASK_QUEUE, legacy_product_sync_id, product_sync_id};
