//! The journal on real redb files: chained and signed at every commit, upgraded from format
//! version 1, verified at start from the last verified checkpoint, exported.

use fusion_contracts::commands::AdjustStock;

use super::*;
use crate::domain::journal::{self, Fault};

fn adjust() -> WriteRequest {
    request(Command::Inventory(InventoryCommand::AdjustStock(
        AdjustStock {
            sku: Sku::new("J").unwrap(),
            delta: 1,
            reason: "count".into(),
        },
    )))
}

/// Adds `commits` commits of one stock adjustment each to the store in `dir`, then shuts it
/// down.
async fn journal_of(dir: &Path, commits: u64) {
    let store = open(dir).unwrap();
    for _ in 0..commits {
        store.write(adjust()).await.unwrap();
    }
    close(store).await;
}

async fn close(store: Store) {
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .unwrap();
}

fn verify_journal(dir: &Path) -> Result<JournalReport, VerifyError> {
    super::super::verify_journal(dir).map(|v| v.report)
}

#[tokio::test]
async fn every_commit_signs_the_head_and_the_journal_verifies_from_genesis() {
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), 4).await;
    let VerifiedJournal { keys, report, .. } = super::super::verify_journal(dir.path()).unwrap();
    assert_eq!((report.head, report.signed, report.checkpoints), (4, 4, 4));
    // Signed by the node's identity: the key peers know it by.
    let secret = fusion_sync::net::load_or_create_identity(dir.path()).unwrap();
    assert_eq!(keys, vec![(1, *secret.public().as_bytes())]);
    assert!(super::super::verify(dir.path()).is_ok());
}

#[tokio::test]
async fn a_changed_byte_is_named_by_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), 5).await;
    testing::flip_event_byte(dir.path(), 3);
    let err = verify_journal(dir.path()).unwrap_err();
    assert!(
        matches!(err, VerifyError::Journal(Fault::Changed { seq: 3 })),
        "{err}"
    );
    assert!(err.to_string().contains("seq 3"), "{err}");
    assert!(matches!(
        super::super::verify(dir.path()),
        Err(VerifyError::Journal(Fault::Changed { seq: 3 }))
    ));
}

