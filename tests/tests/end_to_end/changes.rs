//! Change capture end to end: the outbox triggers, the relay (in process and as the `relay`
//! binary), against a real Temporal dev server, the in-process worker, the sandbox and both
//! catalog backends.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use catalog::{CapturedChange, Catalog};
use harness::{Backend, TestEnv, binary, eventually, temporal_address};
use relay::RelayOptions;
use serde_json::json;
use workflows::SyncOutcome;

const INSPECTOR: &str = "test-inspector";

/// Takes every pending change (as a relay would), so the test can look at them, and deletes them.
async fn drain(catalog: &Catalog) -> Vec<CapturedChange> {
    let changes = catalog
        .claim_changes(INSPECTOR, 10_000, Duration::from_secs(60))
        .await
        .unwrap();
    let seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
    catalog.ack_changes(INSPECTOR, &seqs).await.unwrap();
    changes
}

fn ops(changes: &[CapturedChange]) -> Vec<&str> {
    changes.iter().map(|c| c.op.as_str()).collect()
}

async fn every_write_is_captured_in_the_writers_transaction(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let catalog = &env.catalog;
    let mut product = env.sample(1);
    catalog.save_product(&product).await.unwrap();
    let created = drain(catalog).await;
    assert_eq!(created[0].op, "insert");
    assert!(created.iter().all(|c| c.product_id == product.id));
    let version = catalog
        .fetch_product(&product.id)
        .await
        .unwrap()
        .unwrap()
        .version;
    assert_eq!(
        created.last().unwrap().version,
        Some(version),
        "the last change carries the committed version: {created:?}"
    );

    product.name = "Renamed".into();
    catalog.save_product(&product).await.unwrap();
    let renamed = drain(catalog).await;
    assert_eq!(ops(&renamed), vec!["update"], "{renamed:?}");
    assert_eq!(renamed[0].version, Some(version + 1));

    // A price change alone is captured as an update of its product.
    product.prices[0].unit_amount += 100;
    catalog.save_product(&product).await.unwrap();
    let repriced = drain(catalog).await;
    assert!(!repriced.is_empty() && repriced.iter().all(|c| c.op == "update"));

    assert!(catalog.soft_delete(&product.id).await.unwrap());
    assert_eq!(ops(&drain(catalog).await), vec!["update"]);
    assert!(catalog.hard_delete(&product.id).await.unwrap());
    let deleted = drain(catalog).await;
    assert_eq!(ops(&deleted).last(), Some(&"delete"));
    assert_eq!(deleted.last().unwrap().version, None);

    // A transaction that rolls back leaves no change behind.
    let insert = "INSERT INTO catalog_products (id, name) VALUES ($1, 'never')";
    match catalog.db() {
        catalog::Db::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(insert)
                .bind(env.id(2))
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
        }
        catalog::Db::Sqlite(pool) => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(insert)
                .bind(env.id(2))
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
        }
    }
    assert!(drain(catalog).await.is_empty());
    assert_eq!(catalog.outbox_stats().await.unwrap().pending, 0);
}

