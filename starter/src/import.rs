//! `starter import`: hands a shop's existing Stripe products over to catalog-sync, for a shop
//! that sold on Stripe before it. Each catalog row naming a product (the mapping's `stripe_id`
//! column) is *bound* to it: from then on its sync writes to that product, whatever its id, and
//! the product's prices that already match one of the row's prices are *kept* (the same price
//! ids, so subscriptions, payment links and checkout sessions that name them keep working).
//!
//! Per row, the plan (`--dry-run` prints it and writes nothing):
//! - **bind** the product: catalog-sync's metadata (`catalog_sync_managed`, `catalog_sync_id`,
//!   the catalog's identity) is stamped on it and the binding recorded (`catalog_sync.bindings`);
//! - **keep** each active price whose fields Stripe fixes at creation (currency, amount,
//!   interval, tiers, …: `domain::prices::compare` finds no new-price field) match a price of
//!   the row: it is given the row's lookup key and catalog-sync's metadata, in place;
//! - **create** the row's prices no existing price matches, and **archive** the product's other
//!   active prices: both done by the product's sync, which `import` starts once the bindings
//!   are recorded (as `starter sync --wait`), so the archive of the product itself, for a row
//!   inactive or deleted, passes the archive guard as every archive does;
//! - **archive** the product catalog-sync made under the row's own id, if a sync ran before the
//!   row named the shop's product (the duplicate that leaves two products per row): only when
//!   it is this catalog's, made for this row, and active.
//!
//! Refused, with the reason and exit code 4, and never written to: a product Stripe does not
//! have in this account (a Connect account's object is not this account's), one that is another
//! catalog's (or catalog-sync's before identities: `starter adopt`), one another row is bound
//! to or names too, and a row whose content the sync would refuse. Stripe products that no row
//! names are listed (`unmapped`) and never touched. Running it again finds everything bound and
//! changes nothing.
//!
//! Requests: per row one price list (its product expanded; one more read for a product without
//! prices, one more for a row the mirror of Stripe's state knows a product of), one list page
//! per 100 active Stripe products; applying, one write per kept price and one per product (two
//! with an earlier product to archive).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use catalog::{Catalog, IdRange};
use clap::Args;
use common::settings::StripeSettings;
use domain::identity::{CatalogIdentity, Claim};
use domain::metadata::{META_CATALOG, META_ID, META_MANAGED};
use domain::model::{CatalogProduct, DesiredPrice, DesiredProduct, SyncPlan, TransformOutput};
use domain::prices;
use domain::transform;
use stripe::client::{Form, Price, Product, StripeClient, StripeConfig};
use stripe::write_key::{self, Step, WriteKeys};

use crate::exit::Exit;

/// `starter import`.
#[derive(Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    stripe: StripeSettings,
    /// Print the plan per product (bind, keep, create, archive) and the Stripe products no row
    /// names; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stripe requests per second at most (importing shares the account's budget with the
    /// workers).
    #[arg(long, default_value_t = 10)]
    requests_per_second: u32,
}

/// What `run` did: the exit code of the import itself, and the rows bound (now or before) whose
/// syncs finish the hand-over.
pub(crate) struct Imported {
    pub(crate) exit: Exit,
    pub(crate) bound: Vec<String>,
}

/// One row's plan.
struct Plan {
    row: String,
    product: Product,
    desired: DesiredProduct,
    /// Per desired price, the existing price kept for it, with its in-place update.
    kept: Vec<(usize, Price, Form)>,
    /// Desired prices no existing price matches: created by the sync.
    created: Vec<usize>,
    /// Active prices matching none of the row's: archived by the sync.
    archived: Vec<Price>,
    /// The product catalog-sync made under the row's own id before the row named the shop's
    /// (a sync run before the mapping had `stripe_id`): archived by the import, as the
    /// duplicate it is.
    earlier: Option<Product>,
    already_bound: bool,
}

