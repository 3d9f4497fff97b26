//! A seeded simulation of the protocol core: several nodes (senders, one origin each) replicate to
//! one hub (receiver) over links that drop, duplicate and reorder frames, and that partition and
//! heal; nodes and the hub crash (losing everything not durable) and restart. After every step it
//! checks that the hub's durable log of each origin is an exact prefix of that origin's log — no
//! event lost from the middle, none twice, none out of order. After the faults stop, every log
//! must reach the hub in full.
//!
//! Frames go through `frame::encode` and `frame::Decoder`, so the wire format is exercised too.
//! A failure names its seed; `FUSION_SIM_SEED=<seed>` replays it.

use std::collections::BTreeMap;

use fusion_contracts::events::StockAdjusted;
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, NodeId, Sku, Timestamp};

use crate::frame::{self, Decoder, Frame};
use fusion_rules::journal::{self, Hash, JournalKey};

use crate::proto::{Batch, LogSource, Received, Receiver, Sender, VecLog};

/// SplitMix64: a small, deterministic generator, so a seed replays the same run anywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// How hostile the network is, in percent per delivered frame or per step.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    pub drop: u64,
    pub duplicate: u64,
    pub reorder: u64,
    pub partition: u64,
    pub crash: u64,
}

impl Faults {
    pub const HOSTILE: Faults = Faults {
        drop: 10,
        duplicate: 10,
        reorder: 20,
        partition: 2,
        crash: 1,
    };
    pub const NONE: Faults = Faults {
        drop: 0,
        duplicate: 0,
        reorder: 0,
        partition: 0,
        crash: 0,
    };
}

/// A node, its link to the hub, and the hub's receiver for that link.
struct Link {
    /// The node's journal (signed with its own key).
    log: VecLog,
    key: [u8; 32],
    sender: Sender,
    receiver: Receiver,
    connected: bool,
    to_hub: Vec<Vec<u8>>,
    to_node: Vec<Vec<u8>>,
    /// Handed to the hub's host, not yet durable.
    unpersisted: Vec<Batch>,
}

pub struct Simulation {
    rng: Rng,
    faults: Faults,
    now_ms: i64,
    links: Vec<Link>,
    /// The hub's durable log, per origin, and the entry hash of its last event.
    hub: BTreeMap<NodeId, Vec<Envelope>>,
    heads: BTreeMap<NodeId, Hash>,
    /// How much of each hub log `check` has already compared (stored events never change).
    verified: BTreeMap<NodeId, usize>,
    pub steps: u64,
}

fn event(origin: &NodeId, seq: u64, now_ms: i64) -> Vec<u8> {
    let payload = StockAdjusted {
        sku: Sku::new(format!("SKU-{}", seq % 7)).expect("valid sku"),
        previous_quantity: seq,
        quantity: seq + 1,
        delta: 1,
        reason: "sim".into(),
    };
    let envelope = Envelope::new(
        EventId::from_u128(u128::from(seq) << 16 | u128::from(origin.as_str().len() as u16)),
        origin.clone(),
        seq,
        Timestamp::from_unix_ms(now_ms),
        CorrelationId::new("sim").expect("valid"),
        None,
        Event::StockAdjusted(payload),
    )
    .expect("a valid event");
    envelope.encode()
}

fn deliver(rng: &mut Rng, queue: &mut Vec<Vec<u8>>, faults: Faults) -> Option<Vec<u8>> {
    if queue.is_empty() {
        return None;
    }
    let index = if rng.chance(faults.reorder) {
        rng.below(queue.len())
    } else {
        0
    };
    let bytes = if rng.chance(faults.duplicate) {
        queue[index].clone()
    } else {
        queue.remove(index)
    };
    if rng.chance(faults.drop) {
        None
    } else {
        Some(bytes)
    }
}

fn decode_one(bytes: &[u8]) -> Frame {
    let mut decoder = Decoder::default();
    decoder.push(bytes);
    decoder
        .next_frame()
        .expect("our own frames decode")
        .expect("a whole frame")
}

