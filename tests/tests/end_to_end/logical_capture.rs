//! Log-based change capture through the binaries (issue 35), on a throwaway cluster started with
//! `wal_level=logical`: a shop's own tables (prices keyed by their own serial id, no
//! `updated_at` anywhere, so polling could see nothing), `starter capture install` (the
//! publication, the slot, `REPLICA IDENTITY FULL` on the price table whose deletes would
//! otherwise not name their product), the worker and a relay with `CATALOG_SYNC_CAPTURE=logical`.
//! Raw-SQL edits reach Stripe: a new product, a price changed, a price deleted, one transaction
//! over both tables, a product re-keyed; the relay killed and edits made while it is down reach
//! Stripe once it is back; `capture uninstall` leaves the shop's schema as it was (`pg_dump -s`),
//! with no slot or publication.

use std::process::{Command, Stdio};
use std::time::Duration;

use harness::{Backend, Running, Sandbox, eventually, unique};

use super::own_catalog::{Shop, execute, ok, start_worker, starter};

// The shop of the tracer's test (`operate::logical`): prices keyed by their own serial id.
use crate::operate::logical::{MAPPING, SHOP};

/// A shop's schema `name`, as `pg_dump` prints it.
fn schema(url: &str, name: &str) -> String {
    let out = Command::new("pg_dump")
        .args(["--schema-only", "--schema", name, url])
        .output()
        .expect("pg_dump runs (Debian: postgresql-client)");
    assert!(out.status.success(), "{out:?}");
    // Less the `\restrict` key pg_dump draws anew for each dump.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The relay on the shop with logical capture, its output dropped.
fn relay_command(shop: &Shop, queue: &str) -> Command {
    let mut command = Command::new(harness::binary("relay"));
    command
        .env("TEMPORAL_ADDRESS", harness::temporal_address())
        .env("CATALOG_DATABASE_URL", &shop.url)
        .env("CATALOG_SYNC_CONFIG", &shop.config)
        .env("CATALOG_SYNC_TASK_QUEUE", queue)
        .env("CATALOG_SYNC_RELAY_POLL_MS", "200")
        .env("CATALOG_SYNC_CAPTURE", "logical")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn relay(shop: &Shop, queue: &str) -> Running {
    Running(relay_command(shop, queue).spawn().unwrap())
}

/// The product's name and its active prices' (currency, amount), once Stripe shows `want`.
async fn until_stripe(sandbox: &Sandbox, id: &str, want: Option<(&str, &[(&str, i64)])>) {
    let want = want.map(|(name, prices)| {
        let mut prices: Vec<(String, i64)> =
            prices.iter().map(|(c, a)| (c.to_string(), *a)).collect();
        prices.sort();
        (name.to_string(), prices)
    });
    eventually(
        Duration::from_secs(60),
        &format!("{id} in Stripe as {want:?}"),
        || {
            let want = want.clone();
            async move {
                let product = sandbox.product(id).await;
                let have = match product {
                    Some(p) if p["active"] == true => {
                        let mut prices: Vec<(String, i64)> = sandbox
                            .prices(id)
                            .await
                            .iter()
                            .filter(|p| p["active"] == true)
                            .map(|p| {
                                (
                                    p["currency"].as_str().unwrap().to_string(),
                                    p["unit_amount"].as_i64().unwrap(),
                                )
                            })
                            .collect();
                        prices.sort();
                        Some((p["name"].as_str().unwrap().to_string(), prices))
                    }
                    _ => None,
                };
                (have == want).then_some(())
            }
        },
    )
    .await;
}

/// A database of its own on the `wal_level=logical` cluster: the admin pool (to drop it), its
/// name and URL.
async fn logical_database() -> (sqlx::PgPool, String, String) {
    let admin = harness::catalog::logical_postgres();
    let name = unique("logical").replace('-', "_");
    let admin_pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&admin_pool)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    (admin_pool, name, url.to_string())
}

/// `starter` with logical capture; its output, which must be a success.
fn logical(shop: &Shop, args: &[&str]) -> String {
    ok(logical_output(shop, args), &args.join(" "))
}

fn logical_output(shop: &Shop, args: &[&str]) -> std::process::Output {
    Command::new(harness::binary("starter"))
        .args(args)
        .env("CATALOG_DATABASE_URL", &shop.url)
        .env("CATALOG_SYNC_CONFIG", &shop.config)
        .env("CATALOG_SYNC_CAPTURE", "logical")
        .output()
        .unwrap()
}

async fn slots_and_publications(db: &catalog::Catalog) -> (i64, i64) {
    let catalog::Db::Postgres(pool) = db.db() else {
        unreachable!()
    };
    let slots: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_replication_slots WHERE database = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let publications: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_publication")
        .fetch_one(pool)
        .await
        .unwrap();
    (slots, publications)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_committed_edit_reaches_stripe_through_the_log() {
    let (admin_pool, name, url) = logical_database().await;
    let shop = Shop::new(Backend::Postgres, &url, MAPPING);
    let db = catalog::Catalog::open(&shop.url).await.unwrap();
    execute(&db, SHOP).await;
    execute(
        &db,
        "INSERT INTO shop.items VALUES ('mug', 'Mug'); \
         INSERT INTO shop.item_prices (item_sku, ccy, cents) VALUES ('mug', 'usd', 1200)",
    )
    .await;
    let sandbox = Sandbox::start().await;
    let queue = unique("logical");
    let original = schema(&shop.url, "shop");

    ok(starter(&shop, &sandbox, &queue, &["migrate"]), "migrate");
    // Before install, a logical relay refuses to start, saying what to run.
    let refused = Command::new(harness::binary("relay"))
        .env("TEMPORAL_ADDRESS", harness::temporal_address())
        .env("CATALOG_DATABASE_URL", &shop.url)
        .env("CATALOG_SYNC_CONFIG", &shop.config)
        .env("CATALOG_SYNC_TASK_QUEUE", &queue)
        .env("CATALOG_SYNC_CAPTURE", "logical")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("CATALOG_SYNC_CAPTURE=logical")
            && said.contains("shop.item_prices")
            && said.contains("REPLICA IDENTITY FULL")
            && said.contains("starter capture install"),
        "{said}"
    );

    // The SQL for the DBA, then install.
    let logical = |args: &[&str]| logical(&shop, args);
    let printed = logical(&["capture", "install", "--print"]);
    assert!(
        printed.contains("CREATE PUBLICATION catalog_sync FOR TABLE shop.items, shop.item_prices;")
            && printed.contains("ALTER TABLE shop.item_prices REPLICA IDENTITY FULL;")
            && printed.contains("pg_create_logical_replication_slot('catalog_sync_"),
        "{printed}"
    );
    assert!(!printed.contains("ALTER TABLE shop.items "), "{printed}");
    assert_eq!(slots_and_publications(&db).await, (0, 0), "--print changed");
    logical(&["capture", "install"]);
    assert_eq!(slots_and_publications(&db).await, (1, 1));
    // Again: the publication follows the mapping, the slot stays.
    let again = logical(&["capture", "install"]);
    assert!(
        again.contains("ALTER PUBLICATION catalog_sync SET TABLE")
            && !again.contains("pg_create_logical_replication_slot"),
        "{again}"
    );
    assert_eq!(slots_and_publications(&db).await, (1, 1));

    let _worker = start_worker(&shop, &sandbox, &queue);
    let mut relay_process = relay(&shop, &queue);
    ok(
        starter(&shop, &sandbox, &queue, &["sync", "--all", "--wait"]),
        "first sync",
    );
    until_stripe(&sandbox, "mug", Some(("Mug", &[("usd", 1200)]))).await;

    // Raw SQL, no updated_at anywhere: a new product with two prices in one transaction.
    execute(
        &db,
        "BEGIN; INSERT INTO shop.items VALUES ('bowl', 'Bowl'); \
         INSERT INTO shop.item_prices (item_sku, ccy, cents) VALUES ('bowl', 'usd', 1800), \
         ('bowl', 'eur', 1700); COMMIT;",
    )
    .await;
    until_stripe(
        &sandbox,
        "bowl",
        Some(("Bowl", &[("eur", 1700), ("usd", 1800)])),
    )
    .await;
    // A price changed, another deleted (traced through the full old row).
    execute(
        &db,
        "UPDATE shop.item_prices SET cents = 1300 WHERE item_sku = 'mug'",
    )
    .await;
    until_stripe(&sandbox, "mug", Some(("Mug", &[("usd", 1300)]))).await;
    execute(
        &db,
        "DELETE FROM shop.item_prices WHERE item_sku = 'bowl' AND ccy = 'eur'",
    )
    .await;
    until_stripe(&sandbox, "bowl", Some(("Bowl", &[("usd", 1800)]))).await;
    // One transaction over both tables, and a re-key.
    execute(
        &db,
        "BEGIN; UPDATE shop.items SET title = 'Big bowl' WHERE sku = 'bowl'; \
         UPDATE shop.item_prices SET cents = 1400 WHERE item_sku = 'mug'; COMMIT;",
    )
    .await;
    until_stripe(&sandbox, "bowl", Some(("Big bowl", &[("usd", 1800)]))).await;
    until_stripe(&sandbox, "mug", Some(("Mug", &[("usd", 1400)]))).await;
    execute(
        &db,
        "BEGIN; UPDATE shop.items SET sku = 'mug-2' WHERE sku = 'mug'; \
         UPDATE shop.item_prices SET item_sku = 'mug-2' WHERE item_sku = 'mug'; COMMIT;",
    )
    .await;
    until_stripe(&sandbox, "mug-2", Some(("Mug", &[("usd", 1400)]))).await;
    until_stripe(&sandbox, "mug", None).await;

    // The relay killed; edits made while it is down reach Stripe once it is back.
    relay_process.0.kill().unwrap();
    relay_process.0.wait().unwrap();
    execute(
        &db,
        "INSERT INTO shop.items VALUES ('vase', 'Vase'); \
         INSERT INTO shop.item_prices (item_sku, ccy, cents) VALUES ('vase', 'usd', 2500); \
         UPDATE shop.items SET title = 'Bowl, large' WHERE sku = 'bowl'",
    )
    .await;
    // Unread, the slot holds the WAL: `status` shows it, and past the threshold says so.
    let out = starter(
        &shop,
        &sandbox,
        &queue,
        &[
            "status",
            "--json",
            "--max-relay-lag",
            "1000d",
            "--max-slot-lag-bytes",
            "1",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let slot = &report["capture"]["slot"];
    assert_eq!(report["capture"]["mode"], "logical", "{report:#}");
    assert!(slot["lag_bytes"].as_i64().unwrap() > 1, "{report:#}");
    // The oldest change waiting, peeked from the unread slot: committed before now.
    assert!(
        slot["age_seconds"].as_f64().is_some_and(|age| age > 0.0),
        "{report:#}"
    );
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("bytes of WAL")),
        "{report:#}"
    );
    let _relay_again = relay(&shop, &queue);
    until_stripe(&sandbox, "vase", Some(("Vase", &[("usd", 2500)]))).await;
    until_stripe(&sandbox, "bowl", Some(("Bowl, large", &[("usd", 1800)]))).await;

    // Uninstall (once the relay let the slot go): no slot, no publication, and the shop's
    // schema as it was.
    drop(_relay_again);
    eventually(Duration::from_secs(30), "the slot let go", || async {
        let state = db.slot_state().await.unwrap().unwrap();
        (!state.active).then_some(())
    })
    .await;
    logical(&["capture", "uninstall"]);
    assert_eq!(slots_and_publications(&db).await, (0, 0));
    assert_eq!(
        schema(&shop.url, "shop"),
        original,
        "the shop's schema changed"
    );
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin_pool)
        .await
        .unwrap();
}

