//! Log-based capture's loop (`CATALOG_SYNC_CAPTURE=logical`): reads the catalog's replication
//! slot with `pgwire-replication` (a pure-Rust client of PostgreSQL's replication protocol: no
//! libpq to install beside the relay, rustls for TLS as the rest of catalog-sync, explicit
//! control of the position confirmed), traces each committed transaction to its products
//! (`catalog::logical::Tracer`) and appends them to the outbox, which the relay hands to
//! Temporal as it does the triggers' and polling's changes. The slot's position is confirmed only
//! once the outbox holds the transaction's changes (committed), so a relay killed at any point
//! loses nothing: a restart reads the unconfirmed tail again, and at most enqueues its changes
//! twice (a sync of an unchanged product writes nothing).
//!
//! A row that names its product through another table (`[[catalog.follow]]` with `through`: a
//! Spree price's variant) is looked up once its transaction is read. A change the log cannot
//! trace to a product (a truncate; a delete whose old row lacks the product column) enqueues
//! every product of the catalog: a reconciliation through the outbox, not a silent gap; so
//! does a slot that lost WAL it had not read, which is made anew first
//! (`catalog_sync_capture_resyncs_total` counts both).

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use catalog::Catalog;
use catalog::logical::{PUBLICATION, Tracer};
use common::metrics::{Counted, Metrics};
use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig};

