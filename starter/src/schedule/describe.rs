//! `starter schedule describe`: a schedule as a person (or `--json`) reads it: its spec in cron
//! fields, the overlap policy in words, the recent and next runs.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::enums::v1::ScheduleOverlapPolicy as ProtoOverlapPolicy;
use temporalio_common::protos::temporal::api::schedule::v1::{Range, StructuredCalendarSpec};

pub(super) fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A calendar as cron's fields (second, minute, hour, day of month, month, day of week), as
/// `schedule apply --cron` takes them (a cron is stored as a calendar).
pub(super) fn cron_fields(calendar: &StructuredCalendarSpec) -> String {
    let field = |ranges: &[Range], full: (i32, i32)| -> String {
        if ranges.is_empty()
            || ranges
                .iter()
                .any(|r| (r.start, r.end.max(r.start), r.step.max(1)) == (full.0, full.1, 1))
        {
            return "*".into();
        }
        ranges
            .iter()
            .map(|r| {
                let end = r.end.max(r.start);
                let span = if end == r.start {
                    r.start.to_string()
                } else {
                    format!("{}-{end}", r.start)
                };
                if r.step > 1 {
                    format!("{span}/{}", r.step)
                } else {
                    span
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    [
        field(&calendar.second, (0, 59)),
        field(&calendar.minute, (0, 59)),
        field(&calendar.hour, (0, 23)),
        field(&calendar.day_of_month, (1, 31)),
        field(&calendar.month, (1, 12)),
        field(&calendar.day_of_week, (0, 6)),
    ]
    .join(" ")
}

/// The schedule as `describe` prints it: one field a line, or the same facts as JSON.
pub(super) async fn describe(client: &Client, id: &str, json: bool) -> anyhow::Result<()> {
    let d = client
        .get_schedule_handle(id)
        .describe(Default::default())
        .await
        .with_context(|| format!("reading schedule {id}"))?;
    let raw = d.raw();
    let schedule = raw.schedule.as_ref();
    let spec = schedule.and_then(|s| s.spec.as_ref());
    let policies = schedule.and_then(|s| s.policies.as_ref());
    let seconds = |secs: i64| {
        humantime::format_duration(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
            .to_string()
    };
    let every: Vec<String> = spec
        .into_iter()
        .flat_map(|s| &s.interval)
        .filter_map(|i| i.interval.as_ref().map(|d| seconds(d.seconds)))
        .collect();
    let cron: Vec<String> = spec
        .into_iter()
        .flat_map(|s| s.cron_string.clone())
        .collect();
    let calendars: Vec<String> = spec
        .into_iter()
        .flat_map(|s| &s.structured_calendar)
        .map(cron_fields)
        .collect();
    // `SCHEDULE_OVERLAP_POLICY_BUFFER_ONE` as `schedule apply --overlap` takes it.
    let overlap = policies.map(|p| {
        ProtoOverlapPolicy::try_from(p.overlap_policy).map_or("?".into(), |p| {
            p.as_str_name()
                .trim_start_matches("SCHEDULE_OVERLAP_POLICY_")
                .to_lowercase()
                .replace('_', "-")
        })
    });
    let catch_up = policies.and_then(|p| p.catchup_window.as_ref().map(|d| seconds(d.seconds)));
    let recent: Vec<(String, String)> = d
        .recent_actions()
        .iter()
        .map(|a| {
            (
                a.schedule_time.map(time).unwrap_or_default(),
                a.workflow_id.clone(),
            )
        })
        .collect();
    let next: Vec<String> = d
        .future_action_times()
        .into_iter()
        .take(3)
        .map(time)
        .collect();
    if json {
        let report = serde_json::json!({
            "id": id,
            "paused": d.paused(),
            "note": d.note(),
            "every": every,
            "cron": cron,
            "calendar": calendars,
            "overlap": overlap,
            "catch_up_window": catch_up,
            "runs_started": d.action_count(),
            "skipped_for_overlap": d.overlap_skipped(),
            "missed_catch_up_window": d.missed_catchup_window(),
            "recent": recent.iter().map(|(at, workflow_id)| serde_json::json!({
                "scheduled_at": at, "workflow_id": workflow_id,
            })).collect::<Vec<_>>(),
            "next": next,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("schedule   {id}");
    println!(
        "paused     {}{}",
        d.paused(),
        d.note().map(|n| format!(" ({n})")).unwrap_or_default()
    );
    for e in &every {
        println!("every      {e}");
    }
    for c in &cron {
        println!("cron       {c}");
    }
    for c in &calendars {
        println!("calendar   {c}");
    }
    if let Some(overlap) = &overlap {
        println!("overlap    {overlap}");
    }
    if let Some(catch_up) = &catch_up {
        println!("catch-up   {catch_up}");
    }
    println!(
        "runs       {} started, {} skipped for overlap, {} missed the catch-up window",
        d.action_count(),
        d.overlap_skipped(),
        d.missed_catchup_window()
    );
    for (at, workflow_id) in &recent {
        println!("recent     {at} {workflow_id}");
    }
    for t in &next {
        println!("next       {t}");
    }
    Ok(())
}
