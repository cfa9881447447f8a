//! Fresh catalogs: a SQLite file, or a database on the test PostgreSQL server.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ::catalog::Catalog;

use crate::{Tied, free_port, spawn_tied, unique, wait_for_port, which};

/// Which catalog backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A fresh, empty, migrated catalog; returns its URL and a pool.
pub async fn fresh_catalog(backend: Backend) -> (String, Catalog) {
    let url = fresh_database(backend).await;
    migrate(&url).await;
    let catalog = Catalog::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("catalog at {url}: {e}"));
    (url, catalog)
}

/// The URL of a fresh, empty database (not migrated): a SQLite file, or a new database on the
/// test PostgreSQL server.
pub async fn fresh_database(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("catalog-sync-tests");
            std::fs::create_dir_all(&dir).unwrap();
            format!(
                "sqlite:{}",
                dir.join(format!("{}.db", unique("catalog"))).display()
            )
        }
        Backend::Postgres => fresh_postgres_database().await,
    }
}

/// Applies catalog-sync's schema and the built-in catalog tables to the database at `url`, as
/// `starter migrate` does.
pub async fn migrate(url: &str) {
    let catalog = Catalog::open(url)
        .await
        .unwrap_or_else(|e| panic!("catalog at {url}: {e}"));
    catalog
        .migrate(::catalog::Tables::Builtin)
        .await
        .unwrap_or_else(|e| panic!("migrating the catalog at {url}: {e}"));
}

static POSTGRES_ADMIN: OnceLock<(String, Mutex<Option<Tied>>)> = OnceLock::new();

/// Admin URL of the test PostgreSQL server (configured, or a throwaway cluster).
pub fn postgres_admin_url() -> String {
    POSTGRES_ADMIN
        .get_or_init(|| match std::env::var("CATALOG_SYNC_TEST_POSTGRES") {
            Ok(url) => (url, Mutex::new(None)),
            Err(_) => {
                let (url, child) = throwaway_postgres();
                (url, Mutex::new(Some(child)))
            }
        })
        .0
        .clone()
}

async fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    let name = unique("cs_test").replace('-', "_");
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Starts a PostgreSQL cluster in a temporary directory with the local `initdb` and `pg_ctl`.
fn throwaway_postgres() -> (String, Tied) {
    throwaway_postgres_with(|_, _| String::new())
}

/// [`throwaway_postgres`], with `configure(data_dir, run_as)` called between `initdb` and the
/// start; it returns extra server options (`-c name=value …`).
fn throwaway_postgres_with(
    configure: impl FnOnce(&std::path::Path, &str) -> String,
) -> (String, Tied) {
    let find = |tool: &str| -> PathBuf {
        which(tool)
            .or_else(|| {
                std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
                    versions.filter_map(Result::ok).map(|v| v.path().join("bin").join(tool)).find(|p| p.exists())
                })
            })
            .unwrap_or_else(|| panic!(
                "CATALOG_SYNC_TEST_POSTGRES is not set and `{tool}` was not found, so no PostgreSQL can be \
                 started for the tests: install PostgreSQL (Debian: postgresql) or point \
                 CATALOG_SYNC_TEST_POSTGRES at a server"
            ))
    };
    let (initdb, pg_ctl) = (find("initdb"), find("pg_ctl"));
    let dir = std::env::temp_dir().join(unique("catalog-sync-pg"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    // PostgreSQL refuses to run as root: run it as the `postgres` user when we are root.
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let run_as = if as_root {
        let status = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "chown of {} to postgres failed",
            dir.display()
        );
        "runuser -u postgres -- "
    } else {
        ""
    };
    let data = dir.join("data");
    let init = format!(
        "{run_as}'{}' -D '{}' -U postgres --auth=trust -E UTF8 >'{}/initdb.log' 2>&1",
        initdb.display(),
        data.display(),
        dir.display()
    );
    let status = Command::new("sh").arg("-c").arg(&init).status().unwrap();
    assert!(
        status.success(),
        "initdb failed: see {}/initdb.log",
        dir.display()
    );
    let options = configure(&data, run_as);
    let start = format!(
        "{run_as}'{}' -D '{}' -l '{}/pg.log' -w -o \"-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off {options}\" start >/dev/null",
        pg_ctl.display(),
        data.display(),
        dir.display(),
        dir.display()
    );
    let stop = format!(
        "{run_as}'{}' -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
        pg_ctl.display(),
        data.display(),
        dir.display()
    );
    // `pg_ctl -w` returns once the server takes connections; the port opens earlier, while it
    // still answers "the database system is starting up". Wait for `pg_ctl` itself.
    let ready = dir.join("ready");
    let child = spawn_tied(
        &format!("{start} && touch '{}' && sleep 1000000", ready.display()),
        &stop,
    );
    wait_for_port(port, "throwaway PostgreSQL", Duration::from_secs(60));
    let started = std::time::Instant::now();
    while !ready.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "throwaway PostgreSQL not ready within 60 s: see {}/pg.log",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        Tied(child),
    )
}

