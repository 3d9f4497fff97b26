//! Queries on a read transaction: an MVCC snapshot that never waits for the writer.

use fusion_contracts::{
    CampaignId, Envelope, OrderId, PaymentId, ProductId, ShipmentId, Sku, Timestamp,
};
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

use super::tables::{
    self, CAMPAIGN_LIST, CAMPAIGNS, EVENTS, ORDER_LIST, ORDERS, PRODUCT_LIST, PRODUCTS,
    RESERVATIONS, STOCK, TIMERS, TOKENS, decode,
};
use super::tables::{ORDER_PAYMENTS, PAYMENT_FOLLOWUPS, PAYMENTS};
use super::{StoreError, TokenInfo, last_seq};
use crate::domain::{Campaign, Order, Payment, Product, Reservation, Shipment, StockLevel};

/// Most rows a query reserves room for up front; `limit` may be far larger than what exists.
const PREALLOCATE_MAX: usize = 1024;

/// A consistent view of the store at the moment it was opened.
pub struct Reader {
    txn: ReadTransaction,
}

impl Reader {
    pub(super) fn new(txn: ReadTransaction) -> Self {
        Self { txn }
    }

    pub fn product(&self, id: ProductId) -> Result<Option<(Product, StockLevel)>, StoreError> {
        let products = self.txn.open_table(PRODUCTS)?;
        let Some(stored) = tables::get_product(&products, id)? else {
            return Ok(None);
        };
        let stock = tables::get_stock(&self.txn.open_table(STOCK)?, &stored.product.sku)?;
        Ok(Some((stored.product, stock)))
    }

    /// The product that holds `sku` (archived ones too: their skus stay taken).
    pub fn product_by_sku(&self, sku: &Sku) -> Result<Option<(Product, StockLevel)>, StoreError> {
        let skus = self.txn.open_table(tables::PRODUCT_SKUS)?;
        let Some(id) = skus.get(sku.as_str())?.map(|v| v.value()) else {
            return Ok(None);
        };
        self.product(ProductId::from_u128(id))
    }

