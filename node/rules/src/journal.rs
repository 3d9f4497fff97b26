//! Journals: each origin's events as a hash chain, its head signed by the origin's key.
//!
//! The entry hash of event `n` covers the hash of event `n - 1`, so a signature over one hash
//! (a [`Checkpoint`]) vouches for every event up to it: an origin signs once per commit, not
//! once per event. The bytes hashed and signed are the canonical forms below, which
//! `docs/JOURNAL.md` documents for third-party verifiers; change them only with a new domain
//! tag.
//!
//! ```text
//! entry hash  H(n) = SHA-256( "fusion-journal-entry/1" ‖ H(n-1) ‖ u64be n ‖ u16be len ‖ origin ‖ envelope )
//!             H(0) = 32 zero bytes
//! checkpoint  Ed25519-sign( "fusion-journal-checkpoint/1" ‖ u16be len ‖ origin ‖ u64be n ‖ H(n) )
//! ```
//!
//! `envelope` is the event's postcard bytes exactly as logged and sent; `origin` its utf-8
//! name. Verification ([`Verifier`]) walks a journal from genesis, or from a hash it trusts,
//! and names the first bad record.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use fusion_contracts::{Envelope, NodeId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::authority;

/// A SHA-256 entry hash.
pub type Hash = [u8; 32];

/// The hash "before" seq 1.
pub const GENESIS: Hash = [0; 32];

const ENTRY_TAG: &[u8] = b"fusion-journal-entry/1";
const CHECKPOINT_TAG: &[u8] = b"fusion-journal-checkpoint/1";

/// The entry hash of `envelope` (its logged bytes) at `seq` of `origin`, after `prev`.
pub fn entry_hash(prev: &Hash, origin: &NodeId, seq: u64, envelope: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(ENTRY_TAG);
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(name_length(origin));
    h.update(origin.as_str());
    h.update(envelope);
    h.finalize().into()
}

/// An origin's name is preceded by its length in bytes, u16 big-endian.
fn name_length(origin: &NodeId) -> [u8; 2] {
    // Node ids are at most a few dozen bytes (`NodeId` bounds them), far below u16::MAX.
    u16::try_from(origin.as_str().len())
        .unwrap_or(u16::MAX)
        .to_be_bytes()
}

/// The bytes an origin signs to vouch for its journal up to `seq`.
pub fn checkpoint_message(origin: &NodeId, seq: u64, hash: &Hash) -> Vec<u8> {
    let name = origin.as_str().as_bytes();
    let mut m = Vec::with_capacity(CHECKPOINT_TAG.len() + 2 + name.len() + 8 + 32);
    m.extend_from_slice(CHECKPOINT_TAG);
    m.extend_from_slice(&name_length(origin));
    m.extend_from_slice(name);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// An origin's signature over its journal's hash at `seq`: it covers every event up to `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: Hash,
    #[serde(with = "signature_bytes")]
    pub signature: [u8; 64],
}

/// serde has no impls for arrays longer than 32; postcard writes these 64 bytes raw.
mod signature_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        let (a, b) = bytes.split_at(32);
        (
            <[u8; 32]>::try_from(a).unwrap(),
            <[u8; 32]>::try_from(b).unwrap(),
        )
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let (a, b) = <([u8; 32], [u8; 32])>::deserialize(d)?;
        let mut out = [0; 64];
        out[..32].copy_from_slice(&a);
        out[32..].copy_from_slice(&b);
        Ok(out)
    }
}

/// The key an origin signs its checkpoints with: its node's ed25519 identity (the secret
/// behind its iroh endpoint id, so the public key *is* the endpoint id).
#[derive(Clone)]
pub struct JournalKey(SigningKey);

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JournalKey({})", hex(&self.public()))
    }
}

impl JournalKey {
    /// From the 32 secret bytes of an ed25519 key (the identity file's content).
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(secret))
    }

    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    pub fn sign(&self, origin: &NodeId, seq: u64, hash: Hash) -> Checkpoint {
        let signature = self
            .0
            .sign(&checkpoint_message(origin, seq, &hash))
            .to_bytes();
        Checkpoint {
            seq,
            hash,
            signature,
        }
    }
}

/// The key in force at `seq` of a journal signed by `keys` (first seq signed, public key; in
/// order): the last whose range starts at or before it.
pub fn key_at(keys: &[(u64, [u8; 32])], seq: u64) -> Option<&[u8; 32]> {
    keys.iter()
        .rev()
        .find(|(from, _)| *from <= seq)
        .map(|(_, k)| k)
}

