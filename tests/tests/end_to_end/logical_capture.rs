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

/// The shop's schema, as `pg_dump` prints it.
fn schema(url: &str) -> String {
    let out = Command::new("pg_dump")
        .args(["--schema-only", "--schema", "shop", url])
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

fn relay(shop: &Shop, queue: &str) -> Running {
    Running(
        Command::new(harness::binary("relay"))
            .env("TEMPORAL_ADDRESS", harness::temporal_address())
            .env("CATALOG_DATABASE_URL", &shop.url)
            .env("CATALOG_SYNC_CONFIG", &shop.config)
            .env("CATALOG_SYNC_TASK_QUEUE", queue)
            .env("CATALOG_SYNC_RELAY_POLL_MS", "200")
            .env("CATALOG_SYNC_CAPTURE", "logical")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
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
    let admin = harness::catalog::logical_postgres();
    let name = unique("logical").replace('-', "_");
    let admin_pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&admin_pool)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    let shop = Shop::new(Backend::Postgres, url.as_str(), MAPPING);
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
    let original = schema(&shop.url);

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
    let logical = |args: &[&str]| {
        let mut command = Command::new(harness::binary("starter"));
        command
            .args(args)
            .env("CATALOG_DATABASE_URL", &shop.url)
            .env("CATALOG_SYNC_CONFIG", &shop.config)
            .env("CATALOG_SYNC_CAPTURE", "logical");
        ok(command.output().unwrap(), &args.join(" "))
    };
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
    assert_eq!(schema(&shop.url), original, "the shop's schema changed");
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin_pool)
        .await
        .unwrap();
}