    /// Active products in the order they were created.
    pub fn products(
        &self,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<(Product, StockLevel)>, StoreError> {
        let list = self.txn.open_table(PRODUCT_LIST)?;
        let products = self.txn.open_table(PRODUCTS)?;
        let stock = self.txn.open_table(STOCK)?;
        let mut out = Vec::with_capacity(limit.min(PREALLOCATE_MAX));
        for entry in list.iter()?.skip(offset).take(limit) {
            let (id, _) = entry?;
            let id = ProductId::from_u128(id.value());
            let stored = tables::get_product(&products, id)?
                .ok_or_else(|| StoreError::Invariant(format!("listed product {id} is missing")))?;
            let level = tables::get_stock(&stock, &stored.product.sku)?;
            out.push((stored.product, level));
        }
        Ok(out)
    }

    /// Active products that answer `query` (`fusion_rules::catalog::matches`), in creation
    /// order: at most `limit`.
    pub fn search_products(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<(Product, StockLevel)>, StoreError> {
        let list = self.txn.open_table(PRODUCT_LIST)?;
        let products = self.txn.open_table(PRODUCTS)?;
        let stock = self.txn.open_table(STOCK)?;
        let mut out = Vec::new();
        for entry in list.iter()? {
            if out.len() == limit {
                break;
            }
            let (id, _) = entry?;
            let id = ProductId::from_u128(id.value());
            let stored = tables::get_product(&products, id)?
                .ok_or_else(|| StoreError::Invariant(format!("listed product {id} is missing")))?;
            let p = stored.product;
            if crate::domain::catalog::matches(p.sku.as_str(), &p.name, query) {
                let level = tables::get_stock(&stock, &p.sku)?;
                out.push((p, level));
            }
        }
        Ok(out)
    }

    pub fn stock(&self, sku: &Sku) -> Result<Option<StockLevel>, StoreError> {
        let stock = self.txn.open_table(STOCK)?;
        stock
            .get(sku.as_str())?
            .map(|v| decode("stock", v.value()))
            .transpose()
    }

    /// Stock levels by sku.
    pub fn stock_levels(
        &self,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<(Sku, StockLevel)>, StoreError> {
        let stock = self.txn.open_table(STOCK)?;
        let mut out = Vec::with_capacity(limit.min(PREALLOCATE_MAX));
        for entry in stock.iter()?.skip(offset).take(limit) {
            let (sku, level) = entry?;
            let sku = Sku::new(sku.value()).map_err(|e| StoreError::Corrupt {
                table: "stock",
                reason: e.to_string(),
            })?;
            out.push((sku, decode("stock", level.value())?));
        }
        Ok(out)
    }

    /// Stock rights this node gave away that the receiver has not taken in yet (as far as
    /// this node has seen its log): (transfer id, sku, to, quantity, when), oldest first.
    pub fn transfers_in_transit(&self) -> Result<Vec<OutgoingTransfer>, StoreError> {
        let out = self.txn.open_table(tables::TRANSFERS_OUT)?;
        let receipts = self.txn.open_table(tables::PEER_RECEIPTS)?;
        let mut pending = Vec::new();
        for entry in out.iter()? {
            let (id, bytes) = entry?;
            if receipts.get(id.value())?.is_some() {
                continue;
            }
            let (sku, to, quantity, at): (Sku, fusion_contracts::NodeId, u64, Timestamp) =
                decode("transfers_out", bytes.value())?;
            pending.push(OutgoingTransfer {
                transfer_id: uuid::Uuid::from_u128(id.value()),
                sku,
                to,
                quantity,
                at,
            });
        }
        pending.sort_by_key(|p| p.at);
        Ok(pending)
    }

    /// This till's seats of every campaign it holds seats of, in campaign id order.
    pub fn seat_rights(&self) -> Result<Vec<fusion_contracts::http::SeatRights>, StoreError> {
        let seats = self.txn.open_table(tables::CAMPAIGN_SEATS)?;
        let campaigns = self.txn.open_table(tables::CAMPAIGNS)?;
        let mut out = Vec::new();
        for entry in seats.iter()? {
            let (id, bytes) = entry?;
            let held: crate::domain::campaigns::Seats = decode("campaign_seats", bytes.value())?;
            let campaign_id = fusion_contracts::CampaignId::from_u128(id.value());
            let Some(stored) = tables::get_campaign(&campaigns, campaign_id)? else {
                continue;
            };
            out.push(fusion_contracts::http::SeatRights {
                campaign_id,
                free: held.free,
                participants: stored.campaign.participants,
                shared: held.shared,
                ended: held.ended,
                status: stored.campaign.status,
            });
        }
        Ok(out)
    }

    /// The stock rights of the store's other tills, as this till knows them: (origin, sku,
    /// level), by origin then sku.
    pub fn peer_stock(
        &self,
    ) -> Result<Vec<(fusion_contracts::NodeId, Sku, StockLevel)>, StoreError> {
        let table = self.txn.open_table(tables::PEER_STOCK)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, bytes) = entry?;
            let (origin, sku) = key.value();
            let corrupt = |reason: String| StoreError::Corrupt {
                table: "peer_stock",
                reason,
            };
            out.push((
                fusion_contracts::NodeId::new(origin).map_err(|e| corrupt(e.to_string()))?,
                Sku::new(sku).map_err(|e| corrupt(e.to_string()))?,
                decode("peer_stock", bytes.value())?,
            ));
        }
        Ok(out)
    }

    pub fn order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        tables::get_order(&self.txn.open_table(ORDERS)?, id)
    }

