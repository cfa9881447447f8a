//! Make Stripe match a [`SyncPlan`], writing only what differs, in as few requests as Stripe's
//! API allows: on a live account its per-endpoint rate limits set a backfill's speed.
//!
//! Steps, each with an idempotency key unique to (this activity execution, product, step,
//! parameters), so a retried attempt replays instead of writing twice and a new sync never replays
//! an old one (see [`stripe::write_key`]):
//! 1. read the product and its prices, in one request (the prices, the product expanded in each);
//!    a product the mirror of Stripe's state does not know is not read: it is created (step 2),
//!    and only when Stripe refuses its id (`resource_already_exists`, nothing written) read, and
//!    the sync goes on as for any product. A lookup key of the catalog's own that none of its
//!    prices holds is looked up (10 a request), and one a price of another product holds refuses
//!    the sync before any write;
//! 2. create the product with the chosen id if it is missing (all fields at once), with its first
//!    price as `default_price_data` where that can carry it (`domain::prices::default_price_data`):
//!    the product, its first price and its default in one request;
//! 3. for each desired price: keep the price holding its lookup key when only fields Stripe
//!    changes in place differ, updating them (re-activation, metadata, the fields updated in
//!    place), otherwise create a new price that takes the lookup key over
//!    (`transfer_lookup_key=true`); the rules are `domain::fields::PRICE_FIELDS`. The price made
//!    with the product has no lookup key yet: it is kept and given its key (and nickname) in place,
//!    also by a later sync when an attempt stopped before that;
//! 4. update the product: changed fields and `default_price`, in one call;
//! 5. archive every other active price of the product (after the default moved away): those
//!    catalog-sync no longer wants, and any made by hand on a product the catalog owns.
//!
//! A new product with P prices costs 1 `POST /v1/products`, 1 `POST /v1/prices/{id}` and P−1
//! `POST /v1/prices`; the table of every kind of sync is in BENCHMARKS.md.
//!
//! What it read and what Stripe answered to its writes is the product's newest state: the caller
//! writes it to the mirror of Stripe's state ([`Seen`], `catalog::mirror`). Price writes expand
//! tiers and currency options, so the answers hold every field the mirror keeps.

mod archive;

use archive::archive;
use std::collections::{BTreeMap, BTreeSet};

use workflows::activities::UpsertReport;
use workflows::model::{DesiredProduct, SyncPlan};

use catalog::{ArchiveBudget, ArchivePermit, Catalog};
use domain::metadata::META_HASH;
use domain::ownership::Ownership;
use domain::prices;
use stripe::client::{Expandable, Form, Price, Product, StripeClient};
use stripe::identity::{CatalogIdentity, Claim};
use stripe::products::product_form;
use stripe::write_key::{Step, WriteKeys};

use crate::error::SyncError;

/// Who is writing: the catalog, the key maker and the intent (one activity execution) the keys
/// belong to.
#[derive(Debug, Clone, Copy)]
pub struct Intent<'a> {
    /// The catalog written for: only its own Stripe products are touched, and every write
    /// carries its identity.
    pub catalog: &'a CatalogIdentity,
    /// Asked before archiving a live product.
    pub archives: ArchiveGate<'a>,
    /// Signs the keys.
    pub keys: &'a WriteKeys,
    /// `{workflow id}/{run id}/{activity id}` in an activity; a value unique to the run elsewhere.
    pub id: &'a str,
    /// When the intent began (the activity's first scheduling): its keys' minting time.
    pub minted: std::time::SystemTime,
    /// The mirror of Stripe's state has the product: it is read first (its prices, with the
    /// product expanded in them). Otherwise it is created without a read, and read only when
    /// Stripe refuses its id because it exists after all.
    pub likely_in_stripe: bool,
    /// The catalog's ledger: a product it records writing stays its own when its identity
    /// metadata is edited in Stripe (drift, restored). `None`: no ledger (benchmark seeding).
    pub ledger: Option<&'a Catalog>,
}

