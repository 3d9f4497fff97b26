//! Escrow of bounded quantities among the tills of a store and the hub (the demarcation
//! protocol; O'Neil's escrow method; Balegas et al.'s bounded counters): the stock of a sku at
//! a location, the seats of a campaign, a store's budget of card payments approved offline.
//!
//! Each holder (a till's origin, or the hub's) owns *rights* to part of the quantity and spends
//! only its own, so it can decide alone — offline — without ever letting the holders together
//! spend more than exists. Rights change only through [`Movement`]s that one holder (the
//! author) writes into its own event log:
//!
//! - the author's rights go **down** only by movements it authors itself (consume, retire,
//!   transfer) and only after checking, against everything it has seen, that it holds them;
//! - they go **up** by movements it authors (create, restore within what it consumed, receive
//!   a transfer it has seen) and by a reclaim (the hub takes over a lost holder's rights).
//!
//! A holder's own view therefore never overstates what it may spend, and the sum over holders
//! of what they spent never exceeds what was created minus what was retired — whatever the
//! partitions, whatever order replicas learn of movements in. A transfer debits the sender
//! when written and credits the receiver when the receiver writes its `Receive`: in between it
//! is *in transit*, and counted as such.
//!
//! A [`Ledger`] folds the movements of every author it has seen; every replica that has seen
//! the same movements computes the same state (each author's movements apply in its seq
//! order; authors are independent, except that a reclaim cuts off its target, see
//! [`Movement::Reclaim`]). No I/O here: callers log movements durably and feed them in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use fusion_contracts::{CampaignId, Currency, NodeId, Sku, StoreId};

/// The hub's own origin (its documents, its edits, its campaign decisions), from the hex of its
/// sync endpoint id.
pub fn hub_origin(endpoint_hex: &str) -> NodeId {
    let prefix: String = endpoint_hex.chars().take(32).collect();
    NodeId::new(format!("hub-{prefix}")).expect("hex is a valid node id")
}

/// The hub's holder of a store's rights (the online channel of that store): a log of its own,
/// so every projection keyed by origin treats it as one more holder of the store. A till
/// computes it from the hub's id and its own store, so it can give rights to the hub offline.
pub fn hub_holder(hub: &NodeId, store: &StoreId) -> NodeId {
    let hash = crate::fnv1a64(store.as_str().as_bytes());
    NodeId::new(format!("{hub}-{hash:016x}")).expect("hex is a valid node id")
}

/// What is escrowed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Resource {
    /// Units of a sku at a store (a location).
    Stock { store: StoreId, sku: Sku },
    /// Seats of a campaign (its maxParticipants).
    Seats { campaign: CampaignId },
    /// A store's budget of card payments approved offline and not yet confirmed by the
    /// provider, in minor units of `currency`.
    CardBudget { store: StoreId, currency: Currency },
}

/// Where a transfer was written: its author and the author's seq.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MovementId {
    pub author: NodeId,
    pub seq: u64,
}

/// One change of rights, written by its author into its own log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Movement {
    /// New rights at the author: stock received (a restock, a count above the rights), seats
    /// or budget set up.
    Create { amount: u64 },
    /// The author spends rights: a sale, a join, an offline card approval.
    Consume { amount: u64 },
    /// The author gets back rights it spent: a cancelled order, a leave, an offline payment
    /// the provider settled. At most what the author consumed.
    Restore { amount: u64 },
    /// The author destroys rights it holds: shrinkage found by a count, a seat cap lowered.
    Retire { amount: u64 },
    /// The author gives rights to `to`; in transit until `to` writes the matching `Receive`.
    Transfer { to: NodeId, amount: u64 },
    /// The author takes the transfer `transfer` (addressed to it) into its rights.
    Receive { transfer: MovementId },
    /// A manager at the hub takes over the rights of `from`, a holder lost for good: its
    /// movements up to `upto` (its seq) count, later ones never do; `amount` is its rights
    /// then plus the transfers to it not yet received — what the author gains.
    Reclaim {
        from: NodeId,
        upto: u64,
        amount: u64,
    },
}