impl Simulation {
    pub fn new(seed: u64, nodes: usize, faults: Faults) -> Self {
        let links = (0..nodes)
            .map(|i| {
                let origin = NodeId::new(format!("node-{i}")).expect("valid");
                let mut receiver = Receiver::new(BTreeMap::new());
                let resume = frame::encode(&receiver.on_connect());
                let key = JournalKey::from_secret(&[i as u8 + 1; 32]);
                Link {
                    key: key.public(),
                    log: VecLog::new(origin, key),
                    sender: Sender::new(),
                    receiver,
                    connected: true,
                    to_hub: Vec::new(),
                    to_node: vec![resume],
                    unpersisted: Vec::new(),
                }
            })
            .collect();
        Self {
            rng: Rng::new(seed),
            faults,
            now_ms: 0,
            links,
            hub: BTreeMap::new(),
            heads: BTreeMap::new(),
            verified: BTreeMap::new(),
            steps: 0,
        }
    }

    fn hub_positions(&self) -> BTreeMap<NodeId, u64> {
        self.hub
            .iter()
            .map(|(origin, log)| (origin.clone(), log.len() as u64))
            .collect()
    }

    /// Drops the connection of link `i` (frames in flight are lost) and opens a new one.
    fn reconnect(&mut self, i: usize) {
        let link = &mut self.links[i];
        link.to_hub.clear();
        link.to_node.clear();
        link.sender.on_disconnect();
        link.to_node
            .push(frame::encode(&link.receiver.on_connect()));
        link.connected = true;
    }

    /// One random step, then the invariant check.
    pub fn step(&mut self, appending: bool) -> Result<(), String> {
        self.steps += 1;
        let i = self.rng.below(self.links.len());
        let now = Timestamp::from_unix_ms(self.now_ms);
        match self.rng.below(8) {
            0 if appending => {
                let link = &mut self.links[i];
                let seq = link.log.next_seq();
                link.log
                    .extend([event(link.log.origin(), seq, self.now_ms)]);
            }
            1 => {
                let link = &mut self.links[i];
                if link.connected {
                    for f in link.sender.poll_transmit(&link.log, now) {
                        link.to_hub.push(frame::encode(&f));
                    }
                }
            }
            2 => {
                let link = &mut self.links[i];
                if let Some(bytes) = deliver(&mut self.rng, &mut link.to_hub, self.faults) {
                    match link
                        .receiver
                        .on_frame(decode_one(&bytes))
                        .map_err(|e| format!("hub refused a frame: {e}"))?
                    {
                        Received::Nothing => {}
                        Received::Persist(batch) => link.unpersisted.push(batch),
                        Received::Reply(reply) => link.to_node.push(frame::encode(&reply)),
                    }
                }
            }
            3 => {
                // The hub's host stores what it was handed, then acknowledges.
                let link = &mut self.links[i];
                if !link.unpersisted.is_empty() {
                    let origin = link.log.origin().clone();
                    let stored = self.hub.entry(origin.clone()).or_default();
                    let head = self.heads.entry(origin.clone()).or_insert(journal::GENESIS);
                    // Stored by (origin, seq): a duplicate (handed again after a reconnect while
                    // the first copy was still being stored) is skipped; a gap is a bug. Each
                    // batch must chain from the held head to the origin's signature, whatever
                    // the network did to the frames.
                    for batch in link.unpersisted.drain(..) {
                        let new = batch
                            .verified((stored.len() as u64, *head), &link.key)
                            .map_err(|e| {
                                format!("hub handed a batch of {origin} it cannot verify: {e}")
                            })?;
                        for event in new {
                            stored.push(event.envelope.clone());
                            *head = event.hash;
                        }
                    }
                    let ack = link.receiver.persisted(origin, stored.len() as u64);
                    if link.connected {
                        link.to_node.push(frame::encode(&ack));
                    }
                }
            }
            4 => {
                let link = &mut self.links[i];
                if let Some(bytes) = deliver(&mut self.rng, &mut link.to_node, self.faults) {
                    link.sender
                        .on_frame(decode_one(&bytes), now)
                        .map_err(|e| format!("node refused a frame: {e}"))?;
                }
            }
            5 => self.now_ms += self.rng.below(400) as i64,
            6 if self.rng.chance(self.faults.partition * 10) => {
                let link = &mut self.links[i];
                if link.connected {
                    link.connected = false;
                    link.to_hub.clear();
                    link.to_node.clear();
                    link.sender.on_disconnect();
                } else {
                    self.reconnect(i);
                }
            }
            7 if self.rng.chance(self.faults.crash * 10) => {
                if self.rng.chance(50) {
                    // The hub restarts: what was not durable is gone; positions come from its store.
                    let positions = self.hub_positions();
                    let link = &mut self.links[i];
                    link.unpersisted.clear();
                    link.receiver = Receiver::new(
                        positions
                            .into_iter()
                            .filter(|(o, _)| o == link.log.origin())
                            .collect(),
                    );
                } else {
                    // The node restarts; its log is durable.
                    self.links[i].sender = Sender::new();
                }
                self.reconnect(i);
            }
            _ => {}
        }
        self.check()
    }

