//! `starter verify`: compares the whole catalog with Stripe and reports every difference, through
//! its own reads and comparisons, not the sync's plan or upsert: a bug in the sync cannot hide
//! itself here. The product fields are compared by their entries in
//! `domain::fields::PRODUCT_FIELDS` (the field table the sync also reads: how a catalog value and
//! Stripe's compare is a fact of the field, not of the sync). Exit code 2 on any difference.
//!
//! Per catalog page of 100: one `GET /v1/products?ids[]=…` and, per product, its active prices
//! (`GET /v1/prices?product=…&active=true`); then every active Stripe product that catalog-sync
//! manages is checked to still have a live catalog row.

mod compare;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;

use crate::exit::Exit;
use catalog::{Catalog, IdRange};
use clap::Args;
use common::settings::StripeSettings;
use compare::{compare, metadata};
use domain::identity::{CatalogIdentity, Claim};
use domain::metadata::META_CATALOG;
use domain::model::CatalogProduct;
use serde_json::{Value, json};

/// `starter verify`.
#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    stripe: StripeSettings,
    /// Product fields Stripe owns: not compared.
    #[arg(long, env = "CATALOG_SYNC_STRIPE_OWNED_FIELDS", default_value = "")]
    stripe_owned_fields: String,
    /// Stripe requests per second at most: verify shares the account's rate limit with the
    /// workers, so it keeps to a small part of it; a 429 is waited out all the same.
    #[arg(long, default_value_t = 10.0)]
    requests_per_second: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Differences printed (all are counted).
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

struct Stripe {
    http: reqwest::Client,
    base: String,
    key: String,
    version: String,
    account: Option<String>,
    requests: u64,
    pace: tokio::time::Interval,
}

impl Stripe {
    /// A paced GET; 429 and 5xx answers are retried after `Retry-After` or a growing pause.
    async fn get(&mut self, path: &str, query: &[(String, String)]) -> anyhow::Result<Value> {
        let mut pause = std::time::Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.pace.tick().await;
            self.requests += 1;
            let mut request = self
                .http
                .get(format!("{}{path}", self.base))
                .basic_auth(&self.key, None::<&str>)
                .header("Stripe-Version", &self.version);
            if let Some(account) = &self.account {
                request = request.header("Stripe-Account", account);
            }
            let response = request
                .query(query)
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(std::time::Duration::from_secs);
            let body: Value = response
                .json()
                .await
                .with_context(|| format!("GET {path}"))?;
            let retryable = status.as_u16() == 429 || status.is_server_error();
            if retryable && attempt < 8 {
                tokio::time::sleep(retry_after.unwrap_or(pause)).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(10));
                continue;
            }
            let message = body["error"]["message"].as_str().unwrap_or_default();
            match status.as_u16() {
                401 => anyhow::bail!(
                    "Stripe refused STRIPE_API_KEY (401: {message}). Set STRIPE_API_KEY to a \
                     secret key (sk_…) or a restricted key (rk_…) of the account"
                ),
                403 => anyhow::bail!(
                    "STRIPE_API_KEY may not read {path} (403: {message}). A restricted key needs \
                     read access to Products and Prices"
                ),
                400 if message.contains("API version") => anyhow::bail!(
                    "Stripe refused STRIPE_API_VERSION={} ({message}). Unset it to use the pinned \
                     version {}",
                    self.version,
                    common::settings::PINNED_API_VERSION
                ),
                _ => {}
            }
            anyhow::ensure!(status.is_success(), "GET {path}: {status} {body}");
            return Ok(body);
        }
    }

    /// Every page of a list.
    async fn list(
        &mut self,
        path: &str,
        mut query: Vec<(String, String)>,
    ) -> anyhow::Result<Vec<Value>> {
        let mut all = Vec::new();
        query.push(("limit".into(), "100".into()));
        loop {
            let page = self.get(path, &query).await?;
            let data = page["data"].as_array().cloned().unwrap_or_default();
            let last = data
                .last()
                .and_then(|o| o["id"].as_str())
                .map(str::to_string);
            all.extend(data);
            match (page["has_more"].as_bool(), last) {
                (Some(true), Some(last)) => {
                    query.retain(|(k, _)| k != "starting_after");
                    query.push(("starting_after".into(), last));
                }
                _ => return Ok(all),
            }
        }
    }
}

