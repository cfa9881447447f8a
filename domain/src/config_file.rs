//! The config file (`CATALOG_SYNC_CONFIG`, TOML), parsed once: which sections it may hold, who
//! reads each, and the checks every reader relies on. A misspelt section (`[catlog.products]`)
//! is an error naming the known ones, never a section silently left unread. Reading the file is
//! the binaries' (`common::settings`); each section's keys are checked by its reader
//! (`catalog::mapping`, the worker's retry settings).

/// Each section of the config file, with what it configures.
pub const SECTIONS: &[(&str, &str)] = &[
    (
        "catalog",
        "[catalog.products] and [catalog.prices]: your own tables (docs/own-catalog.md)",
    ),
    (
        "retry",
        "[retry.<activity>]: the worker's activity timeouts and retry policies",
    ),
];

/// The config file's sections, each a TOML table for its reader.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigFile {
    /// `[catalog]`: the mapping of your own catalog tables; `None`: the built-in tables.
    pub catalog: Option<toml::Table>,
    /// `[retry]`: activity timeouts and retry policies; `None`: the defaults.
    pub retry: Option<toml::Table>,
}

/// Why a config file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("reading {path} (CATALOG_SYNC_CONFIG): {reason}")]
    Unreadable {
        /// The path given.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The text is not TOML.
    #[error("the config file (CATALOG_SYNC_CONFIG) cannot be read: {0}")]
    NotToml(String),
    /// A top-level key that is not a known section.
    #[error(
        "the config file (CATALOG_SYNC_CONFIG): unknown section [{section}]: the config file \
         holds {}",
        known_sections()
    )]
    UnknownSection {
        /// The key found.
        section: String,
    },
    /// A known section that is not a table (`catalog = "x"`).
    #[error("the config file (CATALOG_SYNC_CONFIG): [{section}] must be a table")]
    NotATable {
        /// The section.
        section: String,
    },
}

fn known_sections() -> String {
    SECTIONS
        .iter()
        .map(|(name, what)| format!("[{name}] ({what})"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ConfigFile {
    /// Parses a config file's text: TOML, whose top-level keys are all known sections, each a
    /// table.
    pub fn parse(text: &str) -> Result<Self, ConfigFileError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigFileError::NotToml(e.to_string()))?;
        let mut file = ConfigFile::default();
        for (key, value) in table {
            let slot = match key.as_str() {
                "catalog" => &mut file.catalog,
                "retry" => &mut file.retry,
                _ => return Err(ConfigFileError::UnknownSection { section: key }),
            };
            match value {
                toml::Value::Table(section) => *slot = Some(section),
                _ => return Err(ConfigFileError::NotATable { section: key }),
            }
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sections_pass_and_a_typo_is_named() {
        let file =
            ConfigFile::parse("[catalog.products]\ntable = \"p\"\n[retry.upsert]\n").unwrap();
        assert!(file.catalog.is_some() && file.retry.is_some());
        assert_eq!(ConfigFile::parse("").unwrap(), ConfigFile::default());
        let err = ConfigFile::parse("[retry]\n[catlog.products]\n").unwrap_err();
        assert_eq!(
            err,
            ConfigFileError::UnknownSection {
                section: "catlog".into()
            }
        );
        let text = err.to_string();
        assert!(text.contains("unknown section [catlog]"), "{text}");
        assert!(
            text.contains("[catalog]") && text.contains("[retry]"),
            "{text}"
        );
        assert_eq!(
            ConfigFile::parse("retry = 1").unwrap_err(),
            ConfigFileError::NotATable {
                section: "retry".into()
            }
        );
        assert!(matches!(
            ConfigFile::parse("[retry"),
            Err(ConfigFileError::NotToml(_))
        ));
    }

    #[test]
    fn every_section_listed_is_parsed() {
        for (name, _) in SECTIONS {
            let file = ConfigFile::parse(&format!("[{name}]\n")).unwrap();
            assert_ne!(
                file,
                ConfigFile::default(),
                "[{name}] is read into its field"
            );
        }
    }
}
