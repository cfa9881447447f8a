//! Opening the catalog database: the URL, TLS, a first connection that fails fast with a reason a
//! person can act on, and passwords kept out of every message.
//!
//! PostgreSQL URLs take libpq's TLS parameters and environment: `sslmode` (`disable`, `allow`,
//! `prefer` — the default —, `require`, `verify-ca`, `verify-full`), `sslrootcert` (the CA file to
//! trust; without it, the system's trust store), `sslcert`/`sslkey` for client certificates, and
//! `PGSSLMODE`/`PGSSLROOTCERT` where the URL says nothing. TLS is rustls.
//!
//! A pool retries a refused connection until its acquire timeout (30 s), which hides the reason.
//! So one connection is made first, on its own, within [`CONNECT_TIMEOUT`]: a closed port, an
//! unknown host, a refused certificate or a `pg_hba.conf` rule fails there, at once, naming
//! `CATALOG_DATABASE_URL` (with its password redacted).

use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use crate::{Catalog, CatalogError, Db};

/// The setting every binary reads the catalog's URL from (also `--database-url`).
pub const DATABASE_URL_SETTING: &str = "CATALOG_DATABASE_URL";

/// How long the first connection may take before the catalog counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The catalog URL a binary was given (`--database-url` / `CATALOG_DATABASE_URL`), trimmed;
/// [`CatalogError::NoUrl`] when unset or blank.
pub fn required_url(url: Option<&str>) -> Result<&str, CatalogError> {
    match url.map(str::trim) {
        Some(url) if !url.is_empty() => Ok(url),
        _ => Err(CatalogError::NoUrl),
    }
}

/// `url` with the password (if any) replaced by `***`: the form every message and log line uses.
/// Also redacts a `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not a URL the parser takes (no host, a port out of range, libpq's `key=value` form):
        // the password is found by its place in the text instead.
        return redact_text(url);
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.iter().any(|(k, _)| k == "password") {
        let mut query = parsed.query_pairs_mut();
        query.clear();
        for (k, v) in &pairs {
            query.append_pair(k, if k == "password" { "***" } else { v });
        }
    }
    // `url` prints `sqlite:x` as given; `postgres://` URLs come back with the password replaced.
    parsed.to_string()
}

/// [`redact_url`] for text no URL parser takes: the part after `user:` and before `@` in
/// `scheme://user:password@…`, and the value of every `password=`, become `***`.
fn redact_text(text: &str) -> String {
    let mut out = text.to_string();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    let mut redacted = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.to_ascii_lowercase().find("password=") {
        let value = i + "password=".len();
        redacted.push_str(&rest[..value]);
        redacted.push_str("***");
        let end = rest[value..]
            .find(|c: char| c.is_whitespace() || c == '&')
            .map_or(rest.len(), |e| value + e);
        rest = &rest[end..];
    }
    redacted.push_str(rest);
    redacted
}

impl Catalog {
    /// Opens a pool to the catalog at `url` without looking at catalog-sync's schema (which
    /// [`Catalog::connect`] checks and [`Catalog::migrate`] applies). `sqlite:` URLs create the
    /// file if needed.
    pub async fn open(url: &str) -> Result<Self, CatalogError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|e| unreachable(url, &e))?;
            // The first connection, alone and bounded: its error is the one a person can act on.
            let probe = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
                .await
                .map_err(|_| CatalogError::Unreachable {
                    url: redact_url(url),
                    reason: format!(
                        "no answer within {} s (is the host right, and does a firewall let the port through?)",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                })?
                .map_err(|e| unreachable(url, &e))?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_lazy_with(options);
            drop(probe);
            Ok(Catalog::new(Db::Postgres(pool)))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| unreachable(url, &e))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(|e| unreachable(url, &e))?;
            Ok(Catalog::new(Db::Sqlite(pool)))
        } else {
            Err(CatalogError::UnsupportedUrl(redact_url(url)))
        }
    }
}

/// [`CatalogError::Unreachable`] with the cause put the way a person reads it.
fn unreachable(url: &str, e: &sqlx::Error) -> CatalogError {
    CatalogError::Unreachable {
        url: redact_url(url),
        reason: connect_reason(e),
    }
}