#[tokio::test]
async fn a_rechained_change_fails_the_next_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), 5).await;
    testing::rewrite_event_and_rechain(dir.path(), 4);
    let err = verify_journal(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Journal(Fault::BadCheckpoint {
                seq: 4,
                verified: 3
            })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn start_up_checks_the_tail_and_refuses_a_damaged_one_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), 3).await;
    // The last start verified up to 3; a change in 1..=3 is for `verify` to find, not start-up
    // (which stays fast at millions of events).
    close(open(dir.path()).unwrap()).await;
    testing::flip_event_byte(dir.path(), 2);
    close(open(dir.path()).unwrap()).await;
    assert!(verify_journal(dir.path()).is_err());

    // A change in the unverified tail refuses to open, naming the seq and the way out.
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), 3).await;
    close(open(dir.path()).unwrap()).await;
    journal_of(dir.path(), 2).await;
    testing::flip_event_byte(dir.path(), 5);
    let err = open(dir.path()).err().expect("a damaged tail is refused");
    assert!(
        matches!(
            &err,
            OpenError::DamagedJournal {
                fault: Fault::Changed { seq: 5 },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--allow-damaged-journal"), "{err}");
    let allowed = Store::open(
        dir.path(),
        StoreOptions {
            allow_damaged_journal: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    close(allowed).await;
}

/// A peer's journal of `n` stock counts, signed by `key`.
fn peer_journal(key: &journal::JournalKey, n: u64) -> fusion_sync::proto::VecLog {
    let origin = NodeId::new("till-peer").unwrap();
    let log = fusion_sync::proto::VecLog::new(origin.clone(), key.clone());
    log.extend((1..=n).map(|seq| {
        fusion_contracts::Envelope::new(
            fusion_contracts::EventId::from_u128(u128::from(seq)),
            origin.clone(),
            seq,
            Timestamp::from_unix_ms(seq as i64),
            CorrelationId::new("peer").unwrap(),
            None,
            fusion_contracts::events::StockAdjusted {
                sku: Sku::new("P").unwrap(),
                previous_quantity: seq - 1,
                quantity: seq,
                delta: 1,
                reason: "count".into(),
            }
            .into(),
        )
        .unwrap()
        .encode()
    }));
    log
}

#[tokio::test]
async fn a_version_1_store_is_upgraded_into_a_signed_journal() {
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), 3).await;
    // It holds a peer's log too: the upgrade chains it, so the peer's next batch is taken.
    let peer_key = journal::JournalKey::from_secret(&[5; 32]);
    let peer = peer_journal(&peer_key, 4);
    let deliverer = Deliverer {
        endpoint: journal::hex(&peer_key.public()),
        key: peer_key.public(),
        is_hub: false,
    };
    {
        let store = open(dir.path()).unwrap();
        let held = store
            .store_peer_events(deliverer.clone(), peer.batch(1, 2).unwrap())
            .await
            .unwrap();
        assert_eq!(held, Ok(2));
        close(store).await;
    }
    let before = {
        let store = open(dir.path()).unwrap();
        let events = store.read().unwrap().events_after(0, 100).unwrap();
        close(store).await;
        events
    };
    testing::downgrade_to_v1(dir.path());
    assert!(matches!(
        verify_journal(dir.path()),
        Err(VerifyError::NeedsUpgrade { found: 1, .. })
    ));
    let store = open(dir.path()).unwrap();
    assert_eq!(store.read().unwrap().events_after(0, 100).unwrap(), before);
    let held = store
        .store_peer_events(deliverer, peer.batch(3, 2).unwrap())
        .await
        .unwrap();
    assert_eq!(
        held,
        Ok(4),
        "the peer's log goes on from the head the upgrade computed"
    );
    // It goes on appending to the same chain.
    store.write(adjust()).await.unwrap();
    close(store).await;
    let report = verify_journal(dir.path()).unwrap();
    // One checkpoint for the upgraded three, one for the new commit.
    assert_eq!((report.head, report.signed, report.checkpoints), (4, 4, 2));
}

#[tokio::test]
async fn a_restored_store_goes_on_under_its_new_key() {
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), 2).await;
    // A restore on another machine: the same file, a new identity.
    std::fs::remove_file(dir.path().join(fusion_sync::net::IDENTITY_FILE)).unwrap();
    journal_of(dir.path(), 2).await;
    let VerifiedJournal { keys, report, .. } = super::super::verify_journal(dir.path()).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!((keys[0].0, keys[1].0), (1, 3));
    assert_eq!(report.signed, 4);
}

#[tokio::test]
async fn an_export_holds_every_event_its_hash_and_the_covering_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    journal_of(dir.path(), 4).await;
    let mut out = Vec::new();
    let last = super::super::export_journal(dir.path(), 2, 3, &mut out).unwrap();
    assert_eq!(last, 3);
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "a header and events 2 and 3");
    assert_eq!(lines[0]["fromSeq"], 2);
    assert_eq!(lines[0]["prev"], lines[1]["prev"]);
    assert_eq!(lines[1]["hash"], lines[2]["prev"]);
    assert_eq!(lines[2]["event"]["seq"], 3);
    assert!(lines[2]["checkpoint"].is_string());
    // Each hash is the documented entry hash of the hex envelope after its prev.
    let unhex = |v: &serde_json::Value| -> Vec<u8> {
        let s = v.as_str().unwrap();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let origin = fusion_contracts::NodeId::new(lines[0]["origin"].as_str().unwrap()).unwrap();
    for line in &lines[1..] {
        let prev: journal::Hash = unhex(&line["prev"]).try_into().unwrap();
        let hash = journal::entry_hash(
            &prev,
            &origin,
            line["seq"].as_u64().unwrap(),
            &unhex(&line["envelope"]),
        );
        assert_eq!(journal::hex(&hash), line["hash"].as_str().unwrap());
    }
}