#[tokio::test]
async fn every_write_is_captured_sqlite() {
    every_write_is_captured_in_the_writers_transaction(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_write_is_captured_postgres() {
    every_write_is_captured_in_the_writers_transaction(Backend::Postgres).await;
}

async fn claims_are_leases(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let catalog = &env.catalog;
    for n in 1..=3 {
        catalog.save_product(&env.sample(n)).await.unwrap();
    }
    let lease = Duration::from_millis(1500);
    let held = catalog.claim_changes("a", 1000, lease).await.unwrap();
    assert!(!held.is_empty());
    assert!(
        catalog
            .claim_changes("b", 1000, lease)
            .await
            .unwrap()
            .is_empty(),
        "a held change is not claimed by another relay"
    );
    let stats = catalog.outbox_stats().await.unwrap();
    assert_eq!(stats.pending, held.len() as i64);
    assert!(stats.oldest.is_some());

    // `a` gives two back: `b` gets exactly those.
    let back: Vec<i64> = held[..2].iter().map(|c| c.seq).collect();
    assert_eq!(catalog.release_changes("a", &back).await.unwrap(), 2);
    let taken: Vec<i64> = catalog
        .claim_changes("b", 1000, lease)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(taken, back);
    // `b` acknowledges them; `a` cannot acknowledge what it no longer holds.
    assert_eq!(catalog.ack_changes("a", &back).await.unwrap(), 0);
    assert_eq!(catalog.ack_changes("b", &back).await.unwrap(), 2);

    // `a` dies: when its lease ends, `c` takes the rest over, counted as a second attempt.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let taken_over = catalog.claim_changes("c", 1000, lease).await.unwrap();
    assert_eq!(taken_over.len(), held.len() - 2);
    assert!(taken_over.iter().all(|c| c.attempts == 2));

    // A refused change is set aside with its reason, and put back on request.
    let first = [taken_over[0].seq];
    catalog
        .fail_changes("c", &first, "refused for a test")
        .await
        .unwrap();
    let failed = catalog.failed_changes(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error, "refused for a test");
    assert_eq!(catalog.outbox_stats().await.unwrap().failed, 1);
    assert_eq!(catalog.retry_failed_changes().await.unwrap(), 1);
    assert_eq!(catalog.outbox_stats().await.unwrap().failed, 0);
}

#[tokio::test]
async fn claims_are_leases_sqlite() {
    claims_are_leases(Backend::Sqlite).await;
}

#[tokio::test]
async fn claims_are_leases_postgres() {
    claims_are_leases(Backend::Postgres).await;
}

async fn relayed_changes_reach_stripe_with_an_audit_trail(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let relay = env.spawn_relay(RelayOptions {
        poll_interval: Duration::from_millis(100),
        ..RelayOptions::default()
    });
    let products: Vec<_> = (1..=8).map(|n| env.sample(n)).collect();
    // A row whose id Temporal refuses (workflow ids are at most 1,000 characters): set aside with
    // the reason, and the others still sync.
    let refused = workflows::model::CatalogProduct {
        id: "x".repeat(1100),
        ..env.sample(99)
    };
    env.catalog.save_product(&refused).await.unwrap();
    env.catalog.save_products(&products).await.unwrap();
    for p in &products {
        eventually(
            Duration::from_secs(60),
            &format!("{} in Stripe", p.id),
            || async {
                env.sandbox
                    .product(&p.id)
                    .await
                    .filter(|s| s["name"] == json!(p.name))
            },
        )
        .await;
    }
    let mut edited = products[2].clone();
    edited.name = "Edited in the catalog".into();
    env.catalog.save_product(&edited).await.unwrap();
    eventually(Duration::from_secs(60), "the edit in Stripe", || async {
        env.sandbox
            .product(&edited.id)
            .await
            .filter(|s| s["name"] == json!("Edited in the catalog"))
    })
    .await;
    let result = env.result(&edited.id).await;
    assert_eq!(result.outcome, SyncOutcome::Synced);
    env.outbox_drained(Duration::from_secs(10)).await;
    let set_aside = env.catalog.failed_changes(10).await.unwrap();
    assert!(!set_aside.is_empty());
    assert!(
        set_aside.iter().all(|f| f.change.product_id == refused.id),
        "{set_aside:?}"
    );
    assert!(!set_aside[0].error.is_empty());

    // The ledger tells the product's story: created, then the name written, each with its
    // Stripe request ids, version, hash and workflow.
    let version = env
        .catalog
        .fetch_product(&edited.id)
        .await
        .unwrap()
        .unwrap()
        .version;
    let history = env.catalog.audit_history(&edited.id, 50).await.unwrap();
    let synced: Vec<_> = history
        .iter()
        .filter(|r| r.entry.outcome == "synced")
        .collect();
    assert!(synced.len() >= 2, "{history:#?}");
    assert!(
        synced[0]
            .entry
            .operations
            .contains(&"create_product".to_string())
    );
    let last = synced.last().unwrap();
    assert_eq!(last.entry.catalog_version, Some(version));
    assert_eq!(last.entry.operations, result.report.operations);
    assert_eq!(last.entry.request_ids, result.report.request_ids);
    assert_eq!(last.entry.request_ids.len(), last.entry.operations.len());
    assert_eq!(
        last.entry.workflow_id.as_deref(),
        Some(env.sync_id(&edited.id).as_str())
    );
    assert!(last.entry.run_id.is_some() && last.entry.content_hash.is_some());
    assert!(history.iter().all(|r| r.entry.product_id == edited.id));
    relay.stop().await;
}

#[tokio::test]
async fn relayed_changes_reach_stripe_sqlite() {
    relayed_changes_reach_stripe_with_an_audit_trail(Backend::Sqlite).await;
}

#[tokio::test]
async fn relayed_changes_reach_stripe_postgres() {
    relayed_changes_reach_stripe_with_an_audit_trail(Backend::Postgres).await;
}

async fn two_relays_never_hold_one_change(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let products: Vec<_> = (1..=40).map(|n| env.sample(n)).collect();
    env.catalog.save_products(&products).await.unwrap();
    for p in products.iter().step_by(3) {
        let mut p = p.clone();
        p.name.push_str(" (edited)");
        env.catalog.save_product(&p).await.unwrap();
    }
    let total = env.catalog.outbox_stats().await.unwrap().pending as usize;
    let options = |id: &str| RelayOptions {
        id: id.into(),
        batch_size: 7,
        ..RelayOptions::default()
    };
    let (one, two) = (env.relay(options("one")), env.relay(options("two")));
    let drain = |relay: relay::Relay| async move {
        let mut relayed = Vec::new();
        loop {
            // A catalog error is retried, as `Relay::run` does: two writers on one SQLite file
            // can get "database is locked" at once (a WAL snapshot conflict is not waited out).
            let report = match relay.relay_batch().await {
                Ok(report) => report,
                Err(e) => {
                    eprintln!("relay batch: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            assert_eq!(report.released, 0, "Temporal is up");
            relayed.extend(report.relayed);
            if report.claimed == 0 && report.held == 0 {
                return relayed;
            }
            if report.claimed == 0 {
                // Only held changes of hot products left: they go once quiet.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (a, b) = tokio::join!(drain(one), drain(two));
    assert!(!a.is_empty() && !b.is_empty(), "both relays took part");
    let all: BTreeSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(all.len(), a.len() + b.len(), "a change was relayed twice");
    assert_eq!(all.len(), total, "every change was relayed");
    assert_eq!(env.catalog.outbox_stats().await.unwrap().pending, 0);
    for p in &products {
        let result = env.result(&p.id).await;
        assert_ne!(result.outcome, SyncOutcome::Failed, "{}", p.id);
        let name = env
            .catalog
            .fetch_product(&p.id)
            .await
            .unwrap()
            .unwrap()
            .name;
        assert_eq!(
            env.sandbox.product(&p.id).await.unwrap()["name"],
            json!(name)
        );
    }
}

#[tokio::test]
async fn two_relays_never_hold_one_change_sqlite() {
    two_relays_never_hold_one_change(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_relays_never_hold_one_change_postgres() {
    two_relays_never_hold_one_change(Backend::Postgres).await;
}

/// 100 edits of one product within a second, through the outbox: at most two Stripe writes, and
/// Stripe ends at the last edit.
async fn a_burst_of_edits_costs_two_writes(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let relay = env.spawn_relay(RelayOptions::default());
    let mut product = env.sample(1);
    env.catalog.save_product(&product).await.unwrap();
    let created = env.result_when_settled(&product.id).await;
    assert_eq!(created.outcome, SyncOutcome::Synced);
    let writes_before = env.writes().await;
    let started = std::time::Instant::now();
    for n in 1..=100 {
        product.name = format!("Burst edit {n}");
        env.catalog.save_product(&product).await.unwrap();
        tokio::time::sleep(Duration::from_millis(8)).await;
    }
    let took = started.elapsed();
    eventually(
        Duration::from_secs(60),
        "the last edit in Stripe",
        || async {
            env.sandbox
                .product(&product.id)
                .await
                .filter(|s| s["name"] == json!("Burst edit 100"))
        },
    )
    .await;
    let last = env.result_when_settled(&product.id).await;
    let writes = env.writes().await - writes_before;
    assert!(
        writes <= 2,
        "100 edits in {took:?} caused {writes} Stripe writes; last pass: {last:?}"
    );
    env.assert_no_failed_workflow_tasks(&env.sync_id(&product.id))
        .await;
    if matches!(backend, Backend::Sqlite) {
        env.record_history(&env.sync_id(&product.id), "product_sync_settled_burst")
            .await;
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_burst_of_edits_costs_two_writes_sqlite() {
    a_burst_of_edits_costs_two_writes(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_burst_of_edits_costs_two_writes_postgres() {
    a_burst_of_edits_costs_two_writes(Backend::Postgres).await;
}

/// The `relay` binary is SIGKILLed in the middle of its work; another takes the changes over when
/// the lease ends, and every product reaches Stripe.
#[tokio::test]
async fn a_killed_relay_loses_nothing() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let products: Vec<_> = (1..=150).map(|n| env.sample(n)).collect();
    for chunk in products.chunks(10) {
        env.catalog.save_products(chunk).await.unwrap();
    }
    let total = env.catalog.outbox_stats().await.unwrap().pending;
    let metrics_port = harness::free_port();
    let relay_command = || {
        let mut command = Command::new(binary("relay"));
        command
            .env(
                "CATALOG_SYNC_METRICS_ADDR",
                format!("127.0.0.1:{metrics_port}"),
            )
            .env("CATALOG_DATABASE_URL", &env.catalog_url)
            .env("CATALOG_SYNC_TASK_QUEUE", &env.worker.task_queue)
            .env("TEMPORAL_ADDRESS", temporal_address())
            .env("CATALOG_SYNC_RELAY_BATCH", "10")
            .env("CATALOG_SYNC_RELAY_LEASE_SECS", "2")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let mut first = relay_command().spawn().unwrap();
    // Kill it once it has relayed some and holds a claim on more.
    eventually(Duration::from_secs(60), "the relay at work", || async {
        let stats = env.catalog.outbox_stats().await.unwrap();
        (stats.pending < total).then_some(())
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    let left = env.catalog.outbox_stats().await.unwrap().pending;
    assert!(
        left > 0,
        "killed after it had finished: nothing was left to lose"
    );

    // The second relay also serves change ingest, as deployed.
    let http_port = harness::free_port();
    let mut second = relay_command()
        .env("CATALOG_SYNC_LISTEN", format!("127.0.0.1:{http_port}"))
        .env("CATALOG_SYNC_INGEST_TOKENS", "token-e2e")
        .spawn()
        .unwrap();
    // Drained by the second relay.
    env.outbox_drained(Duration::from_secs(60)).await;
    // The relay's metrics: what it relayed, and the (now empty) outbox.
    let metrics = eventually(Duration::from_secs(20), "relay metrics", || async {
        let url = format!("http://127.0.0.1:{metrics_port}/metrics");
        let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
        (text.contains("catalog_sync_relay_pending") && text.contains("catalog_sync_relay_lag"))
            .then_some(text)
    })
    .await;
    assert!(
        metrics.contains("catalog_sync_relay_changes_total{result=\"relayed\""),
        "{metrics}"
    );
    let ingest = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http_port}/v1/changes"))
        .bearer_auth("token-e2e")
        .json(&json!({ "product_ids": [products[0].id] }))
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), 202);
    second.kill().unwrap();
    second.wait().unwrap();
    for p in &products {
        eventually(
            Duration::from_secs(60),
            &format!("{} in Stripe", p.id),
            || async {
                env.sandbox
                    .product(&p.id)
                    .await
                    .filter(|s| s["name"] == json!(p.name))
            },
        )
        .await;
    }
}

/// On PostgreSQL the relay is woken by `NOTIFY` at commit: with a 60 s poll interval, a change
/// still reaches Stripe long before the relay would have looked again.
#[tokio::test]
async fn postgres_notifications_wake_the_relay() {
    let env = TestEnv::start(Backend::Postgres).await;
    let relay = env.spawn_relay(RelayOptions {
        poll_interval: Duration::from_secs(60),
        ..RelayOptions::default()
    });
    // It listens before its first heartbeat: once that is recorded, a notification wakes it.
    eventually(Duration::from_secs(20), "the relay listening", || async {
        let live = env
            .catalog
            .live_relays(Duration::from_secs(60))
            .await
            .unwrap();
        (live > 0).then_some(())
    })
    .await;
    let product = env.sample(1);
    env.catalog.save_product(&product).await.unwrap();
    eventually(Duration::from_secs(20), "woken by NOTIFY", || async {
        env.sandbox.product(&product.id).await
    })
    .await;
    relay.stop().await;
}
