//! Log-based change capture (issue 35), its first part against a real server: a PostgreSQL
//! cluster with `wal_level=logical`, a publication on a shop's mapped tables and a `pgoutput`
//! slot, edits made by raw SQL, and each committed transaction traced to the products it
//! changed: an insert, a price changed without touching any `updated_at`, a price deleted (not
//! traceable under the default replica identity, reported so; traced under `REPLICA IDENTITY
//! FULL`), one transaction over two tables, a product re-keyed, a truncate.

use std::collections::BTreeSet;

use catalog::logical::{Committed, Tracer};
use catalog::{Catalog, Tables};

/// A shop whose prices are keyed by their own serial id, with no `updated_at` anywhere.
pub(crate) const SHOP: &str = "
CREATE SCHEMA shop;
CREATE TABLE shop.items (sku TEXT PRIMARY KEY, title TEXT NOT NULL);
CREATE TABLE shop.item_prices (
    price_id SERIAL PRIMARY KEY,
    item_sku TEXT NOT NULL,
    ccy      TEXT NOT NULL,
    cents    INTEGER NOT NULL
);";

/// Its mapping.
pub(crate) const MAPPING: &str = r#"
[catalog.products]
table = "shop.items"
id = "sku"
name = "title"

[catalog.prices]
table = "shop.item_prices"
product_id = "item_sku"
currency = "ccy"
unit_amount = "cents"
"#;

