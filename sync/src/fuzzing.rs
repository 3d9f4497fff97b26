//! The fuzz targets' bodies, so that `cargo test` replays their regressions and seed corpus on
//! a stable toolchain (`tests/fuzz_replay.rs`) and `cargo fuzz` (nightly, `fuzz/`) runs the very
//! same code. Untrusted bytes in; errors are fine, a panic is a bug.

use std::collections::BTreeMap;

use fusion_contracts::{ProductId, Timestamp};

use crate::docs::{DocId, DocSet, SyncState, read_product};
use crate::frame::{Decoder, encode};
use crate::proto::{Receiver, Sender};

/// Bytes, cut into pieces of any size (the first byte says how big), through the frame decoder
/// and into both protocol cores. Every frame that decodes must survive an encode/decode round
/// trip unchanged.
pub fn frame_decode(data: &[u8]) {
    let Some((&piece, bytes)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::default();
    let mut receiver = Receiver::new(BTreeMap::new());
    let mut sender = Sender::new();
    for chunk in bytes.chunks(usize::from(piece).max(1)) {
        decoder.push(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    let mut again = Decoder::default();
                    again.push(&encode(&frame));
                    assert_eq!(again.next_frame(), Ok(Some(frame.clone())));
                    let _ = receiver.on_frame(frame.clone());
                    let _ = sender.on_frame(frame, Timestamp::from_unix_ms(0));
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// Bytes as a peer's automerge sync message for a product document; whatever is applied must
/// read as a product or as nothing.
pub fn doc_message(data: &[u8]) {
    let id = ProductId::from_u128(7);
    let doc = DocId::product(id);
    let mut set = DocSet::new(b"fuzz");
    let mut state = SyncState::new();
    if set.receive(&doc, &mut state, data).is_ok() {
        let _ = set.generate(&doc, &mut state);
        let _ = set.get(&doc).map(|d| read_product(d, id));
        let _ = set.take_chunks();
    }
}

/// Bytes as a peer's whole product document (`Frame::DocSave`); whatever is taken must read as
/// a product or as nothing, and store.
pub fn doc_save(data: &[u8]) {
    let id = ProductId::from_u128(7);
    let doc = DocId::product(id);
    let mut set = DocSet::new(b"fuzz");
    if set.receive_save(&doc, data).is_ok() {
        let _ = set.get(&doc).map(|d| read_product(d, id));
        let _ = set.take_chunks();
    }
}