/// A Spree-shaped shop: prices belong to variants, variants to products; ids are serials (the
/// product's is catalog-sync's id, kept clear of other tests' ids), soft deletes by
/// `deleted_at`, amounts in dollars, no `updated_at` read by anyone.
const SPREE: &str = "
CREATE SCHEMA spree;
CREATE TABLE spree.products (
    id          BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    deleted_at  TIMESTAMPTZ
);
CREATE TABLE spree.variants (
    id          BIGINT PRIMARY KEY,
    product_id  BIGINT NOT NULL REFERENCES spree.products (id) ON UPDATE CASCADE,
    sku         TEXT NOT NULL,
    is_master   BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at  TIMESTAMPTZ
);
CREATE TABLE spree.prices (
    id          BIGSERIAL PRIMARY KEY,
    variant_id  BIGINT NOT NULL REFERENCES spree.variants (id),
    currency    TEXT NOT NULL,
    amount      NUMERIC(10, 2) NOT NULL,
    deleted_at  TIMESTAMPTZ
);
INSERT INTO spree.products VALUES (35001, 'Tote', NULL), (35002, 'Cap', NULL);
INSERT INTO spree.variants VALUES (3510, 35001, 'TOTE', TRUE, NULL),
    (3520, 35002, 'CAP', TRUE, NULL), (3521, 35002, 'CAP-RED', FALSE, NULL),
    (3522, 35002, 'CAP-BLUE', FALSE, NULL);
