//! The outbox relay: claims captured catalog changes, signals each product's sync once per batch
//! (however many changes it had), and deletes the changes only after Temporal accepted.
//!
//! A product that was just signalled and keeps changing (a burst of edits, a bulk import touching
//! it repeatedly) is *held*: its new changes stay claimed until it has been quiet for
//! [`RelayOptions::quiet`] (at most [`RelayOptions::max_hold`]), then one signal covers them all.
//! So a burst costs its first write at once and one more when it ends, not one per batch. An
//! edit of a product nobody touched for [`RelayOptions::hot`] is signalled at once.
//!
//! At least once, and never twice at the same time: a claim is a lease (see `catalog::outbox`), so
//! a relay that crashes mid-batch leaves its changes to be taken over when the lease ends, and two
//! relays never hold one change together. While Temporal is unavailable, changes are given back and
//! wait in the table; the relay backs off and tries again.
//!
//! Over 500 lines with its unit tests (the code is under 500): the lease and batching tests stay
//! beside the loop they check.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use catalog::{CapturedChange, Catalog, CatalogError, RELAY_HEARTBEAT_INTERVAL};
use common::metrics::Metrics;
use futures::StreamExt;

use crate::signal::{SignalError, Signaller};

/// What `catalog_sync_relay_changes_total` counts a change as: handed to Temporal, given back
/// (Temporal away), stranded (its run's queue has no worker) or rejected (Temporal refused it).
const RELAYED: &str = "relayed";
const RELEASED: &str = "released";
const STRANDED: &str = "stranded";
const REJECTED: &str = "rejected";
/// Every result counted (the metrics start each at 0).
pub const RESULTS: [&str; 4] = [RELAYED, RELEASED, STRANDED, REJECTED];

/// How a relay claims and waits.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// This relay's name in `claimed_by` (unique per process).
    pub id: String,
    /// Changes claimed at once.
    pub batch_size: i64,
    /// How long a claim holds: longer than a batch takes, shorter than you would wait for a
    /// crashed relay's changes to be taken over.
    pub lease: Duration,
    /// How often to look for changes when not woken by a notification (PostgreSQL notifies; on
    /// SQLite this is the latency floor).
    pub poll_interval: Duration,
    /// Signals in flight at once.
    pub concurrency: usize,
    /// Longest pause after Temporal was unavailable.
    pub max_backoff: Duration,
    /// A product signalled this recently is hot: its next changes are held until quiet.
    pub hot: Duration,
    /// A held product is signalled once no new change of it arrived for this long…
    pub quiet: Duration,
    /// …or once it has been held this long. Keep it well under `lease`.
    pub max_hold: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            id: default_relay_id(),
            batch_size: 500,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
            concurrency: 32,
            max_backoff: Duration::from_secs(10),
            hot: Duration::from_secs(1),
            quiet: Duration::from_millis(300),
            max_hold: Duration::from_secs(5),
        }
    }
}

/// `relay-{host}-{pid}-{random}`.
pub fn default_relay_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "relay-{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Changes claimed.
    pub claimed: usize,
    /// Products signalled (one signal per product, however many changes).
    pub products: usize,
    /// Changes delivered and deleted.
    pub relayed: Vec<i64>,
    /// Changes given back because Temporal was unavailable.
    pub released: usize,
    /// Changes set aside because Temporal refused them, with the reason.
    pub rejected: Vec<(String, String)>,
    /// Changes held (claimed, not yet signalled) because their product is hot, after this batch.
    pub held: usize,
    /// Changes kept claimed until their lease ends because the product's run is on another
    /// task queue ([`SignalError::Stranded`]).
    pub stranded: usize,
}

/// Errors of the relay loop: only the catalog's (a signal failure is a result, not an error).
pub type RelayError = CatalogError;

