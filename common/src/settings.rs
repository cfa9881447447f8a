//! Settings every binary that talks to Stripe shares, with their defaults in one place, and the
//! redacting [`Secret`] type that carries keys. Each binary flattens these into its own clap
//! arguments (flags and environment variables), so `worker` and `starter verify` read Stripe's
//! settings the same way.

use std::fmt;

/// The Stripe sandbox's address when nothing else is configured (`stripe-sandbox`'s default).
pub const SANDBOX_API_BASE: &str = "http://127.0.0.1:12111";

/// The key used with the sandbox when none is configured (the sandbox takes any `sk_test_…`).
pub const SANDBOX_API_KEY: &str = "sk_test_catalog_sync_sandbox";

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

/// Where Stripe is and the key to it: `--stripe-api-base` / `STRIPE_API_BASE` and
/// `--stripe-api-key` / `STRIPE_API_KEY`, the sandbox by default.
#[derive(clap::Args, Debug, Clone)]
pub struct StripeSettings {
    /// Stripe API base URL: the sandbox by default, `https://api.stripe.com` in production.
    #[arg(long = "stripe-api-base", env = "STRIPE_API_BASE", default_value = SANDBOX_API_BASE)]
    pub api_base: String,
    /// Stripe secret key (the sandbox accepts any `sk_test_…`).
    #[arg(
        long = "stripe-api-key",
        env = "STRIPE_API_KEY",
        hide_env_values = true,
        default_value = SANDBOX_API_KEY,
        hide_default_value = true
    )]
    pub api_key: Secret,
}

impl StripeSettings {
    /// The base URL without a trailing slash.
    pub fn base(&self) -> String {
        self.api_base.trim_end_matches('/').to_string()
    }

    /// Refuses Stripe itself with the sandbox's placeholder key: that is a missing setting, not a
    /// key to try.
    pub fn check(&self) -> Result<(), String> {
        if self.api_base.contains("api.stripe.com") && self.api_key.expose() == SANDBOX_API_KEY {
            return Err(
                "STRIPE_API_KEY must be set to your Stripe secret key when STRIPE_API_BASE is \
                 Stripe itself"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        stripe: StripeSettings,
    }

    #[test]
    fn defaults_redaction_and_the_live_check() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.stripe.base(), SANDBOX_API_BASE);
        assert_eq!(cli.stripe.api_key.expose(), SANDBOX_API_KEY);
        assert!(cli.stripe.check().is_ok());

        let cli = Cli::try_parse_from([
            "x",
            "--stripe-api-base",
            "https://api.stripe.com/",
            "--stripe-api-key",
            "sk_live_abc",
        ])
        .unwrap();
        assert_eq!(cli.stripe.base(), "https://api.stripe.com");
        assert!(!format!("{:?}", cli.stripe).contains("sk_live_abc"));
        assert!(cli.stripe.check().is_ok());

        let cli =
            Cli::try_parse_from(["x", "--stripe-api-base", "https://api.stripe.com"]).unwrap();
        assert!(cli.stripe.check().unwrap_err().contains("STRIPE_API_KEY"));
    }
}