INSERT INTO spree.prices (variant_id, currency, amount) VALUES
    (3510, 'USD', 25.00), (3510, 'EUR', 23.00), (3520, 'USD', 15.00),
    (3521, 'EUR', 17.00), (3522, 'GBP', 19.00);";

/// Its mapping: two queries, and the three tables they read followed, a price through its
/// variant. Each variant's price is a price of the product (one per currency, so that
/// catalog-sync's own lookup keys tell them apart).
const SPREE_MAPPING: &str = r#"
[catalog.products]
query = "SELECT id, name, deleted_at FROM spree.products"
id = "id"
name = "name"
deleted = "deleted_at"

[catalog.prices]
query = """
SELECT v.product_id, p.currency, p.amount
  FROM spree.prices p JOIN spree.variants v ON v.id = p.variant_id
 WHERE p.deleted_at IS NULL AND v.deleted_at IS NULL
"""
product_id = "product_id"
currency = "currency"
unit_amount = "amount"
amount_unit = "major"

[[catalog.follow]]
table = "spree.products"
product = "id"

[[catalog.follow]]
table = "spree.variants"
product = "product_id"

[[catalog.follow]]
table = "spree.prices"
key = "variant_id"
through = "spree.variants"
product = "product_id"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_query_mapping_over_three_tables_is_traced_through_the_log() {
    let (admin_pool, name, url) = logical_database().await;
    let shop = Shop::new(Backend::Postgres, &url, SPREE_MAPPING);
    let db = catalog::Catalog::open(&shop.url).await.unwrap();
    execute(&db, SPREE).await;
    let original = schema(&shop.url, "spree");
    let sandbox = Sandbox::start().await;
    let queue = unique("spree");
    ok(starter(&shop, &sandbox, &queue, &["migrate"]), "migrate");

    // A mapping that reads a table it does not follow is refused, naming the table.
    let unfollowed = Shop::new(
        Backend::Postgres,
        &url,
        &SPREE_MAPPING.replace(
            "[[catalog.follow]]\ntable = \"spree.variants\"\nproduct = \"product_id\"\n",
            "",
        ),
    );
    let refused = logical_output(&unfollowed, &["capture", "install", "--print"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("spree.variants") && said.contains("[[catalog.follow]]"),
        "{said}"
    );

    // Install: the three tables published; prices and variants name their product (or its
    // variant) outside their primary key, so their deletes need the whole old row.
    let printed = logical(&shop, &["capture", "install"]);
    assert!(
        printed.contains(
            "CREATE PUBLICATION catalog_sync FOR TABLE spree.products, spree.variants, spree.prices;"
        ) && printed.contains("ALTER TABLE spree.variants REPLICA IDENTITY FULL;")
            && printed.contains("ALTER TABLE spree.prices REPLICA IDENTITY FULL;")
            && !printed.contains("ALTER TABLE spree.products "),
        "{printed}"
    );
    let _worker = start_worker(&shop, &sandbox, &queue);
    let _relay = relay(&shop, &queue);
    ok(
        starter(&shop, &sandbox, &queue, &["sync", "--all", "--wait"]),
        "first sync",
    );
    until_stripe(
        &sandbox,
        "35001",
        Some(("Tote", &[("eur", 2300), ("usd", 2500)])),
    )
    .await;
    until_stripe(
        &sandbox,
        "35002",
        Some(("Cap", &[("eur", 1700), ("gbp", 1900), ("usd", 1500)])),
    )
    .await;

    // A master price changed by raw SQL: traced through its variant.
    execute(
        &db,
        "UPDATE spree.prices SET amount = 27.00 WHERE variant_id = 3510 AND currency = 'USD'",
    )
    .await;
    until_stripe(
        &sandbox,
        "35001",
        Some(("Tote", &[("eur", 2300), ("usd", 2700)])),
    )
    .await;
    // The EUR price soft-deleted alone (it leaves the query), a price hard-deleted.
    execute(
        &db,
        "UPDATE spree.prices SET deleted_at = now() WHERE variant_id = 3510 AND currency = 'EUR'",
    )
    .await;
    until_stripe(&sandbox, "35001", Some(("Tote", &[("usd", 2700)]))).await;
    execute(&db, "DELETE FROM spree.prices WHERE variant_id = 3521").await;
    until_stripe(
        &sandbox,
        "35002",
        Some(("Cap", &[("gbp", 1900), ("usd", 1500)])),
    )
    .await;
    // A variant soft-deleted takes its price out; one transaction over two tables.
    execute(
        &db,
        "UPDATE spree.variants SET deleted_at = now() WHERE id = 3522",
    )
    .await;
    until_stripe(&sandbox, "35002", Some(("Cap", &[("usd", 1500)]))).await;
    execute(
        &db,
        "BEGIN; UPDATE spree.products SET name = 'Sun cap' WHERE id = 35002; \
         UPDATE spree.prices SET amount = 16.00 WHERE variant_id = 3520; COMMIT;",
    )
    .await;
    until_stripe(&sandbox, "35002", Some(("Sun cap", &[("usd", 1600)]))).await;
    // A product re-keyed, its variants following by the foreign key's cascade.
    execute(&db, "UPDATE spree.products SET id = 35100 WHERE id = 35001").await;
    until_stripe(&sandbox, "35100", Some(("Tote", &[("usd", 2700)]))).await;
    until_stripe(&sandbox, "35001", None).await;

    // Uninstall: no slot, no publication, the shop's schema as it was.
    drop(_relay);
    eventually(Duration::from_secs(30), "the slot let go", || async {
        let state = db.slot_state().await.unwrap().unwrap();
        (!state.active).then_some(())
    })
    .await;
    logical(&shop, &["capture", "uninstall"]);
    assert_eq!(slots_and_publications(&db).await, (0, 0));
    assert_eq!(
        schema(&shop.url, "spree"),
        original,
        "the shop's schema changed"
    );
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin_pool)
        .await
        .unwrap();
}

