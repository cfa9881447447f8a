//! What the image build promises, read from the files (no Docker engine runs here): the build
//! context leaves local state out (`.quickstart/` can hold a payload key), and the directory the
//! compose file mounts the sandbox's state volume on exists in the image, owned by the user the
//! services run as (a volume mounted on a missing path comes up owned by root, and the sandbox,
//! uid 10001, could not save its state).

use harness::workspace_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_build_context_leaves_local_state_out() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    for path in [".quickstart", "target", ".venv", ".git"] {
        assert!(
            ignored.iter().any(|l| l == path),
            "{path} is not in .dockerignore"
        );
    }
}

#[test]
fn the_state_volume_is_mounted_on_a_directory_the_service_user_owns() {
    let compose = read("docker-compose.yml");
    assert!(
        compose.contains("sandbox-state:/app/state"),
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