pub(crate) async fn run(catalog: &Catalog, args: ImportArgs) -> anyhow::Result<Imported> {
    anyhow::ensure!(
        args.requests_per_second > 0,
        "--requests-per-second must be at least 1"
    );
    let config = StripeConfig::from_settings(&args.stripe)?;
    let account = config.account.clone();
    let identity = CatalogIdentity::new(catalog.identity().await?);
    let stripe = StripeClient::new(config.paced(args.requests_per_second))?;
    let keys = WriteKeys::new(&catalog.sync_secret(write_key::SECRET_NAME).await?);
    let marker = identity.price_marker();

    // Every row naming a Stripe product other than its own id.
    let bindings = catalog.bindings().await?;
    let bound_rows: BTreeMap<&String, &String> = bindings
        .iter()
        .map(|(row, product)| (product, row))
        .collect();
    let mut named: Vec<(CatalogProduct, String)> = Vec::new();
    let mut refused = 0usize;
    let mut after = String::new();
    loop {
        let page = catalog
            .products_page(&after, &IdRange::default(), 500)
            .await?;
        for corrupt in &page.corrupt {
            refused += 1;
            println!(
                "refused  {}: row unreadable: {} {}",
                corrupt.id, corrupt.field, corrupt.reason
            );
        }
        for row in page.products {
            let names = row
                .stripe_id
                .as_deref()
                .map(str::trim)
                .filter(|id| !id.is_empty() && *id != row.id)
                .map(str::to_string);
            if let Some(product) = names {
                named.push((row, product));
            }
        }
        match page.last_id {
            Some(last) if page.rows == 500 => after = last,
            _ => break,
        }
    }
    let mut naming: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (row, product) in &named {
        naming.entry(product).or_default().push(&row.id);
    }

    let mut plans = Vec::new();
    for (row, product_id) in &named {
        let refuse = |why: String| println!("refused  {} → {product_id}: {why}", row.id);
        if let Some(others) = naming
            .get(product_id.as_str())
            .filter(|rows| rows.len() > 1)
        {
            refuse(format!(
                "rows {} all name it: one row per Stripe product",
                others.join(", ")
            ));
            refused += 1;
            continue;
        }
        if let Some(other) = bound_rows.get(product_id).filter(|r| **r != &row.id) {
            refuse(format!("bound to catalog row {other} already"));
            refused += 1;
            continue;
        }
        if let Some(bound) = row.bound_stripe_id.as_ref().filter(|b| *b != product_id) {
            refuse(format!(
                "the row is bound to {bound} already: put {bound} back in its stripe_id, or \
                 archive the row and add a new one"
            ));
            refused += 1;
            continue;
        }
        let plan = plan_row(
            &stripe,
            catalog,
            &identity,
            &marker,
            (row, product_id),
            account.as_deref(),
        );
        match plan.await? {
            Ok(plan) => plans.push(plan),
            Err(why) => {
                refuse(why);
                refused += 1;
            }
        }
    }

    let verb = if args.dry_run { "would bind" } else { "bound" };
    let (mut kept, mut created, mut archived) = (0, 0, 0);
    let mut bound = Vec::new();
    for plan in &plans {
        println!("{}", describe(plan, args.dry_run));
        if !args.dry_run
            && let Err(e) = apply(&stripe, catalog, &keys, &identity, plan).await
        {
            println!("failed   {} → {}: {e:#}", plan.row, plan.product.id);
            refused += 1;
            continue;
        }
        kept += plan.kept.len();
        created += plan.created.len();
        archived += plan.archived.len();
        bound.push(plan.row.clone());
    }

    // The account's products no row names: listed, never touched.
    let named_products: BTreeSet<&str> = named.iter().map(|(_, p)| p.as_str()).collect();
    let mut unmapped = 0usize;
    let mut after: Option<String> = None;
    loop {
        let page = stripe
            .list_active_products(after.as_deref())
            .await
            .context("listing Stripe products")?;
        for p in &page.data {
            let claim = identity.claim(&p.metadata, &p.id);
            let ours =
                matches!(claim, Claim::Ours | Claim::Detached) || bound_rows.contains_key(&p.id);
            if !ours && !named_products.contains(p.id.as_str()) {
                unmapped += 1;
                let whose = match claim {
                    Claim::OtherCatalog(other) => format!("catalog {other}'s"),
                    Claim::Unadopted => "catalog-sync's before identities (`starter adopt`)".into(),
                    _ => "no catalog row names it".into(),
                };
                println!("unmapped {} ({:?}): {whose}; left alone", p.id, p.name);
            }
        }
        match (page.has_more, page.data.last()) {
            (true, Some(last)) => after = Some(last.id.clone()),
            _ => break,
        }
    }
    let before = plans.iter().filter(|p| p.already_bound).count();
    println!(
        "import: catalog {identity}: {verb} {} products{} (keep {kept} prices, create {created}, \
         archive {archived}); {refused} refused; {unmapped} Stripe products no row names (left \
         alone){}",
        bound.len(),
        if before > 0 {
            format!(", {before} of them before")
        } else {
            String::new()
        },
        if args.dry_run || bound.is_empty() {
            ""
        } else {
            "; syncing the bound products"
        }
    );
    Ok(Imported {
        exit: if refused > 0 {
            Exit::NotSynced
        } else {
            Exit::Ok
        },
        bound: if args.dry_run { Vec::new() } else { bound },
    })
}