/// A slot that lost WAL it had not read (`max_slot_wal_keep_size`, on a cluster of the test's
/// own) is reported by `status`, and answered by the relay: the slot made anew, every product
/// enqueued (the catalog's, and those Stripe still holds), so the rename and the deletion the
/// lost WAL held reach Stripe, and capture goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_slot_that_lost_its_wal_is_answered_with_every_product() {
    let server = harness::catalog::own_logical_postgres("-c max_slot_wal_keep_size=1MB");
    let shop = Shop::new(Backend::Postgres, &server.url, MAPPING);
    let db = catalog::Catalog::open(&shop.url).await.unwrap();
    execute(&db, SHOP).await;
    execute(
        &db,
        "INSERT INTO shop.items VALUES ('jug', 'Jug'), ('cup', 'Cup'); \
         INSERT INTO shop.item_prices (item_sku, ccy, cents) VALUES ('jug', 'usd', 900), \
         ('cup', 'usd', 500)",
    )
    .await;
    let sandbox = Sandbox::start().await;
    let queue = unique("lost-slot");
    ok(starter(&shop, &sandbox, &queue, &["migrate"]), "migrate");
    logical(&shop, &["capture", "install"]);
    let _worker = start_worker(&shop, &sandbox, &queue);
    let metrics_port = harness::free_port();
    let relay_with_metrics = || {
        Running(
            relay_command(&shop, &queue)
                .env(
                    "CATALOG_SYNC_METRICS_ADDR",
                    format!("127.0.0.1:{metrics_port}"),
                )
                .spawn()
                .unwrap(),
        )
    };
    let relay_process = relay_with_metrics();
    ok(
        starter(&shop, &sandbox, &queue, &["sync", "--all", "--wait"]),
        "first sync",
    );
    until_stripe(&sandbox, "jug", Some(("Jug", &[("usd", 900)]))).await;

    // The relay down, an edit, then WAL past what the server keeps for the slot.
    drop(relay_process);
    execute(
        &db,
        "UPDATE shop.items SET title = 'Blue jug' WHERE sku = 'jug'; \
         DELETE FROM shop.item_prices WHERE item_sku = 'cup'; \
         DELETE FROM shop.items WHERE sku = 'cup'",
    )
    .await;
    eventually(Duration::from_secs(60), "the slot lost its WAL", || async {
        execute(
            &db,
            "CREATE TABLE IF NOT EXISTS public.filler (n BIGINT); \
             INSERT INTO public.filler SELECT generate_series(1, 20000); \
             SELECT pg_switch_wal(); CHECKPOINT;",
        )
        .await;
        db.slot_state()
            .await
            .unwrap()
            .filter(|s| s.lost)
            .map(|_| ())
    })
    .await;
    let out = starter(
        &shop,
        &sandbox,
        &queue,
        &["status", "--json", "--max-relay-lag", "1000d"],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["capture"]["slot"]["lost"], true, "{report:#}");
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("lost WAL")),
        "{report:#}"
    );

    // The relay back: a new slot, every product enqueued, the lost edits in Stripe.
    let _relay = relay_with_metrics();
    until_stripe(&sandbox, "jug", Some(("Blue jug", &[("usd", 900)]))).await;
    until_stripe(&sandbox, "cup", None).await;
    let state = db.slot_state().await.unwrap().unwrap();
    assert!(!state.lost, "{state:?}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("catalog_sync_capture_resyncs_total{")
                && l.contains("reason=\"slot_lost\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    // Capture goes on from the new slot.
    execute(
        &db,
        "INSERT INTO shop.items VALUES ('pot', 'Pot'); \
         INSERT INTO shop.item_prices (item_sku, ccy, cents) VALUES ('pot', 'usd', 3100)",
    )
    .await;
    until_stripe(&sandbox, "pot", Some(("Pot", &[("usd", 3100)]))).await;
}
