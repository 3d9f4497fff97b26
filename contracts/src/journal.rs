//! The auditor's export of a journal (`docs/JOURNAL.md`): JSON lines, a header, then one line
//! per event. Written by a node (`fusion journal export`) and by the hub (`GET
//! /journal/{origin}`), read by `fusion journal verify` and `docs/verify_journal.py`.

use serde::{Deserialize, Serialize};

use crate::events::EventRecord;

/// The header's `journal` value.
pub const EXPORT_FORMAT: &str = "fusion-journal/1";

/// The first line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportHeader {
    /// [`EXPORT_FORMAT`].
    pub journal: String,
    pub origin: String,
    /// The keys the journal is signed with, each from a seq on.
    pub keys: Vec<ExportKey>,
    /// The first seq exported.
    pub from_seq: u64,
    /// The entry hash before it (hex; 64 zeros from genesis).
    pub prev: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportKey {
    pub from_seq: u64,
    /// Ed25519 public key, hex: the origin's endpoint id.
    pub public_key: String,
}

/// One event.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportLine {
    pub seq: u64,
    /// The entry hash of the event before (hex).
    pub prev: String,
    /// This event's entry hash (hex).
    pub hash: String,
    /// The logged postcard bytes, hex: what the hash covers.
    pub envelope: String,
    /// The signature (hex) of the checkpoint at this seq, when one is here.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub checkpoint: Option<String>,
    /// The event as JSON, for reading (what `GET /events` serves).
    pub event: EventRecord,
}

impl ExportHeader {
    pub fn new(origin: &str, keys: &[(u64, [u8; 32])], from_seq: u64, prev: &[u8; 32]) -> Self {
        Self {
            journal: EXPORT_FORMAT.to_string(),
            origin: origin.to_string(),
            keys: keys
                .iter()
                .map(|(seq, key)| ExportKey {
                    from_seq: *seq,
                    public_key: hex(key),
                })
                .collect(),
            from_seq,
            prev: hex(prev),
        }
    }
}

impl ExportLine {
    /// The line of the event logged as `envelope` at `seq`, whose entry hash is `hash` after
    /// `prev`; `checkpoint` is the signature at this seq, if one is.
    pub fn new(
        seq: u64,
        prev: &[u8; 32],
        hash: &[u8; 32],
        envelope: &[u8],
        checkpoint: Option<&[u8]>,
    ) -> Result<Self, crate::EventError> {
        let event = crate::Envelope::decode(envelope)?.to_record()?;
        Ok(Self {
            seq,
            prev: hex(prev),
            hash: hex(hash),
            envelope: hex(envelope),
            checkpoint: checkpoint.map(hex),
            event,
        })
    }
}

/// Lowercase hex, as keys, hashes, signatures and envelopes are written in exports.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The bytes of lowercase or uppercase hex; `None` if it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(super::hex(&bytes), "00017f80ff");
        assert_eq!(super::unhex("00017F80ff").unwrap(), bytes);
        assert_eq!(super::unhex("0"), None);
        assert_eq!(super::unhex("zz"), None);
    }
}
