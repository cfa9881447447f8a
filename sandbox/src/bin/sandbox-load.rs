//! `sandbox-load`: a load generator for the sandbox (or anything speaking Stripe's API), to check
//! that the sandbox is never the bottleneck of a benchmark. A bounded run: fixed clients, fixed
//! duration, loopback only.
//!
//! ```sh
//! taskset -c 0 stripe-sandbox --addr 127.0.0.1:12199 --rate-limit 0 &
//! taskset -c 1 sandbox-load --base http://127.0.0.1:12199 --clients 50 --seconds 10
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

/// Drive a sandbox with concurrent clients and report throughput and latency.
#[derive(Parser)]
struct Args {
    /// Base URL of the sandbox.
    #[arg(long, default_value = "http://127.0.0.1:12111")]
    base: String,
    /// Concurrent clients (each with its own connection).
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Fraction of requests that are writes (product updates); the rest are reads.
    #[arg(long, default_value_t = 0.3)]
    write_fraction: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.base.starts_with("http://127.") || args.base.starts_with("http://localhost"),
        "sandbox-load only targets loopback addresses"
    );
    let key = "sk_test_load";
    let setup = reqwest::Client::new();
    for c in 0..args.clients {
        let r = setup
            .post(format!("{}/v1/products", args.base))
            .bearer_auth(key)
            .body(format!("id=load-{c}&name=Load+{c}"))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success() || r.status() == 400,
            "setup failed: {}",
            r.status()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|c| {
            let base = args.base.clone();
            let write_fraction = args.write_fraction;
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let write = (n % 100) < (write_fraction * 100.0) as u64;
                    let t = Instant::now();
                    let req = if write {
                        http.post(format!("{base}/v1/products/load-{c}"))
                            .body(format!("metadata[n]={n}"))
                    } else {
                        http.get(format!("{base}/v1/products/load-{c}"))
                    };
                    match req.bearer_auth(key).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                        }
                        _ => errors += 1,
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let report = json!({
        "clients": args.clients,
        "seconds": elapsed,
        "requests": latencies.len(),
        "errors": errors,
        "requests_per_second": latencies.len() as f64 / elapsed,
        "p50_ms": pct(0.50).as_secs_f64() * 1e3,
        "p99_ms": pct(0.99).as_secs_f64() * 1e3,
    });
    println!("{report}");
    eprintln!(
        "{} requests in {:.1} s from {} clients: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
        latencies.len(),
        elapsed,
        args.clients,
        report["requests_per_second"].as_f64().unwrap_or(0.0),
        report["p50_ms"].as_f64().unwrap_or(0.0),
        report["p99_ms"].as_f64().unwrap_or(0.0),
        errors
    );
    Ok(())
}