impl Intent<'_> {
    /// Whether `claim`, which names another catalog or none, is a hand edit of a product this
    /// catalog wrote (its ledger says so): then the product is still this catalog's.
    async fn relabelled(&self, claim: &Claim, product_id: &str) -> Result<bool, SyncError> {
        let (Claim::OtherCatalog(_) | Claim::Unadopted, Some(ledger)) = (claim, self.ledger) else {
            return Ok(false);
        };
        let written = ledger
            .written_products(
                self.catalog.as_str(),
                std::slice::from_ref(&product_id.to_string()),
            )
            .await?;
        if written.is_empty() {
            return Ok(false);
        }
        tracing::warn!(
            product = product_id,
            claim = ?claim,
            "catalog-sync's identity metadata was edited in Stripe on a product this catalog \
             wrote: restoring it"
        );
        Ok(true)
    }
}

/// Asks before a write that takes a live Stripe product to archived (see `catalog::guard`).
#[derive(Debug, Clone, Copy)]
pub enum ArchiveGate<'a> {
    /// Archive without asking: a caller that is not a live sync (benchmark seeding).
    Open,
    /// Approved by a reconciliation's own guard: archive, unless the live guard holds the
    /// product's archive for confirmation (a confirmed hold is settled by this archive).
    Approved(&'a Catalog),
    /// Take a share of the catalog's live archive budget, or hold the archive.
    Budget(&'a Catalog, &'a ArchiveBudget),
}

impl ArchiveGate<'_> {
    async fn permit(self, product_id: &str) -> Result<ArchivePermit, SyncError> {
        match self {
            ArchiveGate::Open => Ok(ArchivePermit::Granted),
            ArchiveGate::Approved(catalog) => Ok(catalog.approve_archive(product_id).await?),
            ArchiveGate::Budget(catalog, budget) => {
                Ok(catalog.permit_archive(product_id, budget).await?)
            }
        }
    }
}

/// The Stripe state an upsert read and wrote, newest last: for the mirror.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The product, with where it was seen (`read:…` or the write's `req_…`).
    pub products: Vec<(Product, String)>,
    /// Its prices, likewise.
    pub prices: Vec<(Price, String)>,
}

impl Seen {
    fn product(&mut self, product: &Product, seen_in: String) {
        self.products.push((product.clone(), seen_in));
    }

    /// A price from a write's answer, with the fields it left out taken from the price as read.
    fn price(&mut self, mut price: Price, seen_in: String) {
        let last = self.prices.iter().rev().find(|(p, _)| p.id == price.id);
        stripe::mirror::keep_unexpanded(&mut price, last.map(|(p, _)| p));
        self.prices.push((price, seen_in));
    }
}

/// What an upsert did, whether or not it finished.
#[derive(Debug, Default)]
pub struct Applied {
    /// The writes made (and their answers' request ids), and the requests sent.
    pub report: UpsertReport,
    /// What it read and what Stripe answered.
    pub seen: Seen,
    /// A write sent whose answer never came, when the upsert failed on it: Stripe may have
    /// applied it (a retry then finds it done and writes nothing), so the audit names it.
    pub unanswered: Option<String>,
    /// The catalog's content differed from what Stripe last got from catalog-sync (its content
    /// hash in the product's metadata), or Stripe had no product: the pass carried a catalog
    /// change, not only a repair of an edit made in Stripe.
    pub catalog_changed: bool,
}

/// Applies the plan; returns what was written and what Stripe holds now.
pub async fn apply(
    stripe: &StripeClient,
    intent: Intent<'_>,
    plan: &SyncPlan,
    ownership: &Ownership,
) -> Result<(UpsertReport, Seen), SyncError> {
    let (applied, result) = apply_recorded(stripe, intent, plan, ownership).await;
    result.map(|()| (applied.report, applied.seen))
}

/// [`apply`], with what it did also when it failed (for the audit of a failed attempt).
pub async fn apply_recorded(
    stripe: &StripeClient,
    intent: Intent<'_>,
    plan: &SyncPlan,
    ownership: &Ownership,
) -> (Applied, Result<(), SyncError>) {
    let mut w = Writer {
        stripe,
        intent,
        product_id: match plan {
            SyncPlan::Upsert(d) => &d.stripe_id,
            SyncPlan::Archive { stripe_id, .. } => stripe_id,
        },
        report: UpsertReport::default(),
        seen: Seen::default(),
        sending: None,
        catalog_changed: false,
    };
    let result = match plan {
        SyncPlan::Upsert(desired) => upsert(&mut w, desired, ownership).await,
        SyncPlan::Archive { catalog_id, .. } => archive(&mut w, catalog_id).await,
    };
    // A write refused outright was not applied; one that failed otherwise may have been.
    let unanswered = match &result {
        Err(e) if e.is_retryable() => w.sending.take(),
        _ => None,
    };
    let applied = Applied {
        report: w.report,
        seen: w.seen,
        unanswered,
        catalog_changed: w.catalog_changed,
    };
    (applied, result)
}

