//! A team's own catalog, through the binaries: a "foreign" schema (other table and column names, a
//! price table keyed differently, no version column, a soft-delete flag on PostgreSQL and hard
//! deletes on SQLite, and prices soft-deleted one by one by a timestamp on both) mapped in the config file, `starter migrate` (catalog-sync's own tables
//! only), `starter capture install`, then the worker and the relay: sync, a sale and its end
//! (A→B→A), a deletion, a reconciliation and `verify` with 0 differences. The team's tables gain
//! nothing but the capture triggers, and lose them again at `capture uninstall` (the test reads
//! the catalog's DDL before and after each step).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use harness::{Backend, Running, Sandbox, eventually, unique, worker_command};
use serde_json::{Value, json};

/// The PostgreSQL shop: its own schema, `varchar` ids, image URLs as `text[]`, attributes as
/// `jsonb`, a `timestamp` (no time zone) of the last change, a soft-delete flag, and prices keyed
/// by a serial id with their own order column, amounts in dollars (`numeric`), currencies in upper
/// case; shipping fields (a nullable flag, dimensions as
/// `jsonb`, features as `text[]`) and prices' tax behavior and `jsonb` attributes.
const POSTGRES_SHOP: &str = "
CREATE SCHEMA shop;
CREATE TABLE shop.items (
    sku         VARCHAR(100) PRIMARY KEY,
    title       TEXT NOT NULL,
    blurb       TEXT,
    listed      BOOLEAN NOT NULL DEFAULT TRUE,
    pictures    TEXT[] NOT NULL DEFAULT '{}',
    attrs       JSONB NOT NULL DEFAULT '{}',
    modified_at TIMESTAMP NOT NULL DEFAULT now(),
    removed     BOOLEAN NOT NULL DEFAULT FALSE,
    ships       BOOLEAN,
    descriptor  VARCHAR(22),
    dims        JSONB,
    features    TEXT[] NOT NULL DEFAULT '{}'
);
CREATE TABLE shop.item_prices (
    price_id     SERIAL PRIMARY KEY,
    item_sku     VARCHAR(100) NOT NULL REFERENCES shop.items(sku) ON DELETE CASCADE,
    ccy          CHAR(3) NOT NULL,
    amount       NUMERIC(10, 2) NOT NULL,
    period       TEXT,
    label        TEXT,
    rank         INTEGER NOT NULL DEFAULT 0,
    tax          TEXT,
    price_attrs  JSONB NOT NULL DEFAULT '{}',
    archived_at  TIMESTAMPTZ
);";

const POSTGRES_MAPPING: &str = r#"
[catalog.products]
table = "shop.items"
id = "sku"
name = "title"
description = "blurb"
active = "listed"
images = "pictures"
metadata = "attrs"
updated_at = "modified_at"
deleted = "removed"
shippable = "ships"
statement_descriptor = "descriptor"
package_dimensions = "dims"
marketing_features = "features"

[catalog.prices]
table = "shop.item_prices"
product_id = "item_sku"
currency = "ccy"
unit_amount = "amount"
amount_unit = "major"
recurring_interval = "period"
nickname = "label"
order_by = "rank"
tax_behavior = "tax"
metadata = "price_attrs"
deleted = "archived_at"
"#;

/// The SQLite shop: integer ids, no version column, hard deletes, prices keyed by (product,
/// currency). Its time of change is mapped for polling only: with triggers, the version is a
/// hash of the content.
const SQLITE_SHOP: &str = "
CREATE TABLE products (
    product_no INTEGER PRIMARY KEY,
    label      TEXT NOT NULL,
    details    TEXT,
    enabled    BOOLEAN NOT NULL DEFAULT 1,
    changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE TABLE product_prices (
    product_no INTEGER NOT NULL REFERENCES products(product_no) ON DELETE CASCADE,
    currency   TEXT NOT NULL,
    cents      INTEGER NOT NULL,
    every      TEXT,
    removed_at TEXT,
    PRIMARY KEY (product_no, currency)
);";

const SQLITE_MAPPING: &str = r#"
[catalog.products]
table = "products"
id = "product_no"
name = "label"
description = "details"
active = "enabled"

[catalog.prices]
table = "product_prices"
product_id = "product_no"
currency = "currency"
unit_amount = "cents"
recurring_interval = "every"
deleted = "removed_at"
"#;

/// How changes reach the outbox in a run of the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    /// `starter capture install`.
    Triggers,
    /// `CATALOG_SYNC_CAPTURE=polling` on the relay, and no trigger anywhere.
    Polling,
}

// Each test has its own ids: a product's sync is a workflow named after the product, and every
// test shares one Temporal server.

