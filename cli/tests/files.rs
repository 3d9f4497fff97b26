//! What the daemons leave on disk and on stdout: their data dir 0700 and files 0600 even
//! under umask 000, and the admin token never printed to a stdout that is not a terminal (the
//! journal, under systemd).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Starts `fusion ARGS --data-dir DIR` under umask 000 with stdout piped; returns what it
/// printed up to and including the admin token line, then stops it.
async fn first_lines(args: &[&str], dir: &Path) -> String {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"umask 000; exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_fusion"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            out.push_str(&line);
            out.push('\n');
            if line.starts_with("admin token") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the daemon says where its admin token is");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    out
}

#[tokio::test]
async fn daemons_keep_their_files_private_and_their_token_out_of_logs() {
    let base = tempfile::tempdir().unwrap();
    for (kind, args) in [
        (
            "node",
            vec!["node", "serve", "--listen", "127.0.0.1:0", "--demo"],
        ),
        (
            "hub",
            vec![
                "hub",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sync-bind",
                "127.0.0.1:0",
            ],
        ),
    ] {
        let dir = base.path().join(kind).join("data");
        let out = first_lines(&args, &dir).await;
        let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
        assert!(
            !out.contains(token.trim()),
            "{kind} printed its token: {out}"
        );
        assert!(out.contains("admin token: in "), "{kind}: {out}");
        assert_eq!(mode(&dir), 0o700, "{kind} data dir");
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}
