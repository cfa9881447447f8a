//! Every `CATALOG_SYNC_*` environment variable catalog-sync reads, in one list, so that a
//! misspelt one (`CATALOG_SYNC_STRIPE_BUGDET=10`) stops a binary, naming the closest setting,
//! instead of being ignored while the default runs. One environment often serves every binary (a
//! compose `env_file`, a Kubernetes ConfigMap), so a binary accepts the variables of the others;
//! each binary's tests hold its own flags' variables to this list.

use super::SettingsError;

/// The variables, by the binaries that read them.
pub const KNOWN: &[&str] = &[
    // Every binary that reads the catalog.
    "CATALOG_SYNC_CONFIG",
    "CATALOG_SYNC_TASK_QUEUE",
    "CATALOG_SYNC_PAYLOAD_KEY",
    "CATALOG_SYNC_PAYLOAD_OLD_KEYS",
    "CATALOG_SYNC_LOG_FORMAT",
    "CATALOG_SYNC_METRICS_ADDR",
    "CATALOG_SYNC_STRIPE_OWNED_FIELDS",
    "CATALOG_SYNC_EXPECT_LIVE",
    // The worker.
    "CATALOG_SYNC_STRIPE_BUDGET",
    "CATALOG_SYNC_ARCHIVE_LIMIT_PERCENT",
    "CATALOG_SYNC_ARCHIVE_LIMIT_MIN",
    "CATALOG_SYNC_ARCHIVE_WINDOW",
    "CATALOG_SYNC_HEALTH_ADDR",
    "CATALOG_SYNC_WORKFLOW_TASK_POLLERS",
    "CATALOG_SYNC_DEPLOYMENT_NAME",
    "CATALOG_SYNC_BUILD_ID",
    // The relay.
    "CATALOG_SYNC_RELAY_BATCH",
    "CATALOG_SYNC_RELAY_LEASE_SECS",
    "CATALOG_SYNC_RELAY_POLL_MS",
    "CATALOG_SYNC_CAPTURE",
    "CATALOG_SYNC_POLL_INTERVAL_MS",
    "CATALOG_SYNC_POLL_LOOKBACK_SECS",
    "CATALOG_SYNC_POLL_DIFF_SECS",
    "CATALOG_SYNC_LISTEN",
    "CATALOG_SYNC_INGEST_TOKENS",
    "CATALOG_SYNC_WRITE_BACK",
    // The codec server.
    "CATALOG_SYNC_CODEC_LISTEN",
    "CATALOG_SYNC_CODEC_CORS_ORIGINS",
    "CATALOG_SYNC_CODEC_AUTH_TOKEN",
    "CATALOG_SYNC_CODEC_NO_AUTH",
    // Read when the worker is built (its build id), not when it runs.
    "CATALOG_SYNC_GIT_HASH",
    // The tests' recorders.
    "CATALOG_SYNC_RECORD_HISTORIES",
    "CATALOG_SYNC_SCREENSHOT",
    "CATALOG_SYNC_CODEC_SCREENSHOT",
];

/// Prefixes whose variables are checked by their readers: the worker's activity settings
/// (`worker::config`, which refuses an unknown activity or field) and the test harness's.
pub const KNOWN_PREFIXES: &[&str] = &["CATALOG_SYNC_RETRY_", "CATALOG_SYNC_TEST_"];

const PREFIX: &str = "CATALOG_SYNC_";

/// Refuses the first `CATALOG_SYNC_*` variable of `vars` that catalog-sync does not read.
pub fn check(vars: impl IntoIterator<Item = (String, String)>) -> Result<(), SettingsError> {
    let mut unknown: Vec<String> = vars
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with(PREFIX) && !is_known(name))
        .collect();
    unknown.sort();
    match unknown.into_iter().next() {
        None => Ok(()),
        Some(name) => Err(SettingsError::Unknown {
            closest: closest(&name),
            setting: name,
        }),
    }
}

/// `name` is a variable catalog-sync reads.
pub fn is_known(name: &str) -> bool {
    KNOWN.contains(&name) || KNOWN_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The known variable nearest to `name` in edits, if it is near enough to be the one meant.
fn closest(name: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .map(|known| (distance(name, known), *known))
        .filter(|(d, known)| *d <= 2 + known.len() / 8)
        .min()
        .map(|(_, known)| known)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// The `CATALOG_SYNC_*` variables `command`'s flags read that are not in [`KNOWN`]: a binary's
/// test asserts there are none, so that the list cannot fall behind the flags.
pub fn unlisted(command: &clap::Command) -> Vec<String> {
    let mut names = variables_of(command);
    names.retain(|name| !is_known(name));
    names
}

/// The test every binary carries, given its clap type as seen from a module inside the binary
/// (`super::Args`): its flags read only listed variables.
#[macro_export]
macro_rules! test_flags_read_listed_variables {
    ($cli:path) => {
        #[cfg(test)]
        mod environment_tests {
            #[test]
            fn every_variable_of_the_flags_is_a_known_setting() {
                use clap::CommandFactory;
                let unlisted = $crate::settings::environment::unlisted(&<$cli>::command());
                assert!(
                    unlisted.is_empty(),
                    "not in environment::KNOWN: {unlisted:?}"
                );
            }
        }
    };
}

/// Every `CATALOG_SYNC_*` variable `command`'s arguments (and its subcommands') read from the
/// environment.
fn variables_of(command: &clap::Command) -> Vec<String> {
    let mut out: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .filter(|e| e.starts_with(PREFIX))
        .collect();
    for sub in command.get_subcommands() {
        out.extend(variables_of(sub));
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(names: &[&str]) -> Vec<(String, String)> {
        names.iter().map(|n| (n.to_string(), "1".into())).collect()
    }

    #[test]
    fn a_misspelt_variable_is_refused_naming_the_one_meant() {
        assert_eq!(
            check(vars(&[
                "CATALOG_SYNC_STRIPE_BUDGET",
                "PATH",
                "CATALOG_DATABASE_URL"
            ])),
            Ok(())
        );
        assert_eq!(
            check(vars(&[
                "CATALOG_SYNC_RETRY_UPSERT_MAXIMUM_ATTEMPTS",
                "CATALOG_SYNC_TEST_POSTGRES"
            ])),
            Ok(()),
            "checked by their readers"
        );
        let error = check(vars(&["CATALOG_SYNC_STRIPE_BUGDET"])).unwrap_err();
        assert_eq!(
            error,
            SettingsError::Unknown {
                setting: "CATALOG_SYNC_STRIPE_BUGDET".into(),
                closest: Some("CATALOG_SYNC_STRIPE_BUDGET"),
            }
        );
        let text = error.to_string();
        assert!(
            text.contains("did you mean CATALOG_SYNC_STRIPE_BUDGET?"),
            "{text}"
        );
        let far = check(vars(&["CATALOG_SYNC_SOMETHING_ELSE_ENTIRELY"])).unwrap_err();
        assert!(
            matches!(far, SettingsError::Unknown { closest: None, .. }),
            "{far:?}"
        );
    }

    #[test]
    fn a_flag_whose_variable_is_not_listed_is_found() {
        let command = clap::Command::new("x")
            .arg(clap::Arg::new("a").long("a").env("CATALOG_SYNC_CONFIG"))
            .subcommand(
                clap::Command::new("sub")
                    .arg(clap::Arg::new("b").long("b").env("CATALOG_SYNC_NOPE")),
            );
        assert_eq!(unlisted(&command), ["CATALOG_SYNC_NOPE"]);
    }

    #[test]
    fn the_list_has_each_variable_once() {
        let mut names = KNOWN.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KNOWN.len());
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
