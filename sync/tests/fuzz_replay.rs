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

/// No corpus yet for whole documents: every cut and a flipped byte at every place of a real
/// product's save, through the same harness.
#[test]
fn doc_save_survives_every_cut_and_flip_of_a_real_save() {
    use fusion_contracts::events::{Product, ProductStatus};
    use fusion_contracts::{Currency, Money, ProductId, Sku, Timestamp};
    use fusion_sync::docs::{DocId, DocSet, create_product};
    let id = ProductId::from_u128(7);
    let doc = DocId::product(id);
    let mut set = DocSet::new(b"seed");
    let product = Product {
        id,
        sku: Sku::new("TEA").unwrap(),
        name: "Tea".into(),
        description: Some("Loose leaf".into()),
        price: Money {
            minor: 450,
            currency: Currency::USD,
        },
        status: ProductStatus::Active,
        created_at: Timestamp::from_unix_ms(1_000),
        updated_at: Timestamp::from_unix_ms(1_000),
        tax_class: None,
        category: None,
    };
    set.edit(&doc, |d| create_product(d, &product)).unwrap();
    let (_, save) = set.saves(std::slice::from_ref(&doc)).unwrap().remove(0);
    let mut inputs = vec![save.clone()];
    for cut in 0..save.len() {
        inputs.push(save[..cut].to_vec());
        let mut flipped = save.clone();
        flipped[cut] ^= 1 << (cut % 8);
        inputs.push(flipped);
    }
    for input in &inputs {
        let outcome = std::panic::catch_unwind(|| fusion_sync::fuzzing::doc_save(input));
        assert!(outcome.is_ok(), "doc_save panicked on {input:?}");
    }
    assert!(inputs.len() > 100, "{} inputs", inputs.len());
}
