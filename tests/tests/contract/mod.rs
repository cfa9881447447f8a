//! Contract tier: no Temporal server; files and outside clients.

mod dashboard;
mod deploy;
mod official_sdks;
mod replay;
