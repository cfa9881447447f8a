//! The sample Grafana dashboard (`deploy/grafana/dashboards/catalog-sync.json`) is valid JSON, and
//! every catalog-sync metric its queries and the alert rules (`deploy/prometheus/alerts.yml`) use
//! is one the binaries export (`common::metrics`), so a renamed metric cannot leave an empty
//! panel or a silent alert behind.

use common::metrics::METRIC_NAMES;

#[test]
fn dashboard_queries_only_exported_metrics() {
    let path = harness::workspace_root().join("deploy/grafana/dashboards/catalog-sync.json");
    let dashboard: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut used = 0;
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(rest) = word.strip_prefix("catalog_sync_") {
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| rest.strip_suffix(s))
                        .unwrap_or(rest);
                    let name = format!("catalog_sync_{base}");
                    assert!(
                        METRIC_NAMES.contains(&name.as_str()),
                        "panel {:?} queries {name}, which the worker does not export",
                        panel["title"]
                    );
                    used += 1;
                }
            }
        }
    }
    assert!(used >= METRIC_NAMES.len(), "every metric has a panel");
}

/// The catalog-sync metrics an expression names, without a histogram's suffixes.
fn metrics_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|word| word.strip_prefix("catalog_sync_"))
        .map(|rest| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| rest.strip_suffix(s))
                .unwrap_or(rest);
            format!("catalog_sync_{base}")
        })
        .collect()
}

#[test]
fn alert_rules_query_only_exported_metrics() {
    let path = harness::workspace_root().join("deploy/prometheus/alerts.yml");
    let rules: serde_yaml_ng::Value =
        serde_yaml_ng::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut named = 0;
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        for name in metrics_in(rule["expr"].as_str().unwrap()) {
            assert!(
                METRIC_NAMES.contains(&name.as_str()),
                "alert {:?} queries {name}, which no binary exports",
                rule["alert"]
            );
            named += 1;
        }
    }
    assert!(named >= 6, "the rules read catalog-sync's metrics");
}