/// Follows the slot until `shutdown` resolves; a failure (the database away, the slot busy) is
/// logged and the slot read again after a pause, from its confirmed position. (Its progress is
/// the slot's lag, which the relay's gauges publish: `crate::gauges`.)
pub async fn follow_until(
    catalog: Catalog,
    database_url: String,
    metrics: Option<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    if let Some(m) = &metrics {
        m.start_at_zero(Counted::CaptureResyncs, &["untraceable", "slot_lost"]);
    }
    tokio::pin!(shutdown);
    let mut pause = Duration::from_millis(500);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            result = follow(&catalog, &database_url, metrics.as_ref()) => {
                if let Err(e) = result {
                    tracing::warn!(error = %format!("{e:#}"), "logical capture: reading the slot failed; reading it again");
                }
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// Reads the slot from its confirmed position until the stream fails.
async fn follow(
    catalog: &Catalog,
    database_url: &str,
    metrics: Option<&Metrics>,
) -> anyhow::Result<()> {
    // A slot that lost WAL it had not read can no longer be read: made anew, and every product
    // enqueued (what the lost WAL held is in the catalog the syncs read).
    if catalog
        .replace_lost_slot()
        .await
        .context("replacing the lost replication slot")?
    {
        tracing::error!(
            "the replication slot lost WAL it had not read (max_slot_wal_keep_size), so \
             changes were missed: the slot is made anew and every product enqueued"
        );
        if let Some(m) = metrics {
            m.capture_resync("slot_lost");
        }
    }
    let mut tracer = Tracer::new(catalog.logical_tables().await?);
    let slot = catalog.logical_slot().await?;
    let config = replication_config(database_url, &slot)?;
    let mut client = ReplicationClient::connect(config)
        .await
        .with_context(|| format!("starting replication from slot {slot}"))?;
    tracing::info!(%slot, publication = PUBLICATION, "logical capture: following the slot");
    // Between a transaction's Begin and its Commit.
    let mut in_transaction = false;
    loop {
        let Some(event) = client.recv().await.context("reading the slot")? else {
            anyhow::bail!("the replication stream ended");
        };
        match event {
            ReplicationEvent::Begin { .. } => {
                in_transaction = true;
                tracer.begin();
            }
            ReplicationEvent::XLogData { data, .. } => {
                tracer.feed(&data)?;
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                in_transaction = false;
                let done = tracer.commit(end_lsn.as_u64());
                let everything = !done.untraceable.is_empty();
                if everything {
                    if let Some(m) = metrics {
                        m.capture_resync("untraceable");
                    }
                    tracing::warn!(
                        tables = ?done.untraceable,
                        "logical capture: a change the log does not trace to a product \
                         (a truncate, or a delete without the product column in its old row): \
                         every product enqueued"
                    );
                }
                let products = catalog
                    .products_through(&done)
                    .await
                    .context("finding the products of rows named through another table")?;
                if everything || !products.is_empty() {
                    catalog
                        .enqueue_changes(&products, everything)
                        .await
                        .context("appending to the outbox")?;
                    tracing::debug!(products = products.len(), lsn = %end_lsn, "logical capture: transaction enqueued");
                }
                // In the outbox now: the slot may let the WAL go.
                client.update_applied_lsn(end_lsn);
            }
            // Everything the server decoded up to `wal_end` was sent before this, and every
            // transaction sent is in the outbox: the WAL up to it is no longer needed (it holds
            // only other tables' changes, or none). Without this, a catalog with no edits would
            // keep its slot's position still while the rest of the server writes, and its lag
            // would grow.
            ReplicationEvent::KeepAlive { wal_end, .. } if !in_transaction => {
                client.update_applied_lsn(wal_end);
            }
            ReplicationEvent::KeepAlive { .. } | ReplicationEvent::Message { .. } => {}
            ReplicationEvent::StoppedAt { .. } => anyhow::bail!("the replication stream stopped"),
        }
    }
}

/// The replication connection of the catalog's URL: its host, port, user, password, database
/// and `sslmode` (`disable`, `prefer` and `allow` connect without TLS; `require`, `verify-ca`
/// and `verify-full` with it, the last two against `sslrootcert`, else the system's roots).
fn replication_config(database_url: &str, slot: &str) -> anyhow::Result<ReplicationConfig> {
    let url = url::Url::parse(database_url).context("CATALOG_DATABASE_URL is not a URL")?;
    let query = |key: &str| {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let root = query("sslrootcert").map(std::path::PathBuf::from);
    let tls = match query("sslmode").as_deref() {
        None | Some("disable" | "allow" | "prefer") => TlsConfig::disabled(),
        Some("require") => TlsConfig::require(),
        Some("verify-ca") => TlsConfig::verify_ca(root),
        Some("verify-full") => TlsConfig::verify_full(root),
        Some(other) => anyhow::bail!("sslmode={other} is not one catalog-sync knows"),
    };
    let decode = |s: &str| {
        percent_decode(s).with_context(|| "CATALOG_DATABASE_URL holds a bad percent escape")
    };
    let user = match url.username() {
        "" => "postgres".to_string(),
        user => decode(user)?,
    };
    let password = decode(url.password().unwrap_or_default())?;
    let database = decode(url.path().trim_start_matches('/'))?;
    Ok(ReplicationConfig::new(
        url.host_str().unwrap_or("localhost"),
        user,
        password,
        if database.is_empty() {
            "postgres".to_string()
        } else {
            database
        },
        slot,
        PUBLICATION,
    )
    .with_port(url.port().unwrap_or(5432))
    .with_tls(tls)
    .with_start_lsn(Lsn::from_u64(0))
    .with_application_name("catalog-sync-relay"))
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).context("a truncated escape")?;
            out.push(u8::from_str_radix(hex, 16).context("not hex")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogs_url_gives_the_replication_connection() {
        let c = replication_config(
            "postgres://sync%40shop:p%2Fss@db.internal:6432/catalog?sslmode=verify-full&sslrootcert=/ca.pem",
            "catalog_sync_ab",
        )
        .unwrap();
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.user.as_str(),
                c.password.as_str()
            ),
            ("db.internal", 6432, "sync@shop", "p/ss")
        );
        assert_eq!(
            (c.database.as_str(), c.slot.as_str()),
            ("catalog", "catalog_sync_ab")
        );
        assert!(c.tls.mode.verifies_hostname());
        assert_eq!(
            c.tls.ca_pem_path.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        let plain = replication_config("postgres://127.0.0.1/test", "s").unwrap();
        assert!(!plain.tls.mode.requires_tls());
        assert_eq!((plain.user.as_str(), plain.port), ("postgres", 5432));
        assert!(replication_config("postgres://h/db?sslmode=sometimes", "s").is_err());
    }
}
