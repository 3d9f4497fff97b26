//! Untrusted bytes, cut into pieces of any size, through the frame decoder and into both
//! protocol cores: errors are fine, panics are bugs. Every frame that decodes must survive an
//! encode/decode round trip unchanged.
#![no_main]

use std::collections::BTreeMap;

use fusion_contracts::Timestamp;
use fusion_sync::frame::{Decoder, encode};
use fusion_sync::proto::{Receiver, Sender};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
