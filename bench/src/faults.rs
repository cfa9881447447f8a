//! `bench faults`: the naive baseline (a change handler calling Stripe inline, once, no
//! Temporal) beside catalog-sync, both sending the same number of updates through the same fault
//! rate of the sandbox; updates lost by each, read back once the faults are off.

use std::time::{Duration, Instant};

use anyhow::Context;
use catalog::Catalog;
use chrono::Utc;
use clap::Args;
use serde_json::json;

use crate::changes::{edit, wait_for_outbox, wait_synced};

/// `bench faults` (against the sandbox: it sets the sandbox's faults).
#[derive(Args)]
pub(crate) struct FaultsArgs {
    /// Updates each side sends (catalog-sync's go to that many catalog products).
    #[arg(long, default_value_t = 200)]
    updates: usize,
    /// Fraction of Stripe requests that fail: three quarters as server errors, a quarter as
    /// dropped connections.
    #[arg(long, default_value_t = 0.2)]
    fault_rate: f64,
    /// Updates per second on each side.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// How long catalog-sync may take to land every update once they are all made, faults still
    /// on.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Then, with the faults off, how long the updates still retrying may take (an activity
    /// retries at most every 60 s): those are late, not lost.
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// The sandbox (its faults and request counter are sandbox-only).
    #[command(flatten)]
    stripe: common::settings::StripeSettings,
}

pub(crate) async fn faults(catalog: &Catalog, args: FaultsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.fault_rate),
        "--fault-rate is a fraction"
    );
    let sandbox = SandboxApi {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        base: args.stripe.base(),
        key: args.stripe.api_key()?.expose().to_string(),
    };
    let ids = catalog.product_ids("", args.updates as i64).await?;
    anyhow::ensure!(
        ids.len() == args.updates,
        "the catalog has {} products; seed at least {}",
        ids.len(),
        args.updates
    );
    wait_for_outbox(catalog, Duration::from_secs(300)).await?;
    for id in &ids {
        let version = catalog.fetch_product(id).await?.map_or(0, |p| p.version);
        wait_synced(catalog, id, version, Duration::from_secs(300)).await?;
    }
    // The naive side's products exist in Stripe but not in the catalog, so catalog-sync never
    // touches them.
    let run = Utc::now().format("%H%M%S").to_string();
    let naive_ids: Vec<String> = (0..args.updates)
        .map(|i| format!("naive-{run}-{i:04}"))
        .collect();
    sandbox.set_faults(None).await?;
    for id in &naive_ids {
        let status = sandbox
            .post("/v1/products", &format!("id={id}&name=Naive-baseline"))
            .await?;
        anyhow::ensure!(status.is_success(), "creating {id}: {status}");
    }

    sandbox
        .set_faults(Some(json!({
            "seed": 20,
            "error_rate": args.fault_rate * 0.75,
            "drop_rate": args.fault_rate * 0.25,
        })))
        .await?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    let mut made = Vec::with_capacity(args.updates);
    let mut naive_intended = Vec::with_capacity(args.updates);
    let mut naive_errors = 0;
    for i in 0..args.updates {
        ticker.tick().await;
        // catalog-sync: the change is committed to the catalog; outbox, relay and workflow carry
        // it to Stripe, retrying as long as it takes.
        let (version, _) = edit(catalog, &ids[i], format!("Fault bench {run} update {i}")).await?;
        made.push((ids[i].clone(), version));
        // The naive handler: one inline call; on an error it logs and the update is gone.
        let name = format!("Naive-{run}-update-{i}");
        let sent = sandbox
            .post(
                &format!("/v1/products/{}", naive_ids[i]),
                &format!("name={name}"),
            )
            .await;
        if !sent.is_ok_and(|status| status.is_success()) {
            naive_errors += 1;
        }
        naive_intended.push(name);
    }
    // Faults stay on while catalog-sync settles: with three requests per sync, an attempt fails
    // about half the time at 20 %, and retries back off to one a minute.
    let deadline = Instant::now() + args.settle;
    let mut unsettled = Vec::new();
    for (id, version) in &made {
        let left = deadline.saturating_duration_since(Instant::now());
        if wait_synced(catalog, id, *version, left).await.is_err() {
            unsettled.push((id.clone(), *version));
        }
    }
    sandbox.set_faults(None).await?;
    let deadline = Instant::now() + args.drain;
    let mut late = 0;
    for (id, version) in &unsettled {
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_synced(catalog, id, *version, left).await {
            Ok(_) => late += 1,
            Err(_) => {
                tracing::warn!(product = %id, version, "not synced within --settle and --drain")
            }
        }
    }

    // Lost: Stripe does not show the update, read back with the faults off.
    let mut naive_lost = 0;
    for (id, name) in naive_ids.iter().zip(&naive_intended) {
        naive_lost += usize::from(sandbox.product_name(id).await?.as_deref() != Some(name));
    }
    let mut catalog_sync_lost = 0;
    for (id, _) in &made {
        let want = catalog.fetch_product(id).await?.map(|p| p.name);
        catalog_sync_lost += usize::from(sandbox.product_name(id).await? != want);
    }
    let pass = catalog_sync_lost == 0;
    println!(
        "{}",
        json!({ "bench": "faults", "updates": args.updates, "fault_rate": args.fault_rate,
                "naive": { "errors_seen": naive_errors, "lost": naive_lost },
                "catalog_sync": { "lost": catalog_sync_lost, "late": late },
                "settle_s": args.settle.as_secs(),
                "target_catalog_sync_lost": 0, "pass": pass })
    );
    println!(
        "faults: {} updates each at {:.0} % faults; naive inline handler lost {naive_lost} ({:.1} %), catalog-sync lost {catalog_sync_lost} ({late} landed only after the faults stopped, beyond {}); target 0 lost: {}",
        args.updates,
        args.fault_rate * 100.0,
        naive_lost as f64 * 100.0 / args.updates as f64,
        humantime::format_duration(args.settle),
        if pass { "PASS" } else { "FAIL" }
    );
    anyhow::ensure!(pass, "catalog-sync lost updates");
    Ok(())
}

/// The sandbox as the naive handler and the judge see it.
struct SandboxApi {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl SandboxApi {
    /// One form POST (values must not need URL-encoding); the status, or the transport error.
    async fn post(&self, path: &str, body: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.key, None::<&str>)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .map(|r| r.status())
    }

    async fn product_name(&self, id: &str) -> anyhow::Result<Option<String>> {
        let response = self
            .http
            .get(format!("{}/v1/products/{id}", self.base))
            .basic_auth(&self.key, None::<&str>)
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: serde_json::Value = response.error_for_status()?.json().await?;
        Ok(body["name"].as_str().map(str::to_string))
    }

    async fn set_faults(&self, faults: Option<serde_json::Value>) -> anyhow::Result<()> {
        let url = format!("{}/_sandbox/faults", self.base);
        let request = match faults {
            Some(faults) => self.http.post(url).json(&faults),
            None => self.http.delete(url),
        };
        request
            .send()
            .await?
            .error_for_status()
            .context("configuring the sandbox's faults (is STRIPE_API_BASE the sandbox?)")?;
        Ok(())
    }
}
