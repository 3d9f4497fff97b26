//! The fuzz targets' regressions and seed corpus, replayed on the stable toolchain: every input
//! that once failed (`fuzz/regressions/<target>-…`) and a seed corpus from coverage-guided runs
//! (`fuzz/seeds/<target>/`) goes through the same code `cargo fuzz` runs (`fusion_sync::fuzzing`).
//! Errors are fine; a panic fails the test and names the file.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path, prefix: Option<&str>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            prefix.is_none_or(|prefix| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str, harness: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = inputs(&fuzz.join("regressions"), Some(&format!("{target}-")));
    files.extend(inputs(&fuzz.join("seeds").join(target), None));
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| harness(&bytes));
        assert!(outcome.is_ok(), "{target} panicked on {}", file.display());
    }
    files.len()
}

#[test]
fn frame_decode_regressions_and_seeds_replay_cleanly() {
    let n = replay("frame_decode", fusion_sync::fuzzing::frame_decode);
    assert!(n >= 50, "replayed {n} inputs");
}

#[test]
fn doc_message_regressions_and_seeds_replay_cleanly() {
    let n = replay("doc_message", fusion_sync::fuzzing::doc_message);
    assert!(n >= 50, "replayed {n} inputs");
}