/// The plan for `row`, naming `product_id`; `Err` with the reason it is refused. Reads the
/// product and its prices.
async fn plan_row(
    stripe: &StripeClient,
    catalog: &Catalog,
    identity: &CatalogIdentity,
    marker: &BTreeMap<String, String>,
    (row, product_id): (&CatalogProduct, &str),
    account: Option<&str>,
) -> anyhow::Result<Result<Plan, String>> {
    // What the sync will make of the row, once bound.
    let as_bound = CatalogProduct {
        bound_stripe_id: Some(product_id.to_string()),
        ..row.clone()
    };
    let desired = match transform::transform(&row.id, Some(&as_bound)) {
        TransformOutput::Plan(plan) => match *plan {
            SyncPlan::Upsert(desired) => *desired,
            SyncPlan::Archive { .. } => DesiredProduct {
                stripe_id: product_id.to_string(),
                catalog_id: row.id.clone(),
                ..DesiredProduct::default()
            },
        },
        TransformOutput::Invalid(issues) => {
            let reasons: Vec<String> = issues.iter().map(ToString::to_string).collect();
            return Ok(Err(format!(
                "the row cannot be synced: {}",
                reasons.join("; ")
            )));
        }
    };
    let (listed, prices, _) = stripe
        .list_prices_with_product(product_id)
        .await
        .with_context(|| format!("reading Stripe product {product_id}"))?;
    let product = match listed {
        Some(p) => Some(p),
        None => stripe.get_product(product_id).await?,
    };
    let Some(product) = product else {
        return Ok(Err(format!(
            "Stripe has no product {product_id} in this account{}: an object of another \
             account (Connect) is never bound",
            account.map_or(String::new(), |a| format!(" (STRIPE_ACCOUNT={a})"))
        )));
    };
    let already_bound = row.bound_stripe_id.as_deref() == Some(product_id);
    match identity.claim(&product.metadata, &row.id) {
        Claim::Unmanaged | Claim::Detached => {}
        Claim::Ours if product.metadata.get(META_ID) == Some(&row.id) => {}
        Claim::Ours => {
            return Ok(Err(format!(
                "catalog-sync manages it for row {} of this catalog",
                product.metadata.get(META_ID).map_or("?", String::as_str)
            )));
        }
        claim @ (Claim::OtherCatalog(_) | Claim::Unadopted) => {
            return Ok(Err(claim
                .refusal(identity)
                .unwrap_or_else(|| "not this catalog's".into())));
        }
    }
    // A deleted row's sync archives the product alone: its prices stay as they are.
    let Matched {
        kept,
        created,
        archived,
    } = if row.deleted {
        Matched::default()
    } else {
        match_prices(&desired.prices, &prices, marker)
    };
    // A product catalog-sync made under the row's id (the mirror of Stripe's state knows every
    // product a sync wrote; Stripe is read to be sure): this catalog's, for this row, active.
    let earlier = if catalog
        .mirror_known_products(std::slice::from_ref(&row.id))
        .await?
        .is_empty()
    {
        None
    } else {
        stripe.get_product(&row.id).await?.filter(|p| {
            p.active
                && identity.claim(&p.metadata, &row.id) == Claim::Ours
                && p.metadata.get(META_ID) == Some(&row.id)
        })
    };
    Ok(Ok(Plan {
        row: row.id.clone(),
        product,
        desired,
        kept,
        created,
        archived,
        earlier,
        already_bound,
    }))
}

