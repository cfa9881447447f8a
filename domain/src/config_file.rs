//! The config file (`CATALOG_SYNC_CONFIG`, TOML): which sections it may hold and who reads each.
//! Every reader checks the file's sections against [`SECTIONS`] before reading its own, so a
//! misspelt section (`[catlog.products]`) is an error naming the known ones, never a section
//! silently left unread.

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

/// The first top-level key of a config file that is not a known section, as an error naming
/// the known sections.
pub fn check_sections<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    match keys
        .into_iter()
        .find(|key| !SECTIONS.iter().any(|(name, _)| name == key))
    {
        None => Ok(()),
        Some(unknown) => Err(format!(
            "unknown section [{unknown}]: the config file holds {}",
            SECTIONS
                .iter()
                .map(|(name, what)| format!("[{name}] ({what})"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sections_pass_and_a_typo_is_named() {
        assert_eq!(check_sections(["catalog", "retry"]), Ok(()));
        assert_eq!(check_sections([]), Ok(()));
        let err = check_sections(["retry", "catlog"]).unwrap_err();
        assert!(err.starts_with("unknown section [catlog]"), "{err}");
        assert!(
            err.contains("[catalog]") && err.contains("[retry]"),
            "{err}"
        );
    }
}