/// What went wrong with a connection, in words; never the URL itself (the caller adds it,
/// redacted).
fn connect_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused (is the database running, on that host and port?)".into()
            }
            std::io::ErrorKind::TimedOut => "connection timed out".into(),
            _ if is_unknown_host(&io.to_string()) => format!("host not found ({io})"),
            // rustls's refusals reach us as I/O errors of the handshake.
            _ if is_tls(&io.to_string()) => tls_reason(io),
            _ => format!("network error: {io}"),
        },
        sqlx::Error::Tls(tls) => tls_reason(tls),
        sqlx::Error::Database(db) => {
            let message = db.message();
            if message.contains("pg_hba.conf") && message.contains("no encryption") {
                format!(
                    "{message} (the server accepts TLS connections only: set sslmode=require or stricter)"
                )
            } else {
                message.to_string()
            }
        }
        sqlx::Error::Configuration(c) => format!("the URL is not valid: {c}"),
        other => redact_message(&other.to_string()),
    }
}

fn tls_reason(e: &dyn std::fmt::Display) -> String {
    format!(
        "TLS failed: {e} (check sslmode and sslrootcert: the CA file must sign the server's \
         certificate, and verify-full also checks the host name)"
    )
}

/// A TLS handshake's failure, by its text.
fn is_tls(text: &str) -> bool {
    ["certificate", "handshake", "TLS", "tls"]
        .iter()
        .any(|needle| text.contains(needle))
}

/// DNS failures come as I/O errors whose text names the resolver's complaint.
fn is_unknown_host(text: &str) -> bool {
    [
        "failed to lookup address",
        "Name or service not known",
        "nodename nor servname",
        "No address associated",
        "Temporary failure in name resolution",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// sqlx's own messages do not carry URLs, but a message that quotes one is redacted anyway.
fn redact_message(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains("://") {
                redact_url(word)
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_or_blank_url_is_refused_naming_the_setting() {
        for given in [None, Some(""), Some("  \n")] {
            let error = required_url(given).unwrap_err().to_string();
            assert!(error.contains(DATABASE_URL_SETTING), "{error}");
        }
        assert_eq!(required_url(Some(" sqlite:x.db\n")).unwrap(), "sqlite:x.db");
    }

    #[test]
    fn passwords_are_redacted_whatever_the_form() {
        for (given, shown) in [
            // No host, a port out of range: no URL parser takes them.
            (
                "postgres://shop:hunter2@/catalog",
                "postgres://shop:***@/catalog",
            ),
            (
                "postgres://shop:hunter2@db:99999/catalog",
                "postgres://shop:***@db:99999/catalog",
            ),
            // libpq's key=value form.
            (
                "host=db user=shop password=hunter2 dbname=catalog",
                "host=db user=shop password=*** dbname=catalog",
            ),
            (
                "postgres://db/catalog?password=hunter2",
                "postgres://db/catalog?password=***",
            ),
        ] {
            let redacted = redact_url(given);
            assert_eq!(redacted, shown);
            assert!(!redacted.contains("hunter2"), "{redacted}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cr3t@db.internal:5432/shop?sslmode=verify-full"),
            "postgres://app:***@db.internal:5432/shop?sslmode=verify-full"
        );
        assert_eq!(
            redact_url("postgres://db/shop?user=app&password=s3cr3t"),
            "postgres://db/shop?user=app&password=***"
        );
        assert_eq!(
            redact_url("postgres://app@db/shop"),
            "postgres://app@db/shop"
        );
        assert_eq!(
            redact_url("sqlite:catalog-sync.db"),
            "sqlite:catalog-sync.db"
        );
        assert!(!redact_message("see postgres://u:pw@h/d now").contains("pw"));
    }

    #[tokio::test]
    async fn a_closed_port_fails_at_once_with_the_reason_and_the_setting() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("postgres://app:s3cr3t@127.0.0.1:{port}/shop");
        let started = std::time::Instant::now();
        let error = Catalog::open(&url).await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(5), "{error}");
        assert!(error.contains("connection refused"), "{error}");
        assert!(error.contains(DATABASE_URL_SETTING), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
        assert!(error.contains("app:***@127.0.0.1"), "{error}");
    }

    #[tokio::test]
    async fn an_unknown_host_is_named() {
        let error = Catalog::open("postgres://app:pw@no-such-host.invalid/shop")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("host not found"), "{error}");
        assert!(!error.contains(":pw@"), "{error}");
    }
}
