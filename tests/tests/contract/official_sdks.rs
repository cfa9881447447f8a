//! The official Stripe SDKs (PyPI `stripe`, npm `stripe`) as outside clients of the sandbox:
//! if they cannot tell it from Stripe for what catalog-sync does, neither can catalog-sync.
//! `scripts/setup-tools` installs both.

use std::process::Command;

use harness::workspace_root;

async fn run_sdk(program: &str, script: &str) {
    let sandbox = harness::Sandbox::start().await;
    let root = workspace_root();
    let payload = r#"{"id":"evt_sdk","object":"event","type":"product.updated","data":{"object":{"id":"p"}}}"#;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature = stripe_sandbox::webhooks::sign("whsec_sdk", t, payload.as_bytes());
    let output = Command::new(program)
        .arg(root.join("tests/compat").join(script))
        .arg(&sandbox.base)
        .env("SANDBOX_SIGNED_PAYLOAD", payload)
        .env("SANDBOX_SIGNATURE", signature)
        .env("SANDBOX_WEBHOOK_SECRET", "whsec_sdk")
        .current_dir(root.join("tests/compat"))
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run ({e}): run scripts/setup-tools"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}\n(are the SDKs installed? scripts/setup-tools)"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_python_sdk() {
    let python = workspace_root().join(".venv/bin/python");
    run_sdk(python.to_str().unwrap(), "stripe_python.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_node_sdk() {
    run_sdk("node", "stripe_node.mjs").await;
}
