//! What a reconciliation is asked to do: its input, checked and defaulted, and its signals.

use serde::{Deserialize, Serialize};

use crate::input::{LenientInput, invalid_workflow_input};
use temporalio_sdk::WorkflowResult;

use super::ReconcileCarry;
use super::method::ReconcileMethod;

/// Products per catalog page: Stripe lists at most 100 ids per request.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Temporal's advice for the number of children a workflow keeps open at once.
pub const MAX_IN_FLIGHT: u32 = 500;
const DEFAULT_IN_FLIGHT: u32 = 100;
/// Most pages one run reads before continuing as new (history stays far from Temporal's limits).
pub const MAX_PAGES_PER_RUN: u32 = 200;
/// Most samples of differences, invalid products and failures kept in the result.
pub const MAX_SAMPLE_SIZE: u32 = 1000;
const DEFAULT_PAGES_PER_RUN: u32 = 20;
const DEFAULT_SAMPLE_SIZE: u32 = 20;
/// One run archives at most this share of the catalog (in percent) without confirmation…
pub const DEFAULT_ARCHIVE_LIMIT_PERCENT: f64 = 2.0;
/// … or this many products, whichever is larger.
pub const DEFAULT_ARCHIVE_LIMIT_MIN: u64 = 10;

/// Dry-run only reports; apply repairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileMode {
    /// Repair what differs.
    #[default]
    Apply,
    /// Classify and report; write nothing.
    DryRun,
}

/// What to do with Stripe products catalog-sync manages whose catalog row is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrphanPolicy {
    /// Archive them (in apply mode).
    #[default]
    Archive,
    /// Only count and report them.
    Report,
}

/// Input of `ReconcileCatalog`. Every field has a default: `{}` reconciles the whole catalog and
/// repairs. Unknown or mistyped fields end the workflow with `InvalidWorkflowInput` instead of a
/// workflow task that retries forever: decoding never fails, it records why in `invalid_input`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct ReconcileInput {
    /// `apply` (default) or `dry_run`.
    pub mode: ReconcileMode,
    /// First catalog id included.
    pub from: Option<String>,
    /// Last catalog id included.
    pub to: Option<String>,
    /// Only products updated at or after this RFC 3339 time (backfills). No orphan phase.
    pub since: Option<String>,
    /// `archive` (default) or `report`.
    pub orphans: OrphanPolicy,
    /// Products per page, 1..=100 (0 = 100).
    pub page_size: u32,
    /// Pages per run before continuing as new (0 = 20).
    pub pages_per_run: u32,
    /// Repairs running at once, 1..=500 (0 = 100).
    pub max_in_flight: u32,
    /// Differences, invalid products and failures kept as samples (0 = 20).
    pub sample_size: u32,
    /// The archive guard: one run archives at most the larger of `archive_limit_min` (default 10)
    /// and this percentage (default 2) of the catalog products in scope when it started. A run
    /// that finds more archives nothing and ends `needs_confirmation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_limit_percent: Option<f64>,
    /// See `archive_limit_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_limit_min: Option<u64>,
    /// Apply every archive found, beyond the guard: the confirmation of a run that ended
    /// `needs_confirmation`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_mass_archive: bool,
    /// Carried over continue-as-new; absent on the first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carry: Option<ReconcileCarry>,
    /// How Stripe is read: `auto` (the default) chooses the cheaper of `scan` and `ids` (see
    /// [`super::method`]).
    #[serde(skip_serializing_if = "is_auto")]
    pub method: ReconcileMethod,
    /// Why the input could not be decoded, if it could not (never serialized).
    #[serde(skip)]
    pub invalid_input: Option<String>,
}

fn is_auto(method: &ReconcileMethod) -> bool {
    *method == ReconcileMethod::Auto
}

impl Serialize for ReconcileInput {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The derived (strict) implementation, generated under `remote = "Self"`.
        ReconcileInput::serialize(self, serializer)
    }
}

impl LenientInput for ReconcileInput {
    const EXAMPLE: &'static str = r#"{}"#;

    fn invalid(why: String) -> Self {
        Self {
            invalid_input: Some(why),
            ..Self::default()
        }
    }

    fn from_json(value: serde_json::Value) -> Self {
        // The derived (strict) implementation, generated under `remote = "Self"`.
        ReconcileInput::deserialize(value)
            .unwrap_or_else(|e| Self::invalid(format!("ReconcileCatalog input: {e}")))
    }
}

impl ReconcileInput {
    pub(super) fn page_size(&self) -> u32 {
        match self.page_size {
            0 => MAX_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        }
    }

    pub(super) fn pages_per_run(&self) -> u32 {
        match self.pages_per_run {
            0 => DEFAULT_PAGES_PER_RUN,
            n => n,
        }
    }

    pub(super) fn sample_size(&self) -> usize {
        match self.sample_size {
            0 => DEFAULT_SAMPLE_SIZE as usize,
            n => n as usize,
        }
    }

    /// The most archives one run applies without `allow_mass_archive`, for a scope of
    /// `catalog_products` products.
    pub fn archive_limit(&self, catalog_products: u64) -> u64 {
        let percent = self
            .archive_limit_percent
            .unwrap_or(DEFAULT_ARCHIVE_LIMIT_PERCENT);
        let share = (catalog_products as f64 * percent / 100.0).floor() as u64;
        share.max(self.archive_limit_min.unwrap_or(DEFAULT_ARCHIVE_LIMIT_MIN))
    }

