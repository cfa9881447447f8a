//! TLS: every connection catalog-sync makes (the catalog over sqlx, Temporal over tonic, Stripe
//! over reqwest, the replication slot over pgwire-replication) uses rustls with *ring*. One
//! dependency (pgwire-replication, through tokio-rustls' defaults) also compiles rustls'
//! aws-lc-rs provider in, and with two providers compiled rustls cannot pick one for a
//! connection that does not name its own: each binary installs ring as the process default
//! first thing, so that none is left to chance.

/// Makes ring the process's crypto provider (a no-op when one is installed already).
pub fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
