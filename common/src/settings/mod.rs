//! Settings, layered the same way in every binary: the config file (`CATALOG_SYNC_CONFIG`, read
//! once, its sections in `domain::config_file`), then environment variables, then flags (clap
//! reads each flag's variable when the flag is not given). Each binary flattens the shared parts
//! into its own arguments: [`CatalogArgs`] (database, config file, task queue),
//! [`StripeSettings`] (the one shape of Stripe's settings), [`PayloadSettings`] and
//! [`LogSettings`]. Every check returns a [`SettingsError`] naming the setting and the value used;
//! secrets travel as the redacting [`Secret`].

pub mod environment;
mod error;
mod secret;
mod stripe;

use std::path::{Path, PathBuf};

pub use domain::config_file::{ConfigFile, ConfigFileError};
pub use error::SettingsError;
pub use secret::{Secret, checked_secrets};
pub use stripe::{PINNED_API_VERSION, STRIPE_API_BASE, StripeSettings, connected_account};

/// What every binary that reads the catalog takes: `--database-url` / `CATALOG_DATABASE_URL`,
/// `--config` / `CATALOG_SYNC_CONFIG` and `--task-queue` / `CATALOG_SYNC_TASK_QUEUE`.
#[derive(clap::Args, Debug, Clone)]
pub struct CatalogArgs {
    /// Catalog database URL: `postgres://…` (libpq's `sslmode` and `sslrootcert` taken) or
    /// `sqlite:…`.
    #[arg(
        long,
        global = true,
        env = "CATALOG_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// The config file (TOML; see catalog-sync.example.toml): `[catalog]` maps your own product
    /// and price tables (docs/own-catalog.md), `[retry]` sets the worker's activity timeouts and
    /// retry policies. Without one: the built-in tables and the default policies.
    #[arg(long, global = true, env = "CATALOG_SYNC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Task queue of the workers (their Stripe activities poll `{task queue}-stripe`).
    #[arg(long, global = true, env = "CATALOG_SYNC_TASK_QUEUE", default_value = domain::ids::TASK_QUEUE)]
    pub task_queue: String,
}

/// How catalog changes reach the outbox (`CATALOG_SYNC_CAPTURE`): read by the relay, which
/// captures, and by `starter capture`, which sets capture up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptureMode {
    /// Capture triggers write the outbox (the built-in tables' own, or those of
    /// `starter capture install` on your tables); the relay reads it.
    Triggers,
    /// The relay polls the catalog's tables into the outbox, and reads it.
    Polling,
    /// The relay reads PostgreSQL's write-ahead log through a logical replication slot (set up
    /// by `starter capture install`) into the outbox, and reads it.
    Logical,
}

impl CaptureMode {
    /// Its name, as the setting takes it and `status` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triggers => "triggers",
            Self::Polling => "polling",
            Self::Logical => "logical",
        }
    }
}

impl CatalogArgs {
    /// The config file, read and its sections checked; empty without `--config`.
    pub fn config_file(&self) -> Result<ConfigFile, SettingsError> {
        read_config_file(self.config.as_deref())
    }
}

/// The config file at `path`, read and its sections checked; empty for `None`.
pub fn read_config_file(path: Option<&Path>) -> Result<ConfigFile, SettingsError> {
    let Some(path) = path else {
        return Ok(ConfigFile::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(ConfigFile::parse(&text)?)
}

/// Payload encryption: `--payload-key` / `CATALOG_SYNC_PAYLOAD_KEY` (an AES-256 key, base64 or hex;
/// off when unset) and `--payload-old-keys` / `CATALOG_SYNC_PAYLOAD_OLD_KEYS` (comma-separated,
/// still decrypt). Every binary that talks to Temporal takes them, so all read payloads alike.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PayloadSettings {
    /// Encrypt workflow payloads with this AES-256 key (base64 or hex); off when unset.
    #[arg(
        long = "payload-key",
        env = codec::keys::KEY_ENV,
        hide_env_values = true,
        global = true
    )]
    pub key: Option<Secret>,
    /// Older payload keys, comma-separated: they still decrypt.
    #[arg(
        long = "payload-old-keys",
        env = codec::keys::OLD_KEYS_ENV,
        hide_env_values = true,
        value_delimiter = ',',
        global = true
    )]
    pub old_keys: Vec<Secret>,
}