/// Moves captured changes from the catalog into Temporal.
pub struct Relay {
    catalog: Catalog,
    signaller: Signaller,
    options: RelayOptions,
    metrics: Option<Metrics>,
    hot: Mutex<HotProducts>,
    /// When this relay last handed a change to Temporal, not yet recorded in the catalog.
    last_relayed: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

/// What the relay remembers between batches: when it last signalled each product, and the changes
/// it holds for hot products.
#[derive(Default)]
struct HotProducts {
    last_signal: HashMap<String, Instant>,
    held: BTreeMap<String, Held>,
}

struct Held {
    changes: ProductChanges,
    since: Instant,
    last_change: Instant,
}

impl HotProducts {
    /// Of the products just claimed and those held, the ones to signal now; the rest are held.
    fn take_due(
        &mut self,
        claimed: Vec<ProductChanges>,
        now: Instant,
        options: &RelayOptions,
    ) -> Vec<ProductChanges> {
        let mut due = Vec::new();
        for changes in claimed {
            let recently_signalled = self
                .last_signal
                .get(&changes.product_id)
                .is_some_and(|at| now.duration_since(*at) < options.hot);
            match self.held.get_mut(&changes.product_id) {
                Some(held) => {
                    held.changes.merge(changes);
                    held.last_change = now;
                }
                None if recently_signalled => {
                    let held = Held {
                        changes,
                        since: now,
                        last_change: now,
                    };
                    self.held.insert(held.changes.product_id.clone(), held);
                }
                None => due.push(changes),
            }
        }
        // Held changes stay claimed: release them well before the lease ends.
        let max_hold = options.max_hold.min(options.lease / 2);
        let ready: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| {
                now.duration_since(h.last_change) >= options.quiet
                    || now.duration_since(h.since) >= max_hold
            })
            .map(|(product, _)| product.clone())
            .collect();
        for product in ready {
            if let Some(held) = self.held.remove(&product) {
                due.push(held.changes);
            }
        }
        due
    }

    /// Remembers the products just signalled; forgets those no longer hot. Returns the changes
    /// still held.
    fn signalled(&mut self, products: Vec<String>, now: Instant, hot: Duration) -> usize {
        for product in products {
            self.last_signal.insert(product, now);
        }
        self.last_signal
            .retain(|_, at| now.duration_since(*at) < hot);
        self.held.values().map(|h| h.changes.seqs.len()).sum()
    }
}

impl Relay {
    /// A relay over `catalog`'s outbox.
    pub fn new(catalog: Catalog, signaller: Signaller, options: RelayOptions) -> Self {
        Self {
            catalog,
            signaller,
            options,
            metrics: None,
            hot: Mutex::new(HotProducts::default()),
            last_relayed: Mutex::new(None),
        }
    }

    /// Publishes lag and counts in `metrics`.
    pub fn with_metrics(mut self, metrics: Option<Metrics>) -> Self {
        if let Some(m) = &metrics {
            m.start_at_zero(common::metrics::Counted::RelayChanges, &RESULTS);
        }
        self.metrics = metrics;
        self
    }

    /// This relay's id.
    pub fn id(&self) -> &str {
        &self.options.id
    }