/// Which existing prices are kept for which desired prices (with the in-place update each
/// needs: the lookup key, catalog-sync's metadata and any field Stripe changes in place), which
/// desired prices are created, and which active prices are archived. A price already holding a
/// desired lookup key is kept for it first; then each desired price takes the first active
/// price left whose fields fixed at creation match it.
fn match_prices(
    desired: &[DesiredPrice],
    existing: &[Price],
    marker: &BTreeMap<String, String>,
) -> Matched {
    let active: Vec<&Price> = existing.iter().filter(|p| p.active).collect();
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut choice: Vec<Option<&Price>> = vec![None; desired.len()];
    let fits = |p: &Price, dp: &DesiredPrice| {
        prices::compare(&p.current(), dp, marker)
            .new_price
            .is_empty()
    };
    for (i, dp) in desired.iter().enumerate() {
        if let Some(p) = active
            .iter()
            .find(|p| p.lookup_key.as_deref() == Some(dp.lookup_key.as_str()) && fits(p, dp))
        {
            taken.insert(&p.id);
            choice[i] = Some(p);
        }
    }
    for (i, dp) in desired.iter().enumerate() {
        if choice[i].is_some() {
            continue;
        }
        if let Some(p) = active
            .iter()
            .find(|p| !taken.contains(p.id.as_str()) && fits(p, dp))
        {
            taken.insert(&p.id);
            choice[i] = Some(p);
        }
    }
    let mut kept = Vec::new();
    let mut created = Vec::new();
    for (i, (dp, p)) in desired.iter().zip(&choice).enumerate() {
        match p {
            Some(p) => {
                let mut form = prices::compare(&p.current(), dp, marker).update;
                if p.lookup_key.as_deref() != Some(dp.lookup_key.as_str()) {
                    form.push("lookup_key", dp.lookup_key.as_str());
                    // As the sync does: catalog-sync's own keys are taken from whichever price
                    // holds them (one of its earlier product for this row); the catalog's own
                    // only from a price of this product.
                    if !dp.has_own_lookup_key()
                        || existing
                            .iter()
                            .any(|o| o.lookup_key.as_deref() == Some(dp.lookup_key.as_str()))
                    {
                        form.push("transfer_lookup_key", "true");
                    }
                }
                kept.push((i, (*p).clone(), form));
            }
            None => created.push(i),
        }
    }
    let archived = active
        .into_iter()
        .filter(|p| !taken.contains(p.id.as_str()))
        .cloned()
        .collect();
    Matched {
        kept,
        created,
        archived,
    }
}

/// The product's prices against the row's: [`Plan`]'s `kept`, `created` and `archived`.
#[derive(Default)]
struct Matched {
    kept: Vec<(usize, Price, Form)>,
    created: Vec<usize>,
    archived: Vec<Price>,
}

/// Writes the plan: the kept prices first, the product's metadata, then the binding (a rerun
/// after a failure finds the product this catalog's, bound to this row, and finishes).
async fn apply(
    stripe: &StripeClient,
    catalog: &Catalog,
    keys: &WriteKeys,
    identity: &CatalogIdentity,
    plan: &Plan,
) -> anyhow::Result<()> {
    let minted = std::time::SystemTime::now();
    let started_ns = minted
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let intent = format!("import-{}-{started_ns}", std::process::id());
    let product_id = &plan.product.id;
    for (_, price, form) in &plan.kept {
        if form.is_empty() {
            continue;
        }
        let mut form = form.clone();
        stripe::prices::expand_prices(&mut form, "");
        let key = keys.key(
            &intent,
            minted,
            product_id,
            Step::UpdatePrice,
            &price.id,
            &form,
        );
        stripe
            .update_price(&price.id, &form, &key)
            .await
            .with_context(|| format!("keeping price {}", price.id))?;
    }
    let wanted = [
        (META_MANAGED, "true"),
        (META_ID, plan.row.as_str()),
        (META_CATALOG, identity.as_str()),
    ];
    let mut form = Form::new();
    for (key, value) in wanted {
        if plan.product.metadata.get(key).map(String::as_str) != Some(value) {
            form.push(format!("metadata[{key}]"), value);
        }
    }
    if !form.is_empty() {
        let key = keys.key(&intent, minted, product_id, Step::UpdateProduct, "", &form);
        stripe
            .update_product(product_id, &form, &key)
            .await
            .with_context(|| format!("binding product {product_id}"))?;
    }
    catalog.bind(&plan.row, product_id).await?;
    if let Some(earlier) = &plan.earlier {
        let mut form = Form::new();
        form.push("active", "false");
        let key = keys.key(
            &intent,
            minted,
            &earlier.id,
            Step::ArchiveProduct,
            "",
            &form,
        );
        stripe
            .update_product(&earlier.id, &form, &key)
            .await
            .with_context(|| format!("archiving {}, made before the import", earlier.id))?;
    }
    Ok(())
}