struct Writer<'a> {
    stripe: &'a StripeClient,
    intent: Intent<'a>,
    product_id: &'a str,
    report: UpsertReport,
    seen: Seen,
    /// The write being sent (set with its key, cleared by its answer).
    sending: Option<String>,
    /// See [`Applied::catalog_changed`].
    catalog_changed: bool,
}

impl Writer<'_> {
    /// The idempotency key of one write (`target`: the price id or lookup key it is about).
    fn key(&mut self, step: Step, target: &str, form: &Form) -> String {
        let op = match step {
            Step::CreateProduct => "create_product",
            Step::UpdateProduct => "update_product",
            Step::ArchiveProduct => "archive_product",
            Step::CreatePrice => "create_price",
            Step::UpdatePrice => "update_price",
            Step::ArchivePrice => "archive_price",
        };
        self.sending = Some(if target.is_empty() {
            op.to_string()
        } else {
            format!("{op}:{target}")
        });
        self.intent.keys.key(
            self.intent.id,
            self.intent.minted,
            self.product_id,
            step,
            target,
            form,
        )
    }

    /// Where a read of this upsert saw an object.
    fn read_here(&self) -> String {
        format!("read:{}", self.intent.id)
    }

    fn record(&mut self, op: String, request_id: Option<String>) {
        self.sending = None;
        self.report.stripe_requests += 1;
        tracing::info!(product = self.product_id, op = %op, request_id = request_id.as_deref().unwrap_or("-"), "stripe write");
        self.report.operations.push(op);
        if let Some(id) = request_id {
            self.report.request_ids.push(id);
        }
    }
}

/// The product and its prices as Stripe has them now: one request for a product with prices (the
/// prices, the product expanded in each), two for one without.
async fn read_current(
    w: &mut Writer<'_>,
    id: &str,
) -> Result<(Option<Product>, Vec<Price>), SyncError> {
    let stripe = w.stripe;
    let (listed, prices, requests) = stripe.list_prices_with_product(id).await?;
    w.report.stripe_requests += requests;
    match listed {
        Some(product) => Ok((Some(product), prices)),
        None => {
            w.report.stripe_requests += 1;
            Ok((stripe.get_product(id).await?, prices))
        }
    }
}

/// Where a write's answer was seen: its `Request-Id`.
fn seen_in(request_id: &Option<String>) -> String {
    request_id.clone().unwrap_or_else(|| "req_unknown".into())
}

/// catalog-sync's metadata on every price it writes for `catalog`.
pub(crate) fn price_marker(catalog: &CatalogIdentity) -> BTreeMap<String, String> {
    catalog.price_marker()
}

async fn upsert(
    w: &mut Writer<'_>,
    d: &DesiredProduct,
    ownership: &Ownership,
) -> Result<(), SyncError> {
    if !w.intent.likely_in_stripe {
        match upsert_from(w, d, ownership, None, Vec::new()).await? {
            Pass::Done => return Ok(()),
            Pass::ExistsAfterAll => {}
        }
    }
    let (current, prices) = read_current(w, &d.stripe_id).await?;
    upsert_from(w, d, ownership, current, prices).await?;
    Ok(())
}

/// How one pass over a product ended.
enum Pass {
    /// Stripe matches the plan (or the sync was refused, as the report says).
    Done,
    /// The product, created without a read, was in Stripe after all (`resource_already_exists`):
    /// nothing was written; read it and pass again.
    ExistsAfterAll,
}

