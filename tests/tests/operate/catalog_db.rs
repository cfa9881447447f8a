//! The catalog database as an operator meets it: PostgreSQL over TLS (`sslmode`, `sslrootcert`)
//! against a server that takes TLS only, connection errors that name the cause and the setting
//! within seconds with the password redacted, and schemas that only `starter migrate` changes.

use std::process::Command;
use std::time::{Duration, Instant};

use catalog::{Catalog, Tables};
use harness::catalog::tls_postgres;

/// Whether the session of `catalog`'s pool is encrypted, by the server's own account.
async fn encrypted(catalog: &Catalog) -> bool {
    let catalog::Db::Postgres(pool) = catalog.db() else {
        panic!("not PostgreSQL")
    };
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_verifies_the_server_and_refuses_plaintext() {
    let server = tls_postgres();
    let ca = server.ca.display().to_string();

    // verify-full with the CA that signed the server's certificate, by name and by address.
    for host in ["localhost", "127.0.0.1"] {
        let url = server.url(host, &format!("sslmode=verify-full&sslrootcert={ca}"));
        let catalog = Catalog::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(encrypted(&catalog).await, "{url}");
        catalog.migrate(Tables::Builtin).await.unwrap();
        Catalog::connect(&url).await.unwrap();
    }
    // verify-ca, require, and the default (prefer) all end up encrypted.
    for params in [
        format!("sslmode=verify-ca&sslrootcert={ca}"),
        "sslmode=require".to_string(),
        String::new(),
    ] {
        let url = server.url("127.0.0.1", &params);
        let catalog = Catalog::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(encrypted(&catalog).await, "{url}");
    }

    // A CA that did not sign the server's certificate: refused, saying it is TLS and what to check.
    let url = server.url(
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            server.other_ca.display()
        ),
    );
    let error = Catalog::open(&url).await.unwrap_err().to_string();
    assert!(error.contains("TLS failed"), "{error}");
    assert!(error.contains("sslrootcert"), "{error}");
    assert!(error.contains("CATALOG_DATABASE_URL"), "{error}");

    // A plaintext client: the server's own refusal, with the setting that fixes it.
    let url = server.url("127.0.0.1", "sslmode=disable");
    let error = Catalog::open(&url).await.unwrap_err().to_string();
    assert!(error.contains("no encryption"), "{error}");
    assert!(error.contains("sslmode=require"), "{error}");
}

#[test]
fn connection_errors_are_quick_name_the_setting_and_hide_the_password() {
    let port = harness::free_port();
    let url = format!("postgres://shop:hunter2@127.0.0.1:{port}/catalog");
    for (program, args) in [
        ("starter", &["migrate"][..]),
        ("starter", &["status"][..]),
        ("worker", &[][..]),
        ("relay", &[][..]),
    ] {
        let started = Instant::now();
        let out = Command::new(harness::binary(program))
            .args(args)
            .env("CATALOG_DATABASE_URL", &url)
            .env("TEMPORAL_ADDRESS", harness::temporal_address())
            .env("STRIPE_API_BASE", "http://127.0.0.1:9")
            .env("STRIPE_API_KEY", "sk_test_catalog_db")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{program} {args:?}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{program} {args:?} took {:?}: {stderr}",
            started.elapsed()
        );
        assert!(stderr.contains("connection refused"), "{program}: {stderr}");
        assert!(
            stderr.contains("CATALOG_DATABASE_URL"),
            "{program}: {stderr}"
        );
        assert!(stderr.contains("shop:***@"), "{program}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{program}: {stderr}");
    }
    // URLs no parser takes (no host, a port out of range, libpq's key=value form): refused
    // naming the setting, the password still hidden.
    for url in [
        "postgres://shop:hunter2@/catalog".to_string(),
        format!("postgres://shop:hunter2@127.0.0.1:{}99/catalog", port),
        "host=127.0.0.1 user=shop password=hunter2 dbname=catalog".to_string(),
    ] {
        let out = Command::new(harness::binary("starter"))
            .arg("status")
            .env("CATALOG_DATABASE_URL", &url)
            .env("TEMPORAL_ADDRESS", harness::temporal_address())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}");
        assert!(stderr.contains("CATALOG_DATABASE_URL"), "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{url}: {stderr}");
    }
    // `--help` shows where the setting comes from, never its value.
    for program in ["starter", "worker", "relay"] {
        let out = Command::new(harness::binary(program))
            .arg("--help")
            .env("CATALOG_DATABASE_URL", &url)
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("CATALOG_DATABASE_URL"), "{program}: {help}");
        assert!(!help.contains("hunter2"), "{program}: {help}");
    }
}

