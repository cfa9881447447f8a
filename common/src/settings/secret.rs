//! The redacting [`Secret`] that carries keys and tokens.

use std::fmt;

use super::SettingsError;

/// A secret (an API key): never printed, logged or serialized; `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret as a setting gives it, checked: surrounding whitespace dropped (a secret file
    /// mounted with its trailing newline), `None` when nothing is left, and `Err` naming
    /// `setting` (never the value) when whitespace or a control character is left inside.
    pub fn checked(&self, setting: &'static str) -> Result<Option<Secret>, SettingsError> {
        let value = self.0.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SettingsError::Secret {
                setting,
                why: "holds whitespace or a control character inside it (two values pasted \
                      together, a line break?): set it to the value alone"
                    .into(),
            });
        }
        Ok(Some(Secret(value.to_string())))
    }
}

/// A comma-separated list of secrets (`whsec_old, whsec_new`): each checked as
/// [`Secret::checked`], blanks dropped.
pub fn checked_secrets(
    values: &[Secret],
    setting: &'static str,
) -> Result<Vec<Secret>, SettingsError> {
    values
        .iter()
        .filter_map(|v| v.checked(setting).transpose())
        .collect()
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}