    /// Whether the orphan phase runs: it cannot be scoped by update time.
    pub(super) fn sweeps_orphans(&self) -> bool {
        self.since.is_none()
    }
}

pub(super) fn clamp_in_flight(n: u32) -> u32 {
    match n {
        0 => DEFAULT_IN_FLIGHT,
        n => n.min(MAX_IN_FLIGHT),
    }
}

/// Ends the workflow with `InvalidWorkflowInput` when the input cannot be used.
pub(super) fn validate(input: &ReconcileInput) -> WorkflowResult<()> {
    input.check().map_err(invalid_workflow_input)
}

impl ReconcileInput {
    /// Why this input cannot be used, if it cannot: checked by `starter reconcile` before it
    /// starts the workflow, and again by the workflow for starts from elsewhere. Zero means the
    /// default; a value above a limit is refused rather than silently lowered.
    pub fn check(&self) -> Result<(), String> {
        if let Some(why) = &self.invalid_input {
            return Err(why.clone());
        }
        if let Some(since) = &self.since
            && chrono::DateTime::parse_from_rfc3339(since).is_err()
        {
            return Err(format!(
                "`since` must be an RFC 3339 time such as 2026-11-29T00:00:00Z, got {since:?}"
            ));
        }
        if let (Some(from), Some(to)) = (&self.from, &self.to)
            && from > to
        {
            return Err(format!("`from` ({from:?}) is after `to` ({to:?})"));
        }
        if let Some(percent) = self.archive_limit_percent
            && !(0.0..=100.0).contains(&percent)
        {
            return Err(format!(
                "`archive_limit_percent` must be between 0 and 100, got {percent}"
            ));
        }
        for (name, value, max) in [
            ("page_size", self.page_size, MAX_PAGE_SIZE),
            ("pages_per_run", self.pages_per_run, MAX_PAGES_PER_RUN),
            ("max_in_flight", self.max_in_flight, MAX_IN_FLIGHT),
            ("sample_size", self.sample_size, MAX_SAMPLE_SIZE),
        ] {
            if value > max {
                return Err(format!(
                    "`{name}` must be at most {max} (0 for the default), got {value}"
                ));
            }
        }
        Ok(())
    }
}

/// The `stop` signal: read no more pages, finish the repairs already found, then end with the
/// totals so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StopRequest {
    /// Why (logged).
    pub reason: String,
}

/// The `set_max_in_flight` signal: a new repair window (clamped to 1..=500), kept across runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SetMaxInFlight {
    /// The new window.
    pub max_in_flight: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ReconcileInput {
        ReconcileInput::from_json(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn input_defaults_and_limits() {
        let input = parse("{}");
        assert_eq!(input.mode, ReconcileMode::Apply);
        assert_eq!(input.page_size(), 100);
        assert_eq!(input.pages_per_run(), 20);
        assert!(input.sweeps_orphans());
        let input =
            parse(r#"{"mode": "dry_run", "page_size": 500, "since": "2026-01-01T00:00:00Z"}"#);
        assert_eq!(input.mode, ReconcileMode::DryRun);
        assert_eq!(input.page_size(), 100);
        assert!(!input.sweeps_orphans());
        assert!(
            input
                .check()
                .unwrap_err()
                .contains("`page_size` must be at most 100"),
            "out of range is refused, not lowered"
        );
        for (field, over) in [
            ("page_size", 100_000),
            ("max_in_flight", 100_000),
            ("pages_per_run", 100_000),
            ("sample_size", 100_000),
        ] {
            let input = parse(&format!("{{\"{field}\": {over}}}"));
            assert!(input.check().unwrap_err().contains(field), "{field}");
        }
        assert_eq!(
            parse(r#"{"page_size": 0, "max_in_flight": 500}"#).check(),
            Ok(())
        );
        assert_eq!(clamp_in_flight(0), 100);
        // The archive guard: the larger of 10 and 2 % by default, both settable.
        assert_eq!(parse("{}").archive_limit(100), 10);
        assert_eq!(parse("{}").archive_limit(2_000), 40);
        let strict = parse(r#"{"archive_limit_percent": 0.5, "archive_limit_min": 0}"#);
        assert_eq!(strict.archive_limit(2_000), 10);
        assert_eq!(strict.archive_limit(100), 0);
        assert!(
            parse(r#"{"archive_limit_percent": 150}"#)
                .check()
                .unwrap_err()
                .contains("archive_limit_percent")
        );
        assert_eq!(clamp_in_flight(10_000), 500);
        for bad in [
            r#"{"mode": "yolo"}"#,
            r#"{"page_size": "ten"}"#,
            r#"{"extra": 1}"#,
            "42",
        ] {
            let input = parse(bad);
            assert!(input.invalid_input.is_some(), "{bad}");
            assert!(input.check().is_err(), "{bad}");
        }
        let carried = ReconcileInput {
            carry: Some(ReconcileCarry {
                cursor: "sku-000100".into(),
                runs: 2,
                ..ReconcileCarry::default()
            }),
            ..input.clone()
        };
        let round: ReconcileInput = parse(&serde_json::to_string(&carried).unwrap());
        assert_eq!(
            round, carried,
            "continue-as-new input survives a round trip"
        );
    }
}