    /// Claims one batch, signals its products (holding hot ones), acknowledges what Temporal
    /// accepted.
    pub async fn relay_batch(&self) -> Result<BatchReport, RelayError> {
        let claimed = self
            .catalog
            .claim_changes(
                &self.options.id,
                self.options.batch_size,
                self.options.lease,
            )
            .await?;
        let mut report = BatchReport {
            claimed: claimed.len(),
            ..BatchReport::default()
        };
        let due =
            lock(&self.hot).take_due(group_by_product(claimed), Instant::now(), &self.options);
        report.products = due.len();
        let outcomes: Vec<(ProductChanges, Result<(), SignalError>)> = futures::stream::iter(due)
            .map(|changes| async move {
                let result = self
                    .signaller
                    .product_changed(&changes.product_id, changes.version, "outbox")
                    .await;
                (changes, result)
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        let (mut accepted, mut unavailable) = (Vec::new(), Vec::new());
        let mut rejected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut signalled = Vec::new();
        for (changes, result) in outcomes {
            match result {
                Ok(()) => {
                    signalled.push(changes.product_id);
                    accepted.extend(changes.seqs);
                }
                Err(e @ SignalError::Unavailable(_)) => {
                    tracing::debug!(product = %changes.product_id, error = %e, "signal not accepted");
                    unavailable.extend(changes.seqs);
                }
                Err(SignalError::Rejected(reason)) => {
                    tracing::error!(product = %changes.product_id, %reason, "Temporal refused a change: set aside");
                    report.rejected.push((changes.product_id, reason.clone()));
                    rejected.entry(reason).or_default().extend(changes.seqs);
                }
                // Neither acknowledged nor given back: the claim keeps it out of the next batches
                // (which go on for other products) and its lease's end brings it back.
                Err(e @ SignalError::Stranded { .. }) => {
                    tracing::warn!(product = %changes.product_id, error = %e, retry_in_s = self.options.lease.as_secs(), "change not delivered");
                    report.stranded += changes.seqs.len();
                }
            }
        }
        report.held = lock(&self.hot).signalled(signalled, Instant::now(), self.options.hot);
        let id = &self.options.id;
        self.catalog.ack_changes(id, &accepted).await?;
        self.catalog.release_changes(id, &unavailable).await?;
        for (reason, seqs) in &rejected {
            self.catalog.fail_changes(id, seqs, reason).await?;
        }
        if !accepted.is_empty() {
            *lock(&self.last_relayed) = Some(chrono::Utc::now());
        }
        accepted.sort_unstable();
        report.relayed = accepted;
        report.released = unavailable.len();
        if let Some(m) = &self.metrics {
            m.relay_changes(RELAYED, report.relayed.len() as u64);
            m.relay_changes(RELEASED, report.released as u64);
            m.relay_changes(STRANDED, report.stranded as u64);
            m.relay_changes(
                REJECTED,
                rejected.values().map(Vec::len).sum::<usize>() as u64,
            );
        }
        Ok(report)
    }

    /// Relays until `shutdown` resolves: a batch whenever changes are committed (woken by
    /// `NOTIFY` on PostgreSQL) or every poll interval; backs off while Temporal or the catalog is
    /// unavailable. A batch in progress at shutdown finishes first; held changes are given back.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        self.relay_until(shutdown).await?;
        // Changes held for hot products go back now rather than when their lease ends.
        let held: Vec<i64> = {
            let mut hot = lock(&self.hot);
            std::mem::take(&mut hot.held)
                .into_values()
                .flat_map(|h| h.changes.seqs)
                .collect()
        };
        if !held.is_empty() {
            self.catalog
                .release_changes(&self.options.id, &held)
                .await?;
            tracing::info!(changes = held.len(), "released held changes at shutdown");
        }
        Ok(())
    }

    async fn relay_until(&self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut listener = self.catalog.change_listener().await?;
        tracing::info!(
            relay = %self.options.id,
            notified = listener.is_notified(),
            poll_ms = self.options.poll_interval.as_millis() as u64,
            "relay started"
        );
        let mut backoff = Backoff::new(self.options.max_backoff);
        let mut last_heartbeat = tokio::time::Instant::now() - RELAY_HEARTBEAT_INTERVAL;
        loop {
            if last_heartbeat.elapsed() >= RELAY_HEARTBEAT_INTERVAL {
                // `starter status` tells a stalled outbox from a busy one by this.
                if let Err(e) = self.catalog.relay_heartbeat(&self.options.id).await {
                    tracing::debug!(error = %e, "relay heartbeat not recorded");
                }
                // With the heartbeat, not per batch: one write every few seconds at most.
                let relayed = lock(&self.last_relayed).take();
                if let Some(at) = relayed
                    && let Err(e) = self.catalog.record_relayed_at(at).await
                {
                    tracing::debug!(error = %e, "time of the last relayed change not recorded");
                }
                last_heartbeat = tokio::time::Instant::now();
            }
            let pause = match self.relay_batch().await {
                Ok(report) if report.released > 0 => {
                    let pause = backoff.next();
                    tracing::warn!(
                        waiting = report.released,
                        retry_in_ms = pause.as_millis() as u64,
                        "Temporal unavailable: changes wait in the outbox"
                    );
                    Some(pause)
                }
                Ok(report) => {
                    backoff.reset();
                    if report.claimed > 0 && report.held < report.claimed {
                        tracing::info!(
                            changes = report.claimed,
                            products = report.products,
                            rejected = report.rejected.len(),
                            "relayed"
                        );
                        // More may be waiting: claim again at once.
                        None
                    } else {
                        tokio::select! {
                            _ = listener.wait(self.options.poll_interval) => {}
                            () = &mut shutdown => return Ok(()),
                        }
                        None
                    }
                }
                Err(e) => {
                    let pause = backoff.next();
                    tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "catalog unavailable");
                    Some(pause)
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = &mut shutdown => return Ok(()),
                }
            }
            // Stop between batches if asked.
            if futures::poll!(&mut shutdown).is_ready() {
                return Ok(());
            }
        }
    }
}