async fn run(pool: &sqlx::PgPool, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slots_transactions_are_traced_to_their_products() {
    let admin = harness::catalog::logical_postgres();
    let name = harness::unique("logical").replace('-', "_");
    let admin_pool = sqlx::PgPool::connect(&admin).await.unwrap();
    run(&admin_pool, &format!("CREATE DATABASE {name}")).await;
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    run(&pool, SHOP).await;

    let mapping = catalog::mapping::from_toml(MAPPING).unwrap().unwrap();
    Catalog::open_mapped(&url, Some(&mapping))
        .await
        .unwrap()
        .migrate(Tables::Mapped)
        .await
        .unwrap();
    let catalog = Catalog::connect_with(&url, Some(&mapping)).await.unwrap();
    let tables = catalog.logical_tables().await.unwrap();
    assert_eq!(
        tables
            .iter()
            .map(|t| (t.name.as_str(), t.key.as_str()))
            .collect::<Vec<_>>(),
        [("shop.items", "sku"), ("shop.item_prices", "item_sku")]
    );

    // Slots are the cluster's: each test its own.
    let slot = format!("{name}_slot");
    run(
        &pool,
        "CREATE PUBLICATION catalog_sync FOR TABLE shop.items, shop.item_prices",
    )
    .await;
    run(
        &pool,
        &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
    )
    .await;
    for sql in [
        "BEGIN; INSERT INTO shop.items VALUES ('mug', 'Mug'), ('bowl', 'Bowl'); \
         INSERT INTO shop.item_prices (item_sku, ccy, cents) VALUES ('mug', 'usd', 1200), \
         ('mug', 'eur', 1100), ('bowl', 'usd', 1800), ('bowl', 'eur', 1700); COMMIT;",
        "UPDATE shop.item_prices SET cents = 1300 WHERE item_sku = 'mug' AND ccy = 'usd';",
        "DELETE FROM shop.item_prices WHERE item_sku = 'mug' AND ccy = 'eur';",
        "ALTER TABLE shop.item_prices REPLICA IDENTITY FULL; \
         DELETE FROM shop.item_prices WHERE item_sku = 'bowl' AND ccy = 'eur';",
        "BEGIN; UPDATE shop.items SET title = 'Big bowl' WHERE sku = 'bowl'; \
         UPDATE shop.item_prices SET cents = 1400 WHERE item_sku = 'mug'; COMMIT;",
        "UPDATE shop.items SET sku = 'mug-2' WHERE sku = 'mug';",
        "TRUNCATE shop.item_prices;",
    ] {
        run(&pool, sql).await;
    }

    let messages: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, \
         'proto_version', '1', 'publication_names', 'catalog_sync')",
    )
    .bind(&slot)
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut tracer = Tracer::new(tables);
    let committed: Vec<Committed> = messages
        .iter()
        .filter_map(|m| tracer.feed(m).unwrap())
        .collect();
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let seen: Vec<(BTreeSet<String>, BTreeSet<String>)> = committed
        .iter()
        .map(|c| (c.products.clone(), c.untraceable.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (set(&["bowl", "mug"]), set(&[])),
            (set(&["mug"]), set(&[])),
            // The default identity: the deleted price's product is not in the log.
            (set(&[]), set(&["shop.item_prices"])),
            (set(&["bowl"]), set(&[])),
            (set(&["bowl", "mug"]), set(&[])),
            (set(&["mug", "mug-2"]), set(&[])),
            (set(&[]), set(&["shop.item_prices"])),
        ]
    );
    // Each commit's position is past the one before: where a reader resumes.
    assert!(committed.windows(2).all(|w| w[0].end_lsn < w[1].end_lsn));
    run(&pool, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
    drop(pool);
    run(&admin_pool, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
}

/// The relay reads the slot over TLS as it reads the catalog: `sslmode=verify-full` against the
/// test's CA, on a server that takes TLS connections only. Its walsender's connection is
/// encrypted, and the slot's confirmed position passes a transaction committed after it started
/// (read, appended to the outbox, confirmed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_reads_the_slot_over_verified_tls() {
    let server = harness::catalog::tls_postgres();
    let url = server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", server.ca.display()),
    );
    Catalog::open(&url)
        .await
        .unwrap()
        .migrate(Tables::Builtin)
        .await
        .unwrap();
    let catalog = Catalog::connect(&url).await.unwrap();
    catalog
        .logical_capture(catalog::CaptureAction::Install)
        .await
        .unwrap();
    let _relay = harness::Running(
        std::process::Command::new(harness::binary("relay"))
            .env("TEMPORAL_ADDRESS", harness::temporal_address())
            .env("CATALOG_DATABASE_URL", &url)
            .env("CATALOG_SYNC_TASK_QUEUE", harness::unique("logical-tls"))
            .env("CATALOG_SYNC_CAPTURE", "logical")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let catalog::Db::Postgres(pool) = catalog.db() else {
        unreachable!()
    };
    harness::eventually(
        std::time::Duration::from_secs(30),
        "the relay's walsender, over TLS",
        || async {
            let ssl: Option<bool> = sqlx::query_scalar(
                "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s ON s.pid = r.pid \
                 WHERE r.application_name = 'catalog-sync-relay'",
            )
            .fetch_optional(pool)
            .await
            .unwrap();
            ssl.filter(|on| *on).map(|_| ())
        },
    )
    .await;
    catalog
        .save_product(&domain::model::CatalogProduct {
            id: "mug".into(),
            name: "Mug".into(),
            active: true,
            ..domain::model::CatalogProduct::default()
        })
        .await
        .unwrap();
    let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(pool)
        .await
        .unwrap();
    harness::eventually(
        std::time::Duration::from_secs(30),
        "the slot confirmed past the insert",
        || async {
            let past: bool = sqlx::query_scalar(
                "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots \
                 WHERE slot_type = 'logical'",
            )
            .bind(&written)
            .fetch_one(pool)
            .await
            .unwrap();
            past.then_some(())
        },
    )
    .await;
}

/// `[[catalog.follow]]` is log-based capture's: a SQLite catalog naming one is refused at start,
/// saying why.
#[tokio::test]
async fn following_tables_is_refused_on_sqlite() {
    let dir = std::env::temp_dir().join(harness::unique("follow-sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.join("shop.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE items (sku TEXT PRIMARY KEY, title TEXT NOT NULL); \
         CREATE TABLE item_prices (price_id INTEGER PRIMARY KEY, item_sku TEXT NOT NULL, \
         ccy TEXT NOT NULL, cents INTEGER NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mapping = catalog::mapping::from_toml(&format!(
        "{}\n[[catalog.follow]]\ntable = \"item_prices\"\nproduct = \"item_sku\"\n",
        MAPPING.replace("shop.", "")
    ))
    .unwrap()
    .unwrap();
    let refused = Catalog::connect_with(&url, Some(&mapping))
        .await
        .map(drop)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("[[catalog.follow]]") && refused.contains("SQLite has none"),
        "{refused}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
