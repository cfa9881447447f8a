//! Worker Deployment Versioning: which Worker Deployment and build a worker belongs to, and what
//! that means for the workflows it runs.
//!
//! With a deployment name (`CATALOG_SYNC_DEPLOYMENT_NAME`), the worker opts in to versioning: it
//! receives tasks only of workflows that belong to its version (deployment name + build id), and
//! the server routes new workflows to the deployment's *current* (or *ramping*) version, which an
//! operator sets with `temporal worker deployment set-current-version`. Code changes that would
//! break a running workflow's replay then need no `patched` branch: the runs that started on the
//! old code finish on the old workers. The rollout runbook is in docs/deploying.md ("Versioned rollout").
//!
//! Every workflow run is **pinned** (the worker's default behaviour; the Rust SDK sets behaviour
//! per worker, not per workflow type):
//! - a `ProductSync` run lasts seconds to minutes: it finishes where it started, so a new
//!   version never replays an old version's history;
//! - a `ReconcileCatalog` run lasts one batch of pages; the reconciliation as a whole lasts as
//!   long as the catalog is large, so each continue-as-new starts its next run on the current
//!   version (`ContinueAsNewVersioningBehavior::AutoUpgrade`, in the workflow): a long
//!   reconciliation moves to the new code at its next batch instead of holding the old version's
//!   workers for hours. `ProductSync`'s own continue-as-new (after a burst of changes) does the
//!   same, so a busy product cannot keep an old version alive.
//!
//! What is carried across a continue-as-new (the workflows' inputs) is therefore a contract
//! between versions, in both directions (a rollback sends runs back): add fields with defaults,
//! never change a field's meaning.
//!
//! Without a deployment name the worker is unversioned (every worker takes every task, as before)
//! and still reports its build id to the server.

use common::deployment::{Routing, routing};
use temporalio_client::Client;
use temporalio_common::worker::{
    VersioningBehavior, WorkerDeploymentOptions, WorkerDeploymentVersion,
};

/// The git commit this binary was built from (`build.rs`), when known.
const GIT_HASH: Option<&str> = option_env!("CATALOG_SYNC_GIT_HASH");

/// This worker's place in a Worker Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The Worker Deployment's name; versioning is on when set.
    pub name: Option<String>,
    /// This build's id.
    pub build_id: String,
}

impl Deployment {
    /// An unversioned worker reporting the default build id.
    pub fn unversioned() -> Self {
        Self {
            name: None,
            build_id: default_build_id(),
        }
    }

    /// From the settings: empty values mean unset (compose passes empty variables).
    pub fn from_settings(name: Option<&str>, build_id: Option<&str>) -> anyhow::Result<Self> {
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        let build_id = build_id
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map_or_else(default_build_id, str::to_string);
        for (setting, value) in [
            ("CATALOG_SYNC_DEPLOYMENT_NAME", name.unwrap_or("")),
            ("CATALOG_SYNC_BUILD_ID", build_id.as_str()),
        ] {
            // The server joins the two with a '.' in version strings and search attributes.
            anyhow::ensure!(
                value.len() <= 255 && !value.contains(char::is_whitespace),
                "{setting}={value:?}: expected at most 255 characters without spaces"
            );
        }
        Ok(Self {
            name: name.map(str::to_string),
            build_id,
        })
    }

    /// [`Deployment::from_settings`] on a pod the Temporal Worker Controller manages: it injects
    /// the deployment's name (`TEMPORAL_DEPLOYMENT_NAME`, its Kubernetes namespace and resource
    /// name) and the build it registered (`TEMPORAL_WORKER_BUILD_ID`), which the worker must use
    /// for the controller to see its version poll. catalog-sync's own settings apply where the
    /// controller set nothing, and one that disagrees with it is refused, naming both.
    pub fn from_settings_or_controller(
        name: Option<&str>,
        build_id: Option<&str>,
        controller_name: Option<&str>,
        controller_build_id: Option<&str>,
    ) -> anyhow::Result<Self> {
        let name = agree(
            ("CATALOG_SYNC_DEPLOYMENT_NAME", name),
            ("TEMPORAL_DEPLOYMENT_NAME", controller_name),
        )?;
        let build_id = agree(
            ("CATALOG_SYNC_BUILD_ID", build_id),
            ("TEMPORAL_WORKER_BUILD_ID", controller_build_id),
        )?;
        Self::from_settings(name, build_id)
    }

    /// Whether this worker opts in to versioning.
    pub fn is_versioned(&self) -> bool {
        self.name.is_some()
    }

    /// The SDK's options for every Temporal worker of this process (the workflow queue and the
    /// Stripe queue belong to the same version, so a pinned run's activities go to its version's
    /// workers).
    pub fn options(&self) -> WorkerDeploymentOptions {
        match &self.name {
            Some(name) => WorkerDeploymentOptions::new(
                WorkerDeploymentVersion::builder()
                    .deployment_name(name.clone())
                    .build_id(self.build_id.clone())
                    .build(),
            )
            .use_worker_versioning(true)
            .default_versioning_behavior(VersioningBehavior::Pinned)
            .build(),
            None => WorkerDeploymentOptions::from_build_id(self.build_id.clone()),
        }
    }
}

