//! Activity settings for the worker: the defaults of [`RetryConfig`], then the config file's
//! `[retry]` section, then environment variables, each overriding the one before.
//!
//! ```toml
//! # catalog-sync.toml
//! [retry.upsert]
//! maximum_interval_ms = 30000
//! ```
//!
//! The same as an environment variable: `CATALOG_SYNC_RETRY_UPSERT_MAXIMUM_INTERVAL_MS=30000`.
//!
//! Which failures are final is not a setting (see `workflows::retry::failure_types`): a
//! `non_retryable_error_types` key, which earlier versions read, is refused with that reason.

use anyhow::Context;
use common::settings::ConfigFile;
use workflows::retry::RetryConfig;

/// Prefix of the environment overrides.
pub const ENV_PREFIX: &str = "CATALOG_SYNC_RETRY_";

/// The key earlier versions read, refused now with the reason.
const RETIRED_FIELD: &str = "non_retryable_error_types";

fn refuse_retired(field: &str, place: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        field != RETIRED_FIELD,
        "{place}: `{RETIRED_FIELD}` is no longer a setting: which failures are final ({}) is \
         decided by catalog-sync's error mapping, and no setting can make a rejected request \
         worth repeating. Remove it.",
        workflows::retry::failure_types::NON_RETRYABLE.join(", ")
    );
    Ok(())
}

/// The settings of `file`'s `[retry]` section and the process environment.
pub fn load(file: &ConfigFile) -> anyhow::Result<RetryConfig> {
    let overrides = std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX));
    merge(file, overrides).with_context(|| {
        format!("activity settings in [retry] (CATALOG_SYNC_CONFIG) or {ENV_PREFIX}*")
    })
}

/// Defaults ← the file's `[retry.*]` tables ← `(name, value)` environment overrides.
pub fn merge(
    file: &ConfigFile,
    env: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<RetryConfig> {
    let mut config = serde_json::to_value(RetryConfig::default())?;
    if let Some(retry) = &file.retry {
        for (activity, fields) in retry {
            let target = config.get_mut(activity).with_context(|| {
                format!("unknown activity [retry.{activity}] (fetch, transform, upsert, reconcile)")
            })?;
            let fields = fields
                .as_table()
                .with_context(|| format!("[retry.{activity}] must be a table"))?;
            for (field, value) in fields {
                refuse_retired(field, &format!("[retry.{activity}]"))?;
                target[field] = serde_json::to_value(value)?;
            }
        }
    }
    for (name, raw) in env {
        let rest = name[ENV_PREFIX.len()..].to_ascii_lowercase();
        let (activity, field) = rest
            .split_once('_')
            .with_context(|| format!("{name}: expected {ENV_PREFIX}<ACTIVITY>_<FIELD>"))?;
        let target = config.get_mut(activity).with_context(|| {
            format!("{name}: unknown activity {activity} (fetch, transform, upsert, reconcile)")
        })?;
        refuse_retired(field, &name)?;
        target[field] = serde_json::from_str(&raw)
            .with_context(|| format!("{name}={raw:?} is not a number"))?;
    }
    Ok(serde_json::from_value(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(
        toml: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> anyhow::Result<RetryConfig> {
        super::merge(&ConfigFile::parse(toml)?, env)
    }

    #[test]
    fn file_then_env_override_defaults_field_by_field() {
        let toml =
            "[retry.upsert]\nmaximum_interval_ms = 30000\n[retry.fetch]\nmaximum_attempts = 5\n";
        let env = vec![(
            "CATALOG_SYNC_RETRY_UPSERT_INITIAL_INTERVAL_MS".to_string(),
            "250".to_string(),
        )];
        let c = merge(toml, env.into_iter()).unwrap();
        let d = RetryConfig::default();
        assert_eq!(c.upsert.maximum_interval_ms, 30_000);
        assert_eq!(c.upsert.initial_interval_ms, 250);
        assert_eq!(
            c.upsert.start_to_close_timeout_ms,
            d.upsert.start_to_close_timeout_ms
        );
        assert_eq!(c.fetch.maximum_attempts, 5);
        assert_eq!(c.transform, d.transform);
    }

    #[test]
    fn typos_are_errors() {
        assert!(merge("[retry.upsert]\nmax_interval = 1\n", std::iter::empty()).is_err());
        let section = merge("[rety.upsert]\nmaximum_attempts = 1\n", std::iter::empty());
        assert!(
            format!("{:#}", section.unwrap_err()).contains("unknown section [rety]"),
            "a misspelt section is named"
        );
        assert!(merge("[retry.uspert]\nmaximum_attempts = 1\n", std::iter::empty()).is_err());
        let env = vec![(
            "CATALOG_SYNC_RETRY_UPSERT_MAXIMUM_ATTEMPTS".to_string(),
            "many".to_string(),
        )];
        assert!(merge("", env.into_iter()).is_err());
        assert_eq!(
            merge("", std::iter::empty()).unwrap(),
            RetryConfig::default()
        );
    }

    #[test]
    fn the_retired_non_retryable_list_is_refused_with_the_reason() {
        let toml = "[retry.upsert]\nnon_retryable_error_types = []\n";
        let err = format!("{:#}", merge(toml, std::iter::empty()).unwrap_err());
        assert!(
            err.contains("[retry.upsert]") && err.contains("no longer a setting"),
            "{err}"
        );
        assert!(err.contains("StripeRejected"), "{err}");
        let env = vec![(
            "CATALOG_SYNC_RETRY_FETCH_NON_RETRYABLE_ERROR_TYPES".to_string(),
            "".to_string(),
        )];
        let err = format!("{:#}", merge("", env.into_iter()).unwrap_err());
        assert!(
            err.contains("CATALOG_SYNC_RETRY_FETCH_NON_RETRYABLE_ERROR_TYPES"),
            "{err}"
        );
    }
}