/// No silent defaults: without `CATALOG_DATABASE_URL` every binary refuses, naming the setting,
/// and creates no file where it runs (it used to open `sqlite:catalog-sync.db` there, and
/// `starter migrate` migrated that stray file); without `STRIPE_API_KEY` the binaries that talk
/// to Stripe refuse, naming the setting and the Stripe base they would have used.
#[test]
fn an_unset_database_or_stripe_key_is_refused_naming_the_setting() {
    let cwd = std::env::temp_dir().join(harness::unique("no-defaults"));
    std::fs::create_dir_all(&cwd).unwrap();
    let run = |program: &str, args: &[&str], database: Option<&str>| {
        let mut command = Command::new(harness::binary(program));
        command
            .args(args)
            .current_dir(&cwd)
            .env_remove("CATALOG_DATABASE_URL")
            .env_remove("STRIPE_API_KEY")
            .env_remove("STRIPE_API_BASE")
            .env("TEMPORAL_ADDRESS", harness::temporal_address());
        if let Some(url) = database {
            command.env("CATALOG_DATABASE_URL", url);
        }
        let out = command.output().unwrap();
        assert!(!out.status.success(), "{program} {args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for (program, args) in [
        ("starter", &["migrate"][..]),
        ("starter", &["status"][..]),
        ("starter", &["catalog", "seed", "--products", "1"][..]),
        ("worker", &[][..]),
        ("relay", &[][..]),
    ] {
        let said = run(program, args, None);
        assert!(
            said.contains("CATALOG_DATABASE_URL is not set"),
            "{program} {args:?}: {said}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "a binary created a file where it ran"
    );
    let database = format!("sqlite:{}", cwd.join("catalog.db").display());
    let migrated = Command::new(harness::binary("starter"))
        .arg("migrate")
        .env("CATALOG_DATABASE_URL", &database)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    for (program, args) in [("worker", &[][..]), ("starter", &["verify"][..])] {
        let said = run(program, args, Some(&database));
        assert!(
            said.contains("STRIPE_API_KEY is not set") && said.contains("https://api.stripe.com"),
            "{program} {args:?}: {said}"
        );
    }
}

/// A database set up by catalog-sync 0.1 (its tables beside the catalog's, migrated by sqlx on
/// connect; `tests/fixtures/legacy`): refused until `starter migrate`, which moves its tables
/// with their rows; changes waiting in its outbox are still relayed, and capture goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_earlier_layout_is_moved_by_migrate_with_its_rows() {
    for backend in [harness::Backend::Sqlite, harness::Backend::Postgres] {
        let url = harness::fresh_database(backend).await;
        let catalog = Catalog::open(&url).await.unwrap();
        let (legacy, own) = match backend {
            harness::Backend::Sqlite => (
                include_str!("../../fixtures/legacy/sqlite.sql"),
                "catalog_sync_changes",
            ),
            harness::Backend::Postgres => (
                include_str!("../../fixtures/legacy/postgres.sql"),
                "catalog_sync.changes",
            ),
        };
        let setup = format!(
            "{legacy}; INSERT INTO catalog_sync_identity (only_row, catalog) VALUES (TRUE, 'cat_0123456789abcdef'); \
             INSERT INTO catalog_products (id, name) VALUES ('legacy-1', 'Mug')"
        );
        execute(&catalog, &setup).await;

        let refused = Catalog::connect(&url).await.unwrap_err().to_string();
        assert!(
            refused.contains("earlier catalog-sync"),
            "{backend:?}: {refused}"
        );
        assert!(
            refused.contains("run `starter migrate`"),
            "{backend:?}: {refused}"
        );

        let report = catalog.migrate(Tables::Builtin).await.unwrap();
        assert!(report.moved_legacy, "{backend:?}: {report}");
        assert_eq!(report.identity, "cat_0123456789abcdef", "{backend:?}");
        assert!(!report.identity_created, "{backend:?}");
        let catalog = Catalog::connect(&url).await.unwrap();
        assert_eq!(
            catalog.outbox_stats().await.unwrap().pending,
            1,
            "{backend:?}"
        );
        // Capture goes on into the moved outbox, and the product is read as before.
        let mut product = catalog.fetch_product("legacy-1").await.unwrap().unwrap();
        product.name = "Mug, blue".into();
        catalog.save_product(&product).await.unwrap();
        let pending = catalog
            .claim_changes("test", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(pending.len(), 2, "{backend:?}: {pending:?}");
        assert_eq!(pending[1].version, Some(2), "{backend:?}: {pending:?}");
        assert_eq!(
            count(&catalog, &format!("SELECT COUNT(*) FROM {own}")).await,
            2
        );
        // Nothing of the old layout is left, and a second migrate has nothing to do.
        assert_eq!(
            count(
                &catalog,
                "SELECT COUNT(*) FROM catalog_products WHERE id = 'legacy-1'"
            )
            .await,
            1
        );
        let again = catalog.migrate(Tables::Builtin).await.unwrap();
        assert!(
            again.applied.is_empty() && !again.moved_legacy,
            "{backend:?}: {again}"
        );
    }
}

async fn execute(catalog: &Catalog, sql: &str) {
    match catalog.db() {
        catalog::Db::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        catalog::Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{e}"));
}

async fn count(catalog: &Catalog, sql: &str) -> i64 {
    match catalog.db() {
        catalog::Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        catalog::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A mapping may read a query instead of a table (a view of the team's own making, here one that
/// leaves hidden items out); capture triggers then need a table, and say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_reads_through_a_query() {
    let url = harness::fresh_database(harness::Backend::Sqlite).await;
    let db = Catalog::open(&url).await.unwrap();
    execute(
        &db,
        "CREATE TABLE items (sku TEXT PRIMARY KEY, title TEXT NOT NULL, hidden BOOLEAN NOT NULL DEFAULT 0); \
         CREATE TABLE item_prices (sku TEXT NOT NULL, ccy TEXT NOT NULL, cents INTEGER NOT NULL); \
         INSERT INTO items VALUES ('a', 'Shown', 0), ('b', 'Hidden', 1); \
         INSERT INTO item_prices VALUES ('a', 'usd', 500), ('a', 'eur', 450), ('b', 'usd', 900);",
    )
    .await;
    let mapping = catalog::mapping::from_toml(
        r#"
[catalog.products]
query = "SELECT sku, title FROM items WHERE NOT hidden"
id = "sku"
name = "title"

[catalog.prices]
table = "item_prices"
product_id = "sku"
currency = "ccy"
unit_amount = "cents"
"#,
    )
    .unwrap()
    .unwrap();
    let catalog = Catalog::open_mapped(&url, Some(&mapping)).await.unwrap();
    catalog.migrate(Tables::Mapped).await.unwrap();
    let catalog = Catalog::connect_with(&url, Some(&mapping)).await.unwrap();
    let page = catalog
        .products_page("", &catalog::IdRange::default(), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = page.products.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["a"]);
    let a = &page.products[0];
    assert_eq!(a.name, "Shown");
    assert!(a.active && !a.deleted && a.images.is_empty());
    // No order column: by currency, then amount.
    let prices: Vec<(&str, i64)> = a
        .prices
        .iter()
        .map(|p| (p.currency.as_str(), p.unit_amount))
        .collect();
    assert_eq!(prices, [("eur", 450), ("usd", 500)]);
    // Neither version nor updated_at: the version is a hash of the content, stable across reads
    // and moved by an edit.
    let again = catalog.fetch_product("a").await.unwrap().unwrap();
    assert_eq!(again.version, a.version);
    assert!(a.version > 0);
    execute(
        &db,
        "UPDATE item_prices SET cents = 550 WHERE sku = 'a' AND ccy = 'usd'",
    )
    .await;
    let edited = catalog.fetch_product("a").await.unwrap().unwrap();
    assert_ne!(edited.version, a.version);
    assert!(catalog.fetch_product("b").await.unwrap().is_none());
    let refused = catalog
        .capture_sql(catalog::CaptureAction::Install)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("catalog.products reads a query"),
        "{refused}"
    );
    assert!(
        refused.contains("CATALOG_SYNC_CAPTURE=polling"),
        "{refused}"
    );
    // Write-back has no table to write a query's rows to: the relay refuses to start with it,
    // naming the settings, instead of failing every Dashboard edit's webhook.
    let refused = catalog.check_write_back("name").unwrap_err().to_string();
    assert!(refused.contains("products come from a query"), "{refused}");
    let config = std::env::temp_dir().join(format!("{}.toml", harness::unique("query-mapping")));
    std::fs::write(
        &config,
        "[catalog.products]\nquery = \"SELECT sku, title FROM items\"\nid = \"sku\"\nname = \"title\"\n\
         [catalog.prices]\ntable = \"item_prices\"\nproduct_id = \"sku\"\ncurrency = \"ccy\"\nunit_amount = \"cents\"\n",
    )
    .unwrap();
    let out = Command::new(harness::binary("relay"))
        .env("CATALOG_DATABASE_URL", &url)
        .env("CATALOG_SYNC_CONFIG", &config)
        .env("CATALOG_SYNC_STRIPE_OWNED_FIELDS", "description,name")
        .env("CATALOG_SYNC_WRITE_BACK", "true")
        .env("TEMPORAL_ADDRESS", harness::temporal_address())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for part in [
        "CATALOG_SYNC_WRITE_BACK=true",
        "products come from a query",
        "CATALOG_SYNC_STRIPE_OWNED_FIELDS",
    ] {
        assert!(stderr.contains(part), "{part} in {stderr}");
    }
    let builtin = Catalog::open(&harness::fresh_database(harness::Backend::Sqlite).await)
        .await
        .unwrap();
    for field in domain::fields::PRODUCT_FIELDS {
        builtin.check_write_back(field.name).unwrap();
    }
}

/// The catalog at `url` read through the mapping `toml`, catalog-sync's own tables migrated.
async fn mapped_catalog(url: &str, toml: &str) -> Catalog {
    let mapping = catalog::mapping::from_toml(toml).unwrap().unwrap();
    Catalog::open_mapped(url, Some(&mapping))
        .await
        .unwrap()
        .migrate(Tables::Mapped)
        .await
        .unwrap();
    Catalog::connect_with(url, Some(&mapping)).await.unwrap()
}

/// Images kept as JSON objects (`[{"url": …, "alt": …}]`, issue 34) are read through the
/// mapping's `image_url`: their URLs, in order, on both backends; a row with an image that has
/// no URL is that row's error, naming the field, and the other rows read.
async fn images_as_objects(backend: harness::Backend) {
    let url = harness::fresh_database(backend).await;
    let db = Catalog::open(&url).await.unwrap();
    let photos = if backend == harness::Backend::Postgres {
        "JSONB"
    } else {
        "TEXT"
    };
    execute(
        &db,
        &format!(
            "CREATE TABLE items (sku TEXT PRIMARY KEY, title TEXT NOT NULL, photos {photos}, note TEXT); \
             CREATE TABLE item_prices (sku TEXT NOT NULL, ccy TEXT NOT NULL, cents INTEGER NOT NULL); \
             INSERT INTO items VALUES ('a', 'Two photos', \
               '[{{\"url\": \"https://img.example/a1.png\", \"alt\": \"front\"}}, {{\"alt\": \"back\", \"url\": \"https://img.example/a2.png\"}}]', ''), \
             ('b', 'No URL', '[{{\"alt\": \"lost\"}}]', ''), ('c', 'None', NULL, ''); \
             INSERT INTO item_prices VALUES ('a', 'usd', 500), ('b', 'usd', 500), ('c', 'usd', 500);"
        ),
    )
    .await;
    let toml = |images: &str| {
        format!(
            "[catalog.products]\ntable = \"items\"\nid = \"sku\"\nname = \"title\"\n\
             images = \"{images}\"\nimage_url = \"url\"\n\
             [catalog.prices]\ntable = \"item_prices\"\nproduct_id = \"sku\"\ncurrency = \"ccy\"\nunit_amount = \"cents\"\n"
        )
    };
    let catalog = mapped_catalog(&url, &toml("photos")).await;
    let a = catalog.fetch_product("a").await.unwrap().unwrap();
    assert_eq!(
        a.images,
        ["https://img.example/a1.png", "https://img.example/a2.png"]
    );
    assert!(
        catalog
            .fetch_product("c")
            .await
            .unwrap()
            .unwrap()
            .images
            .is_empty()
    );
    let b = catalog.fetch_product("b").await.unwrap_err().to_string();
    assert!(b.contains("images"), "{b}");
    let page = catalog
        .products_page("", &catalog::IdRange::default(), 10)
        .await
        .unwrap();
    assert_eq!(page.products.len(), 2, "a and c read beside b");
    assert_eq!(page.corrupt.len(), 1);
    if backend == harness::Backend::Postgres {
        // A text column's JSON would be read by the database, where one bad row fails them all.
        let text = catalog::mapping::from_toml(&toml("note")).unwrap().unwrap();
        let refused = Catalog::connect_with(&url, Some(&text))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("catalog.products.images") && refused.contains("json or jsonb"),
            "{refused}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_as_json_objects_are_read_by_their_url_key_postgres() {
    images_as_objects(harness::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_as_json_objects_are_read_by_their_url_key_sqlite() {
    images_as_objects(harness::Backend::Sqlite).await;
}

/// Prices stored in the currency's major unit (`amount_unit = "major"`), with an active flag of
/// their own (`active`: an inactive price is not the product's): a decimal column
/// (PostgreSQL `numeric`, SQLite `REAL`), converted by each currency's decimal places; an amount
/// with more decimals than its currency has is that product's error, naming the column, and the
/// other products read; an amount column of another type is refused at start.
async fn amounts_in_major_units(backend: harness::Backend) {
    let url = harness::fresh_database(backend).await;
    let db = Catalog::open(&url).await.unwrap();
    let amount = if backend == harness::Backend::Postgres {
        "NUMERIC(12, 3)"
    } else {
        "REAL"
    };
    execute(
        &db,
        &format!(
            "CREATE TABLE items (sku TEXT PRIMARY KEY, title TEXT NOT NULL); \
             CREATE TABLE item_prices (sku TEXT NOT NULL, ccy TEXT NOT NULL, price {amount}, \
               pos INTEGER NOT NULL, sold_out BOOLEAN, live BOOLEAN); \
             INSERT INTO items VALUES ('a', 'Three currencies'), ('b', 'A fraction of a cent'); \
             INSERT INTO item_prices VALUES ('a', 'USD', 19.99, 0, NULL, TRUE), \
               ('a', 'JPY', 500, 1, NULL, TRUE), ('a', 'KWD', 1.25, 2, NULL, TRUE), \
               ('a', 'GBP', 15.5, 3, NULL, FALSE), ('a', 'EUR', 9.5, 4, NULL, NULL), \
               ('b', 'usd', 19.995, 0, NULL, TRUE);"
        ),
    )
    .await;
    let toml = |column: &str| {
        format!(
            "[catalog.products]\ntable = \"items\"\nid = \"sku\"\nname = \"title\"\n\
             [catalog.prices]\ntable = \"item_prices\"\nproduct_id = \"sku\"\ncurrency = \"ccy\"\n\
             unit_amount = \"{column}\"\namount_unit = \"major\"\norder_by = \"pos\"\n\
             active = \"live\"\n"
        )
    };
    let catalog = mapped_catalog(&url, &toml("price")).await;
    let a = catalog.fetch_product("a").await.unwrap().unwrap();
    let amounts: Vec<(&str, i64)> = a
        .prices
        .iter()
        .map(|p| (p.currency.as_str(), p.unit_amount))
        .collect();
    // The inactive GBP price is not the product's (`[catalog.prices] active`); the EUR price
    // with no flag at all is.
    assert_eq!(
        amounts,
        [("USD", 1999), ("JPY", 500), ("KWD", 1250), ("EUR", 950)]
    );
    let b = catalog.fetch_product("b").await.unwrap_err().to_string();
    assert!(
        b.contains("prices[0].unit_amount") && b.contains("19.995") && b.contains("amount_unit"),
        "{b}"
    );
    let page = catalog
        .products_page("", &catalog::IdRange::default(), 10)
        .await
        .unwrap();
    assert_eq!(page.products.len(), 1, "a read beside b");
    assert_eq!(page.corrupt.len(), 1);
    // A boolean is no amount, in either unit.
    let refused = Catalog::connect_with(
        &url,
        Some(
            &catalog::mapping::from_toml(&toml("sold_out"))
                .unwrap()
                .unwrap(),
        ),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains("catalog.prices.unit_amount") && refused.contains("a number"),
        "{refused}"
    );
    let unknown = catalog::mapping::from_toml(&toml("price").replace("\"major\"", "\"cents\""))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("expected \"minor\""), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_in_major_units_are_read_by_the_currency_postgres() {
    amounts_in_major_units(harness::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_in_major_units_are_read_by_the_currency_sqlite() {
    amounts_in_major_units(harness::Backend::Sqlite).await;
}

/// A PostgreSQL catalog dumped and restored into another database (as a staging copy is made)
/// carries the identity, and refuses it until the operator decides; the original is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_restored_elsewhere_is_refused_until_decided() {
    let (original_url, original) = harness::fresh_catalog(harness::Backend::Postgres).await;
    let identity = original.identity().await.unwrap();
    let copy_url = harness::catalog::fresh_database(harness::Backend::Postgres).await;
    let dumped = tokio::task::block_in_place(|| {
        let dump = Command::new("pg_dump")
            .args(["--no-owner", "--dbname", &original_url])
            .output()
            .expect("pg_dump runs");
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        let mut restore = Command::new("psql")
            .args(["--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", &copy_url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("psql runs");
        use std::io::Write;
        restore
            .stdin
            .take()
            .unwrap()
            .write_all(&dump.stdout)
            .unwrap();
        restore.wait().unwrap()
    });
    assert!(dumped.success());
    let copy = Catalog::connect(&copy_url).await.unwrap();
    let refused = copy.identity().await.unwrap_err().to_string();
    assert!(
        refused.contains(&identity) && refused.contains("a restored copy or a clone"),
        "{refused}"
    );
    assert_eq!(original.identity().await.unwrap(), identity);
    let new = copy
        .decide_identity(catalog::IdentityDecision::New)
        .await
        .unwrap();
    assert_ne!(new, identity);
    assert_eq!(copy.identity().await.unwrap(), new);
}

/// Expand, then contract, as a rollout meets it: the new build's `starter migrate` runs while the
/// previous build's workers still run and restart. This build plays the previous one against a
/// database a newer build migrated (its steps written as that build's `migrate` writes them): an
/// expand step (a new table, a nullable column) leaves it starting and syncing; a contract step
/// stops it at start, naming the step and the oldest build it allows. Its own `migrate` has
/// nothing to do beside the expand step and refuses the contract step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_build_starts_and_syncs_on_a_schema_the_next_one_expanded() {
    let sandbox = harness::sandbox::Sandbox::start().await;
    let url = harness::catalog::fresh_database(harness::catalog::Backend::Postgres).await;
    let task_queue = harness::unique("expand");
    let run = |program: &str, args: &[&str]| {
        let mut command = Command::new(harness::binary(program));
        command
            .args(args)
            .env("CATALOG_DATABASE_URL", &url)
            .env("TEMPORAL_ADDRESS", harness::temporal_address())
            .env("CATALOG_SYNC_TASK_QUEUE", &task_queue)
            .env("STRIPE_API_BASE", &sandbox.base)
            .env("STRIPE_API_KEY", &sandbox.key)
            .env("RUST_BACKTRACE", "0");
        command
    };
    let ok = |program: &str, args: &[&str]| {
        let out = run(program, args).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A worker's init container waits for the migration Job, with no right to create tables.
    let mut waiting = run("starter", &["migrate", "--check", "--wait", "120"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut first, mut stderr) = (
        String::new(),
        std::io::BufReader::new(waiting.stderr.take().unwrap()),
    );
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    assert!(
        first.contains("waiting up to 120 s") && first.contains("run `starter migrate`"),
        "{first}"
    );
    ok("starter", &["migrate"]);
    let waited = waiting.wait_with_output().unwrap();
    drop(stderr);
    assert!(waited.status.success(), "{waited:?}");
    let stdout = String::from_utf8_lossy(&waited.stdout);
    assert!(stdout.contains("schema ready for this build"), "{stdout}");
    ok(
        "starter",
        &["catalog", "seed", "--products", "3", "--seed", "36"],
    );

    // The next build's expand step, as its `migrate` records it.
    let next = catalog::SCHEMA_VERSION + 1;
    let catalog = Catalog::open(&url).await.unwrap();
    execute(
        &catalog,
        &format!(
            "CREATE TABLE catalog_sync.next_build_notes (id TEXT PRIMARY KEY); \
             ALTER TABLE catalog_sync.changes ADD COLUMN next_build_origin TEXT; \
             INSERT INTO catalog_sync.migrations (track, version, name, compatible_from) \
             VALUES ('own', {next}, 'notes of the next build', {})",
            catalog::SCHEMA_VERSION
        ),
    )
    .await;
    let worker = harness::Running(
        run("worker", &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let synced = ok("starter", &["sync", "--all", "--wait"]);
    assert!(synced.contains("done: 3 synced"), "{synced}");
    ok(
        "starter",
        &["catalog", "edit", "sku-000001", "--amount", "1999"],
    );
    let synced = ok("starter", &["sync", "sku-000001", "--wait"]);
    assert!(synced.contains("synced    sku-000001"), "{synced}");
    drop(worker);

    // Its `migrate` (a pod of the previous build that migrates at start) has nothing to do.
    let said = ok("starter", &["migrate"]);
    assert!(
        said.contains(&format!(
            "schema at version {next} (notes of the next build), migrated by a newer build: \
             nothing to do"
        )),
        "{said}"
    );

    // The step that contracts (drops what the previous build used) stops it at start.
    let after = next + 1;
    execute(
        &catalog,
        &format!(
            "INSERT INTO catalog_sync.migrations (track, version, name, compatible_from) \
             VALUES ('own', {after}, 'drop the old origin column', {next})"
        ),
    )
    .await;
    // An init container waiting for the schema stops at once: waiting cannot clear it.
    for args in [
        &[][..],
        &["migrate"][..],
        &["migrate", "--check"][..],
        &["migrate", "--check", "--wait", "120"][..],
    ] {
        let program = if args.is_empty() { "worker" } else { "starter" };
        let started = Instant::now();
        let out = run(program, args).output().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{program} {args:?} waited"
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{program} {args:?}: {said}");
        assert!(
            said.contains(&format!(
                "schema is at version {after} (drop the old origin column), which builds before \
                 schema version {next} cannot use; this build knows {}",
                catalog::SCHEMA_VERSION
            )),
            "{program} {args:?}: {said}"
        );
    }
}

/// A binding to an existing Stripe product (`starter import`) is read with its row, in pages as
/// one by one, is one product per row and one row per product, and outlives a row deleted for
/// good, whose sync then archives the product it was bound to. On the built-in tables, which
/// take the product's Stripe id in `catalog_products.stripe_id`.
async fn bindings(backend: harness::Backend) {
    use domain::model::{CatalogPrice, CatalogProduct, TransformOutput};
    let (_url, catalog) = harness::fresh_catalog(backend).await;
    let mug = CatalogProduct {
        id: "sku-1".into(),
        name: "Mug".into(),
        active: true,
        prices: vec![CatalogPrice {
            currency: "usd".into(),
            unit_amount: 1200,
            ..CatalogPrice::default()
        }],
        ..CatalogProduct::default()
    };
    catalog.save_product(&mug).await.unwrap();
    execute(
        &catalog,
        "UPDATE catalog_products SET stripe_id = 'prod_Shop1' WHERE id = 'sku-1'",
    )
    .await;
    let row = catalog.fetch_product("sku-1").await.unwrap().unwrap();
    assert_eq!(row.stripe_id.as_deref(), Some("prod_Shop1"));
    assert_eq!(row.bound_stripe_id, None);

    assert_eq!(
        catalog.bind("sku-1", "prod_Shop1").await.unwrap(),
        catalog::Bound::New
    );
    assert_eq!(
        catalog.bind("sku-1", "prod_Shop1").await.unwrap(),
        catalog::Bound::Already
    );
    let other_product = catalog.bind("sku-1", "prod_Other").await.unwrap_err();
    assert!(
        other_product
            .to_string()
            .contains("sku-1 is bound to Stripe product prod_Shop1 already"),
        "{other_product}"
    );
    let other_row = catalog.bind("sku-2", "prod_Shop1").await.unwrap_err();
    assert!(
        other_row
            .to_string()
            .contains("prod_Shop1 is bound to catalog row sku-1 already"),
        "{other_row}"
    );

    let page = catalog
        .products_page("", &catalog::IdRange::default(), 10)
        .await
        .unwrap();
    assert_eq!(
        page.products[0].bound_stripe_id.as_deref(),
        Some("prod_Shop1")
    );
    let by_id = catalog.products_by_ids(&["sku-1".into()]).await.unwrap();
    assert_eq!(
        by_id.products[0].bound_stripe_id.as_deref(),
        Some("prod_Shop1")
    );
    assert_eq!(
        catalog
            .rows_of_products(&["prod_Shop1".into(), "sku-9".into()])
            .await
            .unwrap(),
        ["sku-1", "sku-9"]
    );

    assert!(catalog.hard_delete("sku-1").await.unwrap());
    let gone = catalog.fetch_product("sku-1").await.unwrap().unwrap();
    assert!(gone.deleted);
    let TransformOutput::Plan(plan) = domain::transform::transform("sku-1", Some(&gone)) else {
        panic!("a deleted row archives");
    };
    assert_eq!(plan.stripe_id(), "prod_Shop1");
    assert!(catalog.fetch_product("sku-2").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_are_read_with_their_rows_and_outlive_them_postgres() {
    bindings(harness::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_are_read_with_their_rows_and_outlive_them_sqlite() {
    bindings(harness::Backend::Sqlite).await;
}
