//! Records the git commit the worker is built from, for its default build id
//! (`worker::deployment::default_build_id`): `CATALOG_SYNC_GIT_HASH` when the build sets it (the
//! Dockerfile's build argument: the image's build context has no `.git`), else `git rev-parse`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CATALOG_SYNC_GIT_HASH");
    let hash = std::env::var("CATALOG_SYNC_GIT_HASH")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    if let Some(hash) = hash {
        println!("cargo:rustc-env=CATALOG_SYNC_GIT_HASH={hash}");
    }
    // A new commit changes the build id: rebuild when HEAD or the branch it names moves.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        // (Only files that exist: cargo reruns a build script every time for a missing one.)
        let reference = git(&["symbolic-ref", "-q", "HEAD"]);
        for file in reference.iter().map(String::as_str).chain(["packed-refs"]) {
            let path = format!("{dir}/{file}");
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}