/// One difference.
struct Difference {
    product: String,
    what: String,
}

/// Runs the comparison; fails when anything differs.
pub(crate) async fn run(catalog: &Catalog, args: VerifyArgs) -> anyhow::Result<Exit> {
    anyhow::ensure!(
        args.requests_per_second.is_finite() && args.requests_per_second >= 0.1,
        "--requests-per-second must be at least 0.1, got {}",
        args.requests_per_second
    );
    let config = stripe::client::StripeConfig::from_settings(&args.stripe)?;
    let stripe_owned: BTreeSet<String> = args
        .stripe_owned_fields
        .split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    let mut stripe = Stripe {
        http: reqwest::Client::builder().timeout(config.timeout).build()?,
        base: config.base_url,
        key: config.api_key.expose().to_string(),
        version: config.api_version,
        account: config.account,
        requests: 0,
        pace: tokio::time::interval(std::time::Duration::from_secs_f64(
            1.0 / args.requests_per_second,
        )),
    };
    let identity = CatalogIdentity::new(catalog.identity().await?);
    // The key and the API version first: a wrong one fails here, with the setting's name.
    stripe
        .get("/v1/products", &[("limit".into(), "1".into())])
        .await?;
    let invalid: BTreeSet<String> = catalog
        .sync_problems(1_000_000)
        .await?
        .into_iter()
        .filter(|r| r.entry.outcome == "invalid")
        .map(|r| r.entry.product_id)
        .collect();
    let mut differences = Vec::new();
    let (mut compared, mut skipped_invalid, mut unreadable) = (0u64, 0u64, 0u64);
    let mut live_ids = BTreeSet::new();
    let mut after = String::new();
    let bar =
        crate::progress::progress_bar(u64::try_from(catalog.count_products().await?).unwrap_or(0));
    bar.set_message("verified");
    loop {
        let page = catalog
            .products_page(&after, &IdRange::default(), 100)
            .await?;
        let Some(last) = page.last_id.clone() else {
            break;
        };
        bar.inc((page.products.len() + page.corrupt.len()) as u64);
        for corrupt in &page.corrupt {
            // Reported here once, not again as an orphan.
            live_ids.insert(corrupt.id.clone());
            unreadable += 1;
            differences.push(Difference {
                product: corrupt.id.clone(),
                what: format!(
                    "catalog row unreadable: {} {}",
                    corrupt.field, corrupt.reason
                ),
            });
        }
        // A row `starter import` bound is compared with the product it was bound to.
        let stripe_id = |p: &CatalogProduct| p.bound_stripe_id.clone().unwrap_or(p.id.clone());
        let mut query: Vec<(String, String)> = page
            .products
            .iter()
            .map(|p| ("ids[]".to_string(), stripe_id(p)))
            .collect();
        query.push(("expand[]".into(), "data.default_price".into()));
        query.push(("expand[]".into(), "data.default_price.tiers".into()));
        query.push((
            "expand[]".into(),
            "data.default_price.currency_options".into(),
        ));
        let found: BTreeMap<String, Value> = if page.products.is_empty() {
            BTreeMap::new()
        } else {
            stripe
                .list("/v1/products", query)
                .await?
                .into_iter()
                .filter_map(|p| Some((p["id"].as_str()?.to_string(), p)))
                .collect()
        };
        for product in &page.products {
            if product.active && !product.deleted {
                live_ids.insert(product.id.clone());
            }
            if invalid.contains(&product.id) {
                skipped_invalid += 1;
                continue;
            }
            compared += 1;
            if let Some(named) = product.stripe_id.as_deref().map(str::trim)
                && !named.is_empty()
                && named != stripe_id(product)
            {
                differences.push(Difference {
                    product: product.id.clone(),
                    what: format!(
                        "the row names Stripe product {named}, and is bound to {}: run `starter \
                         import --dry-run`",
                        product.bound_stripe_id.as_deref().unwrap_or("none")
                    ),
                });
                continue;
            }
            let stripe_id = stripe_id(product);
            let prices = match found.get(&stripe_id) {
                Some(_) if product.active && !product.deleted => {
                    let query = vec![
                        ("product".to_string(), stripe_id.clone()),
                        ("active".to_string(), "true".to_string()),
                        ("expand[]".to_string(), "data.tiers".to_string()),
                        ("expand[]".to_string(), "data.currency_options".to_string()),
                    ];
                    stripe.list("/v1/prices", query).await?
                }
                _ => Vec::new(),
            };
            let stripe_product = found.get(&stripe_id);
            let claim = stripe_product.map(|s| identity.claim(&metadata(s), &product.id));
            if let Some(why) = claim.as_ref().and_then(|c| c.refusal(&identity)) {
                // A product this catalog wrote whose identity metadata was edited by hand: the
                // next sync or reconciliation restores it.
                let wrote = !catalog
                    .written_products(identity.as_str(), std::slice::from_ref(&product.id))
                    .await?
                    .is_empty();
                let what = if wrote {
                    let edited = stripe_product
                        .and_then(|s| s["metadata"][META_CATALOG].as_str())
                        .unwrap_or("(removed)");
                    format!(
                        "{META_CATALOG}: Stripe {edited:?}, not this catalog's {identity}, on a \
                         product this catalog wrote (edited by hand?): the next sync restores it"
                    )
                } else {
                    format!("the Stripe product with this id {why}")
                };
                differences.push(Difference {
                    product: product.id.clone(),
                    what,
                });
                continue;
            }
            for what in compare(product, stripe_product, &prices, &stripe_owned) {
                differences.push(Difference {
                    product: product.id.clone(),
                    what,
                });
            }
        }
        if page.rows < 100 {
            break;
        }
        after = last;
    }
    // This catalog's products in Stripe without a live catalog row; other catalogs' are counted.
    let active = stripe
        .list("/v1/products", vec![("active".into(), "true".into())])
        .await?;
    let mut other_catalogs = 0u64;
    let rows_of_bound: BTreeMap<String, String> = catalog
        .bindings()
        .await?
        .into_iter()
        .map(|(row, product)| (product, row))
        .collect();
    for p in active {
        let product_id = p["id"].as_str().unwrap_or_default();
        let id = rows_of_bound
            .get(product_id)
            .map_or(product_id, String::as_str);
        let claim = identity.claim(&metadata(&p), id);
        if matches!(claim, Claim::OtherCatalog(_) | Claim::Unadopted) {
            other_catalogs += 1;
            continue;
        }
        if claim == Claim::Ours && !live_ids.contains(id) && !invalid.contains(id) {
            differences.push(Difference {
                product: product_id.to_string(),
                what: "active in Stripe, not live in the catalog".into(),
            });
        }
    }

    bar.finish_and_clear();
    let report = json!({
        "compared": compared,
        "invalid_not_synced": skipped_invalid,
        "unreadable_rows": unreadable,
        "catalog": identity.as_str(),
        "other_catalogs_products": other_catalogs,
        "differences": differences.len(),
        "stripe_requests": stripe.requests,
        "list": differences.iter().take(args.limit).map(|d| json!({"product": d.product, "difference": d.what})).collect::<Vec<_>>(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in differences.iter().take(args.limit) {
            println!("differs  {}: {}", d.product, d.what);
        }
        println!(
            "verify: catalog {identity}: {compared} products compared, {} differences ({unreadable} of them unreadable catalog rows), {skipped_invalid} invalid (not synced), {other_catalogs} active Stripe products of other catalogs or not adopted (not compared), {} Stripe requests",
            differences.len(),
            stripe.requests
        );
    }
    if differences.is_empty() {
        return Ok(Exit::Ok);
    }
    eprintln!(
        "{} differences between the catalog and Stripe",
        differences.len()
    );
    Ok(Exit::Drift)
}