    /// Who holds order `id`'s return rights and what was returned, once anything was (`None`:
    /// nothing returned, the rights with the till that sold it).
    pub fn return_rights(
        &self,
        id: OrderId,
    ) -> Result<Option<crate::domain::returns::ReturnRights>, StoreError> {
        match self
            .txn
            .open_table(tables::ORDER_RETURNS)?
            .get(id.as_u128())?
        {
            Some(bytes) => tables::decode("order_returns", bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// The receipt of order `id` (this till's or a peer's), once it is paid.
    pub fn receipt(
        &self,
        id: OrderId,
    ) -> Result<Option<fusion_contracts::events::ReceiptIssued>, StoreError> {
        super::receipts::of_order(&self.txn.open_table(tables::ORDER_RECEIPTS)?, id)
    }

    /// `till`'s drawer as its log leaves it.
    pub fn drawer(
        &self,
        till: &fusion_contracts::NodeId,
    ) -> Result<crate::domain::drawer::Drawer, StoreError> {
        super::drawer::get(&self.txn.open_table(tables::DRAWERS)?, till)
    }

    /// Drawer session `id` (this till's or a peer's).
    pub fn session(&self, id: uuid::Uuid) -> Result<Option<super::drawer::SessionRow>, StoreError> {
        super::drawer::session(&self.txn.open_table(tables::SESSIONS)?, id)
    }

    /// Sessions of `till` (every till when `None`), newest first.
    pub fn sessions(
        &self,
        till: Option<&fusion_contracts::NodeId>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<super::drawer::SessionRow>, StoreError> {
        let table = self.txn.open_table(tables::SESSIONS)?;
        let mut out = Vec::with_capacity(limit.min(PREALLOCATE_MAX));
        let mut skipped = 0;
        for entry in table.iter()?.rev() {
            let (_, value) = entry?;
            let row: super::drawer::SessionRow = decode("sessions", value.value())?;
            if till.is_some_and(|t| *t != row.opened.till) {
                continue;
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            out.push(row);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// The X report of this till's open session `open` so far: the fold of its log from the
    /// session's `fromSeq` to now, and the last seq folded.
    pub fn x_report(
        &self,
        till: &fusion_contracts::NodeId,
        from_seq: u64,
        currency: fusion_contracts::Currency,
    ) -> Result<(crate::domain::drawer::Tally, u64), StoreError> {
        let state = self.drawer(till)?;
        super::drawer::tally(
            &self.txn.open_table(EVENTS)?,
            &self.txn.open_table(ORDERS)?,
            &self.txn.open_table(PAYMENTS)?,
            &state,
            currency,
            from_seq,
        )
    }

    /// The order whose receipt prints `number` (`<till>-<n>`).
    pub fn receipt_order(&self, number: &str) -> Result<Option<OrderId>, StoreError> {
        Ok(self
            .txn
            .open_table(tables::RECEIPT_ORDERS)?
            .get(number)?
            .map(|v| OrderId::from_u128(v.value())))
    }

    /// The verification code of this till's receipt of order `id`: `<seq>-<the first 12 hex
    /// digits of that entry's hash>` in the signed journal (`None`: another till's receipt).
    pub fn receipt_code(&self, id: OrderId) -> Result<Option<String>, StoreError> {
        super::receipts::code(
            &self.txn.open_table(tables::RECEIPT_SEQS)?,
            &self.txn.open_table(EVENTS)?,
            id,
        )
    }

    /// Return `id` (this till's or a peer's).
    pub fn return_of(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<fusion_contracts::events::OrderReturned>, StoreError> {
        super::receipts::return_of(&self.txn.open_table(tables::RETURNS)?, id)
    }

    /// Who sold order `id`, when a signed-in staff member did.
    pub fn order_staff(&self, id: OrderId) -> Result<Option<String>, StoreError> {
        Ok(self
            .txn
            .open_table(tables::ORDER_STAFF)?
            .get(id.as_u128())?
            .map(|v| v.value().to_string()))
    }

    /// What returns owe payment `id` and the provider has not refunded yet (minor units).
    pub fn refund_owed(&self, id: PaymentId) -> Result<i64, StoreError> {
        tables::refund_owed(&self.txn.open_table(tables::REFUNDS_OWED)?, id)
    }

    /// Orders, newest first.
    pub fn orders(&self, limit: usize, offset: usize) -> Result<Vec<Order>, StoreError> {
        let list = self.txn.open_table(ORDER_LIST)?;
        let orders = self.txn.open_table(ORDERS)?;
        let mut out = Vec::with_capacity(limit.min(PREALLOCATE_MAX));
        for entry in list.iter()?.rev().skip(offset).take(limit) {
            let (_, id) = entry?;
            let id = OrderId::from_u128(id.value());
            let order = tables::get_order(&orders, id)?
                .ok_or_else(|| StoreError::Invariant(format!("listed order {id} is missing")))?;
            out.push(order);
        }
        Ok(out)
    }

    pub fn order_count(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(ORDER_LIST)?.len()?)
    }

    pub fn reservations(&self, id: OrderId) -> Result<Vec<Reservation>, StoreError> {
        tables::get_reservations(&self.txn.open_table(RESERVATIONS)?, id)
    }

    /// Events with `seq > after`, in log order.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let events = self.txn.open_table(EVENTS)?;
        let mut out = Vec::with_capacity(limit.min(PREALLOCATE_MAX));
        for entry in events.range(after.saturating_add(1)..)?.take(limit) {
            let (_, value) = entry?;
            out.push(super::journal::envelope_of(value.value())?);
        }
        Ok(out)
    }

    /// Up to `limit` events from seq `from` on, as stored (postcard envelopes), for replication.
    pub fn events_raw(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let events = self.txn.open_table(EVENTS)?;
        let mut out = Vec::with_capacity(limit.min(PREALLOCATE_MAX));
        for entry in events.range(from..)?.take(limit) {
            let (_, value) = entry?;
            out.push(super::journal::split_entry(value.value())?.1.to_vec());
        }
        Ok(out)
    }

    /// Peers the hub revoked (endpoint id → when, Unix ms), as heard in its log.
    pub fn revoked_peers(&self) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let table = self.txn.open_table(tables::REVOKED_PEERS)?;
        let mut out = std::collections::BTreeMap::new();
        for row in table.iter()? {
            let (endpoint, at) = row?;
            out.insert(endpoint.value().to_string(), at.value());
        }
        Ok(out)
    }

    /// Whether the hub revoked the peer with endpoint id `endpoint`.
    pub fn is_revoked(&self, endpoint: &str) -> Result<bool, StoreError> {
        Ok(self
            .txn
            .open_table(tables::REVOKED_PEERS)?
            .get(endpoint)?
            .is_some())
    }

    /// The endpoint of the peer till whose journal created campaign `id` (and that this till
    /// holds), if any: it and the hub may change the campaign's document.
    pub fn campaign_owner(&self, id: CampaignId) -> Result<Option<String>, StoreError> {
        let Some(origin) = self
            .txn
            .open_table(tables::PEER_CAMPAIGNS)?
            .get(id.as_u128())?
            .map(|v| v.value().to_string())
        else {
            return Ok(None);
        };
        Ok(self
            .txn
            .open_table(tables::PEER_ORIGIN_PEERS)?
            .get(origin.as_str())?
            .map(|v| v.value().to_string()))
    }

    /// The entry hash of this node's event at `seq`, if it exists.
    pub fn entry_hash(&self, seq: u64) -> Result<Option<crate::domain::journal::Hash>, StoreError> {
        match self.txn.open_table(EVENTS)?.get(seq)? {
            Some(value) => Ok(Some(super::journal::split_entry(value.value())?.0)),
            None => Ok(None),
        }
    }

    /// Position of the newest event (0 for an empty log).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        last_seq(&self.txn.open_table(EVENTS)?)
    }

    pub fn campaign(&self, id: CampaignId) -> Result<Option<Campaign>, StoreError> {
        Ok(tables::get_campaign(&self.txn.open_table(CAMPAIGNS)?, id)?.map(|s| s.campaign))
    }

    /// Campaigns in the order they were created.
    pub fn campaigns(&self, limit: usize, offset: usize) -> Result<Vec<Campaign>, StoreError> {
        let list = self.txn.open_table(CAMPAIGN_LIST)?;
        let campaigns = self.txn.open_table(CAMPAIGNS)?;
        let mut out = Vec::with_capacity(limit.min(PREALLOCATE_MAX));
        for entry in list.iter()?.skip(offset).take(limit) {
            let (_, id) = entry?;
            let id = CampaignId::from_u128(id.value());
            let stored = tables::get_campaign(&campaigns, id)?
                .ok_or_else(|| StoreError::Invariant(format!("listed campaign {id} is missing")))?;
            out.push(stored.campaign);
        }
        Ok(out)
    }

    /// The unpaid order whose payment hold ends first, and when.
    pub fn next_order_hold(&self) -> Result<Option<(Timestamp, OrderId)>, StoreError> {
        let holds = self.txn.open_table(tables::ORDER_HOLDS)?;
        Ok(holds.first()?.map(|(key, _)| {
            let (due_ms, id) = key.value();
            (Timestamp::from_unix_ms(due_ms), OrderId::from_u128(id))
        }))
    }

    /// The open campaign that ends first, and when.
    pub fn next_campaign_end(&self) -> Result<Option<(Timestamp, CampaignId)>, StoreError> {
        let timers = self.txn.open_table(TIMERS)?;
        Ok(timers.first()?.map(|(key, _)| {
            let (due_ms, id) = key.value();
            (Timestamp::from_unix_ms(due_ms), CampaignId::from_u128(id))
        }))
    }

    pub fn payment(&self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        tables::get_payment(&self.txn.open_table(PAYMENTS)?, id)
    }

    /// An order's payments, oldest first.
    pub fn order_payments(&self, order_id: OrderId) -> Result<Vec<Payment>, StoreError> {
        let index = self.txn.open_table(ORDER_PAYMENTS)?;
        tables::get_order_payments(&index, &self.txn.open_table(PAYMENTS)?, order_id)
    }

    /// Card payments awaiting the provider (pending or offline-approved), oldest first.
    /// What this till approved offline and the provider has not settled yet, in `currency`.
    pub fn offline_exposure(
        &self,
        currency: fusion_contracts::Currency,
    ) -> Result<i64, StoreError> {
        tables::offline_exposure(
            &self.txn.open_table(PAYMENT_FOLLOWUPS)?,
            &self.txn.open_table(PAYMENTS)?,
            currency,
        )
    }

    /// The offline card budget this till holds in `currency` (its configured share moved by
    /// budget transfers), once a share was recorded.
    pub fn held_budget(
        &self,
        currency: fusion_contracts::Currency,
    ) -> Result<Option<i64>, StoreError> {
        tables::held_budget(&self.txn.open_table(tables::OFFLINE_BUDGET)?, currency)
    }

    /// Card payments this till approved offline that the provider has not settled yet: how
    /// many, and when the oldest was taken.
    pub fn offline_cards(&self) -> Result<(u64, Option<Timestamp>), StoreError> {
        let followups = self.txn.open_table(PAYMENT_FOLLOWUPS)?;
        let payments = self.txn.open_table(PAYMENTS)?;
        let (mut count, mut oldest) = (0, None);
        // Keyed by (created at, id): the first found is the oldest.
        for entry in followups.iter()? {
            let (key, _) = entry?;
            let (_, id) = key.value();
            if let Some(p) = tables::get_payment(&payments, PaymentId::from_u128(id))?
                && p.status == fusion_contracts::events::payments::PaymentStatus::OfflineApproved
            {
                count += 1;
                oldest = oldest.or(Some(p.created_at));
            }
        }
        Ok((count, oldest))
    }

    pub fn payment_followups(&self, limit: usize) -> Result<Vec<PaymentId>, StoreError> {
        let table = self.txn.open_table(PAYMENT_FOLLOWUPS)?;
        let mut out = Vec::new();
        for entry in table.iter()?.take(limit) {
            let (key, _) = entry?;
            out.push(PaymentId::from_u128(key.value().1));
        }
        Ok(out)
    }

    pub fn shipment(&self, id: ShipmentId) -> Result<Option<Shipment>, StoreError> {
        tables::get_shipment(&self.txn.open_table(tables::SHIPMENTS)?, id)
    }

    /// An order's shipments, oldest first.
    pub fn order_shipments(&self, order_id: OrderId) -> Result<Vec<Shipment>, StoreError> {
        let index = self.txn.open_table(tables::ORDER_SHIPMENTS)?;
        tables::get_order_shipments(&index, &self.txn.open_table(tables::SHIPMENTS)?, order_id)
    }

    pub fn store_credit(
        &self,
        account: &str,
    ) -> Result<Option<crate::domain::payments::CreditAccount>, StoreError> {
        tables::get_credit(&self.txn.open_table(tables::STORE_CREDIT)?, account)
    }

    /// An order taken at another till of this store, as its events received so far describe it.
    pub fn peer_order(&self, id: OrderId) -> Result<Option<tables::PeerOrder>, StoreError> {
        let table = self.txn.open_table(tables::PEER_ORDERS)?;
        match table.get(id.as_u128())? {
            Some(bytes) => Ok(Some(tables::decode("peer_orders", bytes.value())?)),
            None => Ok(None),
        }
    }

    /// Every peer origin's position: all its events up to it are held here.
    pub fn peer_positions(
        &self,
    ) -> Result<std::collections::BTreeMap<fusion_contracts::NodeId, u64>, StoreError> {
        let table = self.txn.open_table(tables::PEER_POSITIONS)?;
        let mut out = std::collections::BTreeMap::new();
        for entry in table.iter()? {
            let (origin, seq) = entry?;
            let origin =
                fusion_contracts::NodeId::new(origin.value()).map_err(|e| StoreError::Corrupt {
                    table: "peer_positions",
                    reason: e.to_string(),
                })?;
            out.insert(origin, seq.value());
        }
        Ok(out)
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let tokens = self.txn.open_table(TOKENS)?;
        let mut out = Vec::new();
        for entry in tokens.iter()? {
            let (_, info) = entry?;
            out.push(decode::<TokenInfo>("tokens", info.value())?);
        }
        out.sort_by_key(|t| (t.created_at, t.id));
        Ok(out)
    }
}

/// Stock rights this node gave away and the receiver has not taken in yet.
#[derive(Clone, Debug, PartialEq)]
pub struct OutgoingTransfer {
    pub transfer_id: uuid::Uuid,
    pub sku: Sku,
    pub to: fusion_contracts::NodeId,
    pub quantity: u64,
    pub at: Timestamp,
}