/// A movement as logged: author, seq in the author's log, resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub author: NodeId,
    pub seq: u64,
    pub resource: Resource,
    pub movement: Movement,
}

impl Entry {
    pub fn id(&self) -> MovementId {
        MovementId {
            author: self.author.clone(),
            seq: self.seq,
        }
    }
}

/// Why a holder may not write a movement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EscrowError {
    /// Not enough rights here: what the holder has (its local headroom).
    #[error("{needed} needed, {available} held here")]
    Insufficient { needed: u64, available: u64 },
    #[error("amount must be positive")]
    Zero,
    #[error("at most {consumed} can be restored (what this holder consumed and did not restore)")]
    RestoreTooLarge { consumed: u64 },
    #[error("no transfer to this holder at {0:?} waits to be received")]
    NotInTransit(MovementId),
    #[error("a holder cannot transfer to itself")]
    SelfTransfer,
    #[error("{0} was reclaimed: it holds nothing and writes nothing that counts")]
    Reclaimed(NodeId),
}

/// One holder's account of one resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub created: u64,
    pub consumed: u64,
    pub restored: u64,
    pub retired: u64,
    pub sent: u64,
    /// Transfers to this holder that it received.
    pub received: u64,
    /// Gained by reclaiming lost holders.
    pub reclaimed_in: u64,
}

impl Account {
    /// Rights up minus rights down. Never negative when every movement was checked where it
    /// was written ([`Ledger::check`]); signed so that a check can prove it.
    pub fn balance(&self) -> i128 {
        let up = self.created + self.restored + self.received + self.reclaimed_in;
        let down = self.consumed + self.retired + self.sent;
        i128::from(up) - i128::from(down)
    }

    /// Consumed and not restored.
    pub fn used(&self) -> u64 {
        self.consumed.saturating_sub(self.restored)
    }
}

/// A resource across its holders, as this ledger knows it. A function of the set of
/// movements seen, whatever order they came in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceState {
    pub accounts: BTreeMap<NodeId, Account>,
    /// Every transfer seen: id → (to, amount).
    pub transfers: BTreeMap<MovementId, (NodeId, u64)>,
    /// Every receipt seen (possibly before its transfer): transfer → who wrote the receipt.
    pub receipts: BTreeMap<MovementId, NodeId>,
    /// Holders whose rights a reclaim took over: they hold nothing.
    pub reclaimed: BTreeSet<NodeId>,
}

impl ResourceState {
    /// Rights `holder` holds now (0 once reclaimed).
    pub fn rights(&self, holder: &NodeId) -> u64 {
        if self.reclaimed.contains(holder) {
            return 0;
        }
        self.accounts
            .get(holder)
            .map_or(0, |a| u64::try_from(a.balance().max(0)).unwrap_or(u64::MAX))
    }

    /// Transfers written and not yet received (none to a reclaimed holder: the reclaim took
    /// those over): id → (to, amount).
    pub fn in_transit(&self) -> impl Iterator<Item = (&MovementId, &(NodeId, u64))> {
        self.transfers.iter().filter(|(id, (to, _))| {
            self.receipts.get(*id) != Some(to) && !self.reclaimed.contains(to)
        })
    }

    pub fn in_transit_total(&self) -> u64 {
        self.in_transit().map(|(_, (_, a))| a).sum()
    }

    /// Rights held by anyone plus those in transit.
    pub fn total_rights(&self) -> u64 {
        let held: u64 = self.accounts.keys().map(|h| self.rights(h)).sum();
        held + self.in_transit_total()
    }

    /// Consumed and not restored, by everyone.
    pub fn used(&self) -> u64 {
        self.accounts.values().map(Account::used).sum()
    }

    /// Created minus retired: what exists (stock on hand plus sold, seats, budget).
    pub fn capacity(&self) -> u64 {
        let created: u64 = self.accounts.values().map(|a| a.created).sum();
        let retired: u64 = self.accounts.values().map(|a| a.retired).sum();
        created.saturating_sub(retired)
    }
}

