//! The journal as an operator and an auditor meet it, with the real binary: `fusion journal
//! verify` on a sound and on a tampered store, `fusion journal export` checked by the
//! independent Python verifier (docs/verify_journal.py), and a node refusing to start on a
//! damaged tail unless told to.

mod common;

use std::path::Path;
use std::process::Command;

use common::{fusion, spawn_node_with};

/// The Python verifier on `export`: (exit code, stdout).
fn python_verify(export: &Path, key: Option<&str>) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/verify_journal.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(export);
    if let Some(key) = key {
        command.args(["--key", key]);
    }
    let out = command
        .output()
        .expect("python3 runs (./test.sh installs the cryptography package)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn last_seq_of(export: &str) -> u64 {
    let last: serde_json::Value = serde_json::from_str(export.lines().last().unwrap()).unwrap();
    last["seq"].as_u64().unwrap()
}

#[tokio::test]
async fn an_auditor_verifies_an_export_and_an_operator_finds_a_tampered_seq() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    // The demo catalog: a few dozen events in several commits.
    spawn_node_with(&data, &["--demo"]).await.sigterm().await;
    let data_dir = data.to_str().unwrap();

    let (code, out) = fusion(&["--json", "journal", "verify", "--data-dir", data_dir]);
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let events = report["events"].as_u64().unwrap();
    assert!(events >= 8, "{report}");
    assert_eq!(report["signedUpTo"], events);
    // The key is the node's endpoint id.
    let (code, id) = fusion(&["node", "id", "--data-dir", data_dir]);
    assert_eq!(code, 0);
    let key = report["keys"][0]["publicKey"].as_str().unwrap().to_string();
    assert_eq!(id.trim(), key, "the journal key is the sync identity");

    // The auditor's export, verified by a script that shares no code with the node.
    let export = dir.path().join("journal.jsonl");
    let (code, _) = fusion(&[
        "journal",
        "export",
        "--data-dir",
        data_dir,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&export).unwrap();
    assert_eq!(last_seq_of(&text), events);
    let (code, out) = python_verify(&export, Some(&key));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok:"), "{out}");
    // Against another key, or with one envelope byte changed, it fails and names the seq.
    let (code, out) = python_verify(&export, Some(&"11".repeat(32)));
    assert_eq!(code, 1, "{out}");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut line: serde_json::Value = serde_json::from_str(&lines[3]).unwrap();
    let envelope = line["envelope"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        &envelope[..envelope.len() - 1],
        if envelope.ends_with('0') { "1" } else { "0" }
    );
    line["envelope"] = flipped.into();
    lines[3] = line.to_string();
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n")).unwrap();
    let (code, out) = python_verify(&tampered, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 3"), "{out}");
    // `fusion journal verify --file` checks an export by the rulebook's own rules.
    let (code, out) = fusion(&[
        "--json",
        "journal",
        "verify",
        "--file",
        export.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = fusion(&[
        "--json",
        "journal",
        "verify",
        "--file",
        tampered.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["seq"], 3, "{report}");
    // A part of the journal verifies on its own, from the hash before it.
    let part = dir.path().join("part.jsonl");
    let (code, _) = fusion(&[
        "journal",
        "export",
        "--data-dir",
        data_dir,
        "--from",
        "2",
        "--to",
        "3",
        "--out",
        part.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let (code, out) = python_verify(&part, Some(&key));
    assert_eq!(code, 0, "{out}");

    // A byte changed in the stopped node's file: verify names the seq and fails.
    fusion_node::store::testing::flip_event_byte(&data, 5);
    let (code, out) = fusion(&["--json", "journal", "verify", "--data-dir", data_dir]);
    assert_eq!(code, 1, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["seq"], 5, "{report}");
    assert_eq!(report["rule"], "journal_changed");
    let (code, _) = fusion(&["node", "verify", "--data-dir", data_dir]);
    assert_eq!(code, 1, "node verify checks the journal too");
}

#[tokio::test]
async fn a_node_refuses_a_damaged_tail_at_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    // The first start verifies the empty journal; the demo seeds after it: an unverified tail.
    spawn_node_with(&data, &["--demo"]).await.sigterm().await;
    fusion_node::store::testing::flip_event_byte(&data, 2);
    let out = Command::new(env!("CARGO_BIN_EXE_fusion"))
        .args(["node", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("damaged at seq 2"), "{stderr}");
    assert!(stderr.contains("--allow-damaged-journal"), "{stderr}");
    // Told explicitly, it serves (and says so in its log).
    let node = spawn_node_with(&data, &["--allow-damaged-journal"]).await;
    node.sigterm().await;
}
