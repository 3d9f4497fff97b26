//! The JSON Schemas under `contracts/schemas/` are generated from the payload types. This test
//! fails when a committed file drifts from the code; `FUSION_BLESS_SCHEMAS=1 cargo test -p
//! fusion-contracts --test schemas` rewrites them.

use std::path::PathBuf;

use fusion_contracts::Event;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

#[test]
fn committed_schemas_match_the_types() {
    let bless = std::env::var_os("FUSION_BLESS_SCHEMAS").is_some();
    let mut drifted = Vec::new();
    for (topic, schema) in Event::payload_schemas() {
        let path = schema_dir().join(format!("{topic}.json"));
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if bless {
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != generated {
            drifted.push(path.display().to_string());
        }
    }
    let expected: Vec<String> = Event::TOPICS.iter().map(|t| format!("{t}.json")).collect();
    let mut present: Vec<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(
        present, expected_sorted,
        "schemas/ must hold exactly one file per topic"
    );
    assert!(
        drifted.is_empty(),
        "schemas drifted from the code (rerun with FUSION_BLESS_SCHEMAS=1): {drifted:?}"
    );
}

#[test]
fn schemas_describe_amounts_as_numbers() {
    let schemas = Event::payload_schemas();
    let (_, order) = schemas.iter().find(|(t, _)| *t == "order.created").unwrap();
    let text = order.to_string();
    assert!(
        text.contains(r#""total""#) && text.contains(r#""type":"number""#),
        "{text}"
    );
}