/// One pass, from what Stripe holds: the product and prices read, or none when not read (then
/// the product is created, and [`Pass::ExistsAfterAll`] when Stripe has it already).
async fn upsert_from(
    w: &mut Writer<'_>,
    d: &DesiredProduct,
    ownership: &Ownership,
    current: Option<Product>,
    mut prices: Vec<Price>,
) -> Result<Pass, SyncError> {
    let (stripe, intent) = (w.stripe, w.intent);
    w.catalog_changed = current
        .as_ref()
        .is_none_or(|c| c.metadata.get(META_HASH) != Some(&d.content_hash));
    if let Some(p) = &current {
        w.seen.product(p, w.read_here());
    }
    for p in &prices {
        w.seen.price(p.clone(), w.read_here());
    }
    match current
        .as_ref()
        .map(|c| intent.catalog.claim(&c.metadata, &d.catalog_id))
    {
        None | Some(Claim::Ours | Claim::Detached) => {}
        Some(Claim::Unmanaged) => {
            w.report.skipped_unmanaged = true;
            return Ok(Pass::Done);
        }
        Some(claim @ (Claim::OtherCatalog(_) | Claim::Unadopted)) => {
            if !intent.relabelled(&claim, &d.catalog_id).await? {
                w.report.other_catalog = claim.refusal(intent.catalog);
                return Ok(Pass::Done);
            }
        }
    }
    // Deactivating a live product archives it: the guard decides first, before any write.
    if !d.active
        && current.as_ref().is_some_and(|c| c.active)
        && let ArchivePermit::Held(why) = intent.archives.permit(&d.catalog_id).await?
    {
        tracing::warn!(reason = %why, "archive held for confirmation");
        w.report.archive_held = Some(why);
        return Ok(Pass::Done);
    }
    // Every write carries the catalog's identity.
    let stamped = intent.catalog.stamp(d);
    let d = &stamped;
    // The catalog's own lookup keys may be held by a price of any product in the account, and
    // Stripe would move them from anyone's: before any write, refuse one another product holds.
    let unheld: Vec<String> = d
        .prices
        .iter()
        .filter(|dp| dp.has_own_lookup_key())
        .filter(|dp| {
            !prices
                .iter()
                .any(|p| p.lookup_key.as_deref() == Some(dp.lookup_key.as_str()))
        })
        .map(|dp| dp.lookup_key.clone())
        .collect();
    // Own keys a price of this product holds: a new price may take them over. Any other own key
    // is created without `transfer_lookup_key`, so that when another product's sync takes it
    // between this check and the write, Stripe refuses this write (the loser fails, naming the
    // key) instead of moving the key from one product to the other.
    let mut transferable: BTreeSet<String> = d
        .prices
        .iter()
        .filter(|dp| {
            !dp.has_own_lookup_key()
                || prices
                    .iter()
                    .any(|p| p.lookup_key.as_deref() == Some(dp.lookup_key.as_str()))
        })
        .map(|dp| dp.lookup_key.clone())
        .collect();
    for keys in unheld.chunks(10) {
        let held = stripe.list_prices_by_lookup_keys(keys).await?;
        w.report.stripe_requests += 1;
        transferable.extend(
            held.iter()
                .filter(|p| p.product == d.stripe_id)
                .filter_map(|p| p.lookup_key.clone()),
        );
        if let Some(other) = held.iter().find(|p| p.product != d.stripe_id) {
            return Err(SyncError::Refused(format!(
                "lookup key {:?} is held by price {} of product {}: lookup keys are unique in a \
                 Stripe account; give this price another lookup_key in the catalog, or none for \
                 catalog-sync's own",
                other.lookup_key.as_deref().unwrap_or_default(),
                other.id,
                other.product
            )));
        }
    }
    let marker = price_marker(intent.catalog);
    let current = match current {
        Some(c) => c,
        None => {
            let first = d
                .prices
                .first()
                .and_then(|dp| prices::default_price_data(dp, &marker));
            let mut form = product_form(d, None);
            form.push("id", d.stripe_id.as_str());
            if let Some(data) = &first {
                form.extend(data).push("expand[]", "default_price");
                stripe::prices::expand_prices(&mut form, "default_price.");
            }
            let key = w.key(Step::CreateProduct, "", &form);
            let r = match stripe.create_product(&form, &key).await {
                Err(e) if e.is_already_exists() => {
                    w.sending = None;
                    w.report.stripe_requests += 1;
                    return Ok(Pass::ExistsAfterAll);
                }
                r => r?,
            };
            let mut product = r.value;
            // The price made with it: seen, and one of the product's prices from here on.
            if let Some(Expandable::Object(price)) = product.default_price.take() {
                product.default_price = Some(Expandable::Id(price.id.clone()));
                w.seen.price((*price).clone(), seen_in(&r.request_id));
                prices.push(*price);
            }
            w.seen.product(&product, seen_in(&r.request_id));
            w.record("create_product".into(), r.request_id.clone());
            // The price it made is a write of that request, listed as such (no request more).
            if let (Some(dp), Some(_)) = (d.prices.first(), &first) {
                w.report
                    .operations
                    .push(format!("create_price:{} (with the product)", dp.lookup_key));
                w.report.request_ids.extend(r.request_id);
            }
            product
        }
    };
    // The price `default_price_data` made has no lookup key until step 3 gives it one (an attempt
    // may have stopped before): the default price, without a key, with this catalog's marker.
    let unkeyed_default = prices.iter().find(|p| {
        p.lookup_key.is_none()
            && current.default_price_id() == Some(p.id.as_str())
            && marker.iter().all(|(k, v)| p.metadata.get(k) == Some(v))
    });

    // Prices: keep, update in place, or replace the holder of each lookup key (the rules are
    // `domain::fields::PRICE_FIELDS`).
    let mut wanted_ids = Vec::new();
    for (i, dp) in d.prices.iter().enumerate() {
        let keyed = prices
            .iter()
            .find(|p| p.lookup_key.as_deref() == Some(dp.lookup_key.as_str()));
        let holder = keyed.or(unkeyed_default.filter(|_| i == 0));
        let changes = holder.map(|p| prices::compare(&p.current(), dp, &marker));
        match (holder, changes) {
            // Only fields Stripe changes in place differ (or none): keep this price.
            (Some(p), Some(mut changes)) if changes.new_price.is_empty() => {
                if keyed.is_none() {
                    changes.update.push("lookup_key", dp.lookup_key.as_str());
                    if transferable.contains(&dp.lookup_key) {
                        changes.update.push("transfer_lookup_key", "true");
                    }
                }
                if !changes.update.is_empty() {
                    let mut form = changes.update;
                    stripe::prices::expand_prices(&mut form, "");
                    let key = w.key(Step::UpdatePrice, &p.id, &form);
                    let r = stripe.update_price(&p.id, &form, &key).await?;
                    w.seen.price(r.value, seen_in(&r.request_id));
                    w.record(format!("update_price:{}", p.id), r.request_id);
                }
                wanted_ids.push(p.id.clone());
            }
            // Missing, or a field Stripe fixes at creation differs: a new price takes the key.
            _ => {
                let transfer = transferable.contains(&dp.lookup_key);
                let mut form = prices::create_form(&d.stripe_id, dp, &marker, transfer);
                stripe::prices::expand_prices(&mut form, "");
                let key = w.key(Step::CreatePrice, &dp.lookup_key, &form);
                let r = stripe.create_price(&form, &key).await?;
                wanted_ids.push(r.value.id.clone());
                w.seen.price(r.value, seen_in(&r.request_id));
                w.record(format!("create_price:{}", dp.lookup_key), r.request_id);
                // Taking the key over removed it from the price that held it.
                if let Some(old) = holder {
                    let mut old = old.clone();
                    old.lookup_key = None;
                    w.seen.price(old, w.read_here());
                }
            }
        }
    }

    // Product fields and the default price, in one write. Stripe-owned fields are written only
    // when the product is created (above), never over an existing value.
    let mut form = product_form(&ownership.effective(d, &current.json()), Some(&current));
    let default = wanted_ids.first().cloned();
    if current.default_price_id() != default.as_deref() {
        form.push("default_price", default.clone().unwrap_or_default());
    }
    if !form.is_empty() {
        let key = w.key(Step::UpdateProduct, "", &form);
        let r = stripe.update_product(&d.stripe_id, &form, &key).await?;
        w.seen.product(&r.value, seen_in(&r.request_id));
        w.record(
            format!("update_product:{}", form.field_names().join(",")),
            r.request_id,
        );
    }

    // Archive every other active price of the product: catalog-sync's that are no longer
    // wanted, and any made by hand on a product the catalog owns (its prices belong to the
    // catalog; `verify` would report such a price forever).
    let keep: BTreeSet<&String> = wanted_ids.iter().collect();
    for p in prices.iter().filter(|p| p.active && !keep.contains(&p.id)) {
        let mut form = Form::new();
        form.push("active", "false");
        let key = w.key(Step::ArchivePrice, &p.id, &form);
        let r = stripe.update_price(&p.id, &form, &key).await?;
        w.seen.price(r.value, seen_in(&r.request_id));
        w.record(format!("archive_price:{}", p.id), r.request_id);
    }
    w.report.unchanged = w.report.operations.is_empty();
    w.report.archived = !d.active;
    Ok(Pass::Done)
}