/// Lowercase hex, as public keys and hashes are written in exports and messages.
pub use fusion_contracts::journal::hex;

/// Whether `checkpoint` is `public`'s signature over `origin`'s journal at its seq and hash.
pub fn checkpoint_is_signed_by(public: &[u8; 32], origin: &NodeId, cp: &Checkpoint) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    key.verify_strict(
        &checkpoint_message(origin, cp.seq, &cp.hash),
        &Signature::from_bytes(&cp.signature),
    )
    .is_ok()
}

/// What is wrong with a journal, at its first bad record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("seq {found} follows seq {expected_after}: the journal has a gap or is out of order")]
    Gap { expected_after: u64, found: u64 },
    #[error("event {seq} is undecodable or invalid: {reason}")]
    Undecodable { seq: u64, reason: String },
    #[error(
        "event {seq} names origin {found} or seq {found_seq}, not its place in {origin}'s journal"
    )]
    Misplaced {
        seq: u64,
        origin: NodeId,
        found: NodeId,
        found_seq: u64,
    },
    #[error("event {seq} was changed: its bytes no longer hash to the hash stored with it")]
    Changed { seq: u64 },
    #[error(
        "the checkpoint at seq {seq} does not verify: an event after seq {verified} and up to {seq} was changed, or the signature is not the origin's"
    )]
    BadCheckpoint { seq: u64, verified: u64 },
    #[error("event {seq}: {reason}")]
    Unauthorized {
        seq: u64,
        reason: authority::Unauthorized,
    },
}

impl Fault {
    /// The first seq the fault concerns (for a bad checkpoint: the first seq it does not vouch
    /// for).
    pub fn seq(&self) -> u64 {
        match self {
            Self::Gap { expected_after, .. } => expected_after + 1,
            Self::BadCheckpoint { verified, .. } => verified + 1,
            Self::Undecodable { seq, .. }
            | Self::Misplaced { seq, .. }
            | Self::Changed { seq }
            | Self::Unauthorized { seq, .. } => *seq,
        }
    }

    /// The metric label (`…_refused_total{rule}`) when a peer's journal fails.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Gap { .. } => "journal_gap",
            Self::Undecodable { .. } => "journal_undecodable",
            Self::Misplaced { .. } => "journal_misplaced",
            Self::Changed { .. } => "journal_changed",
            Self::BadCheckpoint { .. } => "journal_signature",
            Self::Unauthorized { reason, .. } => reason.rule(),
        }
    }
}

/// A receiver's check of a batch of `origin`'s events before it stores any: `events` (their
/// logged bytes, seqs `first_seq ..`) chain from the `head` it holds, and `cp`, at the last of
/// them, is signed by `public` — the key the origin is bound to. Events at or before the head
/// (a batch resent after a reconnect) are skipped; places, decoding and authority are the
/// receiver's other checks. Returns the entry hashes of the events after the head, the last
/// ones of `events` (none if all are held already).
pub fn check_batch<B: AsRef<[u8]>>(
    origin: &NodeId,
    (seq, head): (u64, Hash),
    first_seq: u64,
    events: &[B],
    cp: &Checkpoint,
    public: &[u8; 32],
) -> Result<Vec<Hash>, Fault> {
    if first_seq > seq + 1 {
        return Err(Fault::Gap {
            expected_after: seq,
            found: first_seq,
        });
    }
    let skip = usize::try_from(seq + 1 - first_seq).unwrap_or(usize::MAX);
    let Some(new) = events.get(skip..).filter(|n| !n.is_empty()) else {
        return Ok(Vec::new());
    };
    let bad = Fault::BadCheckpoint {
        seq: cp.seq,
        verified: seq,
    };
    if cp.seq != seq + new.len() as u64 {
        return Err(bad);
    }
    let mut prev = head;
    let hashes: Vec<Hash> = new
        .iter()
        .zip(seq + 1..)
        .map(|(bytes, at)| {
            prev = entry_hash(&prev, origin, at, bytes.as_ref());
            prev
        })
        .collect();
    if prev != cp.hash || !checkpoint_is_signed_by(public, origin, cp) {
        return Err(bad);
    }
    Ok(hashes)
}

/// Walks one origin's journal in seq order: each event's place, bytes, hash and authority, and
/// each checkpoint against the public key the origin signed it with.
#[derive(Clone, Debug)]
pub struct Verifier {
    origin: NodeId,
    kind: authority::OriginKind,
    /// The last seq walked and its hash.
    seq: u64,
    head: Hash,
    /// The last seq a checkpoint vouched for.
    signed: u64,
}