/// One shop on one backend, and how the test edits it as the shop's application would.
pub(super) struct Shop {
    pub(super) backend: Backend,
    pub(super) url: String,
    pub(super) config: std::path::PathBuf,
}

impl Shop {
    /// A shop on `backend` at `url`, whose config file (in a directory of its own) holds
    /// `mapping`.
    pub(super) fn new(backend: Backend, url: &str, mapping: &str) -> Self {
        let dir = std::env::temp_dir().join(unique("own-catalog"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("catalog-sync.toml");
        std::fs::write(&config, mapping).unwrap();
        Self {
            backend,
            url: url.to_string(),
            config,
        }
    }

    fn add(&self, id: &str, name: &str, amount: i64) -> String {
        match self.backend {
            Backend::Postgres => format!(
                "INSERT INTO shop.items (sku, title, blurb, pictures, attrs, ships, descriptor, dims, features) \
                 VALUES ('{id}', '{name}', 'Hand made', ARRAY['https://img.example/{id}.png'], \
                 '{{\"origin\": \"pt\"}}', TRUE, 'SHOP POTTERY', \
                 '{{\"height\": 4, \"length\": 3.5, \"weight\": 12.25, \"width\": 3}}', ARRAY['Glazed', 'Hand made']); \
                 INSERT INTO shop.item_prices (item_sku, ccy, amount, label, tax, price_attrs) \
                 VALUES ('{id}', 'USD', {major}, 'standard', 'exclusive', '{{\"channel\": \"web\"}}')",
                major = major(amount)
            ),
            Backend::Sqlite => format!(
                "INSERT INTO products (product_no, label, details) VALUES ({id}, '{name}', 'Hand made'); \
                 INSERT INTO product_prices (product_no, currency, cents) VALUES ({id}, 'usd', {amount})"
            ),
        }
    }

    fn edit(&self, id: &str, name: &str, amount: i64) -> String {
        match self.backend {
            Backend::Postgres => format!(
                "UPDATE shop.items SET title = '{name}', modified_at = now() WHERE sku = '{id}'; \
                 UPDATE shop.item_prices SET amount = {major} WHERE item_sku = '{id}'",
                major = major(amount)
            ),
            Backend::Sqlite => format!(
                "UPDATE products SET label = '{name}', changed_at = strftime('%Y-%m-%d %H:%M:%f', 'now') \
                 WHERE product_no = {id}; \
                 UPDATE product_prices SET cents = {amount} WHERE product_no = {id}"
            ),
        }
    }

    /// Another price for a product, as the shop's application adds one (touching its product).
    fn add_price(&self, id: &str, currency: &str, amount: i64) -> String {
        match self.backend {
            Backend::Postgres => format!(
                "INSERT INTO shop.item_prices (item_sku, ccy, amount, rank) \
                 VALUES ('{id}', '{currency}', {major}, 1); \
                 UPDATE shop.items SET modified_at = now() WHERE sku = '{id}'",
                major = major(amount)
            ),
            Backend::Sqlite => format!(
                "INSERT INTO product_prices (product_no, currency, cents) \
                 VALUES ({id}, '{currency}', {amount}); \
                 UPDATE products SET changed_at = strftime('%Y-%m-%d %H:%M:%f', 'now') \
                 WHERE product_no = {id}"
            ),
        }
    }

    /// One price soft-deleted alone, its product untouched (issue 34: `SET archived_at = now()`).
    fn archive_price(&self, id: &str, currency: &str) -> String {
        match self.backend {
            Backend::Postgres => format!(
                "UPDATE shop.item_prices SET archived_at = now() \
                 WHERE item_sku = '{id}' AND ccy = '{currency}'"
            ),
            Backend::Sqlite => format!(
                "UPDATE product_prices SET removed_at = strftime('%Y-%m-%d %H:%M:%f', 'now') \
                 WHERE product_no = {id} AND currency = '{currency}'"
            ),
        }
    }

    /// A rename whose `updated_at` is a day ahead of the database's clock (a writer with a wrong
    /// clock or time zone).
    fn rename_a_day_ahead(&self, id: &str, name: &str) -> String {
        match self.backend {
            Backend::Postgres => format!(
                "UPDATE shop.items SET title = '{name}', modified_at = now() + interval '1 day' \
                 WHERE sku = '{id}'"
            ),
            Backend::Sqlite => format!(
                "UPDATE products SET label = '{name}', \
                 changed_at = strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 day') WHERE product_no = {id}"
            ),
        }
    }

    fn delete(&self, id: &str) -> String {
        match self.backend {
            Backend::Postgres => format!(
                "UPDATE shop.items SET removed = TRUE, modified_at = now() WHERE sku = '{id}'"
            ),
            Backend::Sqlite => format!(
                "DELETE FROM product_prices WHERE product_no = {id}; DELETE FROM products WHERE product_no = {id}"
            ),
        }
    }

    /// The DDL of the shop's own tables: columns, indexes and triggers.
    async fn ddl(&self, catalog: &catalog::Catalog) -> Vec<String> {
        match catalog.db() {
            catalog::Db::Postgres(pool) => sqlx::query_scalar(
                "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type \
                   FROM information_schema.columns WHERE table_schema = 'shop' \
                 UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'shop' \
                 UNION ALL SELECT 'trigger ' || t.tgname || ' on ' || c.relname FROM pg_trigger t \
                   JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE n.nspname = 'shop' AND NOT t.tgisinternal \
                 ORDER BY 1",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
            catalog::Db::Sqlite(pool) => sqlx::query_scalar(
                "SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master \
                 WHERE tbl_name IN ('products', 'product_prices', 'listings', 'listing_prices') \
                 ORDER BY 1",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
        }
    }

    /// Whether catalog-sync's built-in tables exist here (they must not, on a mapped catalog).
    async fn has_builtin_tables(&self, catalog: &catalog::Catalog) -> bool {
        let found: i64 = match catalog.db() {
            catalog::Db::Postgres(pool) => sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'catalog_products'",
            )
            .fetch_one(pool)
            .await
            .unwrap(),
            catalog::Db::Sqlite(pool) => sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'catalog_products'",
            )
            .fetch_one(pool)
            .await
            .unwrap(),
        };
        found > 0
    }
}

/// An amount in cents as the PostgreSQL shop stores it: in dollars (`amount_unit = "major"`).
fn major(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

pub(super) async fn execute(catalog: &catalog::Catalog, sql: &str) {
    match catalog.db() {
        catalog::Db::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        catalog::Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub(super) fn starter(shop: &Shop, sandbox: &Sandbox, queue: &str, args: &[&str]) -> Output {
    Command::new(harness::binary("starter"))
        .args(args)
        .env("TEMPORAL_ADDRESS", harness::temporal_address())
        .env("CATALOG_DATABASE_URL", &shop.url)
        .env("CATALOG_SYNC_CONFIG", &shop.config)
        .env("CATALOG_SYNC_TASK_QUEUE", queue)
        .env("STRIPE_API_BASE", &sandbox.base)
        .env("STRIPE_API_KEY", &sandbox.key)
        .output()
        .expect("starter runs")
}

/// The worker on the shop's catalog and mapping.
pub(super) fn start_worker(shop: &Shop, sandbox: &Sandbox, queue: &str) -> Running {
    Running(
        worker_command(&shop.url, sandbox, queue)
            .env("CATALOG_SYNC_CONFIG", &shop.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The relay on the shop's catalog and mapping, capturing as `capture` says.
fn relay_command(shop: &Shop, queue: &str, capture: Capture) -> Command {
    let mut relay = Command::new(harness::binary("relay"));
    relay
        .env("TEMPORAL_ADDRESS", harness::temporal_address())
        .env("CATALOG_DATABASE_URL", &shop.url)
        .env("CATALOG_SYNC_CONFIG", &shop.config)
        .env("CATALOG_SYNC_TASK_QUEUE", queue)
        .env("CATALOG_SYNC_RELAY_POLL_MS", "200")
        .env(
            "CATALOG_SYNC_CAPTURE",
            match capture {
                Capture::Polling => "polling",
                Capture::Triggers => "triggers",
            },
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    relay
}

pub(super) fn ok(out: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}: {text}");
    text
}

/// Stripe's view of a product: (name, active, default price amount).
async fn in_stripe(sandbox: &Sandbox, id: &str) -> Option<(String, bool, Option<i64>)> {
    let product = sandbox.product(id).await?;
    Some((
        product["name"].as_str().unwrap_or_default().to_string(),
        product["active"].as_bool().unwrap_or_default(),
        product["default_price"]["unit_amount"].as_i64(),
    ))
}

async fn until_stripe_shows(sandbox: &Sandbox, id: &str, want: (&str, bool, Option<i64>)) {
    let want = (want.0.to_string(), want.1, want.2);
    eventually(
        Duration::from_secs(60),
        &format!("{id} in Stripe as {want:?}"),
        || {
            let want = want.clone();
            async move { (in_stripe(sandbox, id).await.as_ref() == Some(&want)).then_some(()) }
        },
    )
    .await;
}

/// Waits until the product's active prices in Stripe are in exactly these currencies.
async fn until_active_prices(sandbox: &Sandbox, id: &str, currencies: &[&str]) {
    eventually(
        Duration::from_secs(60),
        &format!("{id}'s active prices in {currencies:?}"),
        || async {
            let (_, list) = sandbox
                .get(&format!("/v1/prices?product={id}&active=true&limit=100"))
                .await;
            let mut have: Vec<String> = list["data"]
                .as_array()?
                .iter()
                .filter_map(|p| p["currency"].as_str().map(str::to_string))
                .collect();
            have.sort();
            (have == currencies).then_some(())
        },
    )
    .await;
}

async fn adopt_a_foreign_catalog(
    backend: Backend,
    capture: Capture,
    shop_sql: &str,
    mapping: &str,
    ids: [&str; 3],
) {
    let url = harness::fresh_database(backend).await;
    let shop = Shop::new(backend, &url, mapping);
    let db = catalog::Catalog::open(&url).await.unwrap();
    execute(&db, shop_sql).await;
    execute(&db, &shop.add(ids[0], "Mug", 1200)).await;
    execute(&db, &shop.add(ids[1], "Bowl", 1800)).await;
    let original = shop.ddl(&db).await;

    let sandbox = Sandbox::start().await;
    let queue = unique("own-catalog");

    // migrate: catalog-sync's own tables, and nothing of the shop's; no built-in tables.
    let migrated = ok(starter(&shop, &sandbox, &queue, &["migrate"]), "migrate");
    assert!(migrated.contains("applied own 1"), "{migrated}");
    assert!(!migrated.contains("builtin"), "{migrated}");
    assert_eq!(
        shop.ddl(&db).await,
        original,
        "migrate touched the shop's tables"
    );
    assert!(!shop.has_builtin_tables(&db).await);

    if capture == Capture::Triggers {
        // A relay in triggers mode before `capture install` would relay nothing: it refuses to
        // start, naming the tables and the command.
        let refused = Command::new(harness::binary("relay"))
            .env("TEMPORAL_ADDRESS", harness::temporal_address())
            .env("CATALOG_DATABASE_URL", &url)
            .env("CATALOG_SYNC_CONFIG", &shop.config)
            .env("CATALOG_SYNC_TASK_QUEUE", &queue)
            .env("CATALOG_SYNC_CAPTURE", "triggers")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{said}");
        assert!(
            said.contains("no catalog-sync capture triggers")
                && said.contains("starter capture install")
                && said.contains("CATALOG_SYNC_CAPTURE=polling"),
            "{said}"
        );
        // --print shows the triggers and changes nothing; install adds them and only them.
        let printed = ok(
            starter(&shop, &sandbox, &queue, &["capture", "install", "--print"]),
            "capture install --print",
        );
        assert!(printed.contains("CREATE TRIGGER"), "{printed}");
        assert_eq!(shop.ddl(&db).await, original, "--print changed the schema");
        ok(
            starter(&shop, &sandbox, &queue, &["capture", "install"]),
            "capture install",
        );
        let installed = shop.ddl(&db).await;
        let added: Vec<&String> = installed.iter().filter(|l| !original.contains(l)).collect();
        assert!(!added.is_empty(), "no trigger installed");
        assert!(
            added
                .iter()
                .all(|l| l.starts_with("trigger") && l.contains("catalog_sync_capture")),
            "capture install added more than its triggers: {added:?}"
        );
        assert!(original.iter().all(|l| installed.contains(l)));
    }

    let worker = start_worker(&shop, &sandbox, &queue);
    let relay_metrics = format!("http://127.0.0.1:{}/metrics", harness::free_port());
    let mut relay = relay_command(&shop, &queue, capture);
    relay
        .env(
            "CATALOG_SYNC_METRICS_ADDR",
            relay_metrics
                .trim_start_matches("http://")
                .trim_end_matches("/metrics"),
        )
        .env("CATALOG_SYNC_POLL_INTERVAL_MS", "200")
        .env("CATALOG_SYNC_POLL_DIFF_SECS", "1");
    let relay = Running(relay.spawn().unwrap());

    if capture == Capture::Polling {
        // The poller's first pass records the catalog as it is; the backfill comes after it.
        eventually(
            Duration::from_secs(30),
            "the poller's first pass",
            || async {
                let cursors = match db.db() {
                    catalog::Db::Postgres(pool) => {
                        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM catalog_sync.cursors")
                            .fetch_one(pool)
                            .await
                    }
                    catalog::Db::Sqlite(pool) => {
                        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM catalog_sync_cursors")
                            .fetch_one(pool)
                            .await
                    }
                };
                (cursors.unwrap_or(0) > 0).then_some(())
            },
        )
        .await;
    }
    // The rows that were there before: a backfill.
    let synced = ok(
        starter(&shop, &sandbox, &queue, &["sync", "--all", "--wait"]),
        "sync --all",
    );
    assert!(synced.contains("done: 2 synced"), "{synced}");
    until_stripe_shows(&sandbox, ids[0], ("Mug", true, Some(1200))).await;
    let mug = sandbox.product(ids[0]).await.unwrap();
    assert_eq!(mug["description"], "Hand made");
    if backend == Backend::Postgres {
        assert_eq!(
            mug["images"][0],
            format!("https://img.example/{}.png", ids[0]),
            "{mug}"
        );
        assert_eq!(mug["metadata"]["origin"], "pt", "{mug}");
        assert_eq!(
            (&mug["shippable"], &mug["statement_descriptor"]),
            (&json!(true), &json!("SHOP POTTERY")),
            "{mug}"
        );
        assert_eq!(mug["package_dimensions"]["weight"], 12.25, "{mug}");
        assert_eq!(mug["marketing_features"][1]["name"], "Hand made", "{mug}");
        let price = &mug["default_price"];
        assert_eq!(
            (&price["tax_behavior"], &price["metadata"]["channel"]),
            (&json!("exclusive"), &json!("web")),
            "{mug}"
        );
    }

    // Captured from here on: a new product, a sale and its end (A→B→A), a deletion.
    execute(&db, &shop.add(ids[2], "Plate", 900)).await;
    until_stripe_shows(&sandbox, ids[2], ("Plate", true, Some(900))).await;
    execute(&db, &shop.edit(ids[0], "Mug (sale)", 900)).await;
    until_stripe_shows(&sandbox, ids[0], ("Mug (sale)", true, Some(900))).await;
    execute(&db, &shop.edit(ids[0], "Mug", 1200)).await;
    until_stripe_shows(&sandbox, ids[0], ("Mug", true, Some(1200))).await;
    if capture == Capture::Polling {
        // A row whose clock runs a day ahead syncs, and does not blind the poller to the edits
        // after it (the cursor stays at the database's own now()).
        execute(&db, &shop.rename_a_day_ahead(ids[2], "Plate (tomorrow)")).await;
        until_stripe_shows(&sandbox, ids[2], ("Plate (tomorrow)", true, Some(900))).await;
        execute(&db, &shop.edit(ids[0], "Mug (after tomorrow)", 1200)).await;
        until_stripe_shows(&sandbox, ids[0], ("Mug (after tomorrow)", true, Some(1200))).await;
        execute(&db, &shop.edit(ids[0], "Mug", 1200)).await;
        until_stripe_shows(&sandbox, ids[0], ("Mug", true, Some(1200))).await;
    }
    // A second price, then soft-deleted alone (the price table's own `deleted` key): its Stripe
    // price is archived, the product and its other price stay.
    execute(&db, &shop.add_price(ids[0], "eur", 1100)).await;
    until_active_prices(&sandbox, ids[0], &["eur", "usd"]).await;
    execute(&db, &shop.archive_price(ids[0], "eur")).await;
    until_active_prices(&sandbox, ids[0], &["usd"]).await;
    until_stripe_shows(&sandbox, ids[0], ("Mug", true, Some(1200))).await;
    // `catalog show`: the row as catalog-sync reads it, after the mapping (the soft-deleted
    // price left out), and whether it would sync.
    let shown = starter(&shop, &sandbox, &queue, &["catalog", "show", ids[0]]);
    let said = String::from_utf8_lossy(&shown.stderr);
    assert_eq!(shown.status.code(), Some(0), "{said}");
    let row: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(row["name"], "Mug", "{row}");
    assert_eq!(row["prices"].as_array().map(Vec::len), Some(1), "{row}");
    assert!(
        said.contains("would sync") && said.contains("1 price(s)"),
        "{said}"
    );

    execute(&db, &shop.delete(ids[1])).await;
    eventually(
        Duration::from_secs(60),
        "the deleted product archived",
        || async {
            let archived = in_stripe(&sandbox, ids[1])
                .await
                .is_some_and(|(_, active, _)| !active);
            archived.then_some(())
        },
    )
    .await;

    match backend {
        // A row of the wrong type (SQLite keeps text in an integer column) is reported with its
        // field and nothing is written; once the shop fixes it, it syncs.
        Backend::Sqlite => {
            let bad = format!("{}9", ids[0]);
            execute(
                &db,
                &format!(
                    "INSERT INTO products (product_no, label) VALUES ({bad}, 'Cup'); \
                     INSERT INTO product_prices (product_no, currency, cents) VALUES ({bad}, 'usd', 'twelve')"
                ),
            )
            .await;
            let out = starter(&shop, &sandbox, &queue, &["sync", &bad, "--wait"]);
            let reported = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // A product that did not sync fails the command (a deploy step stops here).
            assert_eq!(out.status.code(), Some(4), "{reported}");
            assert!(
                reported.contains("invalid") && reported.contains("prices[0].unit_amount"),
                "{reported}"
            );
            assert!(
                sandbox.product(&bad).await.is_none(),
                "a bad row reached Stripe"
            );
            execute(&db, &shop.edit(&bad, "Cup", 1250)).await;
            until_stripe_shows(&sandbox, &bad, ("Cup", true, Some(1250))).await;
        }
        // The longest id Stripe takes (100 characters) in a varchar column.
        Backend::Postgres => {
            let longest = format!("{}{}", &ids[0][..6], "x".repeat(94));
            assert_eq!(longest.len(), 100);
            execute(&db, &shop.add(&longest, "Long", 700)).await;
            until_stripe_shows(&sandbox, &longest, ("Long", true, Some(700))).await;
        }
    }

    // A reconciliation finds nothing to repair, and verify no difference.
    // Its own workflow id: the default (`reconcile-<ms>`) is shared by runs started in one ms.
    let workflow_id = format!("reconcile-{queue}");
    let out = starter(
        &shop,
        &sandbox,
        &queue,
        &["reconcile", "--json", "--id", &workflow_id],
    );
    let result: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{result}");
    let totals = &result["totals"];
    assert_eq!(totals["scanned"], totals["in_sync"], "{result}");
    let verified = ok(starter(&shop, &sandbox, &queue, &["verify"]), "verify");
    assert!(verified.contains(" 0 differences"), "{verified}");

    // `status` shows how changes are captured and when one was last relayed (recorded with
    // the relay's heartbeat, every 5 s).
    let status = || {
        let out = starter(
            &shop,
            &sandbox,
            &queue,
            &["status", "--json", "--max-relay-lag", "1000d"],
        );
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), report)
    };
    let report = eventually(
        Duration::from_secs(30),
        "a relayed change recorded",
        || async {
            let (_, report) = tokio::task::block_in_place(status);
            report["capture"]["last_relayed_age_seconds"]
                .is_number()
                .then_some(report)
        },
    )
    .await;
    let recorded = &report["capture"];
    let mode = if capture == Capture::Polling {
        "polling"
    } else {
        "triggers"
    };
    assert_eq!(recorded["mode"], mode, "{report:#}");
    assert_eq!(
        recorded["tables_with_triggers"].as_array().map(Vec::len),
        Some(if capture == Capture::Triggers { 2 } else { 0 }),
        "{report:#}"
    );

    // The relay's gauge of its capture, for alerts: polling's last pass is seconds old.
    let gauge = |name: &'static str| {
        let relay_metrics = relay_metrics.clone();
        async move {
            let text = reqwest::get(&relay_metrics).await.ok()?.text().await.ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
        }
    };
    if capture == Capture::Polling {
        let last_pass = eventually(Duration::from_secs(20), "polling's last pass", || {
            gauge("catalog_sync_capture_last_pass_timestamp_seconds")
        })
        .await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (now - last_pass).abs() < 30.0,
            "last pass {last_pass}, now {now}"
        );
    }

    // uninstall leaves the shop's schema as it was; polling never touched it. A relay still
    // capturing with triggers then captures nothing: status says so, and so does its gauge.
    if capture == Capture::Triggers {
        ok(
            starter(&shop, &sandbox, &queue, &["capture", "uninstall"]),
            "capture uninstall",
        );
        let (code, report) = tokio::task::block_in_place(status);
        assert_eq!(code, Some(1), "{report:#}");
        let problems = report["problems"].to_string();
        assert!(
            problems.contains("no catalog-sync capture triggers")
                && problems.contains("starter capture install"),
            "{report:#}"
        );
        eventually(
            Duration::from_secs(20),
            "the relay sees the triggers gone",
            || async {
                (gauge("catalog_sync_capture_missing_triggers").await? == 2.0).then_some(())
            },
        )
        .await;
    }
    assert_eq!(shop.ddl(&db).await, original, "the shop's schema changed");
    // A relay that stopped captures nothing: status says so once its heartbeat is stale, even
    // with no change waiting (polling leaves none behind).
    drop(relay);
    if capture == Capture::Polling && backend == Backend::Postgres {
        eventually(Duration::from_secs(60), "status sees no relay", || async {
            let (code, report) = tokio::task::block_in_place(status);
            let said = report["problems"].to_string();
            (code == Some(1) && said.contains("no relay has been seen")).then_some(())
        })
        .await;
    }
    drop(worker);
    if let Some(dir) = shop.config.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_postgres_catalog_with_soft_deletes_syncs_through_capture_triggers() {
    adopt_a_foreign_catalog(
        Backend::Postgres,
        Capture::Triggers,
        POSTGRES_SHOP,
        POSTGRES_MAPPING,
        ["own-t-1", "own-t-2", "own-t-3"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_sqlite_catalog_with_hard_deletes_syncs_through_capture_triggers() {
    adopt_a_foreign_catalog(
        Backend::Sqlite,
        Capture::Triggers,
        SQLITE_SHOP,
        SQLITE_MAPPING,
        ["7101", "7102", "7103"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_postgres_catalog_syncs_through_polling_capture_without_triggers() {
    adopt_a_foreign_catalog(
        Backend::Postgres,
        Capture::Polling,
        POSTGRES_SHOP,
        POSTGRES_MAPPING,
        ["own-p-1", "own-p-2", "own-p-3"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_sqlite_catalog_with_hard_deletes_syncs_through_polling_capture() {
    let mapping = SQLITE_MAPPING.replace(
        "active = \"enabled\"\n",
        "active = \"enabled\"\nupdated_at = \"changed_at\"\n",
    );
    assert_ne!(mapping, SQLITE_MAPPING);
    adopt_a_foreign_catalog(
        Backend::Sqlite,
        Capture::Polling,
        SQLITE_SHOP,
        &mapping,
        ["7201", "7202", "7203"],
    )
    .await;
}

/// A mapping that names a missing table or column, or a column of the wrong type, stops
/// `starter migrate` and the worker at start with the setting's exact name, before anything is
/// created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_mapping_is_refused_at_start_with_the_setting_named() {
    let url = harness::fresh_database(Backend::Postgres).await;
    let db = catalog::Catalog::open(&url).await.unwrap();
    execute(&db, POSTGRES_SHOP).await;
    let dir = std::env::temp_dir().join(unique("bad-mapping"));
    std::fs::create_dir_all(&dir).unwrap();
    let sandbox = Sandbox::start().await;
    let cases = [
        (
            ("table = \"shop.items\"", "table = \"shop.itemz\""),
            vec!["catalog.products cannot be read", "shop", "itemz"],
        ),
        (
            ("name = \"title\"", "name = \"titel\""),
            vec![
                "catalog.products.name = \"titel\"",
                "no such column",
                "sku, title",
            ],
        ),
        (
            ("active = \"listed\"", "active = \"title\""),
            vec!["catalog.products.active = \"title\"", "it needs a boolean"],
        ),
        (
            ("amount_unit = \"major\"", "amount_unit = \"minor\""),
            vec![
                "catalog.prices.unit_amount = \"amount\"",
                "needs amount_unit = \"major\"",
            ],
        ),
        (("[catalog.prices]", "[catalog.pricez]"), vec!["pricez"]),
    ];
    for ((from, to), expected) in cases {
        let config = dir.join("catalog-sync.toml");
        std::fs::write(&config, POSTGRES_MAPPING.replacen(from, to, 1)).unwrap();
        let shop = Shop {
            backend: Backend::Postgres,
            url: url.clone(),
            config: config.clone(),
        };
        let out = starter(&shop, &sandbox, "unused", &["migrate"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{to}: {stderr}");
        for needle in &expected {
            assert!(
                stderr.contains(needle),
                "{to}: expected {needle:?} in {stderr}"
            );
        }
    }
    // Nothing was created by any of those runs; the worker refuses the same way.
    let own: i64 = match db.db() {
        catalog::Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_namespace WHERE nspname = 'catalog_sync'")
                .fetch_one(pool)
                .await
                .unwrap()
        }
        catalog::Db::Sqlite(_) => unreachable!(),
    };
    assert_eq!(own, 0, "a refused migrate created catalog-sync's schema");
    let out = worker_command(&url, &sandbox, "unused")
        .env("CATALOG_SYNC_CONFIG", dir.join("catalog-sync.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("pricez"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A shop whose mapping needs queries (hidden listings and archived prices filtered out, the id
/// renamed) keeps trigger capture: `capture_table` names the table each query follows and
/// `capture_key` its product id column. Edits made by raw SQL on those tables (a price archived
/// alone, a rename, a listing hidden) reach Stripe through the triggers, and `capture uninstall`
/// leaves the tables as they were.
async fn query_mapping_with_capture_tables(backend: Backend, ids: [&str; 2]) {
    let url = harness::fresh_database(backend).await;
    let dir = std::env::temp_dir().join(unique("query-capture"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("catalog-sync.toml");
    // PostgreSQL's tables in the shop's schema (where `Shop::ddl` looks).
    let schema = if backend == Backend::Postgres {
        "shop."
    } else {
        ""
    };
    std::fs::write(
        &config,
        format!(
            r#"
[catalog.products]
query = "SELECT sku AS id, title FROM {schema}listings WHERE NOT hidden"
id = "id"
name = "title"
capture_table = "{schema}listings"
capture_key = "sku"

[catalog.prices]
query = "SELECT listing_sku, currency, cents FROM {schema}listing_prices WHERE archived_at IS NULL"
product_id = "listing_sku"
currency = "currency"
unit_amount = "cents"
capture_table = "{schema}listing_prices"
"#
        ),
    )
    .unwrap();
    let shop = Shop {
        backend,
        url: url.clone(),
        config,
    };
    let db = catalog::Catalog::open(&url).await.unwrap();
    let [a, b] = ids;
    execute(
        &db,
        &format!(
            "{create_schema}CREATE TABLE {schema}listings (sku TEXT PRIMARY KEY, title TEXT NOT NULL, \
               hidden BOOLEAN NOT NULL DEFAULT FALSE); \
             CREATE TABLE {schema}listing_prices (listing_sku TEXT NOT NULL, currency TEXT NOT NULL, \
               cents INTEGER NOT NULL, archived_at TEXT); \
             INSERT INTO {schema}listings (sku, title) VALUES ('{a}', 'Lamp'), ('{b}', 'Shade'); \
             INSERT INTO {schema}listing_prices (listing_sku, currency, cents) \
               VALUES ('{a}', 'usd', 4000), ('{a}', 'eur', 3800), ('{b}', 'usd', 1500);",
            create_schema = if schema.is_empty() { "" } else { "CREATE SCHEMA shop; " }
        ),
    )
    .await;
    let original = shop.ddl(&db).await;
    let sandbox = Sandbox::start().await;
    let queue = unique("query-capture");
    ok(starter(&shop, &sandbox, &queue, &["migrate"]), "migrate");
    let printed = ok(
        starter(&shop, &sandbox, &queue, &["capture", "install", "--print"]),
        "capture install --print",
    );
    assert!(
        printed.contains("listing_prices") && printed.contains("sku"),
        "{printed}"
    );
    ok(
        starter(&shop, &sandbox, &queue, &["capture", "install"]),
        "capture install",
    );
    let installed = shop.ddl(&db).await;
    let added: Vec<&String> = installed.iter().filter(|l| !original.contains(l)).collect();
    assert!(
        added.len() >= 2
            && added
                .iter()
                .all(|l| l.starts_with("trigger") && l.contains("catalog_sync_capture")),
        "capture install added {added:?}"
    );
    let _worker = start_worker(&shop, &sandbox, &queue);
    let _relay = Running(
        relay_command(&shop, &queue, Capture::Triggers)
            .spawn()
            .unwrap(),
    );
    let synced = ok(
        starter(&shop, &sandbox, &queue, &["sync", "--all", "--wait"]),
        "sync --all",
    );
    assert!(synced.contains("done: 2 synced"), "{synced}");
    until_active_prices(&sandbox, a, &["eur", "usd"]).await;

    // Each edit by raw SQL on one table, nothing else touched.
    execute(
        &db,
        &format!(
            "UPDATE {schema}listing_prices SET archived_at = 'now' \
             WHERE listing_sku = '{a}' AND currency = 'eur'"
        ),
    )
    .await;
    until_active_prices(&sandbox, a, &["usd"]).await;
    execute(
        &db,
        &format!("UPDATE {schema}listings SET title = 'Desk lamp' WHERE sku = '{a}'"),
    )
    .await;
    until_stripe_shows(&sandbox, a, ("Desk lamp", true, Some(4000))).await;
    execute(
        &db,
        &format!("UPDATE {schema}listings SET hidden = TRUE WHERE sku = '{b}'"),
    )
    .await;
    until_stripe_shows(&sandbox, b, ("Shade", false, Some(1500))).await;

    ok(
        starter(&shop, &sandbox, &queue, &["capture", "uninstall"]),
        "capture uninstall",
    );
    assert_eq!(
        shop.ddl(&db).await,
        original,
        "uninstall left the tables as they were"
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_mapping_keeps_trigger_capture_through_its_capture_tables_postgres() {
    query_mapping_with_capture_tables(Backend::Postgres, ["qc-pg-1", "qc-pg-2"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_mapping_keeps_trigger_capture_through_its_capture_tables_sqlite() {
    query_mapping_with_capture_tables(Backend::Sqlite, ["qc-sq-1", "qc-sq-2"]).await;
}