/// Every movement this replica has seen, folded per resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Each author's movements by seq (the log positions that carry movements; gaps are other
    /// events of the author's log).
    entries: BTreeMap<NodeId, BTreeMap<u64, Entry>>,
    /// Reclaimed holder → the last of its seqs that counts (for every resource: a lost till is
    /// reclaimed resource by resource, with one cut).
    cutoffs: BTreeMap<NodeId, u64>,
    state: BTreeMap<Resource, ResourceState>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in a movement (duplicates are ignored), in any order: the state is a function of
    /// the set of movements seen.
    pub fn apply(&mut self, entry: Entry) {
        let log = self.entries.entry(entry.author.clone()).or_default();
        if log.contains_key(&entry.seq) {
            return;
        }
        log.insert(entry.seq, entry.clone());
        if let Movement::Reclaim { from, upto, .. } = &entry.movement {
            let cut = self.cutoffs.get(from).map_or(*upto, |c| (*c).min(*upto));
            let already_past = self
                .entries
                .get(from)
                .is_some_and(|log| log.range(cut + 1..).next().is_some());
            self.cutoffs.insert(from.clone(), cut);
            if already_past {
                // Movements of `from` past the cut were counted: take them out.
                self.refold();
                return;
            }
        }
        fold(&mut self.state, &self.cutoffs, &entry);
    }

    fn refold(&mut self) {
        self.state.clear();
        for entry in self.entries.values().flat_map(|log| log.values()) {
            fold(&mut self.state, &self.cutoffs, entry);
        }
    }

    pub fn resource(&self, resource: &Resource) -> Option<&ResourceState> {
        self.state.get(resource)
    }

    pub fn resources(&self) -> impl Iterator<Item = (&Resource, &ResourceState)> {
        self.state.iter()
    }

    /// Rights `holder` holds of `resource`, in this view.
    pub fn rights(&self, resource: &Resource, holder: &NodeId) -> u64 {
        self.state.get(resource).map_or(0, |s| s.rights(holder))
    }

    /// The last seq of `author` this ledger holds a movement of.
    pub fn last_seq(&self, author: &NodeId) -> Option<u64> {
        self.entries
            .get(author)
            .and_then(|log| log.keys().next_back().copied())
    }

    /// Every resource's state (what replicas compare to agree).
    pub fn states(&self) -> &BTreeMap<Resource, ResourceState> {
        &self.state
    }

    /// Every author this ledger holds movements of.
    pub fn authors(&self) -> impl Iterator<Item = &NodeId> {
        self.entries.keys()
    }

    /// `author`'s movements after its seq `after`, in order (what a peer lacks).
    pub fn entries_after(&self, author: &NodeId, after: u64) -> impl Iterator<Item = &Entry> {
        self.entries
            .get(author)
            .into_iter()
            .flat_map(move |log| log.range(after + 1..).map(|(_, e)| e))
    }

    /// Every movement held, by author then seq (for replaying into another ledger).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values().flat_map(|log| log.values())
    }

    /// Movements `holder` wrote after it was reclaimed: they never count (sales a lost till
    /// made that need a person's review).
    pub fn ignored(&self, holder: &NodeId) -> Vec<&Entry> {
        match (self.cutoffs.get(holder), self.entries.get(holder)) {
            (Some(cut), Some(log)) => log.range(cut + 1..).map(|(_, e)| e).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether `holder` was reclaimed.
    pub fn is_reclaimed(&self, holder: &NodeId) -> bool {
        self.cutoffs.contains_key(holder)
    }

    /// Checks that `holder` may write `movement` of `resource` now; the caller then logs it
    /// durably (with the seq its log gives) and applies it. `Ok` carries the entry to log.
    pub fn check(
        &self,
        holder: &NodeId,
        resource: &Resource,
        movement: &Movement,
    ) -> Result<(), EscrowError> {
        if self.cutoffs.contains_key(holder) {
            return Err(EscrowError::Reclaimed(holder.clone()));
        }
        let state = self.state.get(resource);
        let account = state
            .and_then(|s| s.accounts.get(holder))
            .cloned()
            .unwrap_or_default();
        let rights = state.map_or(0, |s| s.rights(holder));
        let spend = |amount: u64| {
            if amount == 0 {
                Err(EscrowError::Zero)
            } else if amount > rights {
                Err(EscrowError::Insufficient {
                    needed: amount,
                    available: rights,
                })
            } else {
                Ok(())
            }
        };
        match movement {
            Movement::Create { amount } => (*amount > 0).then_some(()).ok_or(EscrowError::Zero),
            Movement::Consume { amount } | Movement::Retire { amount } => spend(*amount),
            Movement::Transfer { to, amount } => {
                if to == holder {
                    return Err(EscrowError::SelfTransfer);
                }
                if self.cutoffs.contains_key(to) {
                    return Err(EscrowError::Reclaimed(to.clone()));
                }
                spend(*amount)
            }
            Movement::Restore { amount } => {
                if *amount == 0 {
                    Err(EscrowError::Zero)
                } else if *amount > account.used() {
                    Err(EscrowError::RestoreTooLarge {
                        consumed: account.used(),
                    })
                } else {
                    Ok(())
                }
            }
            Movement::Receive { transfer } => {
                let waiting = state.is_some_and(|s| {
                    !s.receipts.contains_key(transfer)
                        && s.transfers
                            .get(transfer)
                            .is_some_and(|(to, _)| to == holder)
                });
                if waiting {
                    Ok(())
                } else {
                    Err(EscrowError::NotInTransit(transfer.clone()))
                }
            }
            Movement::Reclaim { from, .. } => {
                if from == holder {
                    Err(EscrowError::SelfTransfer)
                } else if state.is_some_and(|s| s.reclaimed.contains(from)) {
                    Err(EscrowError::Reclaimed(from.clone()))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// What a reclaim of `from` by `holder` would carry now: `from`'s last seq seen and its
    /// rights of `resource` plus the transfers to it not yet received.
    pub fn reclaim_of(&self, resource: &Resource, from: &NodeId) -> Movement {
        let state = self.state.get(resource);
        let rights = state.map_or(0, |s| s.rights(from));
        let pending: u64 = state.map_or(0, |s| {
            s.in_transit()
                .filter(|(_, (to, _))| to == from)
                .map(|(_, (_, a))| a)
                .sum()
        });
        Movement::Reclaim {
            from: from.clone(),
            upto: self.last_seq(from).unwrap_or(0),
            amount: rights + pending,
        }
    }

    /// Transfers to `holder` of `resource` it has not received yet.
    pub fn incoming(&self, resource: &Resource, holder: &NodeId) -> Vec<(MovementId, u64)> {
        self.state.get(resource).map_or_else(Vec::new, |s| {
            s.in_transit()
                .filter(|(_, (to, _))| to == holder)
                .map(|(id, (_, amount))| (id.clone(), *amount))
                .collect()
        })
    }
}

fn fold(state: &mut BTreeMap<Resource, ResourceState>, cutoffs: &BTreeMap<NodeId, u64>, e: &Entry) {
    if cutoffs.get(&e.author).is_some_and(|cut| e.seq > *cut) {
        return; // written by a reclaimed holder after the reclaim's cut: never counts
    }
    let s = state.entry(e.resource.clone()).or_default();
    match &e.movement {
        Movement::Create { amount } => account(s, &e.author).created += amount,
        Movement::Consume { amount } => account(s, &e.author).consumed += amount,
        Movement::Restore { amount } => account(s, &e.author).restored += amount,
        Movement::Retire { amount } => account(s, &e.author).retired += amount,
        Movement::Transfer { to, amount } => {
            account(s, &e.author).sent += amount;
            s.transfers.insert(e.id(), (to.clone(), *amount));
            if s.receipts.get(&e.id()) == Some(to) {
                account(s, to).received += amount; // its receipt came first
            }
        }
        Movement::Receive { transfer } => {
            if s.receipts.contains_key(transfer) {
                return;
            }
            s.receipts.insert(transfer.clone(), e.author.clone());
            if let Some((to, amount)) = s.transfers.get(transfer).cloned()
                && to == e.author
            {
                account(s, &to).received += amount;
            }
        }
        Movement::Reclaim { from, amount, .. } => {
            s.reclaimed.insert(from.clone());
            account(s, &e.author).reclaimed_in += amount;
        }
    }
}

fn account<'a>(s: &'a mut ResourceState, holder: &NodeId) -> &'a mut Account {
    s.accounts.entry(holder.clone()).or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn entry(author: &str, seq: u64, movement: Movement) -> Entry {
        Entry {
            author: id(author),
            seq,
            resource: Resource::Seats {
                campaign: CampaignId::from_u128(1),
            },
            movement,
        }
    }

    #[test]
    fn hub_holders_are_per_store_stable_and_valid_node_ids() {
        let hub = hub_origin(&"ab".repeat(32));
        assert_eq!(hub.as_str(), format!("hub-{}", "ab".repeat(16)));
        let store = |s: &str| StoreId::new(s).unwrap();
        let a = hub_holder(&hub, &store("store-1"));
        assert_eq!(a, hub_holder(&hub, &store("store-1")));
        assert_ne!(a, hub_holder(&hub, &store("store-2")));
        // FNV-1a 64 of "a" (the published test vector): a till and the hub agree forever.
        assert_eq!(
            hub_holder(&hub, &store("a")).as_str(),
            format!("{hub}-af63dc4c8601ec8c")
        );
        let longest = hub_holder(&hub, &store(&"s.".repeat(32)));
        assert!(longest.as_str().len() <= 64);
    }

    #[test]
    fn the_state_does_not_depend_on_arrival_order() {
        let transfer = MovementId {
            author: id("hub"),
            seq: 2,
        };
        let entries = [
            entry("hub", 1, Movement::Create { amount: 10 }),
            entry(
                "hub",
                2,
                Movement::Transfer {
                    to: id("t1"),
                    amount: 4,
                },
            ),
            entry(
                "t1",
                1,
                Movement::Receive {
                    transfer: transfer.clone(),
                },
            ),
            entry("t1", 2, Movement::Consume { amount: 3 }),
            entry("t1", 3, Movement::Restore { amount: 1 }),
            entry("hub", 3, Movement::Consume { amount: 5 }),
        ];
        let mut forward = Ledger::new();
        entries.iter().cloned().for_each(|e| forward.apply(e));
        // The receipt and t1's sales arrive before the hub's transfer.
        let mut backward = Ledger::new();
        entries
            .iter()
            .rev()
            .cloned()
            .for_each(|e| backward.apply(e));
        assert_eq!(forward.states(), backward.states());
        let seats = forward.states().values().next().unwrap();
        assert_eq!((seats.rights(&id("hub")), seats.rights(&id("t1"))), (1, 2));
        assert_eq!(
            (seats.used(), seats.capacity(), seats.in_transit_total()),
            (7, 10, 0)
        );
    }

    #[test]
    fn a_holder_spends_only_what_it_holds_and_a_reclaim_cuts_the_lost_one_off() {
        let mut hub = Ledger::new();
        let seats = Resource::Seats {
            campaign: CampaignId::from_u128(1),
        };
        hub.apply(entry("hub", 1, Movement::Create { amount: 5 }));
        hub.apply(entry(
            "hub",
            2,
            Movement::Transfer {
                to: id("t1"),
                amount: 2,
            },
        ));
        assert_eq!(
            hub.check(&id("hub"), &seats, &Movement::Consume { amount: 4 }),
            Err(EscrowError::Insufficient {
                needed: 4,
                available: 3
            })
        );
        // t1 is lost before it received: the hub takes back the 2 in transit.
        let reclaim = hub.reclaim_of(&seats, &id("t1"));
        assert_eq!(
            reclaim,
            Movement::Reclaim {
                from: id("t1"),
                upto: 0,
                amount: 2
            }
        );
        hub.apply(entry("hub", 3, reclaim));
        assert_eq!(hub.rights(&seats, &id("hub")), 5);
        // Whatever t1 wrote afterwards never counts.
        hub.apply(entry("t1", 1, Movement::Create { amount: 100 }));
        assert_eq!(hub.rights(&seats, &id("t1")), 0);
        assert_eq!(hub.ignored(&id("t1")).len(), 1);
        assert_eq!(
            hub.check(&id("t1"), &seats, &Movement::Consume { amount: 1 }),
            Err(EscrowError::Reclaimed(id("t1")))
        );
    }
}
