//! Where Stripe is and the key to it: the one shape of Stripe's settings, flattened by every
//! binary that talks to Stripe (the worker, `starter verify`, `adopt`, `webhooks`, `meters`).

use super::{Secret, SettingsError};

/// Stripe's API, the default `STRIPE_API_BASE` (as in Stripe's own SDKs); the quickstart and the
/// tests point it at the sandbox.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com";

/// The Stripe API version catalog-sync is built and tested against (sent as `Stripe-Version` on
/// every request unless `STRIPE_API_VERSION` says otherwise).
pub const PINNED_API_VERSION: &str = "2026-09-30.endive";

/// Stripe's own API host: the only place a live key may be sent.
const STRIPE_HOST: &str = "api.stripe.com";

/// The connected account `STRIPE_ACCOUNT` names: `None` when unset or blank, refused unless it is
/// an account id (`acct_…`). A typo would otherwise send every request, or leave every webhook
/// event, to an account that is not the one meant.
pub fn connected_account(raw: Option<&str>) -> Result<Option<String>, SettingsError> {
    let Some(account) = raw.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let valid = account
        .strip_prefix("acct_")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if !valid {
        return Err(SettingsError::invalid(
            "STRIPE_ACCOUNT",
            account,
            "is not a connected account id (acct_…); unset it for the key's own account",
        ));
    }
    Ok(Some(account.to_string()))
}

/// Where Stripe is and the key to it: `--stripe-api-base` / `STRIPE_API_BASE` (Stripe's API by
/// default) and `--stripe-api-key` / `STRIPE_API_KEY` (required: no key is assumed); the API version
/// (`STRIPE_API_VERSION`, pinned by default) and whether a live account is expected
/// (`CATALOG_SYNC_EXPECT_LIVE`).
#[derive(clap::Args, Debug, Clone)]
pub struct StripeSettings {
    /// Stripe API base URL: Stripe's API by default; the sandbox's address (e.g.
    /// `http://127.0.0.1:12111`) in development and tests.
    #[arg(long = "stripe-api-base", env = "STRIPE_API_BASE", default_value = STRIPE_API_BASE)]
    pub api_base: String,
    /// Stripe secret key (`sk_…`) or restricted key (`rk_…`); required (the sandbox accepts any
    /// `sk_test_…`).
    #[arg(
        long = "stripe-api-key",
        env = "STRIPE_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<Secret>,
    /// Stripe API version sent on every request (`Stripe-Version`). Move to a new one only as the
    /// "Moving to a new Stripe API version" in docs/going-live.md says.
    #[arg(long = "stripe-api-version", env = "STRIPE_API_VERSION", default_value = PINNED_API_VERSION)]
    pub api_version: String,
    /// Stripe Connect: the connected account (`acct_…`) to sync into, with the platform's key
    /// (sent as `Stripe-Account` on every request). Unset: the key's own account.
    #[arg(long = "stripe-account", env = "STRIPE_ACCOUNT")]
    pub account: Option<String>,
    /// This deployment must write to a live Stripe account: a test key, or any address but
    /// Stripe's, is refused at start.
    #[arg(
        long = "expect-live",
        env = "CATALOG_SYNC_EXPECT_LIVE",
        default_value_t = false
    )]
    pub expect_live: bool,
    /// Timeout of one Stripe request, in seconds.
    #[arg(
        long = "stripe-timeout-secs",
        env = "STRIPE_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub timeout_secs: u64,
}

impl StripeSettings {
    /// The base URL without surrounding whitespace or a trailing slash.
    pub fn base(&self) -> String {
        self.api_base.trim().trim_end_matches('/').to_string()
    }

    /// `Stripe-Version`: `STRIPE_API_VERSION` trimmed, the pinned version when it is unset or
    /// blank ([`check`](Self::check) refuses one with whitespace or control characters inside).
    pub fn api_version(&self) -> String {
        match self.api_version.trim() {
            "" => PINNED_API_VERSION.to_string(),
            version => version.to_string(),
        }
    }

    /// The connected account, when one is set (empty counts as unset; [`check`](Self::check)
    /// refuses one that is not an `acct_…` id).
    pub fn account(&self) -> Option<&str> {
        self.account
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }

