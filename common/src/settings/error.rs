/// Why a binary's settings cannot be used: each names the setting (its environment variable)
/// and, except for secrets, the value it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required setting is unset or blank.
    #[error("{setting} is not set{help}")]
    Missing {
        /// The environment variable.
        setting: &'static str,
        /// What to set it to, starting with its own punctuation.
        help: String,
    },
    /// A setting holds a value it cannot take.
    #[error("{setting}={} {why}", shown(value))]
    Invalid {
        /// The environment variable.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What is wrong and what to set instead.
        why: String,
    },
    /// A secret holds something it cannot (its value is never shown).
    #[error("{setting} {why}")]
    Secret {
        /// The environment variable.
        setting: &'static str,
        /// What is wrong and what to set instead.
        why: String,
    },
    /// A `CATALOG_SYNC_*` environment variable catalog-sync does not read (a misspelt setting
    /// would otherwise leave its default in force, unseen).
    #[error(
        "{setting} is not a catalog-sync setting{}: unset it or correct its name \
         (docs/configuration.md lists every setting)",
        closest.map(|c| format!(" (did you mean {c}?)")).unwrap_or_default()
    )]
    Unknown {
        /// The variable found.
        setting: String,
        /// The known one nearest to it, if any is near.
        closest: Option<&'static str>,
    },
    /// Settings that are each valid but refused together (a live key sent anywhere but
    /// Stripe); the message names every setting involved.
    #[error("{0}")]
    Refused(String),
    /// The config file cannot be used.
    #[error(transparent)]
    File(#[from] domain::config_file::ConfigFileError),
}

impl SettingsError {
    /// An invalid value of `setting`.
    pub fn invalid(
        setting: &'static str,
        value: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            setting,
            value: value.into(),
            why: why.into(),
        }
    }

    /// The setting to change, when one setting is at fault.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::Missing { setting, .. }
            | Self::Invalid { setting, .. }
            | Self::Secret { setting, .. } => Some(setting),
            Self::File(_) => Some("CATALOG_SYNC_CONFIG"),
            Self::Unknown { .. } | Self::Refused(_) => None,
        }
    }
}

/// A value as a shell would take it back: bare when plain, quoted (with escapes) when empty or
/// holding spaces, quotes or control characters, so that what was given is what is seen.
fn shown(value: &str) -> String {
    let plain = !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\') || c.is_alphanumeric()
        });
    if plain {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_as_given_and_quoted_when_not_plain() {
        let e = SettingsError::invalid("CATALOG_SYNC_ARCHIVE_WINDOW", "0s", "is too short");
        assert_eq!(e.to_string(), "CATALOG_SYNC_ARCHIVE_WINDOW=0s is too short");
        assert_eq!(e.setting(), Some("CATALOG_SYNC_ARCHIVE_WINDOW"));
        let e = SettingsError::invalid("STRIPE_ACCOUNT", "acct 1\n", "is not an id");
        assert_eq!(e.to_string(), "STRIPE_ACCOUNT=\"acct 1\\n\" is not an id");
        let e = SettingsError::invalid("X", "", "is empty");
        assert_eq!(e.to_string(), "X=\"\" is empty");
    }
}
