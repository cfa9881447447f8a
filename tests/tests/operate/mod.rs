//! Operating tier: the binaries as a user runs them.

mod autoscaling;
mod binaries;
mod budget;
mod catalog_db;
mod health;
pub(crate) mod logical;
mod logs;
mod payload_codec;
mod rollout;
mod scale;
mod silent_failures;
mod traces;
mod webui;