    /// The timeout of one request.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs.max(1))
    }

    /// The key; `Err` naming the setting when none (or a blank one) was given. No key is
    /// assumed: a placeholder sent to Stripe, or a real key sent to the sandbox, fails in ways
    /// that point somewhere else.
    pub fn api_key(&self) -> Result<Secret, SettingsError> {
        let key = match &self.api_key {
            Some(key) => key.checked("STRIPE_API_KEY")?,
            None => None,
        };
        match key {
            Some(key) => Ok(key),
            None => Err(SettingsError::Missing {
                setting: "STRIPE_API_KEY",
                help: format!(
                    " (nor --stripe-api-key): set it to your Stripe secret key (sk_test_… or \
                     sk_live_…, or a restricted rk_…) for {}; the sandbox takes any sk_test_… \
                     (scripts/quickstart uses sk_test_quickstart)",
                    self.base()
                ),
            }),
        }
    }

    /// The key is a live-mode key (`sk_live_…`, `rk_live_…`), however it is padded.
    pub fn is_live_key(&self) -> bool {
        self.api_key.as_ref().is_some_and(|key| {
            let key = key.expose().trim();
            key.starts_with("sk_live_") || key.starts_with("rk_live_")
        })
    }

    /// STRIPE_API_BASE is Stripe itself (`https://api.stripe.com`).
    /// Parsed as a URL, not compared as text: scheme `https`, host exactly `api.stripe.com`,
    /// port 443, and no user, password, path, query or fragment (`https://api.stripe.com:@evil`
    /// and `https://api.stripe.com.evil` are elsewhere).
    pub fn is_stripe(&self) -> bool {
        url::Url::parse(&self.base()).is_ok_and(|u| {
            u.scheme() == "https"
                && u.host_str() == Some(STRIPE_HOST)
                && u.port_or_known_default() == Some(443)
                && u.username().is_empty()
                && u.password().is_none()
                && matches!(u.path(), "" | "/")
                && u.query().is_none()
                && u.fragment().is_none()
        })
    }

    /// Refuses combinations that are mistakes, before any request: no key at all, a live key
    /// sent anywhere but Stripe (the
    /// key would leak to whatever listens there), and, with `CATALOG_SYNC_EXPECT_LIVE=true`,
    /// anything but a live key against Stripe. Each message names the setting to change.
    pub fn check(&self) -> Result<(), SettingsError> {
        let base = self.base();
        connected_account(self.account.as_deref())?;
        self.api_key()?;
        let parsed = url::Url::parse(&base).map_err(|e| {
            SettingsError::invalid(
                "STRIPE_API_BASE",
                &base,
                format!("is not a URL ({e}): e.g. https://{STRIPE_HOST}"),
            )
        })?;
        if !matches!(parsed.scheme(), "https" | "http")
            || parsed.host_str().is_none()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            // Not the value itself: it may hold a password.
            return Err(SettingsError::invalid(
                "STRIPE_API_BASE",
                format!(
                    "{}://{}",
                    parsed.scheme(),
                    parsed.host_str().unwrap_or("(no host)")
                ),
                "must be an http(s) URL of a host, with no user or password in it",
            ));
        }
        let version = self.api_version.trim();
        if version.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SettingsError::invalid(
                "STRIPE_API_VERSION",
                version,
                format!(
                    "holds whitespace or a control character: set it to a version such as \
                     {PINNED_API_VERSION}, or unset it for that one"
                ),
            ));
        }
        if self.is_live_key() && !self.is_stripe() {
            return Err(SettingsError::Refused(format!(
                "STRIPE_API_KEY is a live key but STRIPE_API_BASE is {base}, not \
                 https://{STRIPE_HOST}: refusing to send a live key anywhere else. Set \
                 STRIPE_API_BASE=https://{STRIPE_HOST}, or use a test key with the sandbox"
            )));
        }
        if self.expect_live && !(self.is_live_key() && self.is_stripe()) {
            return Err(SettingsError::Refused(format!(
                "CATALOG_SYNC_EXPECT_LIVE=true, but {}: set STRIPE_API_KEY to a live key \
                 (sk_live_… or rk_live_…) and STRIPE_API_BASE=https://{STRIPE_HOST}, or unset \
                 CATALOG_SYNC_EXPECT_LIVE",
                if self.is_stripe() {
                    "STRIPE_API_KEY is a test key".to_string()
                } else {
                    format!("STRIPE_API_BASE is {base}")
                }
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::checked_secrets;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        stripe: StripeSettings,
    }

    #[test]
    fn defaults_redaction_and_the_live_check() {
        // No key is assumed; the base is Stripe's, and the error names both.
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.stripe.base(), STRIPE_API_BASE);
        let error = cli.stripe.check().unwrap_err().to_string();
        assert!(
            error.contains("STRIPE_API_KEY is not set") && error.contains(STRIPE_API_BASE),
            "{error}"
        );
        let cli = Cli::try_parse_from(["x", "--stripe-api-key", " "]).unwrap();
        assert!(
            cli.stripe
                .check()
                .unwrap_err()
                .to_string()
                .contains("STRIPE_API_KEY")
        );
        let cli = Cli::try_parse_from([
            "x",
            "--stripe-api-base",
            "http://127.0.0.1:12111",
            "--stripe-api-key",
            "sk_test_x",
        ])
        .unwrap();
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
        assert!(
            cli.stripe
                .check()
                .unwrap_err()
                .to_string()
                .contains("STRIPE_API_KEY")
        );
        assert_eq!(cli.stripe.api_version, PINNED_API_VERSION);
    }

    #[test]
    fn live_keys_go_to_stripe_only_and_expect_live_wants_both() {
        let check = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend(args);
            Cli::try_parse_from(all)
                .unwrap()
                .stripe
                .check()
                .map_err(|e| e.to_string())
        };
        let sandbox = ["--stripe-api-base", "http://127.0.0.1:12111"];
        for key in ["sk_live_abc", "rk_live_abc"] {
            let err = check(&["--stripe-api-key", key, sandbox[0], sandbox[1]]).unwrap_err();
            assert!(
                err.contains("STRIPE_API_BASE") && err.contains("live key"),
                "{err}"
            );
            let err = check(&[
                "--stripe-api-key",
                key,
                "--stripe-api-base",
                "https://api.stripe.com.evil.example",
            ])
            .unwrap_err();
            assert!(err.contains("refusing"), "{err}");
            assert!(
                check(&[
                    "--stripe-api-key",
                    key,
                    "--stripe-api-base",
                    "https://api.stripe.com"
                ])
                .is_ok()
            );
        }
        let err = check(&["--expect-live", "--stripe-api-key", "sk_test_abc"]).unwrap_err();
        assert!(
            err.contains("CATALOG_SYNC_EXPECT_LIVE") && err.contains("test key"),
            "{err}"
        );
        let err = check(&[
            "--expect-live",
            "--stripe-api-key",
            "sk_live_abc",
            sandbox[0],
            sandbox[1],
        ])
        .unwrap_err();
        assert!(err.contains("STRIPE_API_BASE"), "{err}");
        let err = check(&[
            "--expect-live",
            "--stripe-api-key",
            "sk_test_abc",
            "--stripe-api-base",
            "https://api.stripe.com",
        ])
        .unwrap_err();
        assert!(err.contains("test key"), "{err}");
        assert!(
            check(&[
                "--expect-live",
                "--stripe-api-key",
                "rk_live_abc",
                "--stripe-api-base",
                "https://api.stripe.com"
            ])
            .is_ok()
        );
    }

    #[test]
    fn settings_are_parsed_strictly_not_taken_as_typed() {
        let cli = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend(args);
            Cli::try_parse_from(all).unwrap().stripe
        };
        // A user part before the host passed a prefix check; parsed, it is another host.
        for base in [
            "https://api.stripe.com:@127.0.0.1:9",
            "https://api.stripe.com@127.0.0.1",
            "https://api.stripe.com.evil.example",
            "https://api.stripe.com/v1",
            "https://api.stripe.com:8443",
            "http://api.stripe.com",
        ] {
            let settings = cli(&["--stripe-api-base", base, "--stripe-api-key", "sk_live_x"]);
            assert!(!settings.is_stripe(), "{base}");
            assert!(settings.check().is_err(), "{base}");
        }
        assert!(cli(&["--stripe-api-base", " https://api.stripe.com/ "]).is_stripe());
        // A padded live key is still a live key.
        let padded = cli(&[
            "--stripe-api-base",
            "http://127.0.0.1:9",
            "--stripe-api-key",
            " sk_live_x",
        ]);
        assert!(padded.check().unwrap_err().to_string().contains("live key"));
        // A secret file's trailing newline is dropped; two values pasted together are refused
        // without printing them.
        let newline = cli(&[
            "--stripe-api-base",
            "http://127.0.0.1:9",
            "--stripe-api-key",
            "sk_test_x\n",
        ]);
        assert_eq!(newline.api_key().unwrap().expose(), "sk_test_x");
        let two = cli(&[
            "--stripe-api-base",
            "http://127.0.0.1:9",
            "--stripe-api-key",
            "sk_test_a sk_test_b",
        ]);
        let error = two.check().unwrap_err().to_string();
        assert!(
            error.contains("STRIPE_API_KEY") && !error.contains("sk_test_a"),
            "{error}"
        );
        // The API version: trimmed, blank means the pinned one, inner control characters refused.
        let sandbox = [
            "--stripe-api-base",
            "http://127.0.0.1:9",
            "--stripe-api-key",
            "sk_test_x",
        ];
        let version = |v: &str| {
            let mut args = sandbox.to_vec();
            args.extend(["--stripe-api-version", v]);
            cli(&args)
        };
        assert_eq!(
            version("2026-09-30.endive\r\n").api_version(),
            "2026-09-30.endive"
        );
        assert_eq!(version("").api_version(), PINNED_API_VERSION);
        assert!(version("2026-09-30\r\nX-Evil: 1").check().is_err());
        // Lists of secrets: each trimmed, blanks dropped, inner whitespace refused.
        let secrets = [
            Secret::new("whsec_old"),
            Secret::new(" whsec_new\n"),
            Secret::new(" "),
        ];
        let checked = checked_secrets(&secrets, "STRIPE_WEBHOOK_SECRET").unwrap();
        assert_eq!(
            checked.iter().map(Secret::expose).collect::<Vec<_>>(),
            ["whsec_old", "whsec_new"]
        );
        assert!(checked_secrets(&[Secret::new("a\tb")], "X").is_err());
    }
}