/// The changes of one product in a batch: one signal covers them all.
struct ProductChanges {
    product_id: String,
    version: Option<i64>,
    seqs: Vec<i64>,
}

impl ProductChanges {
    fn merge(&mut self, other: ProductChanges) {
        self.version = self.version.max(other.version);
        self.seqs.extend(other.seqs);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn group_by_product(changes: Vec<CapturedChange>) -> Vec<ProductChanges> {
    let mut by_product: BTreeMap<String, ProductChanges> = BTreeMap::new();
    for change in changes {
        let entry = by_product
            .entry(change.product_id.clone())
            .or_insert_with(|| ProductChanges {
                product_id: change.product_id.clone(),
                version: None,
                seqs: Vec::new(),
            });
        entry.version = entry.version.max(change.version);
        entry.seqs.push(change.seq);
    }
    by_product.into_values().collect()
}

/// Doubling pauses from 100 ms up to a ceiling.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    fn new(max: Duration) -> Self {
        Self {
            next: Self::FIRST,
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let pause = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        pause
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: i64, product: &str, version: Option<i64>) -> CapturedChange {
        CapturedChange {
            seq,
            product_id: product.into(),
            op: "update".into(),
            version,
            changed_at: chrono::Utc::now(),
            attempts: 1,
        }
    }

    #[test]
    fn one_signal_per_product_with_its_newest_version() {
        let grouped = group_by_product(vec![
            change(1, "a", Some(2)),
            change(2, "b", Some(7)),
            change(3, "a", Some(4)),
            change(4, "a", None),
        ]);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].product_id, "a");
        assert_eq!(grouped[0].version, Some(4));
        assert_eq!(grouped[0].seqs, vec![1, 3, 4]);
        assert_eq!(
            (grouped[1].version, grouped[1].seqs.clone()),
            (Some(7), vec![2])
        );
    }

    #[test]
    fn a_hot_product_is_held_until_quiet_and_a_cold_one_goes_at_once() {
        let options = RelayOptions::default();
        let mut hot = HotProducts::default();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let due = hot.take_due(
            group_by_product(vec![change(1, "a", Some(2))]),
            t0,
            &options,
        );
        assert_eq!(due.len(), 1, "a cold product is signalled at once");
        assert_eq!(hot.signalled(vec!["a".into()], t0, options.hot), 0);

        // The burst goes on: held while changes keep coming…
        for (i, at) in [100, 300, 500].into_iter().enumerate() {
            let seq = 2 + i as i64;
            let claimed = group_by_product(vec![
                change(seq, "a", Some(seq + 1)),
                change(100 + seq, "b", Some(1)),
            ]);
            let due = hot.take_due(claimed, ms(at), &options);
            assert_eq!(
                due.iter()
                    .map(|d| d.product_id.as_str())
                    .collect::<Vec<_>>(),
                vec!["b"]
            );
        }
        assert!(
            hot.take_due(Vec::new(), ms(700), &options).is_empty(),
            "not quiet yet"
        );
        // …and signalled once, with everything held, when quiet.
        let due = hot.take_due(Vec::new(), ms(800), &options);
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].version, due[0].seqs.clone()),
            (Some(5), vec![2, 3, 4])
        );

        // A product edited without pause is signalled at the hold limit anyway.
        hot.signalled(vec!["c".into()], ms(0), options.hot);
        let mut signalled_at = None;
        for step in 1..=60 {
            let at = ms(step * 100);
            let due = hot.take_due(
                group_by_product(vec![change(1000 + step as i64, "c", None)]),
                at,
                &options,
            );
            if !due.is_empty() {
                signalled_at = Some(step * 100);
                break;
            }
        }
        assert_eq!(
            signalled_at,
            Some(100 + options.max_hold.as_millis() as u64)
        );
    }

    #[test]
    fn backoff_doubles_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(350));
        let pauses: Vec<u128> = (0..4).map(|_| b.next().as_millis()).collect();
        assert_eq!(pauses, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(100));
    }
}
