//! The exit codes of every `starter` command, in one place (README, "Exit codes"), so that a
//! deploy step `starter sync --all --wait && …` stops on products Stripe refused, and a cron
//! check on `starter status` pages for what it should.

use std::process::ExitCode;

use workflows::SyncOutcome;

/// How a command ended, for scripts and CI (as `terraform plan -detailed-exitcode` for drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Exit {
    /// Done: everything asked for is in sync, healthy or applied.
    Ok = 0,
    /// The command could not do its work (a setting refused, a service unreachable, a workflow
    /// failed); for `status`, catalog-sync is unhealthy.
    Failed = 1,
    /// Drift found and left as it is: `reconcile --dry-run` and `verify` (clap's usage errors
    /// exit 2 as well).
    Drift = 2,
    /// Stopped at the archive guard: nothing archived until someone confirms
    /// (`starter archives confirm`, `starter reconcile --allow-mass-archive`).
    NeedsConfirmation = 3,
    /// Some products did not sync: their syncs ended failed, invalid or skipped (Stripe holds a
    /// product catalog-sync may not touch).
    NotSynced = 4,
}

impl Exit {
    /// The exit code a product's sync outcome calls for.
    pub(crate) fn of_outcome(outcome: SyncOutcome) -> Self {
        match outcome {
            SyncOutcome::Synced | SyncOutcome::Unchanged | SyncOutcome::Archived => Self::Ok,
            SyncOutcome::ArchiveHeld => Self::NeedsConfirmation,
            SyncOutcome::Invalid
            | SyncOutcome::SkippedUnmanaged
            | SyncOutcome::SkippedOtherCatalog
            | SyncOutcome::Failed => Self::NotSynced,
        }
    }

    /// The more severe of two: products not synced outrank held archives, which outrank drift.
    /// A command that could not do its work (`Failed`) outranks all.
    pub(crate) fn worst(self, other: Self) -> Self {
        if self == Self::Failed || other == Self::Failed {
            Self::Failed
        } else {
            self.max(other)
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_that_leave_stripe_unlike_the_catalog_fail_the_command() {
        for (outcome, exit) in [
            (SyncOutcome::Synced, Exit::Ok),
            (SyncOutcome::Unchanged, Exit::Ok),
            (SyncOutcome::Archived, Exit::Ok),
            (SyncOutcome::ArchiveHeld, Exit::NeedsConfirmation),
            (SyncOutcome::Invalid, Exit::NotSynced),
            (SyncOutcome::SkippedUnmanaged, Exit::NotSynced),
            (SyncOutcome::SkippedOtherCatalog, Exit::NotSynced),
            (SyncOutcome::Failed, Exit::NotSynced),
        ] {
            assert_eq!(Exit::of_outcome(outcome), exit, "{outcome:?}");
        }
    }

    #[test]
    fn the_worst_exit_wins() {
        assert_eq!(Exit::Ok.worst(Exit::NotSynced), Exit::NotSynced);
        assert_eq!(
            Exit::NeedsConfirmation.worst(Exit::NotSynced),
            Exit::NotSynced
        );
        assert_eq!(
            Exit::Drift.worst(Exit::NeedsConfirmation),
            Exit::NeedsConfirmation
        );
        assert_eq!(Exit::NotSynced.worst(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Ok.worst(Exit::Ok), Exit::Ok);
    }
}