    /// The hub's log of every origin is an exact prefix of the origin's log.
    fn check(&mut self) -> Result<(), String> {
        for link in &self.links {
            let origin = link.log.origin();
            let written = link.log.next_seq() - 1;
            let stored = self.hub.get(origin).map_or(&[][..], Vec::as_slice);
            if stored.len() as u64 > written {
                return Err(format!(
                    "hub holds {} events of {origin}, which wrote {written}",
                    stored.len(),
                ));
            }
            let verified = self.verified.entry(origin.clone()).or_insert(0);
            let theirs = link
                .log
                .read(origin, *verified as u64 + 1, stored.len() - *verified);
            for (k, (envelope, bytes)) in stored[*verified..].iter().zip(theirs).enumerate() {
                if envelope.encode() != bytes {
                    return Err(format!(
                        "hub's event {} of {origin} differs from the origin's",
                        *verified + k + 1,
                    ));
                }
            }
            *verified = stored.len();
        }
        Ok(())
    }

    /// Heals every link and runs without faults until every log reached the hub.
    pub fn settle(&mut self, steps_max: u64) -> Result<(), String> {
        self.faults = Faults::NONE;
        for i in 0..self.links.len() {
            if !self.links[i].connected {
                self.reconnect(i);
            }
        }
        for _ in 0..steps_max {
            if self.converged() {
                return Ok(());
            }
            self.step(false)?;
        }
        let links: Vec<String> = self
            .links
            .iter()
            .map(|l| {
                format!(
                    "{} wrote {}, connected {}, in flight {}/{}, unpersisted {}, sender {:?}, receiver {:?}",
                    l.log.origin(),
                    l.log.next_seq() - 1,
                    l.connected,
                    l.to_hub.len(),
                    l.to_node.len(),
                    l.unpersisted.len(),
                    l.sender,
                    l.receiver
                )
            })
            .collect();
        Err(format!(
            "not converged after {steps_max} quiet steps: hub {:?}\n{}",
            self.hub_positions(),
            links.join("\n")
        ))
    }

    pub fn converged(&self) -> bool {
        self.links.iter().all(|l| {
            self.hub.get(l.log.origin()).map_or(0, Vec::len) as u64 == l.log.next_seq() - 1
        })
    }

    pub fn events_written(&self) -> usize {
        self.links
            .iter()
            .map(|l| (l.log.next_seq() - 1) as usize)
            .sum()
    }
}

/// Runs one seeded scenario: `steps` hostile steps, then settling.
pub fn run(seed: u64, nodes: usize, steps: u64) -> Result<usize, String> {
    let mut sim = Simulation::new(seed, nodes, Faults::HOSTILE);
    for _ in 0..steps {
        sim.step(true)
            .map_err(|e| format!("seed {seed}, step {}: {e}", sim.steps))?;
    }
    sim.settle(200_000)
        .map_err(|e| format!("seed {seed}: {e}"))?;
    Ok(sim.events_written())
}
