//! catalog-sync's integration tests: one binary, in tiers, sharing one Temporal dev server for
//! the whole run (each test on a task queue of its own; the few that kill their server or need
//! a Web UI of their own start one).
//!
//! | tier | what it needs | what it checks |
//! |---|---|---|
//! | [`contract`] | files, the Stripe SDKs | committed histories replay; the sandbox is Stripe to the official SDKs; the dashboard's metrics exist |
//! | [`workflow`] | Temporal only | the workflows' orchestration against fake activities: coalescing, retries, the repair window, continue-as-new |
//! | [`activities`] | catalog, sandbox | each activity alone, and its retryable / non-retryable mapping |
//! | [`end_to_end`] | everything, in process | syncs, reconciliations, change capture and the relay's HTTP endpoints |
//! | [`operate`] | the binaries | what a user runs: the quickstart's commands, payload encryption, the Web UI, the Stripe budget, scale-out |
//! | [`failure`] | everything | bad rows, Stripe faults and outages, Temporal down or killed: nothing is lost |
//!
//! `scripts/test` runs it with several tests at a time (`RUST_TEST_THREADS`); one tier alone:
//! `cargo test -p catalog-sync-tests --test integration -- workflow::`.
#![allow(missing_docs)]

mod activities;
pub(crate) mod contract;
mod end_to_end;
mod failure;
mod operate;
mod workflow;