impl Verifier {
    /// From genesis.
    pub fn new(origin: NodeId) -> Self {
        Self::resume(origin, 0, GENESIS)
    }

    /// After `seq` whose hash `head` the caller verified before (a checkpoint it trusts).
    pub fn resume(origin: NodeId, seq: u64, head: Hash) -> Self {
        Self {
            kind: authority::kind_of(&origin),
            origin,
            seq,
            head,
            signed: seq,
        }
    }

    /// The last seq walked and its hash.
    pub fn head(&self) -> (u64, Hash) {
        (self.seq, self.head)
    }

    /// The last seq a checkpoint vouched for.
    pub fn signed(&self) -> u64 {
        self.signed
    }

    /// The next event: `envelope` as logged at `seq`, with the hash stored beside it where the
    /// journal keeps one. Returns the entry hash. On a fault nothing moves.
    pub fn event(
        &mut self,
        seq: u64,
        envelope: &[u8],
        stored: Option<&Hash>,
    ) -> Result<Hash, Fault> {
        if seq != self.seq + 1 {
            return Err(Fault::Gap {
                expected_after: self.seq,
                found: seq,
            });
        }
        let hash = entry_hash(&self.head, &self.origin, seq, envelope);
        if stored.is_some_and(|s| *s != hash) {
            return Err(Fault::Changed { seq });
        }
        let decoded = Envelope::decode(envelope).map_err(|e| Fault::Undecodable {
            seq,
            reason: e.to_string(),
        })?;
        if decoded.origin != self.origin || decoded.seq != seq {
            return Err(Fault::Misplaced {
                seq,
                origin: self.origin.clone(),
                found: decoded.origin,
                found_seq: decoded.seq,
            });
        }
        authority::may_write(self.kind, &decoded.event)
            .map_err(|reason| Fault::Unauthorized { seq, reason })?;
        self.seq = seq;
        self.head = hash;
        Ok(hash)
    }

