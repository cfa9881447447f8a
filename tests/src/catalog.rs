//! Fresh catalogs: a SQLite file, or a database on the test PostgreSQL server.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ::catalog::Catalog;

use crate::{Tied, free_port, spawn_tied, unique, wait_for_port, which};

/// Which catalog backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A fresh, empty, migrated catalog; returns its URL and a pool.
pub async fn fresh_catalog(backend: Backend) -> (String, Catalog) {
    let url = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("catalog-sync-tests");
            std::fs::create_dir_all(&dir).unwrap();
            format!(
                "sqlite:{}",
                dir.join(format!("{}.db", unique("catalog"))).display()
            )
        }
        Backend::Postgres => fresh_postgres_database().await,
    };
    let catalog = Catalog::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("catalog at {url}: {e}"));
    (url, catalog)
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
    let start = format!(
        "{run_as}'{}' -D '{}' -l '{}/pg.log' -w -o \"-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null",
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
    let child = spawn_tied(&format!("{start} && sleep 1000000"), &stop);
    wait_for_port(port, "throwaway PostgreSQL", Duration::from_secs(60));
    (
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        Tied(child),
    )
}