impl std::fmt::Display for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}:{}", self.build_id),
            None => write!(f, "unversioned (build {})", self.build_id),
        }
    }
}

/// One value of two settings that must agree when both are set (empty counts as unset).
fn agree<'a>(
    ours: (&str, Option<&'a str>),
    controller: (&str, Option<&'a str>),
) -> anyhow::Result<Option<&'a str>> {
    let set = |v: Option<&'a str>| v.map(str::trim).filter(|v| !v.is_empty());
    match (set(ours.1), set(controller.1)) {
        (Some(a), Some(b)) if a != b => anyhow::bail!(
            "{}={a:?} disagrees with {}={b:?}, which the Temporal Worker Controller set for this \
             pod: remove {} from the pod template (the controller names the deployment and build)",
            ours.0,
            controller.0,
            ours.0
        ),
        (a, b) => Ok(b.or(a)),
    }
}

/// The package version and the git commit (`0.1.0+3f9c2a1b7d0e`); without a known commit (a
/// build outside git without `CATALOG_SYNC_GIT_HASH`), a checksum of the executable instead, which
/// is the same for the same binary on every machine.
pub fn default_build_id() -> String {
    let version = env!("CARGO_PKG_VERSION");
    match GIT_HASH {
        Some(hash) if !hash.is_empty() => format!("{version}+{hash}"),
        _ => format!(
            "{version}+exe.{}",
            temporalio_common::worker::build_id_from_current_exe()
        ),
    }
}

/// Logs, once the worker's pollers have registered its version, whether new workflows reach this
/// build, and the command that makes them when they do not: a versioned deployment without a
/// current version leaves new workflows waiting.
pub async fn report_routing(client: Client, deployment_name: String, build_id: String) {
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let set_current = format!(
        "temporal worker deployment set-current-version --deployment-name {deployment_name} --build-id {build_id}"
    );
    match routing(&client, &deployment_name).await {
        Ok(Routing::Current {
            build_id: current,
            ramping,
        }) => {
            let ramping_here = ramping.as_ref().filter(|(b, _)| *b == build_id);
            if current == build_id {
                tracing::info!(deployment = %deployment_name, %build_id, "this build is the deployment's current version: new workflows run here");
            } else if let Some((_, percent)) = ramping_here {
                tracing::info!(deployment = %deployment_name, %build_id, %current, percent, "this build is ramping: it takes this percentage of new workflows");
            } else {
                tracing::info!(deployment = %deployment_name, %build_id, %current, "new workflows go to the current version; this build runs workflows pinned to it, and new ones once it is ramped or made current ({set_current})");
            }
        }
        Ok(Routing::NoCurrentVersion | Routing::Unknown) => {
            tracing::warn!(deployment = %deployment_name, %build_id, "the deployment has no current version: new workflows go to unversioned workers while any poll the task queue, and wait when none do; this build takes none until it is current: run `{set_current}`");
        }
        Err(status) => {
            tracing::warn!(deployment = %deployment_name, error = %status.message(), "could not read the deployment's routing");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_settings_mean_unversioned_with_the_default_build_id() {
        let d = Deployment::from_settings(Some(" "), Some("")).unwrap();
        assert_eq!(d, Deployment::unversioned());
        assert!(
            d.build_id
                .starts_with(concat!(env!("CARGO_PKG_VERSION"), "+"))
        );
        assert!(!d.options().use_worker_versioning);
    }

    #[test]
    fn a_deployment_name_opts_in_with_pinned_runs() {
        let d = Deployment::from_settings(Some("catalog-sync"), Some("v2")).unwrap();
        let options = d.options();
        assert!(options.use_worker_versioning);
        assert_eq!(
            options.default_versioning_behavior,
            Some(VersioningBehavior::Pinned)
        );
        assert_eq!(options.version.deployment_name, "catalog-sync");
        assert_eq!(options.version.build_id, "v2");
        assert_eq!(d.to_string(), "catalog-sync:v2");
    }

    #[test]
    fn the_worker_controllers_variables_name_the_version() {
        let d = Deployment::from_settings_or_controller(
            None,
            None,
            Some("catalog-sync/catalog-sync-worker"),
            Some("0.2.0-5f8d9c6b"),
        )
        .unwrap();
        assert_eq!(
            d.to_string(),
            "catalog-sync/catalog-sync-worker:0.2.0-5f8d9c6b"
        );
        // Agreeing values, or ours where the controller set none, are fine.
        let d = Deployment::from_settings_or_controller(Some("d"), Some("b"), Some("d"), Some(""))
            .unwrap();
        assert_eq!(d.to_string(), "d:b");
        let e = Deployment::from_settings_or_controller(Some("mine"), None, Some("d"), Some("b"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                r#"CATALOG_SYNC_DEPLOYMENT_NAME="mine" disagrees with TEMPORAL_DEPLOYMENT_NAME="d""#
            ),
            "{e}"
        );
    }

    #[test]
    fn names_with_spaces_are_refused_with_the_setting() {
        let e = Deployment::from_settings(Some("catalog sync"), None).unwrap_err();
        assert!(
            e.to_string().contains("CATALOG_SYNC_DEPLOYMENT_NAME"),
            "{e}"
        );
    }
}
