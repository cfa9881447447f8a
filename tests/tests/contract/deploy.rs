//! What the deployment files promise, read from the files (no Docker engine runs here; CI also runs
//! `docker-compose config`):
//! - the compose stack runs `temporalio/server` of the version the tests run against, set up by
//!   admin-tools jobs instead of the retired auto-setup image;
//! - every long-running service has a health check, and every dependency waits for it to pass
//!   (`service_healthy`), or for a one-shot job to finish (`service_completed_successfully`);
//! - Prometheus finds each worker replica through DNS, on the port the worker serves metrics on;
//! - the image has what the health checks run, builds dependencies in a layer of their own, and
//!   the build context leaves local state and secrets out;
//! - the directory the sandbox's state volume is mounted on exists in the image, owned by the user
//!   the services run as (a volume on a missing path comes up owned by root, and the sandbox,
//!   uid 10001, could not save its state).

use std::collections::BTreeMap;

use harness::temporal::temporal_cli;
use harness::workspace_root;
use serde_yaml_ng::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn services() -> BTreeMap<String, Value> {
    let compose = yaml("docker-compose.yml");
    compose["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().expect("service name").to_string(), v.clone()))
        .collect()
}

/// A job that runs once and exits: restarted only on failure.
fn is_one_shot(service: &Value) -> bool {
    service["restart"]
        .as_str()
        .is_some_and(|r| r.starts_with("on-failure"))
}

fn env<'a>(service: &'a Value, name: &str) -> &'a str {
    service["environment"][name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not set"))
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The server version of the `temporal` CLI the tests start (`Server 1.32.0` in its `--version`).
fn tested_server_version() -> String {
    let out = std::process::Command::new(temporal_cli())
        .arg("--version")
        .output()
        .expect("temporal --version");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("Server ")
        .nth(1)
        .and_then(|rest| rest.split([',', ')']).next())
        .unwrap_or_else(|| panic!("no server version in {text:?}"))
        .trim()
        .to_string()
}

#[test]
fn compose_runs_the_tested_temporal_server_set_up_by_admin_tools() {
    let services = services();
    let version = tested_server_version();
    assert_eq!(
        services["temporal"]["image"].as_str(),
        Some(format!("temporalio/server:{version}").as_str()),
        "the compose stack runs the server the tests run against"
    );
    for (name, service) in &services {
        let image = service["image"].as_str().unwrap_or_default();
        assert!(!image.contains("auto-setup"), "{name} uses {image}");
        if image.starts_with("temporalio/admin-tools") {
            assert_eq!(image, format!("temporalio/admin-tools:{version}"), "{name}");
        }
    }
    // The server starts only after the schema job has finished, and the namespace job after the
    // server is healthy; both jobs' scripts are in the repository.
    assert_eq!(
        services["temporal"]["depends_on"]["temporal-schema"]["condition"].as_str(),
        Some("service_completed_successfully")
    );
    assert_eq!(
        services["temporal-namespace"]["depends_on"]["temporal"]["condition"].as_str(),
        Some("service_healthy")
    );
    for (name, service) in &services {
        for mount in service["volumes"].as_sequence().into_iter().flatten() {
            let source = mount.as_str().unwrap().split(':').next().unwrap();
            if let Some(path) = source.strip_prefix("./") {
                assert!(
                    workspace_root().join(path).exists(),
                    "{name} mounts {path}, which is not in the repository"
                );
            }
        }
    }
    for script in ["setup-schema.sh", "create-namespace.sh"] {
        let text = read(&format!("deploy/temporal/{script}"));
        assert!(text.starts_with("#!/bin/sh"), "{script}");
    }
    let setup = read("deploy/temporal/setup-schema.sh");
    assert!(setup.contains("temporal-sql-tool") && setup.contains("update-schema"));
}

#[test]
fn every_service_is_health_checked_and_every_dependency_waits_for_it() {
    let services = services();
    for (name, service) in &services {
        if !is_one_shot(service) {
            let test = &service["healthcheck"]["test"];
            assert!(
                test.as_sequence().is_some_and(|t| !t.is_empty()),
                "{name} has no health check"
            );
        }
        let Some(deps) = service["depends_on"].as_mapping() else {
            assert!(
                service["depends_on"].is_null(),
                "{name}: depends_on must name a condition for each dependency"
            );
            continue;
        };
        for (dep, how) in deps {
            let dep = dep.as_str().unwrap();
            let target = services
                .get(dep)
                .unwrap_or_else(|| panic!("{name} depends on unknown {dep}"));
            let expected = if is_one_shot(target) {
                "service_completed_successfully"
            } else {
                "service_healthy"
            };
            assert_eq!(how["condition"].as_str(), Some(expected), "{name} → {dep}");
        }
    }
    // catalog-sync's own services probe their own endpoints, on the ports they serve them on.
    let probe = |name: &str| -> String {
        let test = services[name]["healthcheck"]["test"].as_sequence().unwrap();
        test.iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let worker = &services["worker"];
    let health = port_of(env(worker, "CATALOG_SYNC_HEALTH_ADDR"));
    assert!(
        probe("worker").contains(&format!("localhost:{health}/readyz")),
        "{}",
        probe("worker")
    );
    let listen = port_of(env(&services["relay"], "CATALOG_SYNC_LISTEN"));
    assert!(probe("relay").contains(&format!("localhost:{listen}/readyz")));
    let codec = port_of(env(&services["codec-server"], "CATALOG_SYNC_CODEC_LISTEN"));
    assert!(probe("codec-server").contains(&format!("localhost:{codec}/readyz")));
    assert!(probe("stripe-sandbox").contains("/_sandbox/health"));
    // Those probes run curl inside catalog-sync's image.
    let dockerfile = read("Dockerfile");
    let runtime = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(runtime.contains(" curl"), "the runtime image installs curl");
}

/// Every `starter` job but `setup` reads the catalog (a schedule's id carries the catalog's
/// identity): it is given the database and waits for `migrate`, or it fails as shipped.
#[test]
fn compose_jobs_that_read_the_catalog_get_it_migrated() {
    let services = services();
    let mut checked = 0;
    for (name, service) in &services {
        let entrypoint: Vec<&str> = service["entrypoint"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if entrypoint.first() != Some(&"starter") || entrypoint.get(1) == Some(&"setup") {
            continue;
        }
        assert!(
            service["environment"]["CATALOG_DATABASE_URL"]
                .as_str()
                .is_some(),
            "{name} runs {entrypoint:?} without CATALOG_DATABASE_URL"
        );
        if entrypoint.get(1) != Some(&"migrate") {
            assert_eq!(
                service["depends_on"]["migrate"]["condition"].as_str(),
                Some("service_completed_successfully"),
                "{name} does not wait for migrate"
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "the schedule jobs are checked");
}

/// On Kubernetes, the migration Job (beside the worker: one per build in a versioned rollout)
/// and the set-up Job run the compose stack's one-shot `starter` steps, in the same order, each
/// with the catalog's database from the Secret (and Temporal's key where it talks to Temporal).
/// Nothing else migrates: the set-up Job and the worker wait for the schema (`migrate --check`),
/// with no right to change it.
#[test]
fn the_kubernetes_jobs_run_the_compose_steps_and_only_the_migration_job_migrates() {
    let objects = kubernetes_base();
    let job = |name: &str| -> &Value {
        objects
            .iter()
            .find(|o| {
                o["kind"].as_str() == Some("Job") && o["metadata"]["name"].as_str() == Some(name)
            })
            .unwrap_or_else(|| panic!("no Job {name}"))
    };
    let containers = |object: &Value| -> Vec<Value> {
        let pod = &object["spec"]["template"]["spec"];
        pod["initContainers"]
            .as_sequence()
            .into_iter()
            .flatten()
            .chain(pod["containers"].as_sequence().into_iter().flatten())
            .cloned()
            .collect()
    };
    let command = |c: &Value| -> Vec<String> {
        c["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let waits = |c: &Value| command(c) == ["starter", "migrate", "--check", "--wait", "600"];
    // A compose argument `${VAR:-default}` is its default.
    let plain = |arg: &str| -> String {
        match arg.strip_prefix("${").and_then(|a| a.strip_suffix('}')) {
            Some(var) => var.split_once(":-").map_or("", |(_, d)| d).to_string(),
            None => arg.to_string(),
        }
    };
    let services = services();
    let steps: Vec<Vec<String>> = [
        "migrate",
        "search-attributes",
        "reconcile-schedule",
        "full-scan-schedule",
    ]
    .iter()
    .map(|name| {
        services[*name]["entrypoint"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| plain(a.as_str().unwrap()))
            .collect()
    })
    .collect();
    let setup = containers(job("catalog-sync-setup"));
    assert!(
        waits(&setup[0]),
        "the set-up Job waits for the schema first"
    );
    let run: Vec<Value> = containers(job("catalog-sync-migrate"))
        .into_iter()
        .chain(setup.into_iter().skip(1))
        .collect();
    assert_eq!(run.iter().map(command).collect::<Vec<_>>(), steps);
    for (i, container) in run.iter().enumerate() {
        let url = container_env(container, "CATALOG_DATABASE_URL").expect("the database");
        assert_eq!(
            url["valueFrom"]["secretKeyRef"]["name"].as_str(),
            Some("catalog-sync")
        );
        // The migration talks to the database alone.
        assert_eq!(
            container_env(container, "TEMPORAL_API_KEY").is_some(),
            i > 0,
            "{:?}",
            command(container)
        );
    }
    // The worker's pods wait for the schema; no container but the migration Job's migrates.
    let worker = objects
        .iter()
        .find(|o| {
            o["metadata"]["name"].as_str() == Some("catalog-sync-worker")
                && o["kind"].as_str() == Some("Deployment")
        })
        .unwrap();
    assert!(containers(worker).iter().any(waits));
    let migrating: Vec<String> = objects
        .iter()
        .flat_map(|o| {
            containers(o)
                .into_iter()
                .filter(|c| c.get("command").is_some() && command(c) == ["starter", "migrate"])
                .map(|_| o["metadata"]["name"].as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(migrating, ["catalog-sync-migrate"]);
}

/// Compose is safe as shipped: nothing is published beyond this host unless `.env` asks
/// (`PUBLISH_ADDR`, `RELAY_PUBLISH_ADDR`), and the codec server never; every service restarts
/// (the jobs on failure) and rotates its logs; catalog-sync's processes have memory limits.
#[test]
fn compose_is_safe_by_default() {
    for (name, service) in services() {
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().unwrap();
            assert!(
                [
                    "${PUBLISH_ADDR:-127.0.0.1}:",
                    "${RELAY_PUBLISH_ADDR:-127.0.0.1}:"
                ]
                .iter()
                .any(|p| port.starts_with(p))
                    || (name == "codec-server" && port.starts_with("127.0.0.1:")),
                "{name} publishes {port} beyond this host by default"
            );
        }
        assert!(
            service["restart"]
                .as_str()
                .is_some_and(|r| r == "unless-stopped" || r.starts_with("on-failure")),
            "{name} has no restart policy"
        );
        assert_eq!(
            service["logging"]["driver"].as_str(),
            Some("json-file"),
            "{name}"
        );
        assert!(
            service["logging"]["options"]["max-size"].as_str().is_some(),
            "{name}'s logs do not rotate"
        );
        if ["worker", "relay", "codec-server", "stripe-sandbox"].contains(&name.as_str()) {
            assert!(
                service["deploy"]["resources"]["limits"]["memory"]
                    .as_str()
                    .is_some(),
                "{name} has no memory limit"
            );
        }
    }
}

#[test]
fn prometheus_finds_every_worker_replica() {
    let services = services();
    let metrics = port_of(env(&services["worker"], "CATALOG_SYNC_METRICS_ADDR"));
    let relay_metrics = port_of(env(&services["relay"], "CATALOG_SYNC_METRICS_ADDR"));
    let prometheus = yaml("deploy/prometheus.yml");
    let jobs = prometheus["scrape_configs"].as_sequence().unwrap();
    for (service, port) in [("worker", metrics), ("relay", relay_metrics)] {
        let job = jobs
            .iter()
            .find(|j| j["job_name"].as_str() == Some(&format!("catalog-sync-{service}")))
            .unwrap_or_else(|| panic!("no scrape job for {service}"));
        assert!(
            job["static_configs"].is_null(),
            "{service}: a static target mixes the replicas' counters"
        );
        let sd = &job["dns_sd_configs"][0];
        assert_eq!(sd["names"][0].as_str(), Some(service));
        assert_eq!(sd["type"].as_str(), Some("A"));
        assert_eq!(sd["port"].as_u64(), Some(port), "{service}");
    }
}

#[test]
fn the_image_builds_dependencies_in_their_own_layer() {
    let dockerfile = read("Dockerfile");
    let build = dockerfile
        .split("\nFROM ")
        .find(|stage| stage.contains(" AS build"))
        .expect("a build stage");
    let cook = build.find("cargo chef cook").expect("cargo chef cook");
    let copy = build.find("COPY . .").expect("COPY . .");
    let compile = build.find("cargo build --release").expect("cargo build");
    assert!(
        cook < copy && copy < compile,
        "dependencies are cooked before the sources are copied in"
    );
}

#[test]
fn the_build_context_leaves_local_state_and_secrets_out() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    for path in [".quickstart", "target", ".venv", ".git", ".env"] {
        assert!(
            ignored.iter().any(|l| l == path),
            "{path} is not in .dockerignore"
        );
    }
}

#[test]
fn the_state_volume_is_mounted_on_a_directory_the_service_user_owns() {
    let services = services();
    let mounts = services["stripe-sandbox"]["volumes"].as_sequence().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.as_str() == Some("sandbox-state:/app/state")),
        "the compose file mounts the sandbox's state at /app/state"
    );
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("--uid 10001"), "{dockerfile}");
    assert!(dockerfile.contains("USER 10001"), "{dockerfile}");
    assert!(
        dockerfile.contains("mkdir -p /app/state")
            && dockerfile.contains("chown -R 10001:10001 /app"),
        "the image creates /app/state owned by 10001: {dockerfile}"
    );
}

/// Every document of a multi-document YAML file.
fn documents(path: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(&read(path))
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The objects of the base, the worker's directory and the encryption overlay's own files (its
/// codec server): every process catalog-sync runs on Kubernetes.
fn kubernetes_base() -> Vec<Value> {
    [
        "deploy/kubernetes/worker",
        "deploy/kubernetes/base",
        "deploy/kubernetes/overlays/encryption",
    ]
    .iter()
    .flat_map(|dir| {
        let kustomization = yaml(&format!("{dir}/kustomization.yaml"));
        kustomization["resources"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|file| file.as_str().unwrap().to_string())
            .filter(|file| !file.starts_with(".."))
            .flat_map(|file| documents(&format!("{dir}/{file}")))
            .collect::<Vec<_>>()
    })
    .collect()
}

/// `KEY=value` lines of an env file of the repository (comments and blank lines skipped).
pub(crate) fn env_file(path: &str) -> BTreeMap<String, String> {
    read(path)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The settings the base's ConfigMap is generated from.
pub(crate) fn kubernetes_settings() -> BTreeMap<String, String> {
    env_file("deploy/kubernetes/base/settings.env")
}

fn container_env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
}

#[test]
fn kubernetes_probes_the_health_endpoints_and_keeps_keys_in_the_secret() {
    let objects = kubernetes_base();
    let deployments: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"].as_str() == Some("Deployment"))
        .collect();
    let names: Vec<&str> = deployments
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "catalog-sync-worker",
            "catalog-sync-relay",
            "catalog-sync-codec-server"
        ]
    );
    // The relay is live while it waits for Temporal; its start (the catalog connection) has a
    // probe of its own, so that liveness never restarts a relay that is only starting.
    let relay = &deployments[1]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        relay["startupProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    let settings = kubernetes_settings();
    for deployment in &deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"]["runAsUser"].as_u64(),
            Some(10001),
            "{name}"
        );
        for container in pod["containers"].as_sequence().unwrap() {
            let ports: BTreeMap<&str, u64> = container["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap(),
                        p["containerPort"].as_u64().unwrap(),
                    )
                })
                .collect();
            for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
                let get = &container[probe]["httpGet"];
                assert_eq!(get["path"].as_str(), Some(path), "{name} {probe}");
                let port = ports[get["port"].as_str().unwrap()];
                // The port the process serves its health endpoints on is the probed one.
                let served = [
                    "CATALOG_SYNC_HEALTH_ADDR",
                    "CATALOG_SYNC_LISTEN",
                    "CATALOG_SYNC_CODEC_LISTEN",
                ]
                .iter()
                .find_map(|var| container_env(container, var))
                .and_then(|e| e["value"].as_str())
                .map(port_of);
                assert_eq!(
                    served,
                    Some(port),
                    "{name} {probe} probes the port it serves"
                );
            }
            // Keys come from the Secret, never from the ConfigMap's settings.
            for key in [
                "STRIPE_API_KEY",
                "CATALOG_DATABASE_URL",
                "CATALOG_SYNC_PAYLOAD_KEY",
                "STRIPE_WEBHOOK_SECRET",
                "CATALOG_SYNC_CODEC_AUTH_TOKEN",
                "TEMPORAL_API_KEY",
            ] {
                assert!(!settings.contains_key(key), "{key} is in settings.env");
                if let Some(env) = container_env(container, key) {
                    assert_eq!(
                        env["valueFrom"]["secretKeyRef"]["name"].as_str(),
                        Some("catalog-sync"),
                        "{name}: {key} comes from the Secret"
                    );
                }
            }
        }
    }
    // Each long-running Deployment that serves traffic or work has a disruption budget that
    // selects its pods.
    for target in ["catalog-sync-worker", "catalog-sync-relay"] {
        let deployment = deployments
            .iter()
            .find(|d| d["metadata"]["name"].as_str() == Some(target))
            .unwrap();
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        let pdb = objects
            .iter()
            .find(|o| {
                o["kind"].as_str() == Some("PodDisruptionBudget")
                    && o["metadata"]["name"].as_str() == Some(target)
            })
            .unwrap_or_else(|| panic!("no PodDisruptionBudget for {target}"));
        for (k, v) in pdb["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
            assert_eq!(&labels[k.as_str().unwrap()], v, "{target}");
        }
    }
}

/// The label value the Temporal server gives a task queue in its metrics: its dashes (and any
/// other character Prometheus does not take) as underscores, as `operate::autoscaling` reads from
/// a real server.
pub(crate) fn metric_label(queue: &str) -> String {
    queue
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[test]
fn the_autoscaler_follows_the_workflow_queue_alone() {
    let hpa = yaml("deploy/kubernetes/overlays/autoscaling/worker-hpa.yaml");
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"].as_str(),
        Some("catalog-sync-worker")
    );
    let metric = &hpa["spec"]["metrics"][0]["external"]["metric"];
    let queue = &kubernetes_settings()["CATALOG_SYNC_TASK_QUEUE"];
    // The workflow queue, as the server labels it; not the Stripe queue, held to Stripe's budget.
    assert_eq!(
        metric["selector"]["matchLabels"]["taskqueue"].as_str(),
        Some(metric_label(queue).as_str())
    );
    assert_eq!(
        metric["selector"]["matchLabels"]
            .as_mapping()
            .unwrap()
            .len(),
        1
    );
    // The adapter rule serves that metric from the Temporal server's backlog gauge, summed over
    // partitions, priorities and task types.
    let adapter = yaml("deploy/kubernetes/overlays/autoscaling/prometheus-adapter-values.yaml");
    let rule = &adapter["rules"]["external"][0];
    assert_eq!(rule["name"]["as"], metric["name"]);
    assert!(
        rule["seriesQuery"]
            .as_str()
            .unwrap()
            .starts_with("approximate_backlog_count")
    );
    assert!(
        rule["metricsQuery"]
            .as_str()
            .unwrap()
            .ends_with("by (taskqueue)")
    );
    // No fixed replica count fights it: the overlay removes the Deployment's.
    let overlay = yaml("deploy/kubernetes/overlays/autoscaling/kustomization.yaml");
    let patch = &overlay["patches"][0];
    assert_eq!(
        patch["target"]["name"].as_str(),
        Some("catalog-sync-worker")
    );
    assert!(
        patch["patch"]
            .as_str()
            .unwrap()
            .contains("path: /spec/replicas"),
        "{patch:?}"
    );
}

/// The Prometheus Operator's rules are the alert rules that promtool tests, not a copy that
/// drifts (`scripts/render-prometheus-rule` writes them).
#[test]
fn the_prometheus_rule_is_the_tested_alert_rules() {
    let rule = yaml("deploy/kubernetes/overlays/monitoring/prometheus-rule.yaml");
    let alerts = yaml("deploy/prometheus/alerts.yml");
    assert_eq!(
        rule["spec"]["groups"], alerts["groups"],
        "run scripts/render-prometheus-rule"
    );
    // The PodMonitor's job label is the pods' name, as the rules' `up{job=…}` expect.
    let monitor = yaml("deploy/kubernetes/overlays/monitoring/pod-monitor.yaml");
    assert_eq!(
        monitor["spec"]["jobLabel"].as_str(),
        Some("app.kubernetes.io/name")
    );
    let scraped = &monitor["spec"]["selector"]["matchExpressions"][0]["values"];
    for job in ["catalog-sync-worker", "catalog-sync-relay"] {
        assert!(
            read("deploy/prometheus/alerts.yml").contains(&format!("up{{job=\"{job}\"}}")),
            "{job}"
        );
        assert!(
            scraped
                .as_sequence()
                .unwrap()
                .iter()
                .any(|v| v.as_str() == Some(job)),
            "{job}"
        );
    }
}

/// Every catalog-sync pod is closed to ingress but for ports it serves: each NetworkPolicy's
/// ports are named ports of the pods it selects, and every pod is under the closing policy.
#[test]
fn network_policies_open_only_the_ports_each_pod_serves() {
    let objects = kubernetes_base();
    let pods: Vec<(&str, Vec<&str>)> = objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "Job")))
        .map(|o| {
            let template = &o["spec"]["template"];
            let name = template["metadata"]["labels"]["app.kubernetes.io/name"]
                .as_str()
                .unwrap();
            let ports = template["spec"]["containers"]
                .as_sequence()
                .unwrap()
                .iter()
                .flat_map(|c| c["ports"].as_sequence().into_iter().flatten())
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            (name, ports)
        })
        .collect();
    let policies: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"].as_str() == Some("NetworkPolicy"))
        .collect();
    let closing = policies
        .iter()
        .find(|p| p["spec"]["ingress"].is_null())
        .expect("a policy that closes ingress");
    let closed = &closing["spec"]["podSelector"]["matchExpressions"][0]["values"];
    for (name, _) in &pods {
        assert!(
            closed
                .as_sequence()
                .unwrap()
                .iter()
                .any(|v| v.as_str() == Some(name)),
            "{name} is not under the closing policy"
        );
    }
    for policy in policies.iter().filter(|p| !p["spec"]["ingress"].is_null()) {
        let target = policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            .as_str()
            .unwrap();
        let (_, served) = pods.iter().find(|(n, _)| *n == target).unwrap();
        for rule in policy["spec"]["ingress"].as_sequence().unwrap() {
            for port in rule["ports"].as_sequence().unwrap() {
                let port = port["port"].as_str().unwrap();
                assert!(served.contains(&port), "{target} does not serve {port}");
            }
        }
    }
}