/// A throwaway PostgreSQL that takes TLS connections only: `ssl = on` with a server certificate
/// (for `localhost` and 127.0.0.1) signed by a CA made for the test, and `pg_hba.conf` with
/// `hostssl` lines alone, so a plaintext client is refused; `wal_level=logical`.
pub struct TlsPostgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The CA that signed the server's certificate (`sslrootcert`).
    pub ca: PathBuf,
    /// Another CA, which signed nothing the server holds.
    pub other_ca: PathBuf,
    _server: Tied,
}

impl TlsPostgres {
    /// `postgres://postgres@{host}:{port}/postgres?{params}`.
    pub fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }
}

/// Starts a [`TlsPostgres`]; certificates come from the `openssl` command.
pub fn tls_postgres() -> TlsPostgres {
    // As each binary does (common::tls): the test's own TLS connections use ring.
    common::tls::install_ring();
    let certs = std::env::temp_dir().join(unique("catalog-sync-certs"));
    std::fs::create_dir_all(&certs).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&certs)
            .output()
            .unwrap_or_else(|e| panic!("openssl (needed to make the test's certificates): {e}"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for ca in ["ca", "other-ca"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=catalog-sync test {ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
        ]);
    }
    std::fs::write(
        certs.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.crt",
        "-extfile",
        "server.ext",
    ]);
    let (url, server) = throwaway_postgres_with(|data, run_as| {
        // The key must belong to the server's user and be private to it.
        for file in ["server.crt", "server.key"] {
            std::fs::copy(certs.join(file), data.join(file)).unwrap();
        }
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "chmod 600 '{key}' && {chown}",
                key = data.join("server.key").display(),
                chown = if run_as.is_empty() {
                    "true".to_string()
                } else {
                    format!(
                        "chown postgres '{}' '{}'",
                        data.join("server.key").display(),
                        data.join("server.crt").display()
                    )
                }
            ))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        // Logical decoding too: log-based capture's reader connects over the same TLS.
        "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c wal_level=logical"
            .to_string()
    });
    let port = url::Url::parse(&url).unwrap().port().unwrap();
    TlsPostgres {
        port,
        ca: certs.join("ca.crt"),
        other_ca: certs.join("other-ca.crt"),
        _server: server,
    }
}

/// A PostgreSQL cluster of one test's own, stopped and removed when dropped.
pub struct OwnPostgres {
    /// Its admin URL.
    pub url: String,
    _server: Tied,
}

/// A throwaway PostgreSQL with `wal_level=logical` and the server `options` (`-c name=value …`)
/// for one test alone (one that changes what the whole cluster does).
pub fn own_logical_postgres(options: &str) -> OwnPostgres {
    let (url, server) = throwaway_postgres_with(|_, _| {
        format!("-c wal_level=logical -c max_replication_slots=4 -c max_wal_senders=4 {options}")
    });
    OwnPostgres {
        url,
        _server: server,
    }
}

/// A throwaway PostgreSQL with `wal_level=logical` (log-based capture needs it; the test server
/// may run without), started once per test process: its admin URL.
pub fn logical_postgres() -> String {
    static LOGICAL: OnceLock<(String, Mutex<Tied>)> = OnceLock::new();
    LOGICAL
        .get_or_init(|| {
            let (url, server) = throwaway_postgres_with(|_, _| {
                "-c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20".into()
            });
            (url, Mutex::new(server))
        })
        .0
        .clone()
}