    /// A checkpoint at the seq just walked (checkpoints come in the journal's order, each
    /// right after the event it covers), signed by `public`.
    pub fn checkpoint(&mut self, cp: &Checkpoint, public: &[u8; 32]) -> Result<(), Fault> {
        let bad = Fault::BadCheckpoint {
            seq: cp.seq,
            verified: self.signed,
        };
        if cp.seq != self.seq || cp.hash != self.head {
            return Err(bad);
        }
        if !checkpoint_is_signed_by(public, &self.origin, cp) {
            return Err(bad);
        }
        self.signed = cp.seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use fusion_contracts::events::{Event, StockAdjusted};
    use fusion_contracts::{CorrelationId, EventId, Sku, Timestamp};

    use super::*;

    fn origin() -> NodeId {
        NodeId::new("till-a").unwrap()
    }

    fn key() -> JournalKey {
        JournalKey::from_secret(&[7; 32])
    }

    fn event(origin: &NodeId, seq: u64, event: Event) -> Vec<u8> {
        Envelope::new(
            EventId(uuid::Uuid::from_u128(u128::from(seq))),
            origin.clone(),
            seq,
            Timestamp::from_unix_ms(1_700_000_000_000),
            CorrelationId::new("c").unwrap(),
            None,
            event,
        )
        .unwrap()
        .encode()
    }

    fn adjusted(seq: u64) -> Vec<u8> {
        event(
            &origin(),
            seq,
            StockAdjusted {
                sku: Sku::new("A").unwrap(),
                previous_quantity: seq - 1,
                quantity: seq,
                delta: 1,
                reason: "count".into(),
            }
            .into(),
        )
    }

    /// A journal of `n` events and the hash of each.
    fn journal(n: u64) -> Vec<(Vec<u8>, Hash)> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let bytes = adjusted(seq);
                prev = entry_hash(&prev, &origin(), seq, &bytes);
                (bytes, prev)
            })
            .collect()
    }

    #[test]
    fn the_canonical_forms_are_pinned() {
        // The bytes docs/JOURNAL.md describes; tools/verify_journal.py computes the same.
        let origin = origin();
        let hash = entry_hash(&GENESIS, &origin, 1, b"abc");
        let mut expected = Sha256::new();
        expected.update(b"fusion-journal-entry/1");
        expected.update([0u8; 32]);
        expected.update([0, 0, 0, 0, 0, 0, 0, 1]);
        expected.update([0, 6]);
        expected.update(b"till-a");
        expected.update(b"abc");
        assert_eq!(hash, <Hash>::from(expected.finalize()));
        let message = checkpoint_message(&origin, 2, &[9; 32]);
        assert_eq!(&message[..27], b"fusion-journal-checkpoint/1");
        assert_eq!(&message[27..29], &[0, 6]);
        assert_eq!(&message[29..35], b"till-a");
        assert_eq!(&message[35..43], &2u64.to_be_bytes());
        assert_eq!(&message[43..], &[9; 32]);
        // RFC 8032 section 7.1, test 1: the public key of this secret.
        let rfc = JournalKey::from_secret(&[
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ]);
        assert_eq!(
            hex(&rfc.public()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_nothing_else_does() {
        let cp = key().sign(&origin(), 3, [1; 32]);
        assert!(checkpoint_is_signed_by(&key().public(), &origin(), &cp));
        let other = JournalKey::from_secret(&[8; 32]);
        assert!(!checkpoint_is_signed_by(&other.public(), &origin(), &cp));
        let elsewhere = NodeId::new("till-b").unwrap();
        assert!(!checkpoint_is_signed_by(&key().public(), &elsewhere, &cp));
        for tampered in [
            Checkpoint {
                seq: 4,
                ..cp.clone()
            },
            Checkpoint {
                hash: [2; 32],
                ..cp.clone()
            },
            Checkpoint {
                signature: [0; 64],
                ..cp.clone()
            },
        ] {
            assert!(!checkpoint_is_signed_by(
                &key().public(),
                &origin(),
                &tampered
            ));
        }
        assert!(!checkpoint_is_signed_by(&[0; 32], &origin(), &cp));
    }

    #[test]
    fn the_checkpoint_round_trips_through_postcard() {
        let cp = key().sign(&origin(), 3, [1; 32]);
        let bytes = postcard::to_allocvec(&cp).unwrap();
        assert_eq!(postcard::from_bytes::<Checkpoint>(&bytes).unwrap(), cp);
    }

    /// Runs a journal through a verifier with a checkpoint after the events in `signed_at`.
    fn walk(
        events: &[(Vec<u8>, Hash)],
        stored: bool,
        checkpoints: &[Checkpoint],
    ) -> Result<Verifier, Fault> {
        let mut v = Verifier::new(origin());
        for (i, (bytes, hash)) in events.iter().enumerate() {
            let seq = i as u64 + 1;
            v.event(seq, bytes, stored.then_some(hash))?;
            for cp in checkpoints.iter().filter(|c| c.seq == seq) {
                v.checkpoint(cp, &key().public())?;
            }
        }
        Ok(v)
    }

    #[test]
    fn verification_names_the_first_bad_record() {
        let good = journal(5);
        let sign =
            |j: &[(Vec<u8>, Hash)], seq: u64| key().sign(&origin(), seq, j[seq as usize - 1].1);
        let cps = vec![sign(&good, 2), sign(&good, 5)];
        let v = walk(&good, true, &cps).unwrap();
        assert_eq!((v.head().0, v.signed()), (5, 5));

        // A byte changed in event 4 whose hash is stored beside it: named exactly.
        let mut changed = good.clone();
        let last = changed[3].0.len() - 1;
        changed[3].0[last] ^= 1;
        assert_eq!(
            walk(&changed, true, &cps).unwrap_err(),
            Fault::Changed { seq: 4 }
        );
        // Without stored hashes (or with them rewritten), the checkpoint after it fails and
        // names the first seq it no longer vouches for.
        let fault = walk(&changed, false, &cps).unwrap_err();
        assert_eq!(fault.seq(), 3);
        assert!(matches!(
            fault,
            Fault::BadCheckpoint {
                seq: 5,
                verified: 2
            }
        ));

        // A checkpoint signed by another key.
        let forged = JournalKey::from_secret(&[9; 32]).sign(&origin(), 5, good[4].1);
        let fault = walk(&good, true, &[cps[0].clone(), forged]).unwrap_err();
        assert_eq!(
            fault,
            Fault::BadCheckpoint {
                seq: 5,
                verified: 2
            }
        );

        // An event of another origin, or at another seq, spliced in.
        let mut v = Verifier::new(origin());
        v.event(1, &good[0].0, None).unwrap();
        let fault = v.event(2, &good[2].0, None).unwrap_err();
        assert!(
            matches!(
                fault,
                Fault::Misplaced {
                    seq: 2,
                    found_seq: 3,
                    ..
                }
            ),
            "{fault}"
        );
        assert_eq!(v.event(3, &good[2].0, None).unwrap_err().seq(), 2, "a gap");
        let stranger = NodeId::new("till-b").unwrap();
        let theirs = event(
            &stranger,
            2,
            StockAdjusted {
                sku: Sku::new("A").unwrap(),
                previous_quantity: 1,
                quantity: 2,
                delta: 1,
                reason: "count".into(),
            }
            .into(),
        );
        assert!(matches!(
            v.event(2, &theirs, None),
            Err(Fault::Misplaced { .. })
        ));
        assert!(matches!(
            v.event(2, b"not postcard", None),
            Err(Fault::Undecodable { seq: 2, .. })
        ));
        // Nothing moved on the faults.
        assert_eq!(v.head(), (1, good[0].1));
    }

    #[test]
    fn resuming_from_a_verified_head_checks_only_the_tail() {
        let good = journal(4);
        let mut v = Verifier::resume(origin(), 2, good[1].1);
        v.event(3, &good[2].0, None).unwrap();
        v.event(4, &good[3].0, None).unwrap();
        v.checkpoint(&key().sign(&origin(), 4, good[3].1), &key().public())
            .unwrap();
        assert_eq!(v.signed(), 4);
        // From a wrong head, the tail's checkpoint fails.
        let mut v = Verifier::resume(origin(), 2, [3; 32]);
        v.event(3, &good[2].0, None).unwrap();
        v.event(4, &good[3].0, None).unwrap();
        assert!(
            v.checkpoint(&key().sign(&origin(), 4, good[3].1), &key().public())
                .is_err()
        );
    }

    #[test]
    fn a_batch_is_taken_only_if_it_chains_from_the_held_head_to_a_signed_checkpoint() {
        let good = journal(5);
        let bytes: Vec<&[u8]> = good.iter().map(|(b, _)| b.as_slice()).collect();
        let head = (2, good[1].1);
        let cp = key().sign(&origin(), 5, good[4].1);
        let public = key().public();
        let hashes = check_batch(&origin(), head, 3, &bytes[2..], &cp, &public).unwrap();
        assert_eq!(hashes, vec![good[2].1, good[3].1, good[4].1]);
        // Resent from seq 1: what is held is skipped.
        let hashes = check_batch(&origin(), head, 1, &bytes, &cp, &public).unwrap();
        assert_eq!(hashes, vec![good[2].1, good[3].1, good[4].1]);
        assert!(
            check_batch(&origin(), (5, good[4].1), 1, &bytes, &cp, &public)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            check_batch(&origin(), head, 4, &bytes[3..], &cp, &public),
            Err(Fault::Gap {
                expected_after: 2,
                found: 4
            })
        );
        let other = JournalKey::from_secret(&[9; 32]);
        // (head, events, checkpoint, key): each refused.
        let mut changed = good[3].0.clone();
        changed[0] ^= 1;
        type Case<'a> = (&'a str, (u64, Hash), Vec<&'a [u8]>, Checkpoint, [u8; 32]);
        let cases: Vec<Case> = vec![
            (
                "another key",
                head,
                bytes[2..].to_vec(),
                cp.clone(),
                other.public(),
            ),
            (
                "signed by another key",
                head,
                bytes[2..].to_vec(),
                other.sign(&origin(), 5, good[4].1),
                public,
            ),
            (
                "another head",
                (2, [1; 32]),
                bytes[2..].to_vec(),
                cp.clone(),
                public,
            ),
            (
                "a missing event",
                head,
                vec![bytes[2], bytes[4]],
                cp.clone(),
                public,
            ),
            (
                "a changed event",
                head,
                vec![bytes[2], &changed, bytes[4]],
                cp.clone(),
                public,
            ),
            (
                "a checkpoint short of the batch",
                head,
                bytes[2..].to_vec(),
                key().sign(&origin(), 4, good[3].1),
                public,
            ),
        ];
        for (case, head, events, cp, public) in cases {
            let fault = check_batch(&origin(), head, 3, &events, &cp, &public).unwrap_err();
            assert!(
                matches!(fault, Fault::BadCheckpoint { .. }),
                "{case}: {fault}"
            );
            assert_eq!(fault.rule(), "journal_signature", "{case}");
        }
    }

    #[test]
    fn a_till_journal_holding_a_hub_only_event_fails_authority() {
        use fusion_contracts::events::StockReclaimed;
        let reclaim = event(
            &origin(),
            1,
            StockReclaimed {
                sku: Sku::new("A").unwrap(),
                from: NodeId::new("till-b").unwrap(),
                upto: 3,
                quantity: 2,
                transfers: Vec::new(),
                previous_quantity: 0,
                available: 2,
            }
            .into(),
        );
        let mut v = Verifier::new(origin());
        let fault = v.event(1, &reclaim, None).unwrap_err();
        assert!(
            matches!(fault, Fault::Unauthorized { seq: 1, .. }),
            "{fault}"
        );
    }
}