/// The plan's line.
fn describe(plan: &Plan, dry_run: bool) -> String {
    let verb = match (plan.already_bound, dry_run) {
        (true, _) => "bound   ",
        (false, true) => "bind    ",
        (false, false) => "bound   ",
    };
    let mut parts = Vec::new();
    if !plan.kept.is_empty() {
        let kept: Vec<String> = plan.kept.iter().map(|(_, p, _)| price_text(p)).collect();
        parts.push(format!("keep {}", kept.join(", ")));
    }
    if !plan.created.is_empty() {
        let created: Vec<String> = plan
            .created
            .iter()
            .map(|&i| desired_text(&plan.desired.prices[i]))
            .collect();
        parts.push(format!("create {}", created.join(", ")));
    }
    if !plan.archived.is_empty() {
        let archived: Vec<String> = plan.archived.iter().map(price_text).collect();
        parts.push(format!("archive {}", archived.join(", ")));
    }
    if let Some(earlier) = &plan.earlier {
        parts.push(format!(
            "archive {} (catalog-sync's earlier product for this row)",
            earlier.id
        ));
    }
    if plan.product.active && !plan.desired.active {
        parts
            .push("archive the product (inactive or deleted row; within the archive guard)".into());
    }
    if parts.is_empty() {
        parts.push("no prices".into());
    }
    format!(
        "{verb} {} → {} ({:?}){}: {}",
        plan.row,
        plan.product.id,
        plan.product.name,
        if plan.already_bound { " already" } else { "" },
        parts.join("; ")
    )
}

fn period(interval: Option<(&str, i64)>) -> String {
    match interval {
        None => "one-off".into(),
        Some((interval, 1)) => format!("per {interval}"),
        Some((interval, n)) => format!("every {n} {interval}s"),
    }
}

fn price_text(p: &Price) -> String {
    format!(
        "{} ({} {} {})",
        p.id,
        p.unit_amount.map_or("tiered".into(), |a| a.to_string()),
        p.currency,
        period(
            p.recurring
                .as_ref()
                .map(|r| (r.interval.as_str(), r.interval_count))
        )
    )
}

fn desired_text(p: &DesiredPrice) -> String {
    format!(
        "{} {} {}",
        p.unit_amount,
        p.currency,
        period(
            p.recurring
                .as_ref()
                .map(|r| (r.interval.as_str(), r.interval_count))
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn price(id: &str, amount: i64, interval: Option<&str>, key: Option<&str>) -> Price {
        serde_json::from_value(json!({
            "id": id, "object": "price", "active": true, "currency": "usd",
            "unit_amount": amount, "lookup_key": key, "product": "prod_A",
            "recurring": interval.map(|i| json!({"interval": i, "interval_count": 1})),
        }))
        .unwrap()
    }

    fn desired(key: &str, amount: i64, interval: Option<&str>) -> DesiredPrice {
        DesiredPrice {
            lookup_key: key.into(),
            currency: "usd".into(),
            unit_amount: amount,
            recurring: interval.map(|i| domain::model::Recurring {
                interval: i.into(),
                interval_count: 1,
                meter: None,
            }),
            ..DesiredPrice::default()
        }
    }

    #[test]
    fn matching_prices_are_kept_the_others_created_or_archived() {
        let marker = CatalogIdentity::new("cat_a").price_marker();
        let existing = [
            price("price_monthly", 500, Some("month"), None),
            price("price_old", 900, None, None),
            price("price_one_off", 1000, None, None),
            price("price_keyed", 1000, None, Some("cs:sku:usd:one_time")),
        ];
        let wanted = [
            desired("cs:sku:usd:one_time", 1000, None),
            desired("cs:sku:usd:monthx1", 500, Some("month")),
            desired("cs:sku:usd:yearx1", 5000, Some("year")),
        ];
        let Matched {
            kept,
            created,
            archived,
        } = match_prices(&wanted, &existing, &marker);
        let kept: Vec<(usize, &str, Vec<&str>)> = kept
            .iter()
            .map(|(i, p, form)| (*i, p.id.as_str(), form.field_names()))
            .collect();
        // The price holding the key first, though another matches as well; the monthly one
        // given its key and catalog-sync's metadata, in place.
        assert_eq!(kept[0].0, 0);
        assert_eq!(kept[0].1, "price_keyed");
        assert!(!kept[0].2.contains(&"lookup_key"));
        assert_eq!(kept[1].0, 1);
        assert_eq!(kept[1].1, "price_monthly");
        assert!(kept[1].2.contains(&"lookup_key"), "{:?}", kept[1].2);
        // catalog-sync's own key is taken from whichever price holds it (its earlier product's).
        assert!(kept[1].2.contains(&"transfer_lookup_key"));
        assert_eq!(created, vec![2]);
        let archived: Vec<&str> = archived.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(archived, ["price_old", "price_one_off"]);
    }
}