impl PayloadSettings {
    /// The keyring these settings name (empty values are absent).
    pub fn keyring(&self) -> Result<codec::Keyring, codec::KeyError> {
        let present = |s: &Secret| !s.expose().trim().is_empty();
        let current = self.key.as_ref().filter(|k| present(k)).map(Secret::expose);
        let old: Vec<&str> = self
            .old_keys
            .iter()
            .filter(|k| present(k))
            .map(|k| k.expose().trim())
            .collect();
        codec::Keyring::new(current.map(str::trim), &old)
    }
}

/// How log lines are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal only).
    #[default]
    Text,
    /// One JSON object a line, with the fields of the event and of its span.
    Json,
}

/// Logging: `--log-format` / `CATALOG_SYNC_LOG_FORMAT` (`text` or `json`); what is logged comes
/// from `RUST_LOG`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogSettings {
    /// Log format: `text` (coloured on a terminal only) or `json` (one object a line).
    #[arg(
        long = "log-format",
        env = "CATALOG_SYNC_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub format: LogFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        catalog: CatalogArgs,
        #[command(flatten)]
        payload: PayloadSettings,
        #[command(flatten)]
        log: LogSettings,
    }

    #[test]
    fn the_shared_catalog_settings_and_the_config_file_read_once() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.catalog.task_queue, domain::ids::TASK_QUEUE);
        assert_eq!(cli.catalog.config_file().unwrap(), ConfigFile::default());
        let dir = std::env::temp_dir().join(format!("settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("catalog-sync.toml");
        std::fs::write(&path, "[retry.upsert]\nmaximum_attempts = 3\n[catlog]\n").unwrap();
        let cli = Cli::try_parse_from(["x", "--config", path.to_str().unwrap()]).unwrap();
        let err = cli.catalog.config_file().unwrap_err();
        assert_eq!(err.setting(), Some("CATALOG_SYNC_CONFIG"));
        assert!(
            err.to_string().contains("unknown section [catlog]"),
            "{err}"
        );
        std::fs::write(&path, "[retry.upsert]\nmaximum_attempts = 3\n").unwrap();
        assert!(cli.catalog.config_file().unwrap().retry.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = read_config_file(Some(Path::new("/nonexistent/catalog-sync.toml")));
        assert!(
            matches!(
                missing,
                Err(SettingsError::File(ConfigFileError::Unreadable { .. }))
            ),
            "{missing:?}"
        );
    }

    #[test]
    fn payload_keys_from_flags_redacted() {
        let key = codec::keys::new_key();
        let cli = Cli::try_parse_from(["x", "--payload-key", &key]).unwrap();
        assert!(!format!("{:?}", cli.payload).contains(&key));
        assert!(cli.payload.keyring().unwrap().encrypts());
        let cli = Cli::try_parse_from(["x", "--payload-key", ""]).unwrap();
        assert!(!cli.payload.keyring().unwrap().encrypts(), "empty is off");
        let cli = Cli::try_parse_from(["x", "--payload-key", "not a key"]).unwrap();
        assert!(cli.payload.keyring().is_err());
    }

    #[test]
    fn log_format_is_text_unless_json_and_refuses_others() {
        assert_eq!(
            Cli::try_parse_from(["x"]).unwrap().log.format,
            LogFormat::Text
        );
        let cli = Cli::try_parse_from(["x", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log.format, LogFormat::Json);
        let err = Cli::try_parse_from(["x", "--log-format", "yaml"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("text, json"), "{err}");
    }
}
