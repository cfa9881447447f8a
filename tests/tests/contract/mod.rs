//! Contract tier: no Temporal server; files and outside clients.

mod dashboard;
pub(crate) mod deploy;
mod official_sdks;
mod replay;
