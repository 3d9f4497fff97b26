//! The rulebook stays pure: no storage, network, runtime or exporter crate anywhere in its
//! dependency tree (Cargo's resolve, as `cargo tree -p fusion-rules -e normal` shows it), and
//! no clock, randomness, file or socket in its source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Crates whose presence would mean I/O reached the rules.
const FORBIDDEN: &[&str] = &[
    "redb",
    "axum",
    "hyper",
    "tokio",
    "iroh",
    "rdkafka",
    "reqwest",
    "automerge",
    "mio",
];

/// Text that reads the clock, makes randomness, or touches disk, network or threads.
const IMPURE: &[&str] = &[
    "SystemTime",
    "Instant::now",
    "::now(",
    "now_v7",
    "new_v4",
    "getrandom",
    "thread_rng",
    "std::fs",
    "std::net",
    "std::thread",
    "std::env",
    "std::process",
];

/// The triple rustc builds for here (`rustc -vV`'s `host:`).
fn host_triple() -> String {
    let out = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names its host")
}

#[test]
fn no_io_crate_is_among_the_rules_dependencies() {
    let out = std::process::Command::new(env!("CARGO"))
        // This machine's platform only: the build downloaded exactly those crates, so this
        // needs no network.
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(host_triple())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = name_of
        .iter()
        .find(|(_, name)| **name == "fusion-rules")
        .map(|(id, _)| *id)
        .expect("fusion-rules is in the workspace");
    // The closure over normal (non-dev, non-build) dependencies.
    let mut seen = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            if normal {
                todo.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let names: BTreeSet<&str> = seen.iter().map(|id| name_of[id]).collect();
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| names.contains(**f)).collect();
    assert!(found.is_empty(), "the rules depend on {found:?}: {names:?}");
    assert!(names.contains("fusion-contracts"), "{names:?}");
}

#[test]
fn the_rules_never_read_the_clock_or_touch_the_world() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        // Tests inside a module may build fixtures however they like.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for needle in IMPURE {
            assert!(
                !code.contains(needle),
                "{} contains {needle:?}: time and ids come in as arguments",
                path.display()
            );
        }
    }
    assert!(files >= 8, "read {files} source files of the rules");
}
