//! `status`'s report as a person reads it (`--json` prints the same facts as JSON).

use std::time::Duration;

use serde_json::Value;

pub(super) fn print_report(r: &Value) {
    println!(
        "catalog-sync status (catalog {}, namespace {}, task queue {})",
        r["catalog"].as_str().unwrap_or("?"),
        r["namespace"].as_str().unwrap_or("?"),
        r["task_queue"].as_str().unwrap_or("?")
    );
    for kind in ["workflow", "activity", "stripe"] {
        let q = &r["task_queues"][kind];
        let limit = match q["rate_limit_per_second"].as_f64() {
            Some(rate) if rate > 0.0 && kind == "stripe" => format!(", {rate:.0}/s budget"),
            _ => String::new(),
        };
        println!(
            "  {kind:<9} tasks   backlog {} (oldest {:.1} s), {} pollers{limit}",
            q["backlog"],
            q["backlog_age_seconds"].as_f64().unwrap_or(0.0),
            q["pollers"]
        );
    }
    println!("  syncs running     {}", r["syncs_running"]);
    let capture = &r["capture"];
    let tables: Vec<&str> = capture["tables_with_triggers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "  capture           {}{}, last change relayed {}",
        capture["mode"].as_str().unwrap_or("no relay has run yet"),
        if tables.is_empty() {
            String::new()
        } else {
            format!(" (triggers on {})", tables.join(", "))
        },
        capture["last_relayed_age_seconds"]
            .as_f64()
            .map_or("never".to_string(), |s| format!(
                "{} ago",
                humantime::format_duration(Duration::from_secs(s as u64))
            ))
    );
    println!(
        "  outbox            {} pending, lag {:.1} s, {} refused, {} relays alive",
        r["outbox"]["pending"],
        r["outbox"]["lag_seconds"].as_f64().unwrap_or(0.0),
        r["outbox"]["refused"],
        r["outbox"]["relays"]
    );
    println!(
        "  products          {} failed, {} invalid, {} skipped (latest sync of each)",
        r["failed_count"], r["invalid_count"], r["skipped_count"]
    );
    println!("  syncs retrying    {}", r["retrying_count"]);
    println!("  ended, no outcome {}", r["ended_without_outcome_count"]);
    for e in r["ended_without_outcome"].as_array().into_iter().flatten() {
        println!(
            "    {} {} at {}",
            e["workflow_id"].as_str().unwrap_or("?"),
            e["status"].as_str().unwrap_or("?").to_lowercase(),
            e["closed"].as_str().unwrap_or("?")
        );
    }
    for s in r["retrying"].as_array().into_iter().flatten() {
        println!(
            "    {} at attempt {} of {}: {}",
            s["workflow_id"].as_str().unwrap_or("?"),
            s["attempt"],
            s["activity"].as_str().unwrap_or("?"),
            s["last_failure"].as_str().unwrap_or("-")
        );
    }
    for (label, key) in [
        ("failed", "failed"),
        ("invalid", "invalid"),
        ("skipped", "skipped"),
    ] {
        for p in r[key].as_array().into_iter().flatten() {
            println!(
                "    {label:<8} {}: {}",
                p["product_id"].as_str().unwrap_or("?"),
                p["reason"].as_str().unwrap_or("-")
            );
        }
    }
    println!("  held archives     {}", r["held_archives"]);
    for s in r["stranded_runs"].as_array().into_iter().flatten() {
        println!(
            "  stranded runs     {} on task queue {} (no worker polls it)",
            s["runs"],
            s["task_queue"].as_str().unwrap_or("?")
        );
    }
    let rec = &r["last_reconciliation"];
    if rec.is_null() {
        println!("  reconciliation    none yet");
    } else {
        let totals = &rec["result"]["totals"];
        let detail = if totals.is_object() {
            format!(
                ": scanned {}, in sync {}, repaired {}, failed {}, invalid {}",
                totals["scanned"],
                totals["in_sync"],
                totals["repaired"],
                totals["failed"],
                totals["invalid"]
            )
        } else if rec["progress"].is_object() {
            format!(": scanned {} so far", rec["progress"]["totals"]["scanned"])
        } else {
            String::new()
        };
        println!(
            "  reconciliation    {} {} (started {}){detail}",
            rec["workflow_id"].as_str().unwrap_or("?"),
            rec["status"].as_str().unwrap_or("?"),
            rec["started"].as_str().unwrap_or("?")
        );
    }
    let problems: Vec<&str> = r["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if problems.is_empty() {
        println!("  health            OK");
    } else {
        println!("  health            UNHEALTHY");
        for p in problems {
            println!("    - {p}");
        }
    }
}
