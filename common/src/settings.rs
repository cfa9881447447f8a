//! Settings every binary that talks to Stripe shares, with their defaults in one place, and the
//! redacting [`Secret`] type that carries keys. Each binary flattens these into its own clap
//! arguments (flags and environment variables), so `worker` and `starter verify` read Stripe's
//! settings the same way.

use std::fmt;

/// Stripe's API, the default `STRIPE_API_BASE` (as in Stripe's own SDKs); the quickstart and the
/// tests point it at the sandbox.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com";

/// The Stripe API version catalog-sync is built and tested against (sent as `Stripe-Version` on
/// every request unless `STRIPE_API_VERSION` says otherwise).
pub const PINNED_API_VERSION: &str = "2026-09-30.endive";

/// Stripe's own API host: the only place a live key may be sent.
const STRIPE_HOST: &str = "api.stripe.com";

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
    pub fn checked(&self, setting: &str) -> Result<Option<Secret>, String> {
        let value = self.0.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{setting} holds whitespace or a control character inside it (two values pasted \
                 together, a line break?): set it to the value alone"
            ));
        }
        Ok(Some(Secret(value.to_string())))
    }
}

/// A comma-separated list of secrets (`whsec_old, whsec_new`): each checked as
/// [`Secret::checked`], blanks dropped.
pub fn checked_secrets(values: &[Secret], setting: &str) -> Result<Vec<Secret>, String> {
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

    /// The connected account, when one is set (empty counts as unset).
    pub fn account(&self) -> Option<&str> {
        self.account
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }

    /// The key; `Err` naming the setting when none (or a blank one) was given. No key is
    /// assumed: a placeholder sent to Stripe, or a real key sent to the sandbox, fails in ways
    /// that point somewhere else.
    pub fn api_key(&self) -> Result<Secret, String> {
        let key = match &self.api_key {
            Some(key) => key.checked("STRIPE_API_KEY")?,
            None => None,
        };
        match key {
            Some(key) => Ok(key),
            None => Err(format!(
                "STRIPE_API_KEY is not set (nor --stripe-api-key): set it to your Stripe secret \
                 key (sk_test_… or sk_live_…, or a restricted rk_…) for {}; the sandbox takes \
                 any sk_test_… (scripts/quickstart uses sk_test_quickstart)",
                self.base()
            )),
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
    pub fn check(&self) -> Result<(), String> {
        let base = self.base();
        if let Some(account) = self.account()
            && !account.strip_prefix("acct_").is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric())
            })
        {
            return Err(format!(
                "STRIPE_ACCOUNT={account:?} is not a connected account id (acct_…); unset it to \
                 sync into the key's own account"
            ));
        }
        self.api_key()?;
        let parsed = url::Url::parse(&base).map_err(|e| {
            format!("STRIPE_API_BASE={base:?} is not a URL ({e}): e.g. https://{STRIPE_HOST}")
        })?;
        if !matches!(parsed.scheme(), "https" | "http")
            || parsed.host_str().is_none()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return Err(format!(
                "STRIPE_API_BASE must be an http(s) URL of a host, with no user or password in \
                 it; got {}://{}",
                parsed.scheme(),
                parsed.host_str().unwrap_or("(no host)")
            ));
        }
        let version = self.api_version.trim();
        if version.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "STRIPE_API_VERSION={version:?} holds whitespace or a control character: set it \
                 to a version such as {PINNED_API_VERSION}, or unset it for that one"
            ));
        }
        if self.is_live_key() && !self.is_stripe() {
            return Err(format!(
                "STRIPE_API_KEY is a live key but STRIPE_API_BASE is {base}, not \
                 https://{STRIPE_HOST}: refusing to send a live key anywhere else. Set \
                 STRIPE_API_BASE=https://{STRIPE_HOST}, or use a test key with the sandbox"
            ));
        }
        if self.expect_live && !(self.is_live_key() && self.is_stripe()) {
            return Err(format!(
                "CATALOG_SYNC_EXPECT_LIVE=true, but {}: set STRIPE_API_KEY to a live key \
                 (sk_live_… or rk_live_…) and STRIPE_API_BASE=https://{STRIPE_HOST}, or unset \
                 CATALOG_SYNC_EXPECT_LIVE",
                if self.is_stripe() {
                    "STRIPE_API_KEY is a test key".to_string()
                } else {
                    format!("STRIPE_API_BASE is {base}")
                }
            ));
        }
        Ok(())
    }
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
        stripe: StripeSettings,
        #[command(flatten)]
        payload: PayloadSettings,
        #[command(flatten)]
        log: LogSettings,
    }

    #[test]
    fn defaults_redaction_and_the_live_check() {
        // No key is assumed; the base is Stripe's, and the error names both.
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.stripe.base(), STRIPE_API_BASE);
        let error = cli.stripe.check().unwrap_err();
        assert!(
            error.contains("STRIPE_API_KEY is not set") && error.contains(STRIPE_API_BASE),
            "{error}"
        );
        let cli = Cli::try_parse_from(["x", "--stripe-api-key", " "]).unwrap();
        assert!(cli.stripe.check().unwrap_err().contains("STRIPE_API_KEY"));
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
        assert!(cli.stripe.check().unwrap_err().contains("STRIPE_API_KEY"));
        assert_eq!(cli.stripe.api_version, PINNED_API_VERSION);
    }

    #[test]
    fn live_keys_go_to_stripe_only_and_expect_live_wants_both() {
        let check = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend(args);
            Cli::try_parse_from(all).unwrap().stripe.check()
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
        assert!(padded.check().unwrap_err().contains("live key"));
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
        let error = two.check().unwrap_err();
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
